// Pushed authorization requests (RFC 9126) and DPoP (RFC 9449), end to end
// with a certified RP library (openid-client 6) through a real login, and
// hand-made proofs (jose) for every check a proof must pass.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import http from 'node:http';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startStack, HttpAgent, redirectParams, sameEndpoint, limit, sleep } from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const RP2 = 'http://127.0.0.1:9/cb2';
const T = { timeout: limit(15_000) };
const URN = /^urn:ietf:params:oauth:request_uri:[A-Za-z0-9_-]{43}$/;

let stack;
let md;
let user;
let conf; // confidential, client_secret_basic, code + refresh, two redirect URIs
let other; // a second confidential client
let pub; // public client, code + refresh
let parOnly; // confidential, require_par
let cc; // confidential, client_credentials only
let dpopOnly; // confidential, client_credentials, require_dpop
let cfgConf;
let cfgPub;
let cfgParOnly;

// ---------------------------------------------------------------- helpers

async function configFor(c) {
  const auth = c.client_secret ? client.ClientSecretBasic(c.client_secret) : client.None();
  return client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' }, auth, {
    execute: [client.allowInsecureRequests],
    timeout: 5,
  });
}

const formEnc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
const basicAuth = (c) => `Basic ${Buffer.from(`${formEnc(c.client_id)}:${formEnc(c.client_secret)}`).toString('base64')}`;

async function parse(res) {
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

async function rawPost(url, body, headers = {}) {
  return parse(await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(5000),
  }));
}

async function rawGet(url, headers = {}) {
  return parse(await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(5000) }));
}

/** POST with a header sent more than once (fetch would join them). */
function postRepeatedHeader(url, body, headers, name, values) {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', timeout: 5000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json });
      });
    });
    req.on('error', reject);
    req.setHeader('content-type', 'application/x-www-form-urlencoded');
    for (const [k, v] of Object.entries(headers)) req.setHeader(k, v);
    req.setHeader(name, values);
    req.end(new URLSearchParams(body).toString());
  });
}

/** The OAuth error code of an openid-client error, whatever its class. */
function oauthError(err) {
  if (err?.error) return err.error;
  const ch = err?.cause?.[0]?.parameters?.error;
  if (ch) return ch;
  if (err?.cause?.error) return err.cause.error;
  return undefined;
}

async function rejectsWith(promise, code, what) {
  await assert.rejects(promise, (err) => {
    assert.equal(oauthError(err), code, `${what}: expected ${code}, got ${oauthError(err)} (${err?.name}: ${err?.message})`);
    return true;
  });
}

function assertErrorPage(res, what) {
  assert.equal(res.status, 400, `${what}: expected status 400, got ${res.status}`);
  assert.equal(res.headers.get('location'), null, `${what}: must not redirect`);
  assert.match(res.headers.get('content-type') || '', /^text\/html/i, `${what}: expected an HTML error page`);
}

/** A new extractable key pair with its public JWK and RFC 7638 thumbprint. */
async function newKey(alg = 'ES256') {
  const kp = await jose.generateKeyPair(alg, { extractable: true });
  const jwk = await jose.exportJWK(kp.publicKey);
  return { ...kp, alg, jwk, jkt: await jose.calculateJwkThumbprint(jwk) };
}

const ath = (token) => crypto.createHash('sha256').update(token, 'ascii').digest('base64url');
const now = () => Math.floor(Date.now() / 1000);

/** A DPoP proof JWT by key; every part may be overridden to make it wrong. */
async function proof(key, { htm = 'POST', htu, iat = now(), jti = crypto.randomUUID(), token, claims = {}, header = {}, signWith } = {}) {
  const payload = { htm, htu, iat, jti, ...claims };
  if (jti === null) delete payload.jti;
  if (token !== undefined) payload.ath = ath(token);
  return new jose.SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.jwk, ...header })
    .sign(signWith ?? key.privateKey);
}

/** A dpop handle of openid-client for key (a CryptoKeyPair). */
const handle = (cfg, key) => client.getDPoPHandle(cfg, { privateKey: key.privateKey, publicKey: key.publicKey });

/** Authorization parameters with PKCE, state and nonce. */
async function authParams(extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = {
    response_type: 'code', redirect_uri: RP, scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
  };
  return { params, verifier, state, nonce };
}

/** A whole code flow (plain or pushed) through the pages; returns the tokens. */
async function flow(cfg, agent, { par = false, dpop, extra = {} } = {}) {
  const a = await authParams(extra);
  const url = par
    ? await client.buildAuthorizationUrlWithPAR(cfg, a.params, dpop ? { DPoP: dpop } : undefined)
    : client.buildAuthorizationUrl(cfg, a.params);
  const cb = await agent.loginViaPages({ authorizeUrl: url, account: user.account, password: user.password });
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  }, undefined, dpop ? { DPoP: dpop } : undefined);
  return { ...a, url, cb, tokens };
}

/** Logs in and stops at the code, without exchanging it. */
async function codeOnly(cfg, agent, extra = {}) {
  const a = await authParams(extra);
  const cb = await agent.loginViaPages({
    authorizeUrl: client.buildAuthorizationUrl(cfg, a.params), account: user.account, password: user.password,
  });
  const code = redirectParams(cb).get('code');
  assert.ok(code, `a code in ${cb}`);
  return { ...a, code };
}

/** Pushes an authorization request for c by raw HTTP. */
async function push(c, params, headers = {}) {
  const auth = c.client_secret ? { authorization: basicAuth(c) } : {};
  const body = c.client_secret ? params : { client_id: c.client_id, ...params };
  return rawPost(md.pushed_authorization_request_endpoint, body, { ...auth, ...headers });
}

const authorizeAt = (clientId, requestUri, more = {}) => {
  const u = new URL(md.authorization_endpoint);
  u.searchParams.set('client_id', clientId);
  u.searchParams.set('request_uri', requestUri);
  for (const [k, v] of Object.entries(more)) u.searchParams.set(k, v);
  return u.href;
};

/** A client_credentials token request by raw HTTP with optional DPoP proof. */
async function ccToken(c, dpopProof, body = {}) {
  const headers = { authorization: basicAuth(c) };
  if (dpopProof !== undefined) headers.dpop = dpopProof;
  return rawPost(md.token_endpoint, { grant_type: 'client_credentials', ...body }, headers);
}

async function introspect(c, token) {
  const r = await rawPost(md.introspection_endpoint, { token }, { authorization: basicAuth(c) });
  assert.equal(r.status, 200);
  return r.json;
}

// ---------------------------------------------------------------- setup

before(async () => {
  stack = await startStack({ label: 'par-dpop' });
  md = await stack.metadata();
  user = await stack.addUser({ account: 'lin.meiling', password: 'Tp-Pushed-Proof-9', phone: '0933222111', name: '林美玲' });
  conf = await stack.registerClient({ name: '臺北市測試機關 PAR', redirectUris: [RP, RP2], scope: 'openid profile phone' });
  other = await stack.registerClient({ name: '臺北市測試機關 B', redirectUris: [RP], scope: 'openid profile' });
  pub = await stack.registerClient({ name: '臺北市 App', redirectUris: [RP], scope: 'openid profile', public: true });
  parOnly = await stack.registerClient({ name: '臺北市 FAPI', redirectUris: [RP], scope: 'openid profile', requirePar: true });
  cc = await stack.registerClient({ name: 'batch', redirectUris: [RP], scope: 'openid', grantTypes: ['client_credentials'] });
  dpopOnly = await stack.registerClient({
    name: 'batch DPoP', redirectUris: [RP], scope: 'openid', grantTypes: ['client_credentials'], requireDpop: true,
  });
  cfgConf = await configFor(conf);
  cfgPub = await configFor(pub);
  cfgParOnly = await configFor(parOnly);
}, { timeout: limit(30_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

// ---------------------------------------------------------------- discovery and registration

test('discovery advertises PAR and DPoP', T, async () => {
  assert.equal(md.pushed_authorization_request_endpoint, `${stack.issuer}/par`);
  assert.equal(md.require_pushed_authorization_requests, false);
  assert.deepEqual(md.dpop_signing_alg_values_supported, ['ES256', 'RS256', 'PS256']);
});

test('issoctl: require_par and require_dpop are registered per client and can be changed', T, async () => {
  assert.equal(parOnly.settings?.require_par, true, 'client add --require-par');
  assert.equal(dpopOnly.settings?.require_dpop, true, 'client add --require-dpop');
  assert.equal(conf.settings?.require_par, undefined);
  const on = await stack.issoctl(['client', 'update', other.client_id, '--require-par', 'yes', '--require-dpop', 'yes']);
  assert.deepEqual(on.settings, { require_par: true, require_dpop: true });
  const off = await stack.issoctl(['client', 'update', other.client_id, '--require-dpop', 'no']);
  assert.deepEqual(off.settings, { require_par: true, require_dpop: false }, 'other settings are kept');
  const bad = await stack.issoctl(['client', 'update', other.client_id, '--require-par', 'maybe'], { allowFailure: true });
  assert.equal(bad.failed, true, 'a bad value is refused');
  assert.equal(bad.code, 2);
  const shown = await stack.issoctl(['client', 'show', other.client_id]);
  assert.deepEqual(shown.settings, { require_par: true, require_dpop: false });
  await stack.issoctl(['client', 'update', other.client_id, '--require-par', 'no']);
  // a client id is base64url and may begin with '-': it is never read as
  // an option (the store simply has no such client here)
  const dash = await stack.issoctl(['client', 'update', '-XoTr53jtuDrhwLZbR1hOQ', '--require-par', 'yes'], { allowFailure: true });
  assert.equal(dash.code, 1, `${JSON.stringify(dash)}`);
  assert.match(dash.json?.error ?? '', /no such client: -XoTr53jtuDrhwLZbR1hOQ/);
  for (const cmd of [['approve'], ['suspend', '--reason', '調查中']]) {
    const r = await stack.issoctl(['client', cmd[0], '-XoTr53jtuDrhwLZbR1hOQ', ...cmd.slice(1)], { allowFailure: true });
    assert.equal(r.code, 1, `${cmd[0]}: ${JSON.stringify(r)}`);
    assert.match(r.json?.error ?? '', /no such client: -XoTr53jtuDrhwLZbR1hOQ/);
  }
});

// ---------------------------------------------------------------- PAR

test('PAR with openid-client: login, code, tokens, UserInfo', T, async () => {
  const agent = new HttpAgent();
  const { url, tokens } = await flow(cfgConf, agent, { par: true });
  assert.equal(url.pathname, '/authorize');
  assert.deepEqual([...url.searchParams.keys()].sort(), ['client_id', 'request_uri'], 'only client_id and request_uri travel');
  assert.match(url.searchParams.get('request_uri'), URN);
  assert.match(tokens.token_type, /^bearer$/i);
  assert.equal(tokens.claims().aud, conf.client_id);
  const info = await client.fetchUserInfo(cfgConf, tokens.access_token, tokens.claims().sub);
  assert.equal(info.name, user.name);
});

test('PAR answers 201 with a short-lived request_uri, not cached', T, async () => {
  const { params } = await authParams();
  const r = await push(conf, params);
  assert.equal(r.status, 201, r.text);
  assert.match(r.json.request_uri, URN);
  assert.equal(r.json.expires_in, 60);
  assert.match(r.headers.get('cache-control') || '', /no-store/);
  const again = await push(conf, params);
  assert.notEqual(again.json.request_uri, r.json.request_uri, 'a new request_uri each time');
});

test('request_uri: only for its client, once, and nothing else in the URL counts', T, async () => {
  const { params, state, verifier, nonce } = await authParams({ redirect_uri: RP, scope: 'openid' });
  const r = await push(conf, params);
  assert.equal(r.status, 201, r.text);
  const uri = r.json.request_uri;
  // Another client cannot use it, and trying does not use it up.
  assertErrorPage(await rawGet(authorizeAt(other.client_id, uri)), 'another client');
  // Parameters beside request_uri are ignored (RFC 9126 §4).
  const agent = new HttpAgent();
  const cb = await agent.loginViaPages({
    authorizeUrl: authorizeAt(conf.client_id, uri, { state: 'forged', scope: 'openid phone', prompt: 'none', response_type: 'token' }),
    account: user.account, password: user.password,
  });
  assert.ok(sameEndpoint(cb, RP), `back to the pushed redirect_uri, got ${cb}`);
  assert.equal(redirectParams(cb).get('state'), state, 'the pushed state');
  const tokens = await client.authorizationCodeGrant(cfgConf, new URL(cb), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
  assert.equal(tokens.scope, 'openid', 'the pushed scope');
  // Used once: gone.
  const reused = await rawGet(authorizeAt(conf.client_id, uri));
  assertErrorPage(reused, 'reused request_uri');
  assert.match(reused.text, /已失效、已使用過或不存在/);
  for (const bad of ['urn:ietf:params:oauth:request_uri:nope', 'https://example.org/req', `${uri}x`]) {
    assertErrorPage(await rawGet(authorizeAt(conf.client_id, bad)), `request_uri ${bad}`);
  }
});

test('PAR refuses what /authorize would, as JSON to the client', T, async () => {
  const { params } = await authParams();
  const cases = [
    [{ ...params, redirect_uri: 'https://evil.example/cb' }, 400, 'invalid_request'],
    [{ ...params, response_type: 'token' }, 400, 'unsupported_response_type'],
    [{ ...params, scope: 'email' }, 400, 'invalid_scope'],
    [{ ...params, code_challenge_method: 'plain' }, 400, 'invalid_request'],
    [{ ...params, request_uri: 'urn:ietf:params:oauth:request_uri:x' }, 400, 'invalid_request'],
    [{ ...params, request: 'a.b.c' }, 400, 'request_not_supported'],
    [{ ...params, dpop_jkt: 'short' }, 400, 'invalid_request'],
  ];
  for (const [body, status, error] of cases) {
    const r = await push(conf, body);
    assert.equal(r.status, status, `${JSON.stringify(body)}: ${r.text}`);
    assert.equal(r.json.error, error, JSON.stringify(body));
  }
  // Repeated parameter.
  const dup = await rawPost(md.pushed_authorization_request_endpoint, `${new URLSearchParams(params)}&scope=openid`,
    { authorization: basicAuth(conf) });
  assert.equal(dup.status, 400);
  assert.equal(dup.json.error, 'invalid_request');
  // Client authentication exactly as at /token.
  const wrong = await push({ ...conf, client_secret: 'not-the-secret' }, params);
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.error, 'invalid_client');
  const none = await rawPost(md.pushed_authorization_request_endpoint, params);
  assert.equal(none.status, 401);
  // A public client still needs PKCE.
  const { code_challenge: _c, code_challenge_method: _m, ...noPkce } = params;
  const pubNoPkce = await push(pub, noPkce);
  assert.equal(pubNoPkce.status, 400);
  assert.equal(pubNoPkce.json.error, 'invalid_request');
});

test('require_par: a plain request is refused with a redirect, a pushed one works', T, async () => {
  const { params, state } = await authParams();
  const agent = new HttpAgent();
  const plain = await agent.followUntil(client.buildAuthorizationUrl(cfgParOnly, params).href, (u) => sameEndpoint(u, RP));
  assert.ok(plain.stopped, `redirected to the client, got ${plain.url}`);
  const p = redirectParams(plain.url);
  assert.equal(p.get('error'), 'invalid_request');
  assert.equal(p.get('state'), state);
  assert.equal(p.get('iss'), stack.issuer);
  assert.equal(p.get('code'), null);
  const { tokens } = await flow(cfgParOnly, new HttpAgent(), { par: true });
  assert.ok(tokens.access_token);
  // The flag set later with issoctl takes effect at once, and can be lifted.
  await stack.issoctl(['client', 'update', other.client_id, '--require-par', 'yes']);
  const cfgOther = await configFor(other);
  const refused = await new HttpAgent().followUntil(client.buildAuthorizationUrl(cfgOther, params).href, (u) => sameEndpoint(u, RP));
  assert.equal(redirectParams(refused.url).get('error'), 'invalid_request');
  await stack.issoctl(['client', 'update', other.client_id, '--require-par', 'no']);
  const allowed = await rawGet(client.buildAuthorizationUrl(cfgOther, params).href);
  assert.equal(allowed.status, 303);
  assert.match(allowed.headers.get('location'), /\/login\b/);
});

test('an expired request_uri is refused', { timeout: limit(30_000) }, async () => {
  const short = await startStack({ label: 'par-ttl', env: { ISSO_OIDC_PAR_TTL: '1' } });
  try {
    const c = await short.registerClient({ name: 'ttl rp', redirectUris: [RP], scope: 'openid' });
    const smd = await short.metadata();
    const { params } = await authParams({ scope: 'openid' });
    const r = await rawPost(smd.pushed_authorization_request_endpoint, params, { authorization: basicAuth(c) });
    assert.equal(r.status, 201, r.text);
    assert.equal(r.json.expires_in, 1);
    await sleep(2500);
    const u = new URL(smd.authorization_endpoint);
    u.searchParams.set('client_id', c.client_id);
    u.searchParams.set('request_uri', r.json.request_uri);
    assertErrorPage(await rawGet(u.href), 'expired request_uri');
  } finally {
    await short.stop();
  }
});

// ---------------------------------------------------------------- DPoP with openid-client

test('DPoP with openid-client: bound tokens at /token, UserInfo, introspection and refresh', T, async () => {
  const key = await newKey();
  const dpop = handle(cfgConf, key);
  const { tokens } = await flow(cfgConf, new HttpAgent(), { dpop });
  assert.match(tokens.token_type, /^dpop$/i);
  const sub = tokens.claims().sub;
  const info = await client.fetchUserInfo(cfgConf, tokens.access_token, sub, { DPoP: dpop });
  assert.equal(info.sub, sub);
  const intro = await introspect(conf, tokens.access_token);
  assert.equal(intro.active, true);
  assert.equal(intro.token_type, 'DPoP');
  assert.deepEqual(intro.cnf, { jkt: key.jkt });
  // Bearer is refused for a bound token (RFC 9449 §7.2).
  const bearer = await rawGet(md.userinfo_endpoint, { authorization: `Bearer ${tokens.access_token}` });
  assert.equal(bearer.status, 401);
  assert.match(bearer.headers.get('www-authenticate') || '', /^DPoP\b.*error="invalid_token"/);
  assert.match(bearer.headers.get('www-authenticate') || '', /algs="ES256 RS256 PS256"/);
  const body = await rawPost(md.userinfo_endpoint, { access_token: tokens.access_token });
  assert.equal(body.status, 401, 'nor in a form body');
  // Refresh with the same key: the new access token is bound too.
  const refreshed = await client.refreshTokenGrant(cfgConf, tokens.refresh_token, undefined, { DPoP: dpop });
  assert.match(refreshed.token_type, /^dpop$/i);
  assert.deepEqual((await introspect(conf, refreshed.access_token)).cnf, { jkt: key.jkt });
  // A confidential client's refresh token is not bound to the key
  // (RFC 9449 §5): refreshed without a proof, the token is a Bearer one.
  const plain = await client.refreshTokenGrant(cfgConf, refreshed.refresh_token);
  assert.match(plain.token_type, /^bearer$/i);
  const pi = await introspect(conf, plain.access_token);
  assert.equal(pi.token_type, 'Bearer');
  assert.equal(pi.cnf, undefined);
  // The DPoP scheme with a token that is not bound is refused.
  const p = await proof(key, { htm: 'GET', htu: md.userinfo_endpoint, token: plain.access_token });
  const wrongScheme = await rawGet(md.userinfo_endpoint, { authorization: `DPoP ${plain.access_token}`, dpop: p });
  assert.equal(wrongScheme.status, 401);
  assert.match(wrongScheme.headers.get('www-authenticate') || '', /error="invalid_token"/);
});

test('PAR + DPoP for a public client: the code and the refresh token are bound to the key', T, async () => {
  const key = await newKey();
  const dpop = handle(cfgPub, key);
  const { tokens } = await flow(cfgPub, new HttpAgent(), { par: true, dpop });
  assert.match(tokens.token_type, /^dpop$/i);
  assert.ok(tokens.refresh_token);
  const otherKey = await newKey('RS256');
  await rejectsWith(client.refreshTokenGrant(cfgPub, tokens.refresh_token, undefined, { DPoP: handle(cfgPub, otherKey) }),
    'invalid_dpop_proof', 'refresh with another key');
  await rejectsWith(client.refreshTokenGrant(cfgPub, tokens.refresh_token), 'invalid_dpop_proof', 'refresh without a proof');
  // Those attempts did not use the refresh token up.
  const refreshed = await client.refreshTokenGrant(cfgPub, tokens.refresh_token, undefined, { DPoP: dpop });
  assert.match(refreshed.token_type, /^dpop$/i);
  const info = await client.fetchUserInfo(cfgPub, refreshed.access_token, tokens.claims().sub, { DPoP: dpop });
  assert.equal(info.sub, tokens.claims().sub);
});

test('dpop_jkt binds the code: another key or none cannot redeem it', T, async () => {
  const keyA = await newKey();
  const keyB = await newKey();
  const agent = new HttpAgent();
  const exchange = async (c, dpopProof) => rawPost(md.token_endpoint, {
    grant_type: 'authorization_code', code: c.code, redirect_uri: RP, code_verifier: c.verifier,
  }, { authorization: basicAuth(conf), ...(dpopProof ? { dpop: dpopProof } : {}) });
  let c = await codeOnly(cfgConf, agent, { dpop_jkt: keyA.jkt });
  let r = await exchange(c, await proof(keyB, { htu: md.token_endpoint }));
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_dpop_proof');
  c = await codeOnly(cfgConf, agent, { dpop_jkt: keyA.jkt });
  r = await exchange(c, undefined);
  assert.equal(r.status, 400);
  assert.equal(r.json.error, 'invalid_dpop_proof');
  c = await codeOnly(cfgConf, agent, { dpop_jkt: keyA.jkt });
  r = await exchange(c, await proof(keyA, { htu: md.token_endpoint }));
  assert.equal(r.status, 200, r.text);
  assert.equal(r.json.token_type, 'DPoP');
  // At /par a proof and a dpop_jkt of another key contradict each other.
  const { params } = await authParams({ dpop_jkt: keyB.jkt });
  const pushed = await push(conf, params, { dpop: await proof(keyA, { htu: md.pushed_authorization_request_endpoint }) });
  assert.equal(pushed.status, 400);
  assert.equal(pushed.json.error, 'invalid_dpop_proof');
});

// ---------------------------------------------------------------- hand-made proofs

test('token endpoint: each flaw of a DPoP proof is refused; a good one binds', T, async () => {
  const key = await newKey();
  const htu = md.token_endpoint;
  const good = await proof(key, { htu });
  const ok = await ccToken(cc, good);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.token_type, 'DPoP');
  assert.deepEqual((await introspect(cc, ok.json.access_token)).cnf, { jkt: key.jkt });
  const otherKey = await newKey();
  const hmac = new Uint8Array(32).fill(7);
  const flaws = {
    'replayed jti': good,
    'wrong htm': await proof(key, { htm: 'GET', htu }),
    'wrong htu': await proof(key, { htu: md.userinfo_endpoint }),
    'htu of another host': await proof(key, { htu: htu.replace('127.0.0.1', 'localhost') }),
    'iat 2 minutes old': await proof(key, { htu, iat: now() - 120 }),
    'iat a minute ahead': await proof(key, { htu, iat: now() + 60 }),
    'no jti': await proof(key, { htu, jti: null }),
    'typ JWT': await proof(key, { htu, header: { typ: 'JWT' } }),
    'private key in jwk': await proof(key, { htu, header: { jwk: await jose.exportJWK(key.privateKey) } }),
    'signed by another key': await proof(key, { htu, signWith: otherKey.privateKey }),
    'HS256': await new jose.SignJWT({ htm: 'POST', htu, iat: now(), jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: key.jwk }).sign(hmac),
    'not a JWT': 'not-a-jwt',
  };
  for (const [what, p] of Object.entries(flaws)) {
    const r = await ccToken(cc, p);
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.equal(r.json.error, 'invalid_dpop_proof', what);
  }
  // Query and fragment are no part of htu; scheme, host and default port
  // compare normalised (RFC 9449 §4.3).
  const u = new URL(htu);
  const variant = `HTTP://${u.host.toUpperCase()}${u.pathname}?x=1#y`;
  const r = await ccToken(cc, await proof(key, { htu: variant }));
  assert.equal(r.status, 200, r.text);
  // Two DPoP headers.
  const two = await postRepeatedHeader(md.token_endpoint, { grant_type: 'client_credentials' },
    { authorization: basicAuth(cc) }, 'DPoP', [await proof(key, { htu }), await proof(key, { htu })]);
  assert.equal(two.status, 400);
  assert.equal(two.json.error, 'invalid_dpop_proof');
  // Without a proof an ordinary client still gets a Bearer token.
  const bearer = await ccToken(cc, undefined);
  assert.equal(bearer.status, 200);
  assert.equal(bearer.json.token_type, 'Bearer');
});

test('require_dpop: no token without a proof', T, async () => {
  const none = await ccToken(dpopOnly, undefined);
  assert.equal(none.status, 400);
  assert.equal(none.json.error, 'invalid_dpop_proof');
  const key = await newKey('RS256');
  const ok = await ccToken(dpopOnly, await proof(key, { htu: md.token_endpoint }));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.token_type, 'DPoP');
  const intro = await introspect(dpopOnly, ok.json.access_token);
  assert.equal(intro.token_type, 'DPoP');
  assert.deepEqual(intro.cnf, { jkt: key.jkt });
});

test('UserInfo holds a bound client_credentials token to its key before saying it names no person', T, async () => {
  const key = await newKey();
  const got = await ccToken(dpopOnly, await proof(key, { htu: md.token_endpoint }));
  assert.equal(got.status, 200, got.text);
  const token = got.json.access_token;
  assert.match(token, /^isso_at1_/, 'sealed, not stored');
  const ui = (headers) => rawGet(md.userinfo_endpoint, headers);
  // as a Bearer token, or with the DPoP scheme and no proof or another key's
  const bearer = await ui({ authorization: `Bearer ${token}` });
  assert.equal(bearer.status, 401);
  assert.match(bearer.headers.get('www-authenticate'), /^DPoP .*error="invalid_token"/);
  const noProof = await ui({ authorization: `DPoP ${token}` });
  assert.equal(noProof.status, 401);
  assert.match(noProof.headers.get('www-authenticate'), /error="invalid_dpop_proof"/);
  const stranger = await newKey();
  const wrongKey = await ui({ authorization: `DPoP ${token}`, dpop: await proof(stranger, { htm: 'GET', htu: md.userinfo_endpoint, token }) });
  assert.equal(wrongKey.status, 401);
  assert.match(wrongKey.headers.get('www-authenticate'), /error="invalid_dpop_proof"/);
  // with its key's proof: the token holds, and it names no person
  const right = await ui({ authorization: `DPoP ${token}`, dpop: await proof(key, { htm: 'GET', htu: md.userinfo_endpoint, token }) });
  assert.equal(right.status, 403);
  assert.match(right.headers.get('www-authenticate'), /insufficient_scope/);
  // an unbound one is refused with the DPoP scheme
  const plain = await ccToken(cc, undefined);
  assert.equal(plain.status, 200, plain.text);
  const asDpop = await ui({ authorization: `DPoP ${plain.json.access_token}`, dpop: await proof(key, { htm: 'GET', htu: md.userinfo_endpoint, token: plain.json.access_token }) });
  assert.equal(asDpop.status, 401);
  assert.match(asDpop.headers.get('www-authenticate'), /not DPoP-bound|invalid_token/);
});

test('UserInfo: the proof must match method, URI, token (ath) and key; each proof once', T, async () => {
  const key = await newKey();
  const { tokens } = await flow(cfgConf, new HttpAgent(), { dpop: handle(cfgConf, key) });
  const at = tokens.access_token;
  const htu = md.userinfo_endpoint;
  const call = (p, scheme = 'DPoP', token = at) => rawGet(htu, { authorization: `${scheme} ${token}`, ...(p ? { dpop: p } : {}) });
  const good = await proof(key, { htm: 'GET', htu, token: at });
  const ok = await call(good);
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.sub, tokens.claims().sub);
  const otherKey = await newKey();
  const flaws = {
    'no proof': undefined,
    'replayed proof': good,
    'no ath': await proof(key, { htm: 'GET', htu }),
    'ath of another token': await proof(key, { htm: 'GET', htu, token: `${at}x` }),
    'wrong htm': await proof(key, { htm: 'POST', htu, token: at }),
    'wrong htu': await proof(key, { htm: 'GET', htu: md.token_endpoint, token: at }),
    'stale iat': await proof(key, { htm: 'GET', htu, token: at, iat: now() - 300 }),
    'another key': await proof(otherKey, { htm: 'GET', htu, token: at }),
  };
  for (const [what, p] of Object.entries(flaws)) {
    const r = await call(p);
    assert.equal(r.status, 401, `${what}: ${r.text}`);
    assert.match(r.headers.get('www-authenticate') || '', /^DPoP\b.*error="invalid_dpop_proof"/, what);
  }
  // POST with the same token: htm POST is right there.
  const post = await fetch(htu, {
    method: 'POST', headers: { authorization: `DPoP ${at}`, dpop: await proof(key, { htm: 'POST', htu, token: at }) },
    signal: AbortSignal.timeout(5000),
  });
  assert.equal(post.status, 200);
  // No token at all: both schemes are offered.
  const none = await rawGet(htu);
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') || '', /Bearer/);
  assert.match(none.headers.get('www-authenticate') || '', /DPoP/);
});

// ---------------------------------------------------------------- the end

test('issod is still healthy and stops cleanly on SIGTERM', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
