// POST a JWT access token (RFC 9068) from client_credentials to the
// introspection endpoint, with wrk: for issod a signature check and one
// store read (its revocation list). issod alone: node oidc-provider
// refuses to introspect the JWT access tokens it issues.
import { wrk } from '../lib/measure.mjs';

const form = { 'content-type': 'application/x-www-form-urlencoded' };

export default {
  name: 'introspection_jwt',
  title: 'introspection of a live JWT access token (POST)',
  tool: 'wrk',
  alone: true,
  targets: ['issodJwt'],
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
};
