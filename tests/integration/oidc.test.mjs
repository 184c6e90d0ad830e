// OpenID Connect conformance of issod, driven by a certified RP library
// (openid-client 6) and by raw HTTP where the exact status/headers matter.
// The login pages are walked with HttpAgent (no browser).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import {
  startStack, HttpAgent, sleep, decodeJwt, redirectParams, sameEndpoint, startTestServer, limit, REPO,
} from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const RP2 = 'http://127.0.0.1:9/cb2';
const ALL_SCOPES = 'openid uuid profile id_number phone email birthdate address';
const T = { timeout: limit(10_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));

/** The zh-TW catalogue text of key (fails on an unknown key). */
function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  return MSG[key];
}

let stack;
let md; // discovery document
let user;
let basicClient; // confidential, client_secret_basic, all scopes
let otherClient; // confidential, second agency
let cfgBasic;
let cfgOther;

// ---------------------------------------------------------------- helpers

async function configFor(c, { auth, alg = 'ES256' } = {}) {
  const authFn = auth ?? (c.client_secret ? client.ClientSecretBasic(c.client_secret) : client.None());
  return client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: alg }, authFn, {
    execute: [client.allowInsecureRequests],
    timeout: 5,
  });
}

/** Builds an authorization URL with PKCE S256, state and nonce. */
async function startAuth(cfg, { redirectUri = RP, scope = 'openid', extra = {}, pkce = true } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const params = { redirect_uri: redirectUri, scope, state, nonce, ...extra };
  if (pkce) {
    params.code_challenge = await client.calculatePKCECodeChallenge(verifier);
    params.code_challenge_method = 'S256';
  }
  for (const [k, v] of Object.entries(params)) if (v === undefined) delete params[k];
  return { url: client.buildAuthorizationUrl(cfg, params), verifier, state, nonce };
}

/** The whole code flow through the pages; returns tokens and the pieces. */
async function codeFlow(cfg, agent, who, opts = {}) {
  const a = await startAuth(cfg, opts);
  const cb = await agent.loginViaPages({
    authorizeUrl: a.url, account: who?.account, password: who?.password, consent: opts.consent ?? true,
  });
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
    ...(opts.maxAge !== undefined ? { maxAge: opts.maxAge } : {}),
  });
  return { ...a, cb, tokens };
}

/** Gets as far as the authorization code (not exchanged). */
async function getCode(cfg, agent, who, opts = {}) {
  const a = await startAuth(cfg, opts);
  const cb = await agent.loginViaPages({ authorizeUrl: a.url, account: who?.account, password: who?.password });
  const p = redirectParams(cb);
  assert.ok(p.get('code'), `expected a code in ${cb}`);
  return { ...a, cb, code: p.get('code') };
}

const formEnc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
const basicAuth = (id, secret) => `Basic ${Buffer.from(`${formEnc(id)}:${formEnc(secret)}`).toString('base64')}`;

/** Raw POST; returns {status, headers, text, json}. */
async function rawPost(url, body, headers = {}) {
  const h = { 'content-type': 'application/x-www-form-urlencoded', ...headers };
  const res = await fetch(url, {
    method: 'POST', headers: h, redirect: 'manual', signal: AbortSignal.timeout(5000),
    body: body instanceof URLSearchParams || typeof body === 'string' || Buffer.isBuffer(body) ? body : new URLSearchParams(body),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

async function rawGet(url, headers = {}) {
  const res = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(5000) });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, headers: res.headers, text, json };
}

/** The OAuth error code of an openid-client error, whatever its class. */
function oauthError(err) {
  if (err?.error) return err.error;
  const ch = err?.cause?.[0]?.parameters?.error;
  if (ch) return ch;
  if (err?.cause?.error) return err.cause.error;
  return undefined;
}

async function rejectsWith(promise, codes, what) {
  const want = Array.isArray(codes) ? codes : [codes];
  await assert.rejects(promise, (err) => {
    assert.ok(want.includes(oauthError(err)), `${what}: expected ${want.join(' or ')}, got ${oauthError(err)} (${err?.name}: ${err?.message})`);
    return true;
  });
}

function assertErrorPage(res, what) {
  assert.equal(res.status, 400, `${what}: expected status 400, got ${res.status}`);
  assert.equal(res.headers.get('location'), null, `${what}: must not redirect (Location: ${res.headers.get('location')})`);
  assert.match(res.headers.get('content-type') || '', /^text\/html/i, `${what}: expected an HTML error page`);
}

/** Asserts an error redirect to redirectUri: error code, state and iss. */
function assertErrorRedirect(url, redirectUri, error, state) {
  assert.ok(sameEndpoint(url, redirectUri), `expected a redirect to ${redirectUri}, got ${url}`);
  const p = redirectParams(url);
  assert.equal(p.get('error'), error, `error in ${url}`);
  assert.equal(p.get('code'), null, 'no code with an error');
  if (state !== undefined) assert.equal(p.get('state'), state, 'state returned intact');
  assert.equal(p.get('iss'), stack.issuer, 'iss in the error response (RFC 9207)');
}

const isAt = (redirectUri) => (next) => sameEndpoint(next, redirectUri);

async function userinfoStatus(at) {
  const r = await rawGet(md.userinfo_endpoint, { authorization: `Bearer ${at}` });
  return r;
}

async function introspect(cfg, token) {
  return client.tokenIntrospection(cfg, token);
}

function atHash(accessToken, alg) {
  const bits = { ES256: 'sha256', RS256: 'sha256', PS256: 'sha256', ES384: 'sha384', RS384: 'sha384', ES512: 'sha512', RS512: 'sha512' }[alg];
  const d = crypto.createHash(bits).update(accessToken, 'ascii').digest();
  return d.subarray(0, d.length / 2).toString('base64url');
}

async function jwks() {
  const r = await rawGet(md.jwks_uri);
  assert.equal(r.status, 200);
  return jose.createLocalJWKSet(r.json);
}

/** The words of a scope string, sorted (order is not significant). */
const words = (scope) => String(scope ?? '').split(' ').filter(Boolean).sort();

/** Walks from an authorization URL to the consent page without answering
 * it (logging in as who when the login form comes). Returns {res, form}. */
async function reachConsent(agent, authorizeUrl, who) {
  const redirectUri = new URL(authorizeUrl).searchParams.get('redirect_uri');
  let req = { url: String(authorizeUrl), method: 'GET' };
  for (let i = 0; i < 6; i++) {
    const r = await agent.followUntil(req.url, isAt(redirectUri), req);
    assert.ok(!r.stopped, `went back to the client without a consent page: ${r.url}`);
    const forms = r.res.forms();
    const consent = forms.find((f) => f.has('decision'));
    if (consent) return { res: r.res, form: consent };
    const login = forms.find((f) => f.has('password'));
    if (login) {
      assert.ok(who, `a login form at ${r.url} but no credentials`);
      req = agent.formRequest(login, { account: who.account, password: who.password });
      continue;
    }
    const pick = r.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/taipeipass');
    assert.ok(pick, `unexpected page ${r.res.status} at ${r.url}: ${r.res.pageText().slice(0, 300)}`);
    req = { url: pick.href, method: 'GET' };
  }
  assert.fail('no consent page after 6 pages');
}

/** A back-channel logout endpoint that records what it gets. */
async function backchannelReceiver() {
  const received = [];
  let waiters = [];
  const server = await startTestServer((req, body, res) => {
    received.push({ method: req.method, type: req.headers['content-type'], body: body.toString('utf8') });
    res.statusCode = 200;
    res.setHeader('cache-control', 'no-store');
    res.end();
    for (const w of waiters) w();
    waiters = [];
  });
  return {
    received,
    url: `${server.url}/backchannel`,
    close: () => server.close(),
    /** Waits (at most ms) until n messages have arrived. */
    async wait(n = 1, ms = 5000) {
      const deadline = Date.now() + ms;
      while (received.length < n) {
        const left = deadline - Date.now();
        if (left <= 0) assert.fail(`expected ${n} logout_token(s) within ${ms} ms, got ${received.length}`);
        let timer;
        await new Promise((resolve) => {
          waiters.push(resolve);
          timer = setTimeout(resolve, left);
        });
        clearTimeout(timer);
      }
      return received;
    },
  };
}

/** Verifies a back-channel logout request (OIDC Back-Channel Logout §2.4)
 * against /jwks; returns the logout token's payload. */
async function verifyLogoutToken(msg, clientId) {
  assert.equal(msg.method, 'POST');
  assert.match(msg.type || '', /^application\/x-www-form-urlencoded/);
  const logoutToken = new URLSearchParams(msg.body).get('logout_token');
  assert.ok(logoutToken, 'logout_token parameter');
  const { payload } = await jose.jwtVerify(logoutToken, await jwks(), { issuer: stack.issuer, audience: clientId });
  assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
  assert.ok(typeof payload.jti === 'string' && payload.jti.length > 0, 'jti');
  assert.equal(payload.nonce, undefined, 'a logout token has no nonce');
  return payload;
}


// ---------------------------------------------------------------- setup

before(async () => {
  stack = await startStack({ label: 'oidc' });
  md = await stack.metadata();
  user = await stack.addUser({
    account: 'wang.xiaoming', password: 'Tp-Correct-Horse-42', phone: '0912345678',
    email: 'xiaoming@example.tw', name: '王小明', idNumber: 'A123456789', birthdate: '1990-01-31', gold: true,
  });
  basicClient = await stack.registerClient({
    name: '臺北市測試機關 A', redirectUris: [RP], scope: ALL_SCOPES, purpose: 'integration tests',
  });
  otherClient = await stack.registerClient({ name: '臺北市測試機關 B', redirectUris: [RP], scope: 'openid profile' });
  cfgBasic = await configFor(basicClient);
  cfgOther = await configFor(otherClient);
}, { timeout: limit(30_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

// ---------------------------------------------------------------- discovery

test('discovery document', T, async () => {
  const r = await rawGet(stack.url('/.well-known/openid-configuration'));
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const d = r.json;
  assert.equal(d.issuer, stack.issuer);
  assert.equal(d.authorization_endpoint, `${stack.issuer}/authorize`);
  assert.equal(d.token_endpoint, `${stack.issuer}/token`);
  assert.equal(d.userinfo_endpoint, `${stack.issuer}/userinfo`);
  assert.equal(d.jwks_uri, `${stack.issuer}/jwks`);
  assert.equal(d.revocation_endpoint, `${stack.issuer}/revoke`);
  assert.equal(d.introspection_endpoint, `${stack.issuer}/introspect`);
  assert.equal(d.end_session_endpoint, `${stack.issuer}/logout`);
  assert.deepEqual(d.response_types_supported, ['code']);
  assert.deepEqual(d.code_challenge_methods_supported, ['S256']);
  for (const alg of ['ES256', 'RS256']) assert.ok(d.id_token_signing_alg_values_supported.includes(alg), `id token alg ${alg}`);
  for (const m of ['client_secret_basic', 'client_secret_post', 'private_key_jwt']) {
    assert.ok(d.token_endpoint_auth_methods_supported.includes(m), `auth method ${m}`);
  }
  for (const s of ALL_SCOPES.split(' ')) assert.ok(d.scopes_supported.includes(s), `scope ${s}`);
  for (const c of ['sub', 'name', 'phone_number', 'phone_number_verified', 'email', 'birthdate', 'address']) {
    assert.ok(d.claims_supported.includes(c), `claim ${c}`);
  }
  assert.ok(Array.isArray(d.subject_types_supported) && d.subject_types_supported.length > 0, 'subject_types_supported');
  for (const g of ['authorization_code', 'refresh_token']) assert.ok(d.grant_types_supported.includes(g), `grant ${g}`);
  for (const a of ['urn:isso:loa:low', 'urn:isso:loa:substantial', 'urn:isso:loa:high']) {
    assert.ok(d.acr_values_supported.includes(a), `acr ${a}`);
  }
  assert.equal(d.authorization_response_iss_parameter_supported, true);
  assert.equal(d.backchannel_logout_supported, true);
  assert.equal(d.backchannel_logout_session_supported, true);
  if (d.introspection_endpoint_auth_methods_supported) {
    assert.ok(d.introspection_endpoint_auth_methods_supported.includes('client_secret_basic'));
  }
});

test('JWKS publishes an ES256 and an RS256 public key and nothing private', T, async () => {
  const r = await rawGet(md.jwks_uri);
  assert.equal(r.status, 200);
  const { keys } = r.json;
  assert.ok(Array.isArray(keys) && keys.length >= 2);
  const es = keys.find((k) => k.kty === 'EC' && k.crv === 'P-256');
  const rs = keys.find((k) => k.kty === 'RSA');
  assert.ok(es, 'an EC P-256 key');
  assert.ok(rs, 'an RSA key');
  for (const k of keys) {
    assert.ok(k.kid, 'every key has a kid');
    for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi', 'k']) assert.equal(k[priv], undefined, `key ${k.kid} leaks ${priv}`);
    if (k.use !== undefined) assert.equal(k.use, 'sig');
  }
  assert.ok(Buffer.from(rs.n, 'base64url').length >= 256, 'RSA key of at least 2048 bits');
});

// ---------------------------------------------------------------- code flow

test('code flow + PKCE with client_secret_basic: ID token, UserInfo', T, async () => {
  const agent = new HttpAgent();
  const started = Math.floor(Date.now() / 1000);
  const { tokens, nonce, cb } = await codeFlow(cfgBasic, agent, user, { scope: ALL_SCOPES });
  assert.deepEqual(agent.lastFlow.map((s) => s.step), ['choose', 'login', 'consent', 'redirect']);
  assert.equal(redirectParams(cb).get('iss'), stack.issuer);
  assert.match(tokens.token_type, /^bearer$/i);
  assert.ok(tokens.expires_in > 0);
  assert.ok(tokens.id_token, 'an ID token');
  const claims = tokens.claims(); // openid-client validated signature alg, iss, aud, exp, iat, nonce
  const { header } = decodeJwt(tokens.id_token);
  assert.equal(header.alg, 'ES256');
  assert.ok(header.kid, 'ID token header has a kid');
  assert.equal(claims.iss, stack.issuer);
  assert.ok(typeof claims.sub === 'string' && claims.sub.length > 0 && claims.sub.length <= 255);
  assert.ok(claims.aud === basicClient.client_id || (Array.isArray(claims.aud) && claims.aud.includes(basicClient.client_id)));
  assert.ok(claims.exp > claims.iat);
  assert.ok(claims.iat >= started - 5 && claims.iat <= Math.floor(Date.now() / 1000) + 5);
  assert.ok(Number.isInteger(claims.auth_time) && claims.auth_time >= started - 5 && claims.auth_time <= claims.iat);
  assert.equal(claims.nonce, nonce);
  assert.equal(claims.acr, 'urn:isso:loa:low');
  assert.ok(Array.isArray(claims.amr) && claims.amr.includes('pwd'), `amr ${JSON.stringify(claims.amr)}`);
  assert.ok(typeof claims.sid === 'string' && claims.sid.length > 0, 'sid');
  assert.equal(claims.at_hash, atHash(tokens.access_token, header.alg), 'at_hash');
  // the signature, independently of openid-client
  const verified = await jose.jwtVerify(tokens.id_token, await jwks(), { issuer: stack.issuer, audience: basicClient.client_id });
  assert.equal(verified.payload.sub, claims.sub);

  const info = await client.fetchUserInfo(cfgBasic, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);
  assert.equal(info.name, '王小明');
  assert.equal(info.email, 'xiaoming@example.tw');
  assert.equal(info.birthdate, '1990-01-31');
  assert.match(String(info.phone_number), /912345678$/);
  assert.equal(info.uuid, user.uuid, 'uuid claim is the person uuid');
  assert.ok(!JSON.stringify(info).includes('Tp-Correct-Horse-42'), 'no password anywhere');
});

test('token response is JSON with Cache-Control: no-store', T, async () => {
  const agent = new HttpAgent();
  const { code, verifier } = await getCode(cfgBasic, agent, user);
  const r = await rawPost(md.token_endpoint, {
    grant_type: 'authorization_code', code, redirect_uri: RP, code_verifier: verifier,
  }, { authorization: basicAuth(basicClient.client_id, basicClient.client_secret) });
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^application\/json/);
  assert.match(r.headers.get('cache-control') || '', /no-store/);
  assert.ok(r.json.access_token && r.json.id_token);
});

test('client_secret_post', T, async () => {
  const c = await stack.registerClient({ name: 'post client', redirectUris: [RP], scope: 'openid profile', authMethod: 'client_secret_post' });
  const cfg = await configFor(c, { auth: client.ClientSecretPost(c.client_secret) });
  const agent = new HttpAgent();
  const { tokens } = await codeFlow(cfg, agent, user, { scope: 'openid profile' });
  const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
  assert.equal(info.name, '王小明');
});

/** isso_client_auth_total{method, result} from /metrics (0 when absent). */
async function clientAuthCount(method, result) {
  const r = await rawGet(stack.url('/metrics'));
  assert.equal(r.status, 200, r.text);
  const line = r.text.split('\n').find((l) =>
    l.startsWith(`isso_client_auth_total{method="${method}",result="${result}"} `));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

test('a secret client may send its secret by Basic or in the form: openid-client defaults work either way', T, async () => {
  // openid-client given only the secret authenticates with
  // client_secret_post; basicClient was registered for client_secret_basic
  const postBefore = await clientAuthCount('client_secret_post', 'accepted');
  const cfgDefault = await client.discovery(new URL(stack.issuer), basicClient.client_id,
    { client_secret: basicClient.client_secret, id_token_signed_response_alg: 'ES256' }, undefined, {
      execute: [client.allowInsecureRequests], timeout: 5,
    });
  const agent = new HttpAgent();
  const { tokens } = await codeFlow(cfgDefault, agent, user, { scope: 'openid profile' });
  assert.ok(tokens.access_token && tokens.id_token);
  // the metric names the method the client used, not the registered one
  assert.equal(await clientAuthCount('client_secret_post', 'accepted'), postBefore + 1);

  // and the other way round: a client_secret_post client using Basic
  const c = await stack.registerClient({ name: 'post client 2', redirectUris: [RP], scope: 'openid profile', authMethod: 'client_secret_post' });
  const basicBefore = await clientAuthCount('client_secret_basic', 'accepted');
  const cfg = await configFor(c, { auth: client.ClientSecretBasic(c.client_secret) });
  const { tokens: t2 } = await codeFlow(cfg, agent, user, { scope: 'openid profile' });
  const info = await client.fetchUserInfo(cfg, t2.access_token, t2.claims().sub);
  assert.equal(info.name, '王小明');
  assert.equal(await clientAuthCount('client_secret_basic', 'accepted'), basicBefore + 1);

  // a wrong secret is refused whichever way it comes
  const code = 'x'.repeat(43);
  const wrongPost = await rawPost(md.token_endpoint, {
    grant_type: 'authorization_code', code, redirect_uri: RP, client_id: basicClient.client_id, client_secret: 'not-the-secret',
  });
  assert.equal(wrongPost.status, 401, wrongPost.text);
  assert.equal(wrongPost.json?.error, 'invalid_client');
  const wrongBasic = await rawPost(md.token_endpoint, { grant_type: 'authorization_code', code, redirect_uri: RP },
    { authorization: basicAuth(c.client_id, 'not-the-secret') });
  assert.equal(wrongBasic.status, 401, wrongBasic.text);
  assert.equal(wrongBasic.json?.error, 'invalid_client');

  // both at once stays invalid (RFC 6749 §2.3)
  const both = await rawPost(md.token_endpoint, {
    grant_type: 'authorization_code', code, redirect_uri: RP, client_id: basicClient.client_id, client_secret: basicClient.client_secret,
  }, { authorization: basicAuth(basicClient.client_id, basicClient.client_secret) });
  assert.equal(both.status, 400, both.text);
  assert.equal(both.json?.error, 'invalid_request');
});

test('a private_key_jwt client and a public client are refused a secret', T, async () => {
  const { publicKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'rp-strict-key', alg: 'ES256', use: 'sig' };
  const pk = await stack.registerClient({
    name: 'pkjwt strict', redirectUris: [RP], scope: 'openid', authMethod: 'private_key_jwt', jwks: { keys: [jwk] },
  });
  const pub = await stack.registerClient({ name: 'spa strict', redirectUris: [RP], scope: 'openid', public: true });
  const refusedBefore = await clientAuthCount('client_secret_post', 'refused');
  const code = 'x'.repeat(43);
  for (const c of [pk, pub]) {
    const post = await rawPost(md.token_endpoint, {
      grant_type: 'authorization_code', code, redirect_uri: RP, code_verifier: 'v'.repeat(43), client_id: c.client_id, client_secret: 'some-secret',
    });
    assert.equal(post.status, 401, `${c.client_id} post: ${post.text}`);
    assert.equal(post.json?.error, 'invalid_client');
    const basic = await rawPost(md.token_endpoint, { grant_type: 'authorization_code', code, redirect_uri: RP, code_verifier: 'v'.repeat(43) },
      { authorization: basicAuth(c.client_id, 'some-secret') });
    assert.equal(basic.status, 401, `${c.client_id} basic: ${basic.text}`);
    assert.equal(basic.json?.error, 'invalid_client');
    assert.match(basic.headers.get('www-authenticate') || '', /^Basic /);
  }
  assert.equal(await clientAuthCount('client_secret_post', 'refused'), refusedBefore + 2);
});

test('private_key_jwt (inline JWKS); a foreign key is refused', T, async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'rp-key-1', alg: 'ES256', use: 'sig' };
  const c = await stack.registerClient({
    name: 'pkjwt client', redirectUris: [RP], scope: 'openid profile', authMethod: 'private_key_jwt', jwks: { keys: [jwk] },
  });
  // issoctl registers public signing keys only
  const leaked = { ...(await jose.exportJWK(privateKey)), kid: 'rp-key-1' };
  await assert.rejects(stack.registerClient({
    name: 'pkjwt leaked', redirectUris: [RP], scope: 'openid', authMethod: 'private_key_jwt', jwks: { keys: [leaked] },
  }), /--jwks refused: a key holds private members/);
  await assert.rejects(stack.registerClient({
    name: 'pkjwt symmetric', redirectUris: [RP], scope: 'openid', authMethod: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] },
  }), /--jwks refused/);
  const cfg = await configFor(c, { auth: client.PrivateKeyJwt({ key: privateKey, kid: 'rp-key-1' }) });
  const agent = new HttpAgent();
  const { tokens } = await codeFlow(cfg, agent, user, { scope: 'openid profile' });
  assert.ok(tokens.access_token);

  // aud is the issuer identifier only (FAPI 2.0): the token endpoint URL
  // is refused, and so is the issuer inside an array
  const { code, verifier } = await getCode(cfg, agent, user, { scope: 'openid profile' });
  const now = Math.floor(Date.now() / 1000);
  for (const aud of [md.token_endpoint, [stack.issuer], [stack.issuer, 'https://elsewhere.example']]) {
    const assertion = await new jose.SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid: 'rp-key-1' })
      .setIssuer(c.client_id).setSubject(c.client_id).setAudience(aud)
      .setIssuedAt(now).setExpirationTime(now + 60).sign(privateKey);
    const refused = await rawPost(md.token_endpoint, {
      grant_type: 'authorization_code', code, redirect_uri: RP, code_verifier: verifier, client_id: c.client_id,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
    });
    assert.equal(refused.status, 401, `aud ${JSON.stringify(aud)}: ${refused.text}`);
    assert.equal(refused.json?.error, 'invalid_client');
  }

  // signed by a key the client never registered
  const other = await jose.generateKeyPair('ES256');
  const forged = await new jose.SignJWT({ jti: crypto.randomUUID() })
    .setProtectedHeader({ alg: 'ES256', kid: 'rp-key-1' })
    .setIssuer(c.client_id).setSubject(c.client_id).setAudience(stack.issuer)
    .setIssuedAt(now).setExpirationTime(now + 60).sign(other.privateKey);
  const bad = await rawPost(md.token_endpoint, {
    grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: RP, code_verifier: verifier, client_id: c.client_id,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: forged,
  });
  assert.equal(bad.status, 401, bad.text);
  assert.equal(bad.json?.error, 'invalid_client');
});

test('private_key_jwt with a jwks_uri: keys fetched from the client; foreign key and replayed assertion refused', T, async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'rp-uri-key', alg: 'ES256', use: 'sig' };
  let fetches = 0;
  const keys = await startTestServer((req, body, res) => {
    if (req.method !== 'GET' || req.url !== '/jwks') {
      res.statusCode = 404;
      res.end();
      return;
    }
    fetches += 1;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  try {
    const c = await stack.registerClient({
      name: 'pkjwt uri client', redirectUris: [RP], scope: 'openid profile', authMethod: 'private_key_jwt', jwksUri: `${keys.url}/jwks`,
    });
    assert.equal(c.jwks_uri, `${keys.url}/jwks`);
    assert.equal(c.client_secret, undefined, 'no secret for a private_key_jwt client');
    const cfg = await configFor(c, { auth: client.PrivateKeyJwt({ key: privateKey, kid: 'rp-uri-key' }) });
    const agent = new HttpAgent();
    const { tokens } = await codeFlow(cfg, agent, user, { scope: 'openid profile' });
    assert.ok(tokens.access_token);
    assert.ok(fetches >= 1, 'issod fetched the JWK set from the jwks_uri');

    const assertion = async (key, jti = crypto.randomUUID()) => {
      const now = Math.floor(Date.now() / 1000);
      return new jose.SignJWT({ jti })
        .setProtectedHeader({ alg: 'ES256', kid: 'rp-uri-key' })
        .setIssuer(c.client_id).setSubject(c.client_id).setAudience(stack.issuer)
        .setIssuedAt(now).setExpirationTime(now + 60).sign(key);
    };
    const exchange = (code, verifier, a) => rawPost(md.token_endpoint, {
      grant_type: 'authorization_code', code, redirect_uri: RP, code_verifier: verifier, client_id: c.client_id,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: a,
    });

    // signed by a key that is not in the client's set (same kid)
    const other = await jose.generateKeyPair('ES256');
    const g1 = await getCode(cfg, agent, user, { scope: 'openid profile' });
    const forged = await exchange(g1.code, g1.verifier, await assertion(other.privateKey));
    assert.equal(forged.status, 401, forged.text);
    assert.equal(forged.json?.error, 'invalid_client');

    // one assertion (one jti) works once
    const once = await assertion(privateKey);
    const first = await exchange(g1.code, g1.verifier, once);
    assert.equal(first.status, 200, `the genuine assertion (the code was not spent by the refused request): ${first.text}`);
    const g2 = await getCode(cfg, agent, user, { scope: 'openid profile' });
    const replay = await exchange(g2.code, g2.verifier, once);
    assert.equal(replay.status, 401, `replayed assertion: ${replay.text}`);
    assert.equal(replay.json?.error, 'invalid_client');
    const fresh = await exchange(g2.code, g2.verifier, await assertion(privateKey));
    assert.equal(fresh.status, 200, `a new assertion for the same code: ${fresh.text}`);
  } finally {
    await keys.close();
  }
});

test('RS256 client gets an RS256 ID token', T, async () => {
  const c = await stack.registerClient({ name: 'rs256 client', redirectUris: [RP], scope: 'openid', idTokenAlg: 'RS256' });
  const cfg = await configFor(c, { alg: 'RS256' });
  const { tokens } = await codeFlow(cfg, new HttpAgent(), user);
  const { header } = decodeJwt(tokens.id_token);
  assert.equal(header.alg, 'RS256');
  assert.equal(tokens.claims().at_hash, atHash(tokens.access_token, 'RS256'));
  await jose.jwtVerify(tokens.id_token, await jwks(), { issuer: stack.issuer, audience: c.client_id, algorithms: ['RS256'] });
});

// ---------------------------------------------------------------- PKCE

test('public client: PKCE required, S256 works with no secret', T, async () => {
  const c = await stack.registerClient({ name: 'spa', redirectUris: [RP], scope: 'openid', public: true });
  assert.equal(c.client_secret, undefined, 'a public client has no secret');
  const cfg = await configFor(c, { auth: client.None() });
  const agent = new HttpAgent();
  const a = await startAuth(cfg, { pkce: false });
  const r = await agent.followUntil(a.url, isAt(RP));
  assert.ok(r.stopped, `expected an error redirect, got ${r.res.status} at ${r.url}`);
  assertErrorRedirect(r.url, RP, 'invalid_request', a.state);

  const { tokens } = await codeFlow(cfg, agent, user);
  assert.ok(tokens.id_token);
});

test('PKCE method plain is refused', T, async () => {
  const c = await stack.registerClient({ name: 'spa plain', redirectUris: [RP], scope: 'openid', public: true });
  const cfg = await configFor(c, { auth: client.None() });
  for (const cfgX of [cfg, cfgBasic]) {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(cfgX, {
      redirect_uri: RP, scope: 'openid', state, code_challenge: verifier, code_challenge_method: 'plain',
    });
    const r = await new HttpAgent().followUntil(url, isAt(RP));
    assert.ok(r.stopped, `expected an error redirect, got ${r.res.status} at ${r.url}`);
    assertErrorRedirect(r.url, RP, 'invalid_request', state);
  }
});

test('PKCE verifier mismatch or absence -> invalid_grant', T, async () => {
  const agent = new HttpAgent();
  const a = await getCode(cfgBasic, agent, user);
  await rejectsWith(
    client.authorizationCodeGrant(cfgBasic, new URL(a.cb), { pkceCodeVerifier: client.randomPKCECodeVerifier(), expectedState: a.state, expectedNonce: a.nonce }),
    'invalid_grant', 'wrong verifier',
  );
  const b = await getCode(cfgBasic, agent, user);
  const r = await rawPost(md.token_endpoint, { grant_type: 'authorization_code', code: b.code, redirect_uri: RP },
    { authorization: basicAuth(basicClient.client_id, basicClient.client_secret) });
  assert.equal(r.status, 400, r.text);
  assert.ok(['invalid_grant', 'invalid_request'].includes(r.json?.error), `missing verifier: ${r.text}`);
});

test('code reuse -> invalid_grant and the first access token is revoked', T, async () => {
  const agent = new HttpAgent();
  const { tokens, cb, verifier, state, nonce } = await codeFlow(cfgBasic, agent, user, { scope: 'openid profile' });
  const first = await introspect(cfgBasic, tokens.access_token);
  assert.equal(first.active, true);
  await rejectsWith(
    client.authorizationCodeGrant(cfgBasic, new URL(cb), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }),
    'invalid_grant', 'second use of a code',
  );
  const after = await introspect(cfgBasic, tokens.access_token);
  assert.equal(after.active, false, 'access token from the first exchange is revoked (RFC 6749 §4.1.2)');
  const ui = await userinfoStatus(tokens.access_token);
  assert.equal(ui.status, 401);
  if (tokens.refresh_token) {
    await rejectsWith(client.refreshTokenGrant(cfgBasic, tokens.refresh_token), 'invalid_grant', 'refresh token of a replayed code');
  }
});

test('code bound to its client and redirect_uri', T, async () => {
  const two = await stack.registerClient({ name: 'two uris', redirectUris: [RP, RP2], scope: 'openid' });
  const cfg = await configFor(two);
  const agent = new HttpAgent();
  const a = await getCode(cfg, agent, user, { redirectUri: RP });
  // exchanged with the other registered redirect_uri
  const r1 = await rawPost(md.token_endpoint, { grant_type: 'authorization_code', code: a.code, redirect_uri: RP2, code_verifier: a.verifier },
    { authorization: basicAuth(two.client_id, two.client_secret) });
  assert.equal(r1.status, 400, r1.text);
  assert.equal(r1.json?.error, 'invalid_grant');
  // exchanged by another client
  const b = await getCode(cfg, agent, user, { redirectUri: RP });
  const r2 = await rawPost(md.token_endpoint, { grant_type: 'authorization_code', code: b.code, redirect_uri: RP, code_verifier: b.verifier },
    { authorization: basicAuth(otherClient.client_id, otherClient.client_secret) });
  assert.equal(r2.status, 400, r2.text);
  assert.equal(r2.json?.error, 'invalid_grant');
});

// ---------------------------------------------------------------- client auth

test('wrong or unknown client credentials -> 401 invalid_client', T, async () => {
  const body = { grant_type: 'authorization_code', code: 'x'.repeat(43), redirect_uri: RP, code_verifier: client.randomPKCECodeVerifier() };
  const r = await rawPost(md.token_endpoint, body, { authorization: basicAuth(basicClient.client_id, `${basicClient.client_secret}x`) });
  assert.equal(r.status, 401, r.text);
  assert.equal(r.json?.error, 'invalid_client');
  assert.match(r.headers.get('www-authenticate') || '', /^Basic/i, 'WWW-Authenticate after failed Basic auth (RFC 6749 §5.2)');
  const p = await rawPost(md.token_endpoint, { ...body, client_id: basicClient.client_id, client_secret: 'wrong' });
  assert.equal(p.status, 401, p.text);
  assert.equal(p.json?.error, 'invalid_client');
  const u = await rawPost(md.token_endpoint, body, { authorization: basicAuth('no-such-client', 'secret') });
  assert.equal(u.status, 401, u.text);
  assert.equal(u.json?.error, 'invalid_client');
  const none = await rawPost(md.token_endpoint, body);
  assert.equal(none.status, 401, none.text);
  assert.equal(none.json?.error, 'invalid_client');
});

// ---------------------------------------------------------------- authorize errors

test('unregistered redirect_uri -> error page, no redirect', T, async () => {
  const agent = new HttpAgent();
  for (const evil of ['http://127.0.0.1:9/evil', `${RP}/more`, `${RP}?x=1`, 'http://127.0.0.1:9/CB', 'javascript:alert(1)']) {
    const url = client.buildAuthorizationUrl(cfgBasic, { redirect_uri: evil, scope: 'openid', state: 's1', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
    const res = await agent.get(url);
    assertErrorPage(res, `redirect_uri ${evil}`);
    assert.ok(!/href\s*=\s*["']?javascript:/i.test(res.text), 'the bad URI is not offered as a link');
  }
});

test('missing redirect_uri when the client has two -> error page', T, async () => {
  const two = await stack.registerClient({ name: 'two uris b', redirectUris: [RP, RP2], scope: 'openid' });
  const cfg = await configFor(two);
  const url = client.buildAuthorizationUrl(cfg, { scope: 'openid', state: 's', code_challenge: 'x'.repeat(43), code_challenge_method: 'S256' });
  url.searchParams.delete('redirect_uri');
  assertErrorPage(await new HttpAgent().get(url), 'no redirect_uri');
});

test('unknown client_id at /authorize -> error page', T, async () => {
  const url = new URL(md.authorization_endpoint);
  url.search = new URLSearchParams({
    response_type: 'code', client_id: 'no-such-client', redirect_uri: RP, scope: 'openid', state: 's',
    code_challenge: 'x'.repeat(43), code_challenge_method: 'S256',
  }).toString();
  assertErrorPage(await new HttpAgent().get(url), 'unknown client');
  url.searchParams.delete('client_id');
  assertErrorPage(await new HttpAgent().get(url), 'no client_id');
});

test('suspended client cannot start a login', T, async () => {
  const c = await stack.registerClient({ name: 'to suspend', redirectUris: [RP], scope: 'openid' });
  const cfg = await configFor(c);
  await stack.issoctl(['client', 'suspend', c.client_id]);
  const a = await startAuth(cfg);
  const r = await new HttpAgent().followUntil(a.url, isAt(RP));
  if (r.stopped) {
    assert.ok(redirectParams(r.url).get('error'), 'an error, never a code');
    assert.equal(redirectParams(r.url).get('code'), null);
  } else {
    assert.ok(r.res.status >= 400 && r.res.status < 500, `suspended client: ${r.res.status}`);
  }
});

test('unsupported response_type -> error', T, async () => {
  const a = await startAuth(cfgBasic, { extra: { response_type: 'token' } });
  const r = await new HttpAgent().followUntil(a.url, isAt(RP));
  if (!r.stopped) {
    assertErrorPage(r.res, 'response_type=token');
    return;
  }
  // the error may come in the query or (for a token response type) the fragment
  const u = new URL(r.url);
  const p = new URLSearchParams([...u.searchParams, ...new URLSearchParams(u.hash.slice(1))]);
  assert.equal(p.get('error'), 'unsupported_response_type');
  assert.equal(p.get('state'), a.state);
  assert.equal(p.get('access_token'), null);
});

test('state of 600 characters (all printable ASCII) comes back intact', T, async () => {
  let state = '';
  for (let i = 0; state.length < 600; i++) state += String.fromCharCode(0x20 + (i % 95));
  const agent = new HttpAgent();
  const a = await startAuth(cfgBasic, { extra: { state } });
  const cb = await agent.loginViaPages({ authorizeUrl: a.url, account: user.account, password: user.password });
  assert.equal(redirectParams(cb).get('state'), state);
  const tokens = await client.authorizationCodeGrant(cfgBasic, new URL(cb), { pkceCodeVerifier: a.verifier, expectedState: state, expectedNonce: a.nonce });
  assert.ok(tokens.access_token);
});

test('scope beyond what the client was approved for is never released', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth(cfgOther, { scope: 'openid profile email id_number' });
  const cb = await agent.loginViaPages({ authorizeUrl: a.url, account: user.account, password: user.password });
  const p = redirectParams(cb);
  if (p.get('error')) {
    assert.equal(p.get('error'), 'invalid_scope');
    return;
  }
  const tokens = await client.authorizationCodeGrant(cfgOther, new URL(cb), { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce });
  assert.ok(!/\bemail\b/.test(tokens.scope || ''), `granted scope ${tokens.scope}`);
  const info = await client.fetchUserInfo(cfgOther, tokens.access_token, tokens.claims().sub);
  assert.equal(info.email, undefined);
  assert.equal(tokens.claims().email, undefined);
  assert.equal(info.name, '王小明');
});

test('member_level only with the profile scope; the consent page names it', T, async () => {
  const phone = await codeFlow(cfgBasic, new HttpAgent(), user, { scope: 'openid phone' });
  const sub = phone.tokens.claims().sub;
  const a = await client.fetchUserInfo(cfgBasic, phone.tokens.access_token, sub);
  assert.match(String(a.phone_number), /912345678$/);
  assert.equal(a.member_level, undefined, `member_level without profile: ${JSON.stringify(a)}`);
  assert.equal(a.name, undefined);
  const profile = await codeFlow(cfgBasic, new HttpAgent(), user, { scope: 'openid profile' });
  const b = await client.fetchUserInfo(cfgBasic, profile.tokens.access_token, sub);
  assert.equal(b.name, '王小明');
  assert.equal(b.member_level, 'gold');
  assert.equal(b.phone_number, undefined);

  // the consent page lists the level (as text) only when profile is asked
  const agent = new HttpAgent();
  await codeFlow(cfgBasic, agent, user); // a session: the next client shows only consent
  const c = await stack.registerClient({ name: 'level rp', redirectUris: [RP], scope: 'openid profile phone' });
  const cfg = await configFor(c);
  const withPhone = await reachConsent(agent, (await startAuth(cfg, { scope: 'openid phone' })).url);
  assert.ok(withPhone.res.pageText().includes('0912345678'), 'the phone row');
  assert.ok(!withPhone.res.pageText().includes(msg('claim.member_level')), 'no member level row without profile');
  const withProfile = await reachConsent(agent, (await startAuth(cfg, { scope: 'openid profile' })).url);
  const text = withProfile.res.pageText();
  assert.ok(text.includes(msg('claim.member_level')), `the consent page lists ${msg('claim.member_level')}: ${text.slice(0, 600)}`);
  assert.ok(text.includes(msg('member.gold')), 'the level is shown in words');
  assert.ok(!/\bgold\b/.test(text), 'not the raw claim value');
});


// ---------------------------------------------------------------- prompt, max_age, SSO

test('acr_values=high: no TaipeiPass password login is offered or accepted', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth(cfgBasic, { extra: { acr_values: 'urn:isso:loa:high' } });
  const r = await agent.followUntil(a.url, isAt(RP));
  assert.ok(!r.stopped, `went straight back to the client: ${r.url}`);
  assert.equal(r.res.status, 200);
  assert.equal(new URL(r.url).pathname, '/login');
  assert.ok(!r.res.links().some((l) => new URL(l.href).pathname === '/login/taipeipass'), 'no 台北通 password card for acr high');
  // going there by hand must not give a code either
  const t = new URL(r.url).searchParams.get('t');
  const page = await agent.get(stack.url(`/login/taipeipass?t=${encodeURIComponent(t)}`));
  const form = page.status === 200 ? page.forms().find((f) => f.has('password')) : null;
  if (form) {
    let out = await agent.submit(form, { account: user.account, password: user.password }, null, isAt(RP));
    const consent = !out.stopped && out.res.forms().find((f) => f.has('decision'));
    if (consent) out = await agent.submit(consent, {}, consent.buttons.find((x) => x.value === 'allow'), isAt(RP));
    if (out.stopped) {
      const code = redirectParams(out.url).get('code');
      let acr = null;
      if (code) {
        const tokens = await client.authorizationCodeGrant(cfgBasic, new URL(out.url), { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce });
        acr = tokens.claims().acr;
      }
      assert.equal(code, null, `a password login must not satisfy acr_values=high (got a code, ID token acr ${acr})`);
    } else {
      assert.ok(out.res.status < 500);
    }
  } else {
    assert.ok(page.status < 500);
  }
});

test('prompt=none without a session -> login_required, state intact', T, async () => {
  const a = await startAuth(cfgBasic, { extra: { prompt: 'none' } });
  const r = await new HttpAgent().followUntil(a.url, isAt(RP));
  assert.ok(r.stopped, `expected a redirect, got ${r.res.status} at ${r.url}`);
  assertErrorRedirect(r.url, RP, 'login_required', a.state);
});

test('prompt=none with a session and earlier consent -> code without any page', T, async () => {
  const agent = new HttpAgent();
  await codeFlow(cfgBasic, agent, user);
  const a = await startAuth(cfgBasic, { extra: { prompt: 'none' } });
  const before = agent.trace.length;
  const r = await agent.followUntil(a.url, isAt(RP));
  assert.ok(r.stopped, `expected a redirect, got ${r.res.status} at ${r.url}`);
  assert.equal(agent.trace.length - before, 1, 'one request: /authorize answered with the redirect');
  const tokens = await client.authorizationCodeGrant(cfgBasic, new URL(r.url), { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce });
  assert.ok(tokens.id_token);
});

test('prompt=none without consent for this client -> consent_required (or interaction_required)', T, async () => {
  const agent = new HttpAgent();
  await codeFlow(cfgBasic, agent, user);
  const c = await stack.registerClient({ name: 'never consented', redirectUris: [RP], scope: 'openid profile' });
  const cfg = await configFor(c);
  const a = await startAuth(cfg, { scope: 'openid profile', extra: { prompt: 'none' } });
  const r = await agent.followUntil(a.url, isAt(RP));
  assert.ok(r.stopped, `expected a redirect, got ${r.res.status} at ${r.url}`);
  const err = redirectParams(r.url).get('error');
  assert.ok(['consent_required', 'interaction_required'].includes(err), `got ${err}`);
});

test('max_age=1 after 2 s -> the login page again', T, async () => {
  const agent = new HttpAgent();
  const first = await codeFlow(cfgBasic, agent, user);
  await sleep(2100);
  const a = await startAuth(cfgBasic, { extra: { max_age: '1' } });
  const r = await agent.followUntil(a.url, isAt(RP));
  assert.ok(!r.stopped, `went straight back to the client: ${r.url}`);
  assert.ok(new URL(r.url).pathname.startsWith('/login'), `expected /login, landed on ${r.url}`);
  const again = await codeFlow(cfgBasic, agent, user, { extra: { max_age: '1' }, maxAge: 30 });
  assert.ok(again.tokens.claims().auth_time > first.tokens.claims().auth_time, 'auth_time moved on');
});

test('prompt=login forces the login page', T, async () => {
  const agent = new HttpAgent();
  await codeFlow(cfgBasic, agent, user);
  const a = await startAuth(cfgBasic, { extra: { prompt: 'login' } });
  const r = await agent.followUntil(a.url, isAt(RP));
  assert.ok(!r.stopped, `went straight back to the client: ${r.url}`);
  assert.ok(new URL(r.url).pathname.startsWith('/login'), `expected /login, landed on ${r.url}`);
  const cb = await agent.loginViaPages({ authorizeUrl: a.url, account: user.account, password: user.password });
  assert.ok(redirectParams(cb).get('code'));
  assert.ok(agent.lastFlow.some((s) => s.step === 'login'), 'the password was asked again');
});

test('SSO: a second client in the same session sees only the consent page', T, async () => {
  const agent = new HttpAgent();
  await codeFlow(cfgBasic, agent, user);
  const second = await stack.registerClient({ name: 'SSO second agency', redirectUris: [RP], scope: 'openid profile' });
  const cfg = await configFor(second);
  const a = await startAuth(cfg, { scope: 'openid profile' });
  const cb = await agent.loginViaPages({ authorizeUrl: a.url }); // no credentials: a login form would throw
  assert.deepEqual(agent.lastFlow.map((s) => s.step), ['consent', 'redirect']);
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce });
  assert.ok(tokens.claims().sid, 'sid');
});

test('consent deny -> access_denied', T, async () => {
  const agent = new HttpAgent();
  const c = await stack.registerClient({ name: 'deny me', redirectUris: [RP], scope: 'openid profile' });
  const cfg = await configFor(c);
  const a = await startAuth(cfg, { scope: 'openid profile' });
  const cb = await agent.loginViaPages({ authorizeUrl: a.url, account: user.account, password: user.password, consent: false });
  assertErrorRedirect(cb, RP, 'access_denied', a.state);
  await rejectsWith(
    client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce }),
    'access_denied', 'openid-client sees the error',
  );
});

test('consent is remembered for a scope that had nothing to show (no e-mail)', T, async () => {
  const noMail = await stack.addUser({ account: 'no.mail', password: 'Tp-No-Mail-42', phone: '0912000333', name: '陳無信' });
  const c = await stack.registerClient({ name: 'memory rp', redirectUris: [RP], scope: 'openid email profile' });
  const cfg = await configFor(c);
  const steps = (agent) => agent.lastFlow.map((s) => s.step);

  const first = new HttpAgent();
  const one = await codeFlow(cfg, first, noMail, { scope: 'openid email profile' });
  assert.deepEqual(steps(first), ['choose', 'login', 'consent', 'redirect'], 'consent asked the first time');
  const info = await client.fetchUserInfo(cfg, one.tokens.access_token, one.tokens.claims().sub);
  assert.equal(info.email, undefined, 'no e-mail to release');
  assert.equal(info.name, '陳無信');

  // a new browser: login only, no consent page again
  const second = new HttpAgent();
  await codeFlow(cfg, second, noMail, { scope: 'openid email profile' });
  assert.deepEqual(steps(second), ['choose', 'login', 'redirect'], 'the empty e-mail scope does not ask again');
  // nor after a logout in the same browser
  const bye = await second.logoutViaPages(stack.url('/logout'));
  assert.ok(bye.res.status < 400, `logout: ${bye.res.status}`);
  await codeFlow(cfg, second, noMail, { scope: 'openid email profile' });
  assert.deepEqual(steps(second), ['choose', 'login', 'redirect'], 'the same after a logout');
  // a subset of what was granted does not ask either
  await codeFlow(cfg, new HttpAgent(), noMail, { scope: 'openid profile' });
});

test('consent for openid profile, then openid profile phone: the wider request asks again', T, async () => {
  const c = await stack.registerClient({ name: 'widening rp', redirectUris: [RP], scope: 'openid profile phone' });
  const cfg = await configFor(c);
  const steps = (agent) => agent.lastFlow.map((s) => s.step);
  const first = new HttpAgent();
  await codeFlow(cfg, first, user, { scope: 'openid profile' });
  assert.deepEqual(steps(first), ['choose', 'login', 'consent', 'redirect']);
  const second = new HttpAgent();
  const { tokens } = await codeFlow(cfg, second, user, { scope: 'openid profile phone' });
  assert.deepEqual(steps(second), ['choose', 'login', 'consent', 'redirect'], 'phone is new: the consent page again');
  const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
  assert.match(String(info.phone_number), /912345678$/);
  // the same scopes once more: remembered (in the same session: no page at all)
  await codeFlow(cfg, second, user, { scope: 'openid profile phone' });
  assert.deepEqual(steps(second), ['redirect']);
});

test('wrong password re-renders the form with an alert and no redirect', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth(cfgBasic);
  await assert.rejects(
    agent.loginViaPages({ authorizeUrl: a.url, account: user.account, password: 'not-the-password' }),
    (err) => {
      assert.equal(err.name, 'FlowError');
      assert.ok([200, 401].includes(err.res.status), `status ${err.res.status}`);
      assert.ok(err.res.alerts().length > 0, 'role="alert" message');
      return true;
    },
  );
});

// ---------------------------------------------------------------- tokens

test('refresh token rotation and reuse detection', T, async () => {
  const { tokens } = await codeFlow(cfgBasic, new HttpAgent(), user, { scope: 'openid profile' });
  const rt1 = tokens.refresh_token;
  assert.ok(rt1, 'a refresh token is issued to a confidential client');
  const t2 = await client.refreshTokenGrant(cfgBasic, rt1);
  assert.ok(t2.refresh_token && t2.refresh_token !== rt1, 'rotated');
  assert.ok(t2.access_token && t2.access_token !== tokens.access_token);
  const t3 = await client.refreshTokenGrant(cfgBasic, t2.refresh_token);
  assert.ok(t3.refresh_token && t3.refresh_token !== t2.refresh_token);
  const info = await client.fetchUserInfo(cfgBasic, t3.access_token, tokens.claims().sub);
  assert.equal(info.sub, tokens.claims().sub);

  await rejectsWith(client.refreshTokenGrant(cfgBasic, t2.refresh_token), 'invalid_grant', 'reuse of a rotated refresh token');
  await rejectsWith(client.refreshTokenGrant(cfgBasic, t3.refresh_token), 'invalid_grant', 'the newest refresh token after reuse');
  // and another client cannot use a refresh token at all
  const { tokens: fresh } = await codeFlow(cfgBasic, new HttpAgent(), user);
  await rejectsWith(client.refreshTokenGrant(cfgOther, fresh.refresh_token), 'invalid_grant', 'refresh token of another client');
});

test('refresh with a narrower scope: the access token is narrowed, the refresh token keeps the grant', T, async () => {
  const granted = 'openid profile phone';
  const { tokens } = await codeFlow(cfgBasic, new HttpAgent(), user, { scope: granted });
  const sub = tokens.claims().sub;
  const full = await client.fetchUserInfo(cfgBasic, tokens.access_token, sub);
  assert.equal(full.name, '王小明');
  assert.match(String(full.phone_number), /912345678$/);

  const narrow = await client.refreshTokenGrant(cfgBasic, tokens.refresh_token, { scope: 'openid' });
  assert.deepEqual(words(narrow.scope), ['openid'], 'the token response names the narrowed scope');
  const ui = await userinfoStatus(narrow.access_token);
  assert.equal(ui.status, 200, ui.text);
  assert.deepEqual(Object.keys(ui.json), ['sub'], `the narrowed token releases only sub: ${ui.text}`);
  assert.equal(ui.json.sub, sub);
  assert.deepEqual(words((await introspect(cfgBasic, narrow.access_token)).scope), ['openid'], 'access token scope');
  const rt = await introspect(cfgBasic, narrow.refresh_token);
  assert.equal(rt.active, true);
  assert.deepEqual(words(rt.scope), words(granted), 'the new refresh token keeps the original grant (RFC 6749 §6)');

  const again = await client.refreshTokenGrant(cfgBasic, narrow.refresh_token);
  assert.deepEqual(words(again.scope), words(granted));
  const back = await client.fetchUserInfo(cfgBasic, again.access_token, sub);
  assert.equal(back.name, '王小明', 'a refresh without scope gets the whole grant back');
  assert.match(String(back.phone_number), /912345678$/);

  // narrowing to a scope with data releases exactly that
  const phoneOnly = await client.refreshTokenGrant(cfgBasic, again.refresh_token, { scope: 'openid phone' });
  const p = await client.fetchUserInfo(cfgBasic, phoneOnly.access_token, sub);
  assert.match(String(p.phone_number), /912345678$/);
  assert.equal(p.name, undefined);
  assert.equal(p.member_level, undefined);
  // and never beyond the grant
  await rejectsWith(client.refreshTokenGrant(cfgBasic, phoneOnly.refresh_token, { scope: 'openid email' }),
    'invalid_scope', 'widening at refresh');
});

test('UserInfo by GET bearer, POST bearer header and POST form body', T, async () => {
  const { tokens } = await codeFlow(cfgBasic, new HttpAgent(), user, { scope: 'openid profile' });
  const at = tokens.access_token;
  const sub = tokens.claims().sub;
  const g = await rawGet(md.userinfo_endpoint, { authorization: `Bearer ${at}` });
  assert.equal(g.status, 200, g.text);
  assert.match(g.headers.get('content-type'), /^application\/json/);
  assert.equal(g.json.sub, sub);
  const p = await rawPost(md.userinfo_endpoint, '', { authorization: `Bearer ${at}` });
  assert.equal(p.status, 200, p.text);
  assert.equal(p.json.sub, sub);
  const f = await rawPost(md.userinfo_endpoint, { access_token: at });
  assert.equal(f.status, 200, f.text);
  assert.equal(f.json.sub, sub);
  assert.equal(g.json.name, '王小明');
  assert.equal(g.json.email, undefined, 'email scope not requested');
});

test('UserInfo: missing or tampered token -> 401 with WWW-Authenticate', T, async () => {
  const none = await rawGet(md.userinfo_endpoint);
  assert.equal(none.status, 401);
  assert.match(none.headers.get('www-authenticate') || '', /^Bearer/i);
  const { tokens } = await codeFlow(cfgBasic, new HttpAgent(), user);
  const at = tokens.access_token;
  const flipped = at.slice(0, -2) + (at.at(-2) === 'A' ? 'B' : 'A') + at.at(-1);
  for (const bad of [flipped, `${at}x`, 'garbage', tokens.id_token]) {
    const r = await userinfoStatus(bad);
    assert.equal(r.status, 401, `token ${bad.slice(0, 12)}…`);
    assert.match(r.headers.get('www-authenticate') || '', /^Bearer\b.*error="invalid_token"/i);
  }
});

test('revocation (RFC 7009)', T, async () => {
  const { tokens } = await codeFlow(cfgBasic, new HttpAgent(), user);
  // another client cannot revoke it
  const foreign = await rawPost(md.revocation_endpoint, { token: tokens.access_token },
    { authorization: basicAuth(otherClient.client_id, otherClient.client_secret) });
  assert.ok(foreign.status < 500, `foreign revoke: ${foreign.status}`);
  assert.equal((await introspect(cfgBasic, tokens.access_token)).active, true, 'still active after a foreign revoke');

  await client.tokenRevocation(cfgBasic, tokens.access_token);
  assert.equal((await introspect(cfgBasic, tokens.access_token)).active, false);
  assert.equal((await userinfoStatus(tokens.access_token)).status, 401);

  await client.tokenRevocation(cfgBasic, tokens.refresh_token, { token_type_hint: 'refresh_token' });
  await rejectsWith(client.refreshTokenGrant(cfgBasic, tokens.refresh_token), 'invalid_grant', 'revoked refresh token');

  const unknown = await rawPost(md.revocation_endpoint, { token: 'no-such-token' },
    { authorization: basicAuth(basicClient.client_id, basicClient.client_secret) });
  assert.equal(unknown.status, 200, 'unknown token -> 200');
  const unauth = await rawPost(md.revocation_endpoint, { token: 'no-such-token' });
  assert.equal(unauth.status, 401, 'revocation requires client authentication');
});

test('introspection (RFC 7662): active fields; another client sees active:false', T, async () => {
  const { tokens } = await codeFlow(cfgBasic, new HttpAgent(), user, { scope: 'openid profile' });
  const r = await introspect(cfgBasic, tokens.access_token);
  assert.equal(r.active, true);
  assert.equal(r.client_id, basicClient.client_id);
  assert.equal(r.sub, tokens.claims().sub);
  assert.ok(r.scope.split(' ').includes('openid') && r.scope.split(' ').includes('profile'), `scope ${r.scope}`);
  assert.ok(r.exp > Date.now() / 1000);
  assert.match(String(r.token_type), /^bearer$/i);
  const foreign = await introspect(cfgOther, tokens.access_token);
  assert.equal(foreign.active, false);
  assert.deepEqual(Object.keys(foreign), ['active'], 'nothing else leaks to another client');
  const junk = await introspect(cfgBasic, 'no-such-token');
  assert.equal(junk.active, false);
  const unauth = await rawPost(md.introspection_endpoint, { token: tokens.access_token });
  assert.equal(unauth.status, 401, 'introspection requires client authentication');
});

test('client_credentials grant: an access token with no sub', T, async () => {
  const svc = await stack.registerClient({
    name: 'cc client', redirectUris: [RP], scope: 'openid profile', grantTypes: ['authorization_code', 'client_credentials'],
  });
  const cfgSvc = await configFor(svc);
  const tokens = await client.clientCredentialsGrant(cfgSvc);
  assert.ok(tokens.access_token);
  assert.equal(tokens.id_token, undefined);
  assert.equal(tokens.refresh_token, undefined);
  const r = await introspect(cfgSvc, tokens.access_token);
  assert.equal(r.active, true);
  assert.equal(r.client_id, svc.client_id);
  assert.equal(r.sub, undefined);
  const ui = await userinfoStatus(tokens.access_token);
  assert.ok([401, 403].includes(ui.status), `userinfo with a client token: ${ui.status}`);
});

test('token endpoint: malformed body, unsupported grant_type, missing code', T, async () => {
  const auth = { authorization: basicAuth(basicClient.client_id, basicClient.client_secret) };
  const malformed = await rawPost(md.token_endpoint, 'grant_type=authorization_code&code=%zz&%%%=&=', auth);
  assert.equal(malformed.status, 400, malformed.text);
  if (malformed.json) assert.equal(malformed.json.error, 'invalid_request');
  const asJson = await rawPost(md.token_endpoint, JSON.stringify({ grant_type: 'authorization_code' }), { ...auth, 'content-type': 'application/json' });
  assert.equal(asJson.status, 400, asJson.text);
  if (asJson.json?.error) assert.equal(asJson.json.error, 'invalid_request');
  const pw = await rawPost(md.token_endpoint, { grant_type: 'password', username: user.account, password: user.password }, auth);
  assert.equal(pw.status, 400, pw.text);
  assert.equal(pw.json?.error, 'unsupported_grant_type');
  const weird = await rawPost(md.token_endpoint, { grant_type: 'urn:example:nope' }, auth);
  assert.equal(weird.json?.error, 'unsupported_grant_type');
  const noGrant = await rawPost(md.token_endpoint, { code: 'abc' }, auth);
  assert.equal(noGrant.status, 400, noGrant.text);
  assert.equal(noGrant.json?.error, 'invalid_request');
  const noCode = await rawPost(md.token_endpoint, { grant_type: 'authorization_code', redirect_uri: RP, code_verifier: client.randomPKCECodeVerifier() }, auth);
  assert.equal(noCode.status, 400, noCode.text);
  assert.equal(noCode.json?.error, 'invalid_request');
  const badCode = await rawPost(md.token_endpoint, { grant_type: 'authorization_code', code: 'nope', redirect_uri: RP, code_verifier: client.randomPKCECodeVerifier() }, auth);
  assert.equal(badCode.status, 400, badCode.text);
  assert.equal(badCode.json?.error, 'invalid_grant');
  const get = await rawGet(`${md.token_endpoint}?grant_type=client_credentials`, auth);
  assert.ok(get.status >= 400 && get.status < 500, `GET /token: ${get.status}`);
});

// ---------------------------------------------------------------- logout

test('RP-initiated logout: redirect with state, then the session is gone', T, async () => {
  const bye = 'http://127.0.0.1:9/bye';
  const c = await stack.registerClient({ name: 'logout rp', redirectUris: [RP], scope: 'openid', postLogoutRedirectUri: bye });
  const cfg = await configFor(c);
  const agent = new HttpAgent();
  const { tokens } = await codeFlow(cfg, agent, user);

  // an unregistered post_logout_redirect_uri is never followed
  const evil = client.buildEndSessionUrl(cfg, { id_token_hint: tokens.id_token, post_logout_redirect_uri: 'http://127.0.0.1:9/evil', state: 'e' });
  const probe = await new HttpAgent().followUntil(evil, (next) => sameEndpoint(next, 'http://127.0.0.1:9/evil'));
  assert.ok(!probe.stopped, 'never redirects to an unregistered post_logout_redirect_uri');
  assert.ok(probe.res.status < 500);

  const state = 'logout-state-42';
  const url = client.buildEndSessionUrl(cfg, { id_token_hint: tokens.id_token, post_logout_redirect_uri: bye, state });
  const out = await agent.logoutViaPages(url, { postLogoutRedirectUri: bye });
  assert.ok(out.redirect, `expected a redirect to ${bye}, got ${out.res.status} at ${out.res.url}`);
  assert.equal(redirectParams(out.redirect).get('state'), state);

  const a = await startAuth(cfg, { extra: { prompt: 'none' } });
  const r = await agent.followUntil(a.url, isAt(RP));
  assert.ok(r.stopped);
  assertErrorRedirect(r.url, RP, 'login_required', a.state);
});

test('back-channel logout: a signed logout_token reaches the client', T, async () => {
  const received = [];
  let notify;
  const arrived = new Promise((resolve) => { notify = resolve; });
  const bc = await startTestServer((req, body, res) => {
    received.push({ method: req.method, type: req.headers['content-type'], body: body.toString('utf8') });
    res.statusCode = 200;
    res.setHeader('cache-control', 'no-store');
    res.end();
    notify();
  });
  try {
    const bye = 'http://127.0.0.1:9/bye';
    const c = await stack.registerClient({
      name: 'bc rp', redirectUris: [RP], scope: 'openid', postLogoutRedirectUri: bye, backchannelLogoutUri: `${bc.url}/backchannel`,
    });
    const cfg = await configFor(c);
    const agent = new HttpAgent();
    const { tokens } = await codeFlow(cfg, agent, user);
    const idt = tokens.claims();
    const url = client.buildEndSessionUrl(cfg, { id_token_hint: tokens.id_token, post_logout_redirect_uri: bye, state: 'bc' });
    const out = await agent.logoutViaPages(url, { postLogoutRedirectUri: bye });
    assert.ok(out.redirect, 'redirected after logout');

    let timer;
    await Promise.race([arrived, new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('no logout_token within 5 s')), 5000); })]);
    clearTimeout(timer);
    const msg = received[0];
    assert.equal(msg.method, 'POST');
    assert.match(msg.type, /^application\/x-www-form-urlencoded/);
    const logoutToken = new URLSearchParams(msg.body).get('logout_token');
    assert.ok(logoutToken, 'logout_token parameter');
    const { payload, protectedHeader } = await jose.jwtVerify(logoutToken, await jwks(), { issuer: stack.issuer, audience: c.client_id });
    assert.ok(['ES256', 'RS256'].includes(protectedHeader.alg));
    assert.ok(Math.abs(payload.iat - Date.now() / 1000) < 60, 'iat');
    assert.ok(typeof payload.jti === 'string' && payload.jti.length > 0, 'jti');
    assert.equal(payload.sid, idt.sid, 'sid of the session');
    if (payload.sub !== undefined) assert.equal(payload.sub, idt.sub);
    assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
    assert.equal(payload.nonce, undefined, 'a logout token has no nonce');
  } finally {
    await bc.close();
  }
});

test('the same person logging in again (prompt=login) keeps the sid; no back-channel logout', T, async () => {
  const bc = await backchannelReceiver();
  try {
    const c = await stack.registerClient({ name: 'sid keeper', redirectUris: [RP], scope: 'openid', backchannelLogoutUri: bc.url });
    const cfg = await configFor(c);
    const agent = new HttpAgent();
    const first = await codeFlow(cfg, agent, user);
    const again = await codeFlow(cfg, agent, user, { extra: { prompt: 'login' } });
    assert.ok(agent.lastFlow.some((s) => s.step === 'login'), 'the password was asked again');
    assert.ok(again.tokens.claims().auth_time >= first.tokens.claims().auth_time);
    assert.ok(first.tokens.claims().sid, 'sid');
    assert.equal(again.tokens.claims().sid, first.tokens.claims().sid, 'the clients keep knowing the session by one sid');
    await sleep(300); // a logout token would have been sent during the login itself
    assert.equal(bc.received.length, 0, 'no back-channel logout for the same person');
    // a later logout names the sid the client holds
    const out = await agent.logoutViaPages(stack.url('/logout'));
    assert.ok(out.res.status < 400, `logout: ${out.res.status}`);
    const [message] = await bc.wait(1, 5000);
    const payload = await verifyLogoutToken(message, c.client_id);
    assert.equal(payload.sid, first.tokens.claims().sid, 'the logout token names the sid of both ID tokens');
  } finally {
    await bc.close();
  }
});

test("another person's login in the same browser sends back-channel logout for the first person's session", T, async () => {
  const bc = await backchannelReceiver();
  try {
    const other = await stack.addUser({ account: 'lee.second', password: 'Tp-Second-Person-9', phone: '0912000222', name: '李第二' });
    const x = await stack.registerClient({ name: 'bc on replace', redirectUris: [RP], scope: 'openid', backchannelLogoutUri: bc.url });
    const cfgX = await configFor(x);
    const agent = new HttpAgent();
    const a = await codeFlow(cfgX, agent, user);
    const aClaims = a.tokens.claims();
    assert.equal(bc.received.length, 0);

    // person B on the same browser, at another client, with prompt=login
    const b = await codeFlow(cfgBasic, agent, other, { extra: { prompt: 'login' } });
    assert.ok(agent.lastFlow.some((s) => s.step === 'login'));
    const bClaims = b.tokens.claims();
    assert.notEqual(bClaims.sid, aClaims.sid, "B's session is a new one");

    const [message] = await bc.wait(1, 5000);
    const payload = await verifyLogoutToken(message, x.client_id);
    assert.equal(payload.iss, stack.issuer);
    assert.equal(payload.aud === x.client_id || (Array.isArray(payload.aud) && payload.aud.includes(x.client_id)), true, 'aud');
    assert.equal(payload.sid, aClaims.sid, "the logout token names A's session");
    if (payload.sub !== undefined) assert.equal(payload.sub, aClaims.sub, "A's sub at X");
    await sleep(200);
    assert.equal(bc.received.length, 1, 'one logout token');
  } finally {
    await bc.close();
  }
});

test('no code when the session ended between login and consent', T, async () => {
  const c = await stack.registerClient({ name: 'ended rp', redirectUris: [RP], scope: 'openid profile' });
  const cfg = await configFor(c);
  const agent = new HttpAgent();
  const a = await startAuth(cfg, { scope: 'openid profile' });
  const { form } = await reachConsent(agent, a.url, user);
  const allow = form.buttons.find((b) => b.name === 'decision' && b.value === 'allow');
  assert.ok(allow, 'the consent form has an allow button');

  // logout in "another tab" of the same browser
  const out = await agent.logoutViaPages(stack.url('/logout'));
  assert.ok(out.res.status < 400, `logout: ${out.res.status}`);
  const probe = await startAuth(cfgBasic, { extra: { prompt: 'none' } });
  const gone = await agent.followUntil(probe.url, isAt(RP));
  assert.ok(gone.stopped);
  assert.equal(redirectParams(gone.url).get('error'), 'login_required', 'the session is gone');

  const r = await agent.submit(form, {}, allow, isAt(RP));
  assert.ok(!r.stopped, `redirected to the client after the session ended: ${r.url}`);
  assertErrorPage(r.res, 'consent after logout');
  assert.equal(r.res.status, 400);
  assert.ok(r.res.pageText().includes(msg('error.session_ended')), `the page says why: ${r.res.pageText().slice(0, 300)}`);
});


// ---------------------------------------------------------------- expiry (one wait)

test('expired code -> invalid_grant; expired access token -> 401 invalid_token', { timeout: limit(30_000) }, async () => {
  const short = await startStack({ label: 'ttl', env: { ISSO_OIDC_CODE_TTL: '2', ISSO_OIDC_ACCESS_TOKEN_TTL: '2' } });
  try {
    const who = await short.addUser({ account: 'ttl.user', password: 'Tp-Short-Lived-7', phone: '0922333444' });
    const c = await short.registerClient({ name: 'ttl rp', redirectUris: [RP], scope: 'openid' });
    const cfg = await client.discovery(new URL(short.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
      client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
    const agent = new HttpAgent();
    const { tokens } = await codeFlow(cfg, agent, who);
    const pending = await getCode(cfg, agent, who);
    await sleep(3200);
    await rejectsWith(
      client.authorizationCodeGrant(cfg, new URL(pending.cb), { pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce }),
      'invalid_grant', 'expired code',
    );
    const smd = await short.metadata();
    const ui = await rawGet(smd.userinfo_endpoint, { authorization: `Bearer ${tokens.access_token}` });
    assert.equal(ui.status, 401);
    assert.match(ui.headers.get('www-authenticate') || '', /error="invalid_token"/);
    assert.equal((await client.tokenIntrospection(cfg, tokens.access_token)).active, false);
  } finally {
    await short.stop();
  }
});

test('operators\' actions are security events on issoctl\'s log, never with a secret', T, async () => {
  const { execFile } = await import('node:child_process');
  const { BUILD_DIR } = await import('./lib/harness.mjs');
  const run = (args) => new Promise((resolve, reject) => {
    execFile(path.join(BUILD_DIR, 'issoctl'), args, { env: stack.env, cwd: stack.tmp }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`issoctl ${args.join(' ')}: ${stderr}`));
      resolve({ out: JSON.parse(stdout), events: stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l)) });
    });
  });
  const added = await run(['client', 'add', '--name', '稽核測試', '--redirect-uri', RP, '--scope', 'openid']);
  const rotated = await run(['client', 'rotate-secret', added.out.client_id]);
  const suspended = await run(['client', 'suspend', added.out.client_id]);
  const actions = [added, rotated, suspended].map((r) => r.events.filter((e) => e.event === 'admin_action'));
  assert.deepEqual(actions.map((a) => a.map((e) => e.action)), [['client_added'], ['client_secret_rotated'], ['client_suspended']]);
  for (const a of actions) assert.equal(a[0].client_id, added.out.client_id);
  const logged = [added, rotated, suspended].map((r) => JSON.stringify(r.events)).join('\n');
  assert.ok(!logged.includes(added.out.client_secret), 'the first secret is not logged');
  assert.ok(!logged.includes(rotated.out.client_secret), 'the rotated secret is not logged');
});

// ---------------------------------------------------------------- the end

test('issod is still healthy and stops cleanly on SIGTERM', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
