// GET the JWK set with wrk.
import { wrk } from '../lib/measure.mjs';

export default {
  name: 'jwks',
  title: 'JWKS (GET)',
  tool: 'wrk',
  targets: ['issod', 'peer'],
  run: (t, ctx) => wrk(t.md.jwks_uri, { seconds: ctx.seconds, connections: ctx.connections }),
};
