// POST grant_type=client_credentials with client_secret_basic, with wrk:
// every answer is a new access token (issod: an opaque token, sealed with
// XChaCha20-Poly1305, or for its second client an RFC 9068 ES256 JWT;
// neither is stored; the peers: an opaque token in memory, or an ES256
// JWT).
import { wrk } from '../lib/measure.mjs';

export default {
  name: 'client_credentials',
  title: 'client_credentials grant (POST /token)',
  tool: 'wrk',
  targets: ['issod', 'issodJwt', 'peer', 'peerJwt'],
  run: (t, ctx) => wrk(t.md.token_endpoint, {
    seconds: ctx.seconds,
    connections: ctx.connections,
    method: 'POST',
    body: 'grant_type=client_credentials',
    headers: { authorization: t.basic, 'content-type': 'application/x-www-form-urlencoded' },
  }),
};
