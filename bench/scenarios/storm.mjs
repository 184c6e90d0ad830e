// The password storm: a wrk flood of a cheap request (discovery, or a
// client_credentials token) while ctx.stormLogins browsers log in with
// passwords without pause (node driver), both for the same seconds. Each
// half is also measured alone just before (prepare), on the same machine
// state: the flood alone (its idle throughput and p99) and the logins
// alone (the rate hashing allows this server with nothing else to do).
import { loop, wrk } from '../lib/measure.mjs';
import { passwordLogin } from '../lib/oauth.mjs';
import { SCOPE } from '../lib/servers.mjs';

const logins = (t, ctx) => {
  const n = ctx.stormLogins;
  return loop({
    seconds: ctx.seconds,
    concurrency: n,
    op: (_, w, i) => passwordLogin(t, t.users[(w + i * n) % t.users.length], SCOPE),
  });
};

function storm(name, title, flood) {
  return {
    name,
    title,
    tool: 'wrk + node',
    targets: ['issod', 'peer'],
    prepare: async (t, ctx) => ({ flood: await flood(t, ctx), logins: await logins(t, ctx) }),
    async run(t, ctx, alone) {
      const [disc, during] = await Promise.all([flood(t, ctx), logins(t, ctx)]);
      ctx.countSessions(t, alone.logins.ops + during.ops);
      return {
        ...disc,
        logins: during,
        vs_idle: {
          idle_rps: alone.flood.rps,
          rps_fraction: disc.rps / alone.flood.rps,
          p99_idle_ms: alone.flood.p99,
          p99_storm_ms: disc.p99,
          logins_alone_rps: alone.logins.rps,
          logins_fraction: during.rps / alone.logins.rps,
        },
      };
    },
  };
}

export const stormDiscovery = storm('password_storm', 'discovery (GET) during a password-login storm',
  (t, ctx) => wrk(`${t.issuer}/.well-known/openid-configuration`, { seconds: ctx.seconds, connections: ctx.connections }));

export const stormToken = storm('password_storm_token', 'client_credentials (POST /token) during a password-login storm',
  (t, ctx) => wrk(t.md.token_endpoint, {
    seconds: ctx.seconds,
    connections: ctx.connections,
    method: 'POST',
    body: 'grant_type=client_credentials',
    headers: { authorization: t.basic, 'content-type': 'application/x-www-form-urlencoded' },
  }));
