// POST a self-contained access token from client_credentials to the
// introspection endpoint, with wrk, issod alone: a JWT (RFC 9068; a
// signature check and one store read, its revocation list; node
// oidc-provider refuses to introspect the JWT access tokens it issues),
// or issod's default sealed one (an AEAD opened and the same store read).
import { wrk } from '../lib/measure.mjs';

const form = { 'content-type': 'application/x-www-form-urlencoded' };

const scenario = (name, title, target) => ({
  name,
  title,
  tool: 'wrk',
  alone: true,
  targets: [target],
  async prepare(t) {
    const got = await fetch(t.md.token_endpoint, {
      method: 'POST',
      headers: { authorization: t.basic, ...form },
      body: 'grant_type=client_credentials',
    });
    const { access_token: token } = await got.json();
    const check = await fetch(t.md.introspection_endpoint, {
      method: 'POST',
      headers: { authorization: t.basic, ...form },
      body: new URLSearchParams({ token }).toString(),
    });
    const body = await check.json();
    if (body.active !== true) throw new Error(`introspection says ${JSON.stringify(body)}`);
    return token;
  },
  run: (t, ctx, token) => wrk(t.md.introspection_endpoint, {
    seconds: ctx.seconds,
    connections: ctx.connections,
    method: 'POST',
    body: new URLSearchParams({ token }).toString(),
    headers: { authorization: t.basic, ...form },
  }),
});

export const introspectionJwt = scenario('introspection_jwt', 'introspection of a live JWT access token (POST)', 'issodJwt');
export const introspectionSealed = scenario('introspection_sealed', 'introspection of a live sealed client_credentials token (POST)', 'issod');
