// The existing iSSO and TaipeiPass API (docs/legacy-api.md), replayed with
// plain fetch exactly as agencies' old code calls it: camel-case
// redirectUri, legacy scope names with spaces, the token call with HTTP
// Basic and no redirect_uri (/isso) or client_id and client_secret in the
// body (/tpcd), and the member data call with its envelope. The login is
// walked through the real pages with HttpAgent.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  startStack, HttpAgent, redirectParams, limit, sleep, sameEndpoint,
} from './lib/harness.mjs';
import { NO_BROWSER, launchBrowser, newPage, axeCheck } from './lib/browser.mjs';

const RP = 'http://127.0.0.1:9/legacy-cb'; // never contacted
const LEGACY_SCOPE = 'uuid account member_type verify_level formatted_name real_name email phone_no id_no addresses resident_address';
const ALL_SCOPES = 'openid uuid profile id_number phone email birthdate address';
const ID = 'A123456789';
const ADDRESS = '臺北市信義區市府路1號';
const T = { timeout: limit(20_000) };

let stack;
let gold; // gold member with every field
let legacyA; // registered for the legacy API, every scope
let legacyB; // registered for the legacy API, second agency
let narrow; // legacy API, approved for uuid only
let plain; // an ordinary OIDC client, not registered for the legacy API

async function addLegacyClient(name, scope, extra = []) {
  const added = await stack.issoctl(['client', 'add', '--name', name, '--redirect-uri', RP, '--scope', scope, '--purpose', '舊版介接測試', '--legacy-api', ...extra]);
  await stack.issoctl(['client', 'approve', added.client_id]);
  return added;
}

function basic(c) {
  return `Basic ${Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64')}`;
}

/** GET {base}/isso/oauth2/authorize as old agency code builds it. */
function legacyAuthorizeUrl(c, { path = '/isso/oauth2/authorize', scope = LEGACY_SCOPE, state = 'st-123' } = {}) {
  return stack.url(`${path}?response_type=code&client_id=${encodeURIComponent(c.client_id)}&redirectUri=${encodeURIComponent(RP)}&scope=${encodeURIComponent(scope)}&state=${state}`);
}

/** Logs in through the pages; returns the code sent to the redirectUri. */
async function legacyCode(c, agent, who, opts = {}) {
  const cb = await agent.loginViaPages({ authorizeUrl: legacyAuthorizeUrl(c, opts), account: who?.account, password: who?.password });
  assert.ok(cb.startsWith(`${RP}?`), `expected the redirectUri, got ${cb}`);
  const p = redirectParams(cb);
  assert.equal(p.get('state'), opts.state ?? 'st-123');
  assert.ok(p.get('code'), `no code in ${cb}`);
  // Agencies pick the token call by the code's length: 6 for TaipeiPass.
  if ((opts.path ?? '').startsWith('/tpcd/')) assert.match(p.get('code'), /^[A-Za-z0-9]{6}$/);
  else assert.ok(p.get('code').length > 6, 'iSSO codes are longer than TaipeiPass ones');
  return p.get('code');
}

/** POST /isso/oauth2/token: Basic auth, grant_type and code only. */
async function issoToken(c, body, { auth = basic(c) } = {}) {
  const res = await fetch(stack.url('/isso/oauth2/token'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(auth ? { Authorization: auth } : {}) },
    body,
  });
  return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, json: await res.json() };
}

/** POST /tpcd/oauth/token: client_id and client_secret in the body. */
async function tpcdToken(c, code, { secret = c.client_secret } = {}) {
  const body = `grant_type=authorization_code&client_id=${c.client_id}&client_secret=${secret}&code=${code}`;
  const res = await fetch(stack.url('/tpcd/oauth/token'), {
    method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body,
  });
  return { status: res.status, json: await res.json() };
}

async function userMy(token, { header } = {}) {
  const headers = header !== undefined ? header : { Authorization: `Bearer ${token}` };
  const res = await fetch(stack.url('/tpcd/api/v1.0.9/user/my'), { headers });
  return { status: res.status, type: res.headers.get('content-type') ?? '', headers: res.headers, json: await res.json() };
}

function assertOAuthError(r, status, error) {
  assert.equal(r.status, status, JSON.stringify(r.json));
  assert.equal(r.json.error, error, JSON.stringify(r.json));
  assert.equal(typeof r.json.error_description, 'string');
}

before(async () => {
  stack = await startStack({ label: 'legacy-api' });
  gold = await stack.issoctl(['user', 'add', '--account', 'legacy.gold', '--password', 'Tp-Correct-Horse-42',
    '--phone', '0912345678', '--email', 'gold@example.tw', '--name', '王小明', '--id-number', ID,
    '--birthdate', '1990-01-31', '--address', ADDRESS, '--gold']);
  gold = { ...gold, account: 'legacy.gold', password: 'Tp-Correct-Horse-42' };
  legacyA = await addLegacyClient('臺北市舊版介接機關 A', ALL_SCOPES);
  legacyB = await addLegacyClient('臺北市舊版介接機關 B', ALL_SCOPES);
  narrow = await addLegacyClient('臺北市舊版介接機關 C', 'openid uuid');
  plain = await stack.registerClient({ name: '臺北市新版機關', redirectUris: [RP], scope: ALL_SCOPES });
}, { timeout: limit(30_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

test('issoctl registers a client for the legacy API only with a secret', T, async () => {
  assert.equal(legacyA.settings.legacy_api, true);
  assert.equal(plain.settings?.legacy_api, undefined);
  const r = await stack.issoctl(['client', 'add', '--name', 'spa', '--redirect-uri', RP, '--scope', 'openid', '--public', '--legacy-api'], { allowFailure: true });
  assert.ok(r.failed);
  assert.match(r.stdout + r.stderr, /legacy-api/);
  // An existing client is registered for it, and withdrawn, with client legacy-api.
  const later = await stack.registerClient({ name: '既有機關', redirectUris: [RP], scope: 'openid uuid' });
  assert.equal((await stack.issoctl(['client', 'legacy-api', later.client_id, 'on'])).settings.legacy_api, true);
  assert.equal((await stack.issoctl(['client', 'show', later.client_id])).settings.legacy_api, true);
  const code = 'x'.repeat(43);
  assertOAuthError(await issoToken(later, `grant_type=authorization_code&code=${code}`), 400, 'invalid_grant');
  assert.equal((await stack.issoctl(['client', 'legacy-api', later.client_id, 'off'])).settings.legacy_api, undefined);
  assertOAuthError(await issoToken(later, `grant_type=authorization_code&code=${code}`), 400, 'unauthorized_client');
  const spa = await stack.registerClient({ name: 'spa2', redirectUris: [RP], scope: 'openid', public: true });
  assert.ok((await stack.issoctl(['client', 'legacy-api', spa.client_id, 'on'], { allowFailure: true })).failed);
});

test('/isso: authorize with redirectUri and legacy scopes, Basic token call without redirect_uri, member data', T, async () => {
  const agent = new HttpAgent();
  const code = await legacyCode(legacyA, agent, gold);
  assert.ok(agent.lastFlow.some((s) => s.step === 'consent'), 'the citizen saw the consent page');
  const tok = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  assert.match(tok.type, /^application\/json/);
  assert.equal(tok.json.token_type, 'bearer');
  assert.equal(typeof tok.json.access_token, 'string');
  assert.equal(typeof tok.json.refresh_token, 'string');
  assert.ok(Number.isInteger(tok.json.expires_in) && tok.json.expires_in > 0);
  assert.equal(tok.json.scope, LEGACY_SCOPE);
  assert.equal(tok.json.id_token, undefined);

  const my = await userMy(tok.json.access_token);
  assert.equal(my.status, 200, JSON.stringify(my.json));
  assert.match(my.type, /^application\/json/);
  assert.equal(my.json.status, 0);
  assert.equal(my.json.version, '1.0.9');
  assert.ok(Number.isInteger(my.json.timestamp) && Math.abs(my.json.timestamp - Date.now()) < 60_000, 'timestamp in ms');
  assert.equal(typeof my.json.name, 'string');
  assert.equal(typeof my.json.reasonPhrase, 'string');
  const d = my.json.data;
  assert.equal(d.id, gold.uuid, 'id is the uuid (系統唯一識別碼), the same for every agency');
  assert.equal(d.account, 'legacy.gold');
  assert.equal(d.username, '王小明');
  assert.equal(d.realName, '王小明');
  assert.equal(d.idNo, ID);
  assert.equal(d.email, 'gold@example.tw');
  assert.equal(d.phoneNo, '0912345678');
  assert.equal(d.memberType, 'personal');
  assert.equal(d.verifyLevel, '1', 'a gold member is verified');
  assert.deepEqual(d.addresses, [ADDRESS]);
  assert.equal(d.residentAddress, ADDRESS);
  assert.equal(d.birthday, null, 'birthday was not asked for');
  assert.equal(d.idNoUnverified, null);

  // The national ID reaches no log line.
  assert.ok(!stack.issod.stderr.includes(ID), 'the national ID is not logged');
});

test('/tpcd: authorize, token with client_id and client_secret in the body, single sign-on', T, async () => {
  const agent = new HttpAgent();
  await legacyCode(legacyB, agent, gold, { scope: `${LEGACY_SCOPE} birthday` }); // logs in and consents for B
  // Single sign-on and the earlier consent: straight back with a code.
  const code = await legacyCode(legacyB, agent, undefined, { path: '/tpcd/oauth/authorize', scope: 'uuid id_no verify_level birthday' });
  assert.ok(!agent.lastFlow.some((s) => s.step === 'login' || s.step === 'consent'), JSON.stringify(agent.lastFlow));
  const tok = await tpcdToken(legacyB, code);
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  assert.equal(tok.json.scope, 'uuid id_no verify_level birthday');
  const my = await userMy(tok.json.access_token);
  assert.equal(my.status, 200);
  assert.equal(my.json.data.id, gold.uuid);
  assert.equal(my.json.data.idNo, ID);
  assert.equal(my.json.data.birthday, '1990/01/31');
  assert.equal(my.json.data.email, null, 'email was not asked for this time');
  assert.equal(my.json.data.account, null);
  // The short code works once, and only for its client.
  assertOAuthError(await tpcdToken(legacyB, code), 400, 'invalid_grant');
  const other = await legacyCode(legacyB, agent, undefined, { path: '/tpcd/oauth/authorize', scope: 'uuid' });
  assertOAuthError(await tpcdToken(legacyA, other), 400, 'invalid_grant');
  assert.equal((await tpcdToken(legacyB, other)).status, 200, 'another client cannot burn the code');
});

test('the consent page shows the TaipeiPass account that the legacy API will release', T, async () => {
  const agent = new HttpAgent();
  await legacyCode(legacyA, agent, gold); // a single sign-on session
  const d = await addLegacyClient('臺北市舊版介接機關 D', ALL_SCOPES);
  const r = await agent.followUntil(legacyAuthorizeUrl(d), (next) => next.startsWith(RP));
  assert.equal(r.stopped, false);
  assert.equal(r.res.status, 200);
  assert.equal(new URL(r.res.url).pathname, '/consent');
  assert.ok(r.res.text.includes('台北通帳號'), 'the account line is on the page');
  assert.ok(r.res.text.includes('legacy.gold'), 'with the value that will be sent');
  assert.ok(!r.res.text.includes(ID), 'the whole national ID never appears on a page');
});

test('only what the client was approved for is released; the rest is null', T, async () => {
  const agent = new HttpAgent();
  const code = await legacyCode(narrow, agent, gold);
  const tok = await issoToken(narrow, `grant_type=authorization_code&code=${code}`);
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  assert.equal(tok.json.scope, 'uuid member_type verify_level');
  const d = (await userMy(tok.json.access_token)).json.data;
  assert.equal(d.id, gold.uuid);
  assert.equal(d.verifyLevel, '1');
  for (const f of ['account', 'username', 'realName', 'idNo', 'email', 'phoneNo', 'addresses', 'residentAddress']) {
    assert.equal(d[f], null, `${f} must not be released`);
  }
});

/** A telecom login (手機電信驗證) of sim identity p through the legacy
 * authorize, with the phone on mobile data; returns the code. */
async function telecomLegacyCode(c, p) {
  const agent = new HttpAgent();
  const atClient = (next) => next.startsWith(RP);
  const first = await agent.followUntil(legacyAuthorizeUrl(c), atClient);
  const pick = first.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/telecom');
  assert.ok(pick, 'the method page offers telecom');
  const t = new URL(pick.href).searchParams.get('t');
  const formPage = await agent.get(pick.href);
  const form = formPage.forms().find((f) => f.has('id_number') && f.has('carrier'));
  assert.ok(form, 'the telecom form');
  const step2 = (await agent.submit(form, {
    id_number: p.id, phone: p.phone, birthdate: p.birthdate, carrier: p.carrier, agree: '1',
  }, null, atClient)).res;
  const codeForm = step2.forms().find((f) => f.has('code'));
  assert.ok(codeForm, `the SMS code page: ${step2.status}`);
  const sms = await stack.readLastSms(p.phone);
  const verify = codeForm.buttons.find((b) => b.value === 'verify');
  const qr = (await agent.submit(codeForm, { code: sms.code }, verify, atClient)).res;
  const open = qr.links().find((l) => l.attrs.id === 'open-here');
  assert.ok(open, `the QR page: ${qr.status}`);
  const u = new URL(open.href);
  u.searchParams.set('network', 'mobile');
  assert.equal((await fetch(u)).status, 200);
  for (let i = 0; ; i++) {
    const st = await agent.get(stack.url(`/login/telecom/status?t=${t}&shown=pending`));
    if (st.json().state === 'done') break;
    assert.ok(i < 30, `telecom status: ${st.text}`);
    await sleep(300);
  }
  const r = await agent.followUntil(stack.url(`/login/telecom/done?t=${t}`), atClient);
  const cf = r.res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
  assert.ok(cf, `the consent page: ${r.res.status}`);
  const allow = cf.buttons.find((b) => b.name === 'decision' && b.value === 'allow');
  const done = await agent.submit(cf, {}, allow, atClient);
  assert.ok(done.stopped);
  return redirectParams(done.url).get('code');
}

test('a telecom login proves the ID: verifyLevel "1"; no TaipeiPass account: only the method\'s fields', T, async () => {
  const lin = { id: 'A113579248', phone: '0933000003', birthdate: '1978-11-23', carrier: 'fet' };
  const code = await telecomLegacyCode(legacyA, lin);
  const tok = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  const d = (await userMy(tok.json.access_token)).json.data;
  assert.equal(d.verifyLevel, '1');
  assert.equal(d.memberType, 'personal');
  assert.equal(d.idNo, lin.id);
  assert.equal(d.phoneNo, lin.phone, 'the number verified in this login');
  assert.equal(d.account, null, 'no TaipeiPass account');
  assert.equal(d.email, null, 'no member data without a TaipeiPass account');
  assert.equal(d.residentAddress, null);
  assert.deepEqual(d.addresses, []);
  assert.ok(!stack.issod.stderr.includes(lin.id), 'the national ID is not logged');
});

test('a member with a resident certificate number is memberType "foreigner"', T, async () => {
  const who = await stack.addUser({ account: 'legacy.maria', phone: '0970000013', idNumber: 'A911223347', name: 'Maria SANTOS' });
  const code = await legacyCode(legacyB, new HttpAgent(), who, { path: '/tpcd/oauth/authorize' });
  const tok = await tpcdToken(legacyB, code);
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  const d = (await userMy(tok.json.access_token)).json.data;
  assert.equal(d.memberType, 'foreigner');
  assert.equal(d.verifyLevel, '0', 'an ordinary member with a password proves no identity');
  assert.equal(d.idNo, 'A911223347');
  assert.ok(!stack.issod.stderr.includes('A911223347'), 'the resident certificate number is not logged');
});

test('an ordinary member logging in with a password is verifyLevel "0"', T, async () => {
  const who = await stack.addUser({ account: 'legacy.ordinary', phone: '0922333444' });
  const agent = new HttpAgent();
  const code = await legacyCode(legacyA, agent, who);
  const tok = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  const d = (await userMy(tok.json.access_token)).json.data;
  assert.equal(d.verifyLevel, '0');
  assert.equal(d.memberType, 'personal');
  assert.equal(d.idNo, null, 'no ID on record: null');
  assert.equal(d.account, 'legacy.ordinary');
});

test('refresh at the legacy token call; a reused refresh token is refused', T, async () => {
  const agent = new HttpAgent();
  const code = await legacyCode(legacyA, agent, gold);
  const first = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  const r = await issoToken(legacyA, `grant_type=refresh_token&refresh_token=${first.json.refresh_token}`);
  assert.equal(r.status, 200, JSON.stringify(r.json));
  assert.equal(r.json.scope, LEGACY_SCOPE);
  assert.equal((await userMy(r.json.access_token)).json.data.id, gold.uuid);
  const again = await issoToken(legacyA, `grant_type=refresh_token&refresh_token=${first.json.refresh_token}`);
  assertOAuthError(again, 400, 'invalid_grant');
  // Reuse means a copy is out there: the whole grant goes.
  assertOAuthError(await userMy(r.json.access_token), 401, 'invalid_token');
});

test('a client not registered for the legacy API is refused at authorize and at the token call', T, async () => {
  const agent = new HttpAgent();
  const cb = await agent.loginViaPages({ authorizeUrl: legacyAuthorizeUrl(plain), account: gold.account, password: gold.password });
  const p = redirectParams(cb);
  assert.ok(cb.startsWith(`${RP}?`));
  assert.equal(p.get('error'), 'unauthorized_client');
  assert.equal(p.get('state'), 'st-123');
  const tok = await issoToken(plain, 'grant_type=authorization_code&code=' + 'x'.repeat(43));
  assertOAuthError(tok, 400, 'unauthorized_client');
});

test('wrong secret, missing or misplaced client authentication: invalid_client in JSON', T, async () => {
  const wrong = await issoToken(legacyA, 'grant_type=authorization_code&code=abc', { auth: basic({ ...legacyA, client_secret: 'not-the-secret' }) });
  assertOAuthError(wrong, 401, 'invalid_client');
  assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic/);
  const unknown = await issoToken(legacyA, 'grant_type=authorization_code&code=abc', { auth: basic({ client_id: 'nobody', client_secret: 'x' }) });
  assert.deepEqual(unknown.json, wrong.json, 'an unknown client answers like a wrong secret');
  assertOAuthError(await issoToken(legacyA, 'grant_type=authorization_code&code=abc', { auth: null }), 401, 'invalid_client');
  assertOAuthError(await issoToken(legacyA, `grant_type=authorization_code&code=abc&client_id=${legacyA.client_id}&client_secret=${legacyA.client_secret}`, { auth: null }), 401, 'invalid_client');
  assertOAuthError(await tpcdToken(legacyA, 'abc', { secret: 'not-the-secret' }), 401, 'invalid_client');
  const res = await fetch(stack.url('/tpcd/oauth/token'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(legacyA) },
    body: 'grant_type=authorization_code&code=abc',
  });
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error, 'invalid_client');
});

test('a code is single-use: the replay is refused and revokes what it issued', T, async () => {
  const agent = new HttpAgent();
  const code = await legacyCode(legacyA, agent, gold);
  const first = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  assert.equal(first.status, 200);
  const replay = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  assertOAuthError(replay, 400, 'invalid_grant');
  const my = await userMy(first.json.access_token);
  assertOAuthError(my, 401, 'invalid_token');
});

test('a code of another client, an OIDC code, and a legacy code at /token are refused', T, async () => {
  const agent = new HttpAgent();
  const code = await legacyCode(legacyA, agent, gold);
  assertOAuthError(await issoToken(legacyB, `grant_type=authorization_code&code=${code}`), 400, 'invalid_grant');
  // the same legacy code at the OpenID Connect token endpoint
  const res = await fetch(stack.url('/token'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(legacyA) },
    body: `grant_type=authorization_code&code=${code}&redirect_uri=${encodeURIComponent(RP)}`,
  });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, 'invalid_grant');
  // An OIDC code of a legacy client: it was bound to PKCE / redirect_uri
  // checks the legacy call does not make.
  const cb = await agent.loginViaPages({
    authorizeUrl: stack.url(`/authorize?response_type=code&client_id=${legacyA.client_id}&redirect_uri=${encodeURIComponent(RP)}&scope=openid%20uuid&state=s1`),
  });
  const oidcCode = redirectParams(cb).get('code');
  assert.ok(oidcCode, cb);
  assertOAuthError(await issoToken(legacyA, `grant_type=authorization_code&code=${oidcCode}`), 400, 'invalid_grant');
});

test('member data: missing, malformed and revoked Bearer tokens get JSON, never a page', T, async () => {
  const none = await userMy(null, { header: {} });
  assert.equal(none.status, 401);
  assert.match(none.type, /^application\/json/);
  assert.equal(none.json.error, 'unauthorized');
  assert.match(none.headers.get('www-authenticate') ?? '', /^Bearer/);
  assertOAuthError(await userMy(null, { header: { Authorization: 'Bearer' } }), 401, 'invalid_token');
  assertOAuthError(await userMy('x'.repeat(43)), 401, 'invalid_token');

  const agent = new HttpAgent();
  const code = await legacyCode(legacyA, agent, gold);
  const tok = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  assert.equal((await userMy(tok.json.access_token)).status, 200);
  const rev = await fetch(stack.url('/revoke'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(legacyA) },
    body: `token=${tok.json.access_token}`,
  });
  assert.equal(rev.status, 200);
  assertOAuthError(await userMy(tok.json.access_token), 401, 'invalid_token');
});

test('bad input on the legacy API paths is answered in the OAuth JSON shape', T, async () => {
  const cases = [
    [stack.url('/tpcd/oauth/token'), { method: 'GET' }, 405],
    [stack.url('/tpcd/api/v1.0.9/user/other'), { method: 'GET' }, 404],
    [stack.url('/tpcd/api/v1.0.9/user/my'), { method: 'POST' }, 405],
    [stack.url('/isso/oauth2/token'), { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{}' }, 400],
    [stack.url('/isso/oauth2/token'), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password' }, 400],
    [stack.url('/tpcd/oauth/token'), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'grant_type=%ZZ' }, 400],
    [stack.url('/isso/oauth2/token'), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'code=a&code=b&grant_type=authorization_code' }, 400],
  ];
  for (const [url, init, status] of cases) {
    const res = await fetch(url, init);
    assert.equal(res.status, status, `${init.method} ${url}`);
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${init.method} ${url}`);
    const j = await res.json();
    assert.equal(typeof j.error, 'string');
  }
});

test('authorize errors go back to the redirectUri in the OAuth shape, with state', T, async () => {
  const agent = new HttpAgent();
  const atClient = (next) => next.startsWith(RP);
  const cases = [
    [legacyAuthorizeUrl(legacyA, { scope: 'openid nothing_known' }), 'invalid_scope'],
    [legacyAuthorizeUrl(narrow, { scope: 'email id_no' }), 'invalid_scope'],
    [legacyAuthorizeUrl(legacyA).replace('response_type=code', 'response_type=token'), 'unsupported_response_type'],
    [`${legacyAuthorizeUrl(legacyA)}&state=again`, 'invalid_request'],
  ];
  for (const [url, error] of cases) {
    const r = await agent.followUntil(url, atClient);
    assert.ok(r.stopped, `${url}: ${r.res?.status}`);
    const p = redirectParams(r.url);
    assert.equal(p.get('error'), error, url);
    assert.equal(p.get('state'), 'st-123');
  }
  // An unregistered redirectUri: a page, never a redirect.
  const bad = legacyAuthorizeUrl(legacyA).replace(encodeURIComponent(RP), encodeURIComponent('https://evil.example/cb'));
  const r = await agent.followUntil(bad, (next) => next.startsWith('https://evil.example'));
  assert.equal(r.stopped, false);
  assert.equal(r.res.status, 400);
});

test('a short /tpcd code is also redeemed at /isso/oauth2/token', T, async () => {
  const agent = new HttpAgent();
  const code = await legacyCode(legacyA, agent, gold, { path: '/tpcd/oauth/authorize' });
  const tok = await issoToken(legacyA, `grant_type=authorization_code&code=${code}`);
  assert.equal(tok.status, 200, JSON.stringify(tok.json));
  assert.equal((await userMy(tok.json.access_token)).json.data.id, gold.uuid);
  // and never at the OpenID Connect token endpoint
  const code2 = await legacyCode(legacyA, agent, gold, { path: '/tpcd/oauth/authorize' });
  const res = await fetch(stack.url('/token'), {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(legacyA) },
    body: `grant_type=authorization_code&code=${code2}`,
  });
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error, 'invalid_grant');
});

test('legacy codes expire with oidc.code_ttl', { timeout: limit(40_000) }, async () => {
  const short = await startStack({ label: 'legacy-api-ttl', env: { ISSO_OIDC_CODE_TTL: '2' } });
  try {
    const who = await short.addUser({ account: 'legacy.ttl' });
    const added = await short.issoctl(['client', 'add', '--name', 'ttl', '--redirect-uri', RP, '--scope', 'openid uuid', '--legacy-api']);
    await short.issoctl(['client', 'approve', added.client_id]);
    const agent = new HttpAgent();
    const url = short.url(`/isso/oauth2/authorize?response_type=code&client_id=${added.client_id}&redirectUri=${encodeURIComponent(RP)}&scope=uuid`);
    const cb = await agent.loginViaPages({ authorizeUrl: url, account: who.account, password: who.password });
    const code = redirectParams(cb).get('code');
    await sleep(3000);
    const res = await fetch(short.url('/isso/oauth2/token'), {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Authorization: basic(added) },
      body: `grant_type=authorization_code&code=${code}`,
    });
    assert.equal(res.status, 400);
    assert.equal((await res.json()).error, 'invalid_grant');
  } finally {
    await short.stop();
  }
});

test('in Chromium on a phone: legacy authorize, login, consent with the account line (axe), the agency redeems the code', { timeout: limit(90_000), skip: NO_BROWSER }, async () => {
  const who = await stack.addUser({ account: 'legacy.browser', phone: '0933444555', name: '林小華', email: 'hua@example.tw' });
  const c = await addLegacyClient('臺北市舊版介接機關 瀏覽器', ALL_SCOPES);
  const browser = await launchBrowser();
  try {
    const { context, page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'zh-TW', isMobile: true, hasTouch: true });
    await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
    await page.goto(legacyAuthorizeUrl(c, { scope: 'uuid account real_name email verify_level' }));
    await page.waitForURL((u) => u.pathname === '/login');
    await page.locator('a[href*="/login/taipeipass"]').first().click();
    await page.waitForURL((u) => u.pathname === '/login/taipeipass');
    await page.locator('[name="account"]').fill(who.account);
    await page.locator('[name="password"]').fill(who.password);
    await page.getByRole('button', { name: '登入', exact: true }).click();
    await page.waitForURL((u) => u.pathname === '/consent');
    const text = await page.locator('body').innerText();
    assert.ok(text.includes('臺北市舊版介接機關 瀏覽器'), 'the consent page names the agency');
    assert.ok(text.includes('台北通帳號') && text.includes('legacy.browser'), 'the account line and its value');
    assert.ok(text.includes('hua@example.tw'), 'the e-mail line and its value');
    await axeCheck(page, 'the consent page of a legacy authorize');
    const [req] = await Promise.all([
      page.waitForRequest((r) => sameEndpoint(r.url(), RP)),
      page.getByRole('button', { name: '同意授權' }).and(page.locator('[value="allow"]')).click(),
    ]);
    const code = new URL(req.url()).searchParams.get('code');
    const tok = await issoToken(c, `grant_type=authorization_code&code=${code}`);
    assert.equal(tok.status, 200, JSON.stringify(tok.json));
    const d = (await userMy(tok.json.access_token)).json.data;
    assert.equal(d.account, 'legacy.browser');
    assert.equal(d.realName, '林小華');
    assert.equal(d.email, 'hua@example.tw');
    assert.equal(d.username, null, 'formatted_name was not asked for');
    await context.close();
  } finally {
    await browser.close();
  }
});

test('issod is still healthy and stops cleanly on SIGTERM', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
