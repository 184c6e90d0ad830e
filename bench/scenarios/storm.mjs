// The password storm: discovery with wrk while ctx.stormLogins browsers
// log in with passwords without pause (node driver), both for the same
// seconds; compared with discovery alone measured just before (prepare),
// so both see the same machine.
import { loop, wrk } from '../lib/measure.mjs';
import { passwordLogin } from '../lib/oauth.mjs';
import { SCOPE } from '../lib/servers.mjs';

export default {
  name: 'password_storm',
  title: 'discovery (GET) during a password-login storm',
  tool: 'wrk + node',
  targets: ['issod', 'peer'],
  prepare: (t, ctx) => wrk(`${t.issuer}/.well-known/openid-configuration`, { seconds: ctx.seconds, connections: ctx.connections }),
  async run(t, ctx, idle) {
    const n = ctx.stormLogins;
    const [disc, logins] = await Promise.all([
      wrk(`${t.issuer}/.well-known/openid-configuration`, { seconds: ctx.seconds, connections: ctx.connections }),
      loop({
        seconds: ctx.seconds,
        concurrency: n,
        op: (_, w, i) => passwordLogin(t, t.users[(w + i * n) % t.users.length], SCOPE),
      }),
    ]);
    ctx.countSessions(t, logins.ops);
    return {
      ...disc,
      logins,
      vs_idle: { idle_rps: idle.rps, rps_fraction: disc.rps / idle.rps, p99_idle_ms: idle.p99, p99_storm_ms: disc.p99 },
    };
  },
};
