// A full code flow with a password login in a fresh browser: authorize ->
// method choice -> password form (argon2id verify, t=2 m=64 MiB) -> code
// (consent given once before and remembered) -> token.
import { loop } from '../lib/measure.mjs';
import { passwordLogin } from '../lib/oauth.mjs';
import { SCOPE } from '../lib/servers.mjs';

export default {
  name: 'password_code_flow',
  title: 'password login code flow (argon2id), fresh browser',
  tool: 'node',
  targets: ['issod', 'peer'],
  async run(t, ctx) {
    const r = await loop({
      seconds: ctx.seconds,
      concurrency: ctx.passwordConcurrency,
      op: (_, w, i) => passwordLogin(t, t.users[(w + i * ctx.passwordConcurrency) % t.users.length], SCOPE),
    });
    ctx.countSessions(t, r.ops);
    return r;
  },
};
