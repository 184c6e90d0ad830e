// The TaipeiPass app's side of issod's app API, for tests that talk to
// issod directly (docs/taipeipass-app.md): a P-256 device key, its
// enrolment, and answers signed with it as ES256 compact JWS.

import crypto from 'node:crypto';

const b64url = (buf) => Buffer.from(buf).toString('base64url');

/** A fresh device key: {privateKey, jwk} (jwk: the public JWK). */
export function deviceKey() {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  return { privateKey, jwk: { kty, crv, x, y } };
}

/** A compact ES256 JWS of payload (an object) by privateKey. */
export function signJws(privateKey, payload, header = { alg: 'ES256' }) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
  const sig = crypto.sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${b64url(sig)}`;
}

async function post(s, path, body) {
  const res = await fetch(s.url(path), {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body: json, headers: res.headers };
}

/** POST /app/v1/device/enrol: {status, body, headers}. */
export function enrol(s, { account, password, jwk, name }) {
  return post(s, '/app/v1/device/enrol', { account, password, public_key: jwk, name });
}

/** A device enrolled for member on s: {device, privateKey, jwk}. */
export async function enrolled(s, member, name) {
  const key = deviceKey();
  const r = await enrol(s, { account: member.account, password: member.password, jwk: key.jwk, name });
  if (r.status !== 201) throw new Error(`enrolment of ${member.account}: ${r.status} ${JSON.stringify(r.body)}`);
  return { device: r.body.device, ...key };
}

/** POST /app/v1/qr/details for a QR text or app link: {status, body}. */
export function details(s, qr) {
  return post(s, '/app/v1/qr/details', { qr });
}

/**
 * The app's answer to qr (QR text or app link) by dev ({device,
 * privateKey}): asks the details for the nonce, then signs and posts
 * {decision, number, via, organisation}. over changes the signed payload
 * only (a lie in the signature); body adds to or changes the request.
 */
export async function answer(s, qr, dev, { decision = 'approve', number, via, organisation, over = {}, body = {}, nonce } = {}) {
  const challenge = qr.split('/').pop();
  const d = await details(s, qr);
  const payload = {
    challenge, device: dev.device, decision, nonce: nonce ?? d.body?.nonce, iat: Math.floor(Date.now() / 1000),
  };
  if (number !== undefined) payload.number = Number(number);
  if (via !== undefined) payload.via = via;
  if (organisation !== undefined) payload.organisation = organisation;
  const req = { challenge, device: dev.device, decision, signature: signJws(dev.privateKey, { ...payload, ...over }) };
  if (number !== undefined) req.number = Number(number);
  if (via !== undefined) req.via = via;
  if (organisation !== undefined) req.organisation = organisation;
  return post(s, '/app/v1/qr/approve', { ...req, ...body });
}
