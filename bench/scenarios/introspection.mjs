// POST the access token of one code-flow login to the introspection
// endpoint (RFC 7662), client_secret_basic, with wrk.
import { wrk } from '../lib/measure.mjs';

export default {
  name: 'introspection',
  title: 'introspection of a live access token (POST)',
  tool: 'wrk',
  targets: ['issod', 'peer'],
  async prepare(t, ctx) {
    const { tokens } = await ctx.session(t);
    const check = await fetch(t.md.introspection_endpoint, {
      method: 'POST',
      headers: { authorization: t.basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token: tokens.access_token }).toString(),
    });
    const body = await check.json();
    if (body.active !== true) throw new Error(`introspection says ${JSON.stringify(body)}`);
    return tokens.access_token;
  },
  run: (t, ctx, token) => wrk(t.md.introspection_endpoint, {
    seconds: ctx.seconds,
    connections: ctx.connections,
    method: 'POST',
    body: new URLSearchParams({ token }).toString(),
    headers: { authorization: t.basic, 'content-type': 'application/x-www-form-urlencoded' },
  }),
};
