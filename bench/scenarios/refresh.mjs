// grant_type=refresh_token with rotation: each driver loop first logs in
// once (password, not measured), then spends its refresh token and keeps
// the new one, with the node driver (the token changes every request).
import { loop } from '../lib/measure.mjs';
import { passwordLogin, postForm } from '../lib/oauth.mjs';
import { SCOPE } from '../lib/servers.mjs';

export default {
  name: 'refresh',
  title: 'refresh_token grant, rotated (POST /token)',
  tool: 'node',
  targets: ['issod', 'peer'],
  prepare: (t, ctx) => Promise.all(Array.from({ length: ctx.flowConcurrency }, async (_, w) => {
    const { tokens } = await passwordLogin(t, t.users[w % t.users.length], SCOPE);
    if (!tokens.refresh_token) throw new Error('no refresh token from the code flow');
    ctx.countSessions(t, 1);
    return { rt: tokens.refresh_token };
  })),
  run: (t, ctx, states) => loop({
    seconds: ctx.seconds,
    concurrency: ctx.flowConcurrency,
    states,
    async op(s) {
      const tok = await postForm(t, t.md.token_endpoint, { grant_type: 'refresh_token', refresh_token: s.rt });
      if (!tok.access_token || !tok.refresh_token) throw new Error('refresh without access and refresh token');
      s.rt = tok.refresh_token;
    },
  }),
};
