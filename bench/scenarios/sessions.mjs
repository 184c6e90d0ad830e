// Many sessions: ctx.sessionLogins password logins in fresh browsers (8 at
// a time), each leaving a live single-sign-on session; the memory table
// (RSS after the run) is read after this. Bounded by a count, not by
// seconds: about ctx.sessionLogins × 0.11 s of CPU per server.
import { loop } from '../lib/measure.mjs';
import { passwordLogin } from '../lib/oauth.mjs';
import { SCOPE } from '../lib/servers.mjs';

const CONCURRENCY = 8;

export default {
  name: 'many_sessions',
  title: 'password logins that leave live sessions, before the RSS reading',
  tool: 'node',
  targets: ['issod', 'peer'],
  async run(t, ctx) {
    const r = await loop({
      seconds: 600,
      count: ctx.sessionLogins,
      concurrency: CONCURRENCY,
      op: (_, w, i) => passwordLogin(t, t.users[(w + i * CONCURRENCY) % t.users.length], SCOPE),
    });
    ctx.countSessions(t, r.ops);
    return r;
  },
};
