// Self-contained client_credentials access tokens. JWTs (RFC 9068) for
// clients that register access_token_format "jwt": they verify against the
// published JWK set with the right header and claims, introspection and
// UserInfo refuse them once revoked (also after a restart: the revocation
// is in the store), forgeries and other tokens signed with the same keys
// are refused. Opaque ones (the default) are sealed: nothing is stored,
// they introspect with the same claims, revoke the same way, and neither a
// tampered one nor another deployment's opens. A person's tokens stay
// stored opaque rows (also in the code flow of a JWT client).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startStack, HttpAgent, decodeJwt, redirectParams, limit, sleep } from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb';
const T = { timeout: limit(15_000) };
const SLOW = { timeout: limit(40_000) };

let stack;
let md;
let jwtClient; // client_credentials, access_token_format jwt
let opaqueClient; // client_credentials, default format
let user;

// an opaque client_credentials token: sealed, nothing stored
const SEALED = /^isso_at1_[A-Za-z0-9_-]{100,}$/;
const formEnc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
const basic = (c) => `Basic ${Buffer.from(`${formEnc(c.client_id)}:${formEnc(c.client_secret)}`).toString('base64')}`;

async function post(url, body, c) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (c) headers.authorization = basic(c);
  const res = await fetch(url, { method: 'POST', headers, body: new URLSearchParams(body), signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

const ccToken = async (c, extra = {}) => {
  const r = await post(md.token_endpoint, { grant_type: 'client_credentials', ...extra }, c);
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const introspect = async (c, token) => {
  const r = await post(md.introspection_endpoint, { token }, c);
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const revoke = (c, token) => post(md.revocation_endpoint, { token }, c);
const userinfo = async (token) => {
  const res = await fetch(md.userinfo_endpoint, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  return { status: res.status, auth: res.headers.get('www-authenticate') || '' };
};

async function remoteKeys() {
  const res = await fetch(md.jwks_uri, { signal: AbortSignal.timeout(5000) });
  return jose.createLocalJWKSet(await res.json());
}

before(async () => {
  stack = await startStack({ label: 'access-token' });
  md = await stack.metadata();
  jwtClient = await stack.registerClient({
    name: 'JWT 存取權杖服務', redirectUris: [RP], scope: 'openid profile',
    grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'], accessTokenFormat: 'jwt',
  });
  opaqueClient = await stack.registerClient({
    name: '不透明權杖服務', redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code', 'client_credentials'],
  });
  user = await stack.addUser({ account: 'chen.jwt', password: 'Tp-Correct-Horse-77', phone: '0912000111' });
}, { timeout: limit(30_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

test('the setting is registered and shown; opaque is the default', T, async () => {
  assert.equal(jwtClient.settings?.access_token_format, 'jwt');
  assert.equal(opaqueClient.settings?.access_token_format, undefined);
  const tokens = await ccToken(opaqueClient);
  assert.match(tokens.access_token, SEALED, 'an opaque (sealed) token by default');
  const r = await introspect(opaqueClient, tokens.access_token);
  assert.equal(r.active, true);
  const refused = await stack.issoctl(['client', 'add', '--name', 'x', '--redirect-uri', RP, '--scope', 'openid',
    '--access-token-format', 'JWT'], { allowFailure: true });
  assert.ok(refused.failed, 'an unknown format is refused');
  assert.match(refused.json?.error ?? '', /access_token_format/);
  const badAud = await stack.issoctl(['client', 'update', opaqueClient.client_id, '--access-token-audience', 'has space'], { allowFailure: true });
  assert.ok(badAud.failed, 'a bad audience is refused');
});

test('client_credentials: an RFC 9068 JWT that verifies against the JWK set', T, async () => {
  const before = Math.floor(Date.now() / 1000);
  const tokens = await ccToken(jwtClient);
  assert.equal(tokens.token_type, 'Bearer');
  assert.equal(tokens.expires_in, 600);
  assert.equal(tokens.refresh_token, undefined);
  const { payload, protectedHeader } = await jose.jwtVerify(tokens.access_token, await remoteKeys(), {
    issuer: stack.issuer, audience: stack.issuer, typ: 'at+jwt', algorithms: ['ES256'],
  });
  assert.equal(protectedHeader.typ, 'at+jwt');
  assert.ok(protectedHeader.kid);
  assert.equal(payload.sub, jwtClient.client_id);
  assert.equal(payload.client_id, jwtClient.client_id);
  assert.ok(payload.iat >= before - 2 && payload.iat <= before + 5, `iat ${payload.iat}`);
  assert.equal(payload.exp - payload.iat, 600);
  assert.match(payload.jti, /^[A-Za-z0-9_-]{16,}$/);
  assert.equal(payload.scope, undefined, 'no scope asked, none carried');
  const other = decodeJwt((await ccToken(jwtClient)).access_token);
  assert.notEqual(other.payload.jti, payload.jti, 'a new jti each time');

  const r = await introspect(jwtClient, tokens.access_token);
  assert.equal(r.active, true);
  assert.equal(r.client_id, jwtClient.client_id);
  assert.equal(r.token_type, 'Bearer');
  assert.equal(r.jti, payload.jti);
  assert.equal(r.exp, payload.exp);
  assert.equal(r.iss, stack.issuer);
  // only the client it was issued to may introspect it
  assert.equal((await introspect(opaqueClient, tokens.access_token)).active, false);
  // it names no person: UserInfo refuses it for its scope, not as invalid
  const ui = await userinfo(tokens.access_token);
  assert.equal(ui.status, 403);
  assert.match(ui.auth, /insufficient_scope/);
});

test('revocation: refused at introspection and UserInfo, also after a restart', T, async () => {
  const a = (await ccToken(jwtClient)).access_token;
  const b = (await ccToken(jwtClient)).access_token;
  // another client cannot revoke it (answered 200 all the same, RFC 7009)
  assert.equal((await revoke(opaqueClient, a)).status, 200);
  assert.equal((await introspect(jwtClient, a)).active, true);

  const r = await revoke(jwtClient, a);
  assert.equal(r.status, 200, r.text);
  assert.equal((await introspect(jwtClient, a)).active, false);
  const ui = await userinfo(a);
  assert.equal(ui.status, 401);
  assert.match(ui.auth, /invalid_token/);
  assert.equal((await revoke(jwtClient, a)).status, 200, 'revoking twice is fine');
  // the other token of the same client lives on
  assert.equal((await introspect(jwtClient, b)).active, true);

  await stack.restartIssod();
  assert.equal((await introspect(jwtClient, a)).active, false, 'revocation is kept in the store');
  assert.equal((await userinfo(a)).status, 401);
  assert.equal((await introspect(jwtClient, b)).active, true);
});

test('opaque client_credentials tokens are sealed: nothing stored, introspection, revocation, restarts', SLOW, async () => {
  const db = path.join(stack.tmp, 'isso.db');
  const rows = () => Number(execFileSync('sqlite3', ['-cmd', '.timeout 10000', db, 'SELECT count(*) FROM tokens'], { encoding: 'utf8' }).trim());
  const before = rows();
  const t0 = Math.floor(Date.now() / 1000);
  const a = await ccToken(opaqueClient);
  const b = (await ccToken(opaqueClient)).access_token;
  assert.equal(rows(), before, 'issuing writes no token row');
  assert.equal(a.token_type, 'Bearer');
  assert.equal(a.expires_in, 600);
  assert.equal(a.refresh_token, undefined);
  assert.match(a.access_token, SEALED);
  assert.notEqual(a.access_token, b);
  assert.ok(!a.access_token.includes(opaqueClient.client_id), 'its claims cannot be read from it');

  const r = await introspect(opaqueClient, a.access_token);
  assert.equal(r.active, true);
  assert.equal(r.client_id, opaqueClient.client_id);
  assert.equal(r.sub, undefined, 'no person, and no sub: as a stored token answered');
  assert.equal(r.aud, undefined, 'no audience registered');
  assert.equal(r.iss, stack.issuer);
  assert.equal(r.token_type, 'Bearer');
  assert.equal(r.scope, '');
  assert.ok(r.iat >= t0 - 2 && r.iat <= t0 + 5, `iat ${r.iat}`);
  assert.equal(r.exp - r.iat, 600);
  assert.match(r.jti, /^[A-Za-z0-9_-]{32}$/);
  assert.notEqual((await introspect(opaqueClient, b)).jti, r.jti);
  // only the client it was issued to may introspect it
  assert.equal((await introspect(jwtClient, a.access_token)).active, false);
  const ui = await userinfo(a.access_token);
  assert.equal(ui.status, 403, 'it names no person');
  assert.match(ui.auth, /insufficient_scope/);

  // tampered with, truncated, or sealed for another deployment: not active
  const flip = (t, i) => t.slice(0, i) + (t[i] === 'A' ? 'B' : 'A') + t.slice(i + 1);
  const other = await startStack({ label: 'access-token-other' });
  let foreign;
  try {
    const omd = await other.metadata();
    const oc = await other.registerClient({ name: '他處服務', redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code', 'client_credentials'] });
    const got = await post(omd.token_endpoint, { grant_type: 'client_credentials' }, oc);
    assert.equal(got.status, 200, got.text);
    foreign = got.json.access_token;
  } finally {
    await other.stop({ check: false });
  }
  assert.match(foreign, SEALED);
  for (const [what, t] of [['tampered', flip(a.access_token, 40)], ['tampered tag', flip(a.access_token, a.access_token.length - 2)],
    ['truncated', a.access_token.slice(0, -4)], ['another deployment\'s', foreign], ['prefix only', 'isso_at1_'.padEnd(60, 'A')]]) {
    assert.equal((await introspect(opaqueClient, t)).active, false, what);
    assert.equal((await userinfo(t)).status, 401, what);
    assert.equal((await revoke(opaqueClient, t)).status, 200, what);
  }
  assert.equal((await introspect(opaqueClient, a.access_token)).active, true, 'revoking forgeries left the real one alone');

  // another client cannot revoke it (200 all the same, RFC 7009)
  assert.equal((await revoke(jwtClient, a.access_token)).status, 200);
  assert.equal((await introspect(opaqueClient, a.access_token)).active, true);
  assert.equal((await revoke(opaqueClient, a.access_token)).status, 200);
  assert.equal((await introspect(opaqueClient, a.access_token)).active, false);
  assert.equal((await userinfo(a.access_token)).status, 401);
  assert.equal((await introspect(opaqueClient, b)).active, true, 'the other token lives on');

  // the key is the deployment's (derived from its master key) and the
  // revocation is in the store: both outlive a restart
  await stack.restartIssod();
  assert.equal((await introspect(opaqueClient, a.access_token)).active, false);
  assert.equal((await introspect(opaqueClient, b)).active, true);
});

test('forgeries and other JWTs of the issuer are not access tokens', T, async () => {
  const good = (await ccToken(jwtClient)).access_token;
  const [h, p, s] = good.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  const reencode = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');

  // payload changed (longer lifetime), signature kept
  const tampered = `${h}.${reencode({ ...claims, exp: claims.exp + 86400 })}.${s}`;
  // alg none
  const none = `${reencode({ alg: 'none', typ: 'at+jwt' })}.${p}.`;
  // a key of our own with the same kid
  const { privateKey } = await jose.generateKeyPair('ES256');
  const foreign = await new jose.SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: JSON.parse(Buffer.from(h, 'base64url').toString()).kid })
    .sign(privateKey);
  for (const [what, t] of [['tampered', tampered], ['alg none', none], ['foreign key', foreign], ['garbage', 'a.b.c']]) {
    assert.equal((await introspect(jwtClient, t)).active, false, what);
    assert.equal((await userinfo(t)).status, 401, what);
    assert.equal((await revoke(jwtClient, t)).status, 200, what);
  }
  assert.equal((await introspect(jwtClient, good)).active, true, 'revoking forgeries left the real one alone');

  // an ID token of the same issuer and key is not an access token
  const cfg = await client.discovery(new URL(stack.issuer), jwtClient.client_id, {},
    client.ClientSecretBasic(jwtClient.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: 'openid profile', state: 's1', nonce: 'n1',
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const cb = await new HttpAgent().loginViaPages({ authorizeUrl: url, account: user.account, password: user.password, consent: true });
  assert.ok(redirectParams(cb).get('code'));
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier: verifier, expectedState: 's1', expectedNonce: 'n1' });
  // the person's access token stays opaque, even for a JWT client
  assert.match(tokens.access_token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal((await userinfo(tokens.access_token)).status, 200);
  assert.equal((await introspect(jwtClient, tokens.id_token)).active, false, 'an ID token is not an access token');
  assert.equal((await userinfo(tokens.id_token)).status, 401);
});

test('issoctl client update sets, refuses and removes the events URI', T, async () => {
  const c = await stack.registerClient({ name: '事件服務', redirectUris: [RP], scope: 'openid' });
  const set = await stack.issoctl(['client', 'update', c.client_id, '--events-uri', 'https://agency.example.gov.taipei/events']);
  assert.deepEqual(set.settings, { events_uri: 'https://agency.example.gov.taipei/events' });
  for (const bad of ['javascript:alert(1)', 'https://10.0.0.1/events', 'x'.repeat(3000)]) {
    const r = await stack.issoctl(['client', 'update', c.client_id, '--events-uri', bad], { allowFailure: true });
    assert.equal(r.code, 2, `refused: ${bad.slice(0, 40)}`);
  }
  const kept = await stack.issoctl(['client', 'update', c.client_id, '--require-dpop', 'no']);
  assert.equal(kept.settings.events_uri, 'https://agency.example.gov.taipei/events', 'a refused update changed nothing');
  const gone = await stack.issoctl(['client', 'update', c.client_id, '--events-uri', '']);
  assert.equal(gone.settings.events_uri, undefined);
});

test('issoctl client update switches the format and sets the audience', T, async () => {
  const c = await stack.registerClient({ name: '切換服務', redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code', 'client_credentials'] });
  assert.match((await ccToken(c)).access_token, SEALED);
  const up = await stack.issoctl(['client', 'update', c.client_id, '--access-token-format', 'jwt', '--access-token-audience', 'https://api.example.gov.taipei']);
  assert.deepEqual(up.settings, { access_token_format: 'jwt', access_token_audience: 'https://api.example.gov.taipei' });
  const t = (await ccToken(c)).access_token;
  await jose.jwtVerify(t, await remoteKeys(), { issuer: stack.issuer, audience: 'https://api.example.gov.taipei', typ: 'at+jwt' });
  const back = await stack.issoctl(['client', 'update', c.client_id, '--access-token-format', 'opaque', '--access-token-audience', '']);
  assert.deepEqual(back.settings, { access_token_format: 'opaque' });
  assert.match((await ccToken(c)).access_token, SEALED);
  // a JWT issued before the switch still introspects until it expires
  assert.equal((await introspect(c, t)).active, true);
});

test('a suspended client\'s JWT access tokens stop working at UserInfo and introspection', T, async () => {
  const c = await stack.registerClient({ name: '停權服務', redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code', 'client_credentials'], accessTokenFormat: 'jwt' });
  const t = (await ccToken(c)).access_token;
  assert.equal((await userinfo(t)).status, 403);
  await stack.issoctl(['client', 'suspend', c.client_id]);
  const ui = await userinfo(t);
  assert.equal(ui.status, 401);
  assert.match(ui.auth, /invalid_token/);
  const i = await post(md.introspection_endpoint, { token: t }, c);
  assert.equal(i.status, 401, 'a suspended client cannot introspect');
  const again = await post(md.token_endpoint, { grant_type: 'client_credentials' }, c);
  assert.equal(again.status, 401, 'nor get new tokens');
});

test('with oidc.sealed_access_tokens = 0 opaque client_credentials tokens are stored rows (rolling upgrades)', SLOW, async () => {
  const rowed = await startStack({ label: 'access-token-rows', env: { ISSO_OIDC_SEALED_ACCESS_TOKENS: '0' } });
  try {
    const rmd = await rowed.metadata();
    const c = await rowed.registerClient({ name: '逐台升級', redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code', 'client_credentials'] });
    const db = path.join(rowed.tmp, 'isso.db');
    const rows = () => Number(execFileSync('sqlite3', ['-cmd', '.timeout 10000', db, 'SELECT count(*) FROM tokens'], { encoding: 'utf8' }).trim());
    const before = rows();
    const r = await post(rmd.token_endpoint, { grant_type: 'client_credentials' }, c);
    assert.equal(r.status, 200, r.text);
    assert.match(r.json.access_token, /^[A-Za-z0-9_-]{43}$/, 'the form every version reads');
    assert.equal(rows(), before + 1, 'one row');
    const i = await post(rmd.introspection_endpoint, { token: r.json.access_token }, c);
    assert.equal(i.json.active, true);
    assert.equal(i.json.client_id, c.client_id);
    assert.equal((await post(rmd.revocation_endpoint, { token: r.json.access_token }, c)).status, 200);
    assert.equal((await post(rmd.introspection_endpoint, { token: r.json.access_token }, c)).json.active, false);
  } finally {
    await rowed.stop({ check: false });
  }
});

test('an expired JWT access token is inactive', { timeout: limit(30_000) }, async () => {
  const short = await startStack({ label: 'access-token-ttl', env: { ISSO_OIDC_ACCESS_TOKEN_TTL: '1' } });
  try {
    const smd = await short.metadata();
    const c = await short.registerClient({ name: '短效', redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code', 'client_credentials'], accessTokenFormat: 'jwt' });
    const r = await post(smd.token_endpoint, { grant_type: 'client_credentials' }, c);
    assert.equal(r.status, 200, r.text);
    await sleep(2100);
    const i = await post(smd.introspection_endpoint, { token: r.json.access_token }, c);
    assert.equal(i.json.active, false);
  } finally {
    await short.stop({ check: false });
  }
});

test('issod is still healthy and stops cleanly on SIGTERM', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
