// Strict grants, strict client assertions, clients' JWK sets fetched off
// the request threads, refresh tokens bound to the session, back-channel
// logout queued and retried by a background worker (issue 14, items 3, 5,
// 6 and the client-authentication security events of item 8).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import {
  startStack, HttpAgent, sleep, redirectParams, sameEndpoint, startTestServer, limit, REPO,
} from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const T = { timeout: limit(15_000) };
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));

let stack;
let md;
let user;

const isAt = (uri) => (next) => sameEndpoint(next, uri);

async function configFor(c, auth) {
  return client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    auth ?? client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
}

async function rawPost(url, body, headers = {}) {
  const res = await fetch(url, {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(body), redirect: 'manual', signal: AbortSignal.timeout(limit(8000)),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, json };
}

const basic = (c) => ({ authorization: `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}` });

/** GET over a new connection (no keep-alive reuse); resolves to ms taken. */
function timedFreshGet(url) {
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const req = http.get(url, { agent: false, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`status ${res.statusCode}`));
        else resolve(Number(process.hrtime.bigint() - start) / 1e6);
      });
    });
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

/** The issod log lines (JSON) of event. */
function logEvents(event) {
  const text = (stack.previousIssodStderr ?? '') + stack.issod.stderr;
  return text.split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try { return JSON.parse(l); } catch { return null; }
  }).filter((e) => e && e.event === event);
}

async function oauthError(promise) {
  try {
    await promise;
  } catch (err) {
    return err?.error ?? err?.cause?.error ?? err?.cause?.[0]?.parameters?.error ?? err?.code;
  }
  return 'no error';
}

/** Walks an authorization URL to the consent page (logging in when
 * asked); {redirect} when it went back to the client without one. */
async function reachConsent(agent, authorizeUrl, who) {
  const redirectUri = new URL(authorizeUrl).searchParams.get('redirect_uri');
  let req = { url: String(authorizeUrl), method: 'GET' };
  for (let i = 0; i < 6; i++) {
    const r = await agent.followUntil(req.url, isAt(redirectUri), req);
    if (r.stopped) return { redirect: r.url };
    const forms = r.res.forms();
    const consent = forms.find((f) => f.has('decision'));
    if (consent) return { res: r.res, form: consent };
    const login = forms.find((f) => f.has('password'));
    if (login) {
      req = agent.formRequest(login, { account: who.account, password: who.password });
      continue;
    }
    const pick = r.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/taipeipass');
    assert.ok(pick, `unexpected page ${r.res.status} at ${r.url}`);
    req = { url: pick.href, method: 'GET' };
  }
  assert.fail('no consent page after 6 pages');
}

/** Code flow through the pages; returns {tokens, consentText}. */
async function codeFlow(cfg, agent, { scope = 'openid', extra = {} } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope, state, nonce, code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', ...extra,
  });
  const { res, form, redirect } = await reachConsent(agent, url, user);
  let back = redirect;
  if (!back) {
    const allow = form.buttons.find((b) => b.name === 'decision' && b.value === 'allow');
    const r = await agent.submit(form, {}, allow, isAt(RP));
    assert.ok(r.stopped, `no redirect to the client: ${r.url}`);
    back = r.url;
  }
  const tokens = await client.authorizationCodeGrant(cfg, new URL(back), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  return { tokens, consentText: res ? res.pageText() : '' };
}

/** A client assertion; o overrides claims (undefined removes one). */
async function makeAssertion(key, clientId, o = {}, header = {}) {
  const now = Math.floor(Date.now() / 1000);
  const claims = { iss: clientId, sub: clientId, aud: stack.issuer, jti: crypto.randomUUID(), iat: now, exp: now + 60, ...o };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return new jose.SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1', ...header }).sign(key);
}

const withAssertion = (clientId, assertion, body = { grant_type: 'client_credentials' }) => ({
  ...body, client_id: clientId, client_assertion_type: JWT_BEARER, client_assertion: assertion,
});

/** Listens on a fixed loopback port with a recording handler. */
function listenOn(port, handler) {
  return new Promise((resolve, reject) => {
    const server = http.createServer((req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => handler(req, Buffer.concat(chunks).toString('utf8'), res));
    });
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve({
      close: () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); }),
    }));
  });
}

async function verifyLogoutToken(body, clientId) {
  const token = new URLSearchParams(body).get('logout_token');
  assert.ok(token, 'logout_token parameter');
  const keys = jose.createLocalJWKSet(await (await fetch(md.jwks_uri)).json());
  const { payload } = await jose.jwtVerify(token, keys, { issuer: stack.issuer, audience: clientId });
  assert.deepEqual(payload.events, { 'http://schemas.openid.net/event/backchannel-logout': {} });
  return payload;
}

async function waitFor(cond, ms, what) {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`${what}: not within ${ms} ms`);
    await sleep(50);
  }
}

before(async () => {
  stack = await startStack({ label: 'oidc-strict' });
  md = await stack.metadata();
  user = await stack.addUser({ account: 'strict.user', password: 'Tp-Strict-Grants-14', phone: '0912345678', name: '嚴格測' });
}, { timeout: limit(30_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

// ------------------------------------------------------------ JWK sets

test('twelve assertions against an unresponsive jwks_uri: one fetch, quick refusals, discovery within 100 ms', { timeout: limit(30_000) }, async () => {
  const sockets = new Set();
  let connections = 0;
  const hang = net.createServer((s) => { connections += 1; sockets.add(s); s.on('error', () => {}); });
  await new Promise((r) => hang.listen(0, '127.0.0.1', r));
  try {
    const { privateKey } = await jose.generateKeyPair('ES256');
    const c = await stack.registerClient({
      name: 'hanging jwks', redirectUris: [RP], scope: 'openid', authMethod: 'private_key_jwt',
      jwksUri: `http://127.0.0.1:${hang.address().port}/jwks`, grantTypes: ['authorization_code', 'client_credentials'],
    });
    const assertions = await Promise.all(Array.from({ length: 12 }, () => makeAssertion(privateKey, c.client_id)));
    const started = Date.now();
    const answers = assertions.map((a) => rawPost(md.token_endpoint, withAssertion(c.client_id, a)).then((r) => ({ ...r, ms: Date.now() - started })));
    await sleep(100);
    for (let i = 0; i < 3; i++) {
      const ms = await timedFreshGet(`${stack.issuer}/.well-known/openid-configuration`);
      assert.ok(ms < 100, `discovery took ${ms.toFixed(1)} ms while assertions wait on the jwks_uri`);
      await sleep(50);
    }
    const done = await Promise.all(answers);
    for (const r of done) {
      assert.equal(r.status, 401, r.text);
      assert.equal(r.json?.error, 'invalid_client');
    }
    const slowest = Math.max(...done.map((r) => r.ms));
    assert.ok(slowest < 2500, `every request answered without waiting on the jwks_uri's timeout (slowest ${slowest} ms)`);
    assert.equal(connections, 1, 'one fetch for all twelve (single flight)');
    // the failure is remembered: another round fetches nothing
    const again = await Promise.all(Array.from({ length: 4 }, async () => rawPost(md.token_endpoint, withAssertion(c.client_id, await makeAssertion(privateKey, c.client_id)))));
    for (const r of again) assert.equal(r.status, 401);
    await sleep(3500); // the fetch's own timeout
    const late = await rawPost(md.token_endpoint, withAssertion(c.client_id, await makeAssertion(privateKey, c.client_id)));
    assert.equal(late.status, 401);
    assert.equal(connections, 1, 'a failed fetch is not retried at once');
    assert.ok(logEvents('client_jwks_unavailable').some((e) => e.client_id === c.client_id), 'the failed fetch is logged');
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hang.close(r));
  }
});

test('a JWK set is fetched only for an assertion whose claims pass; strict aud, exp, iat, nbf, jti', T, async () => {
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  let fetches = 0;
  const keys = await startTestServer((req, body, res) => {
    fetches += 1;
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store'); // still kept for the minimum (60 s)
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  try {
    const c = await stack.registerClient({
      name: 'strict pkjwt', redirectUris: [RP], scope: 'openid', authMethod: 'private_key_jwt',
      jwksUri: `${keys.url}/jwks`, grantTypes: ['authorization_code', 'client_credentials'],
    });
    const now = Math.floor(Date.now() / 1000);
    const other = 'another-client-id';
    const bad = {
      'aud array with the issuer': await makeAssertion(privateKey, c.client_id, { aud: [stack.issuer] }),
      'aud array with another audience': await makeAssertion(privateKey, c.client_id, { aud: [stack.issuer, 'https://rp.example'] }),
      'aud the token endpoint': await makeAssertion(privateKey, c.client_id, { aud: md.token_endpoint }),
      'iss not the client': await makeAssertion(privateKey, c.client_id, { iss: other }),
      'expired': await makeAssertion(privateKey, c.client_id, { iat: now - 120, exp: now - 60 }),
      'no exp': await makeAssertion(privateKey, c.client_id, { exp: undefined }),
      'lives too long': await makeAssertion(privateKey, c.client_id, { exp: now + 3600 }),
      'iat in the future': await makeAssertion(privateKey, c.client_id, { iat: now + 600, exp: now + 700 }),
      'nbf in the future': await makeAssertion(privateKey, c.client_id, { nbf: now + 200 }),
      'exp not a number': await makeAssertion(privateKey, c.client_id, { exp: String(now + 60) }),
      'no jti': await makeAssertion(privateKey, c.client_id, { jti: undefined }),
      'not a JWS': 'a.b',
      'oversized': `${'a'.repeat(9000)}.b.c`,
    };
    for (const [what, a] of Object.entries(bad)) {
      const r = await rawPost(md.token_endpoint, withAssertion(c.client_id, a));
      assert.equal(r.status, 401, `${what}: ${r.text}`);
      assert.equal(r.json?.error, 'invalid_client', what);
    }
    assert.equal(fetches, 0, 'no refused assertion made issod fetch the JWK set');

    const good = await makeAssertion(privateKey, c.client_id, { nbf: now - 5 });
    const ok = await rawPost(md.token_endpoint, withAssertion(c.client_id, good));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(fetches, 1);
    const replay = await rawPost(md.token_endpoint, withAssertion(c.client_id, good));
    assert.equal(replay.status, 401, 'one use per jti');
    const ok2 = await rawPost(md.token_endpoint, withAssertion(c.client_id, await makeAssertion(privateKey, c.client_id)));
    assert.equal(ok2.status, 200, ok2.text);
    assert.equal(fetches, 1, 'the set is cached (at least 60 s)');

    const refused = logEvents('client_assertion_refused').filter((e) => e.client_id === c.client_id);
    assert.ok(refused.some((e) => /aud/.test(e.reason)), 'refused aud logged with its reason');
    assert.ok(refused.some((e) => /replayed/.test(e.reason)), 'replay logged');
    const auth = logEvents('client_auth_refused').filter((e) => e.client_id === c.client_id);
    assert.ok(auth.length >= Object.keys(bad).length && auth.every((e) => e.method === 'private_key_jwt' && e.reason && e.address));
    const log = (stack.previousIssodStderr ?? '') + stack.issod.stderr;
    assert.ok(!log.includes(good.split('.')[2]), 'no assertion in the log');
  } finally {
    await keys.close();
  }
});

// ------------------------------------------------------------ grants

test('client_credentials only for clients registered for it, scopes within the approved ones', T, async () => {
  const plain = await stack.registerClient({ name: 'code only', redirectUris: [RP], scope: 'openid profile' });
  assert.deepEqual(plain.grant_types, ['authorization_code', 'refresh_token'], 'the default registration');
  const r1 = await rawPost(md.token_endpoint, { grant_type: 'client_credentials' }, basic(plain));
  assert.equal(r1.status, 400);
  assert.equal(r1.json?.error, 'unauthorized_client');

  const svc = await stack.registerClient({
    name: 'machine', redirectUris: [RP], scope: 'openid', grantTypes: ['client_credentials'],
  });
  assert.deepEqual(svc.grant_types, ['client_credentials']);
  const shown = await stack.issoctl(['client', 'show', svc.client_id]);
  assert.deepEqual(shown.grant_types, ['client_credentials'], 'client show prints the grant types');
  const listed = await stack.issoctl(['client', 'list']);
  assert.deepEqual(listed.find((x) => x.client_id === svc.client_id)?.grant_types, ['client_credentials']);

  const admin = await rawPost(md.token_endpoint, { grant_type: 'client_credentials', scope: 'admin write:everything' }, basic(svc));
  assert.equal(admin.status, 400, admin.text);
  assert.equal(admin.json?.error, 'invalid_scope');
  const personal = await rawPost(md.token_endpoint, { grant_type: 'client_credentials', scope: 'openid' }, basic(svc));
  assert.equal(personal.json?.error, 'invalid_scope');
  const ok = await rawPost(md.token_endpoint, { grant_type: 'client_credentials' }, basic(svc));
  assert.equal(ok.status, 200, ok.text);
  assert.equal(ok.json.scope, '');
  assert.equal(ok.json.refresh_token, undefined);

  // not registered for the code flow: /authorize says so to the client
  const cfg = await configFor(svc);
  const agent = new HttpAgent();
  const url = client.buildAuthorizationUrl(cfg, { redirect_uri: RP, scope: 'openid', state: 'st', code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256' });
  const r = await agent.followUntil(url, isAt(RP));
  assert.ok(r.stopped, 'an error redirect');
  assert.equal(redirectParams(r.url).get('error'), 'unauthorized_client');
  // and a refresh_token grant neither
  const rt = await rawPost(md.token_endpoint, { grant_type: 'refresh_token', refresh_token: 'x'.repeat(43) }, basic(svc));
  assert.equal(rt.json?.error, 'unauthorized_client');

  const refused = logEvents('grant_refused');
  assert.ok(refused.some((e) => e.client_id === svc.client_id && e.error === 'invalid_scope' && e.grant_type === 'client_credentials'));
  assert.ok(refused.some((e) => e.client_id === plain.client_id && e.error === 'unauthorized_client'));

  // issoctl refuses unknown or inconsistent grant types
  await assert.rejects(stack.registerClient({ name: 'x', redirectUris: [RP], grantTypes: ['password'] }));
  await assert.rejects(stack.registerClient({ name: 'x', redirectUris: [RP], grantTypes: ['refresh_token'] }));
  await assert.rejects(stack.registerClient({ name: 'x', redirectUris: [RP], public: true, grantTypes: ['authorization_code', 'client_credentials'] }));
});

test('a client registered without refresh_token gets no refresh token', T, async () => {
  const c = await stack.registerClient({ name: 'no refresh', redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code'] });
  const { tokens } = await codeFlow(await configFor(c), new HttpAgent());
  assert.ok(tokens.access_token && tokens.id_token);
  assert.equal(tokens.refresh_token, undefined);
});

// ------------------------------------------------------------ refresh tokens and the session

test('without offline_access a refresh token dies at RP-initiated logout; with it (and consent) it lives on', T, async () => {
  const bye = 'http://127.0.0.1:9/bye';
  const c = await stack.registerClient({
    name: '離線測試機關', redirectUris: [RP], scope: 'openid profile offline_access', postLogoutRedirectUri: bye,
  });
  const cfg = await configFor(c);

  // 1. no offline_access: bound to the session
  const agent = new HttpAgent();
  const short = await codeFlow(cfg, agent, { scope: 'openid profile' });
  assert.ok(short.tokens.refresh_token);
  assert.ok(!short.consentText.includes(MSG['consent.offline']), 'no offline notice without offline_access');
  const rotated = await client.refreshTokenGrant(cfg, short.tokens.refresh_token);
  assert.ok(rotated.refresh_token, 'refresh works while the session lives');
  const end = client.buildEndSessionUrl(cfg, { id_token_hint: short.tokens.id_token, post_logout_redirect_uri: bye });
  const out = await agent.logoutViaPages(end, { postLogoutRedirectUri: bye });
  assert.ok(out.redirect, 'logged out');
  assert.equal(await oauthError(client.refreshTokenGrant(cfg, rotated.refresh_token)), 'invalid_grant', 'refresh after logout');
  assert.equal((await client.tokenIntrospection(cfg, rotated.refresh_token)).active, false, 'introspection: inactive');

  // 2. offline_access without prompt=consent is ignored (OIDC Core §11)
  const agent2 = new HttpAgent();
  const ignored = await codeFlow(cfg, agent2, { scope: 'openid offline_access' });
  assert.ok(!String(ignored.tokens.scope).split(' ').includes('offline_access'), `granted ${ignored.tokens.scope}`);
  await agent2.logoutViaPages(stack.url('/logout'));
  assert.equal(await oauthError(client.refreshTokenGrant(cfg, ignored.tokens.refresh_token)), 'invalid_grant');

  // 3. offline_access with prompt=consent: shown on the consent page, survives logout
  const agent3 = new HttpAgent();
  const long = await codeFlow(cfg, agent3, { scope: 'openid profile offline_access', extra: { prompt: 'consent' } });
  assert.ok(String(long.tokens.scope).split(' ').includes('offline_access'), `granted ${long.tokens.scope}`);
  assert.ok(long.consentText, 'prompt=consent shows the consent page');
  assert.ok(long.consentText.includes(MSG['consent.offline']), 'the consent page names offline access');
  await agent3.logoutViaPages(client.buildEndSessionUrl(cfg, { id_token_hint: long.tokens.id_token, post_logout_redirect_uri: bye }), { postLogoutRedirectUri: bye });
  const after = await client.refreshTokenGrant(cfg, long.tokens.refresh_token);
  assert.ok(after.access_token && after.refresh_token, 'the offline refresh token still works after logout');

  // 4. a client not approved for offline_access never gets it
  const other = await stack.registerClient({ name: 'not offline', redirectUris: [RP], scope: 'openid' });
  const cfgOther = await configFor(other);
  const agent4 = new HttpAgent();
  const no = await codeFlow(cfgOther, agent4, { scope: 'openid offline_access', extra: { prompt: 'consent' } });
  assert.ok(!String(no.tokens.scope).includes('offline_access'));
  await agent4.logoutViaPages(stack.url('/logout'));
  assert.equal(await oauthError(client.refreshTokenGrant(cfgOther, no.tokens.refresh_token)), 'invalid_grant');
});

test("another person's login on the browser ends the first person's session-bound refresh token", T, async () => {
  const c = await stack.registerClient({ name: 'replaced session', redirectUris: [RP], scope: 'openid' });
  const cfg = await configFor(c);
  const agent = new HttpAgent();
  const first = await codeFlow(cfg, agent);
  const second = await stack.addUser({ account: 'strict.second', password: 'Tp-Second-User-14', phone: '0912000333' });
  const saved = user;
  user = second;
  try {
    await codeFlow(cfg, agent, { extra: { prompt: 'login' } });
  } finally {
    user = saved;
  }
  assert.equal(await oauthError(client.refreshTokenGrant(cfg, first.tokens.refresh_token)), 'invalid_grant');
});

test('a session-bound refresh token ends when the session expires', { timeout: limit(30_000) }, async () => {
  const short = await startStack({ label: 'session-ttl', env: { ISSO_OIDC_SESSION_TTL: '2' } });
  const saved = { stack, md };
  try {
    stack = short;
    md = await short.metadata();
    await short.addUser({ account: user.account, password: user.password, phone: '0912345678' });
    const c = await short.registerClient({ name: 'ttl', redirectUris: [RP], scope: 'openid' });
    const cfg = await configFor(c);
    const { tokens } = await codeFlow(cfg, new HttpAgent());
    assert.ok(tokens.refresh_token);
    await sleep(2500);
    assert.equal(await oauthError(client.refreshTokenGrant(cfg, tokens.refresh_token)), 'invalid_grant', 'refresh after the session expired');
  } finally {
    ({ stack, md } = saved);
    await short.stop();
  }
});

// ------------------------------------------------------------ back-channel logout

async function loginAndLogout(c) {
  const cfg = await configFor(c);
  const agent = new HttpAgent();
  const { tokens } = await codeFlow(cfg, agent);
  const started = Date.now();
  const out = await agent.logoutViaPages(stack.url('/logout'));
  assert.ok(out.res.status < 400, `logout: ${out.res.status}`);
  return { claims: tokens.claims(), ms: Date.now() - started };
}

test('back-channel logout: a receiver that fails first gets the notice on a retry', T, async () => {
  const got = [];
  const bc = await startTestServer((req, body, res) => {
    got.push(body.toString('utf8'));
    res.statusCode = got.length === 1 ? 503 : 200;
    res.end();
  });
  try {
    const c = await stack.registerClient({ name: 'flaky rp', redirectUris: [RP], scope: 'openid', backchannelLogoutUri: `${bc.url}/bc` });
    const { claims } = await loginAndLogout(c);
    await waitFor(() => got.length >= 2, limit(8000), 'a retry after the failure');
    const p1 = await verifyLogoutToken(got[0], c.client_id);
    const p2 = await verifyLogoutToken(got[1], c.client_id);
    assert.equal(p2.sid, claims.sid);
    assert.equal(p2.jti, p1.jti, 'a retry names the same event');
    await sleep(1500);
    assert.equal(got.length, 2, 'delivered once it succeeded');
    assert.ok(logEvents('backchannel_logout_failed').some((e) => e.client_id === c.client_id));
    assert.ok(logEvents('backchannel_logout_sent').some((e) => e.client_id === c.client_id && e.attempts === '2'));
  } finally {
    await bc.close();
  }
});

test('back-channel logout: logout answers at once while the receiver hangs', T, async () => {
  const sockets = new Set();
  let requests = 0;
  const hang = net.createServer((s) => { sockets.add(s); s.on('data', () => { requests += 1; }); s.on('error', () => {}); });
  await new Promise((r) => hang.listen(0, '127.0.0.1', r));
  try {
    const c = await stack.registerClient({
      name: 'hanging rp', redirectUris: [RP], scope: 'openid', backchannelLogoutUri: `http://127.0.0.1:${hang.address().port}/bc`,
    });
    const { ms } = await loginAndLogout(c);
    assert.ok(ms < 1000, `logout took ${ms} ms`);
    await waitFor(() => requests >= 1, limit(5000), 'the notice was sent (to a receiver that never answers)');
    const t = await timedFreshGet(`${stack.issuer}/.well-known/openid-configuration`);
    assert.ok(t < 100, `discovery ${t} ms while a delivery hangs`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => hang.close(r));
  }
});

test('back-channel logout: a notice queued while the receiver is down is delivered after issod restarts', { timeout: limit(40_000) }, async () => {
  const probe = await startTestServer(() => {});
  const port = probe.port;
  await probe.close(); // nothing listens there now
  const c = await stack.registerClient({ name: 'down rp', redirectUris: [RP], scope: 'openid', backchannelLogoutUri: `http://127.0.0.1:${port}/bc` });
  const { claims } = await loginAndLogout(c);
  await waitFor(() => logEvents('backchannel_logout_failed').some((e) => e.client_id === c.client_id), limit(5000), 'a failed attempt');
  await stack.restartIssod();
  const got = [];
  const rp = await listenOn(port, (req, body, res) => { got.push(body); res.end(); });
  try {
    await waitFor(() => got.length >= 1, limit(15_000), 'delivery after the restart');
    const payload = await verifyLogoutToken(got[0], c.client_id);
    assert.equal(payload.sid, claims.sid);
    assert.equal(payload.sub, claims.sub);
  } finally {
    await rp.close();
  }
});

test('issod is still healthy and stops cleanly on SIGTERM', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
