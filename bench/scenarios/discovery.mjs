// GET /.well-known/openid-configuration with wrk (no state, no store).
import { wrk } from '../lib/measure.mjs';

export default {
  name: 'discovery',
  title: 'discovery document (GET)',
  tool: 'wrk',
  targets: ['issod', 'peer'],
  run: (t, ctx) => wrk(`${t.issuer}/.well-known/openid-configuration`, { seconds: ctx.seconds, connections: ctx.connections }),
};
