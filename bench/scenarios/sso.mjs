// Single sign-on: each driver loop is a browser that logged in once
// (password, not measured) and consented; then authorize -> code (no page)
// -> token, over and over.
import { loop } from '../lib/measure.mjs';
import { passwordLogin, ssoLogin } from '../lib/oauth.mjs';
import { SCOPE } from '../lib/servers.mjs';

export default {
  name: 'sso_code_flow',
  title: 'single sign-on code flow: authorize -> code -> token',
  tool: 'node',
  targets: ['issod', 'peer'],
  prepare: (t, ctx) => Promise.all(Array.from({ length: ctx.flowConcurrency }, async (_, w) => {
    ctx.countSessions(t, 1);
    return (await passwordLogin(t, t.users[w % t.users.length], SCOPE)).agent;
  })),
  run: (t, ctx, agents) => loop({
    seconds: ctx.seconds,
    concurrency: ctx.flowConcurrency,
    states: agents,
    op: (agent) => ssoLogin(t, agent, SCOPE),
  }),
};
