// Identification at the counter (臨櫃): OpenID Connect Client-Initiated
// Backchannel Authentication, poll mode. A counter client registered for
// the CIBA grant asks /bc-authorize for a citizen named by a login_hint
// (account, mobile number or national ID) with a binding message; the
// citizen's TaipeiPass app (`isso-sim phone tpapp ciba-list|ciba-approve|
// ciba-deny`) lists the request with the agency's service name, the
// binding message and the fields, and answers with its device key; the
// counter polls /token (authorization_pending, slow_down, access_denied,
// expired_token) and gets the same subject and fields as an online login.
// A hint that names nobody gets the same answer and simply expires. The
// agency's optional fields are listed as such and the citizen may decline
// them in the signed answer (`ciba-approve --decline FIELD`): the counter
// then gets the rest only, and the consent record says what was declined.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, BUILD_DIR, limit, redirectParams, sleep, decodeJwt,
} from './lib/harness.mjs';
import * as tpapp from './lib/tpapp.mjs';

const CIBA = 'urn:openid:params:grant-type:ciba';
const RP = 'http://127.0.0.1:9/cb';
const SERVICE = '臺北市中山區戶政事務所臨櫃';
const SCOPE = 'openid uuid profile email';
const BINDING = '櫃台3 A12';
const INTERVAL = 5;
const T = { timeout: limit(60_000) };

let stack;
let counter; // a confidential client registered for CIBA (and online logins)
let citizen;
let simState;

function simTpapp(args) {
  return new Promise((resolve) => {
    execFile(path.join(BUILD_DIR, 'isso-sim'), ['phone', 'tpapp', ...args, '--state', simState],
      { timeout: 10_000 }, (err, stdout, stderr) => {
        let out = null;
        try { out = JSON.parse(stdout); } catch { /* usage or connection error */ }
        resolve({ code: err ? err.code : 0, out, stderr });
      });
  });
}

const basic = (c) => `Basic ${Buffer.from(`${encodeURIComponent(c.client_id)}:${encodeURIComponent(c.client_secret ?? '')}`).toString('base64')}`;

async function post(p, c, form) {
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  const body = new URLSearchParams(form);
  if (c.client_secret) headers.authorization = basic(c);
  else body.set('client_id', c.client_id);
  const res = await fetch(stack.url(p), { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
  return { status: res.status, body: await res.json(), headers: res.headers };
}

const bcAuthorize = (c, form) => post('/bc-authorize', c, { scope: SCOPE, binding_message: BINDING, ...form });
const poll = (c, id) => post('/token', c, { grant_type: CIBA, auth_req_id: id });

async function start(hint, extra = {}) {
  const r = await bcAuthorize(counter, { login_hint: hint, ...extra });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

before(async () => {
  stack = await startStack({ label: 'ciba' });
  simState = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-ciba-sim-'));
  counter = await stack.registerClient({ name: SERVICE, redirectUris: [RP], scope: SCOPE, grantTypes: ['authorization_code', CIBA] });
  citizen = await stack.addUser({
    account: 'chen.counter', password: 'Tp-Counter-Horse-42', phone: '0922333444', name: '陳臨櫃',
    email: 'chen.counter@example.tw', idNumber: 'A123456789',
  });
  const e = await simTpapp(['enrol', '--account', citizen.account, '--password', citizen.password, '--issod', stack.issuer]);
  assert.equal(e.code, 0, `enrol: ${e.stderr} ${JSON.stringify(e.out)}`);
});

after(async () => {
  await stack?.stop();
  if (simState) fs.rmSync(simState, { recursive: true, force: true });
});

test('discovery advertises CIBA poll mode; issoctl registers only confidential counters', T, async () => {
  const md = await (await fetch(stack.url('/.well-known/openid-configuration'))).json();
  assert.equal(md.backchannel_authentication_endpoint, `${stack.issuer}/bc-authorize`);
  assert.deepEqual(md.backchannel_token_delivery_modes_supported, ['poll']);
  assert.equal(md.backchannel_user_code_parameter_supported, false);
  assert.ok(md.grant_types_supported.includes(CIBA));
  assert.equal(counter.settings?.backchannel_token_delivery_mode, 'poll', JSON.stringify(counter));
  await assert.rejects(stack.registerClient({ name: 'public counter', public: true, grantTypes: ['authorization_code', CIBA] }),
    /public clients cannot use urn:openid:params:grant-type:ciba/);
});

test('a counter identifies a citizen by account: pending, slow_down, the app approves, tokens once, same sub and fields as online', T, async () => {
  const r = await start(citizen.account);
  assert.match(r.auth_req_id, /^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);
  assert.equal(r.interval, INTERVAL);
  assert.equal(r.expires_in, 120);

  const p1 = await poll(counter, r.auth_req_id);
  assert.equal(p1.status, 400);
  assert.equal(p1.body.error, 'authorization_pending');
  const p2 = await poll(counter, r.auth_req_id);
  assert.equal(p2.body.error, 'slow_down', 'a poll within the interval');

  // the app lists the request with the agency, the binding message and the fields
  const list = await simTpapp(['ciba-list', '--account', citizen.account, '--issod', stack.issuer]);
  assert.equal(list.code, 0, `${list.stderr} ${JSON.stringify(list.out)}`);
  assert.equal(list.out.requests.length, 1, JSON.stringify(list.out));
  const entry = list.out.requests[0];
  assert.equal(entry.service, SERVICE);
  assert.equal(entry.binding_message, BINDING);
  assert.deepEqual(entry.fields, ['uuid', 'profile', 'email']);
  assert.deepEqual(entry.optional, [], 'no optional fields for this agency');
  assert.equal(entry.acr, 'urn:isso:loa:low');
  assert.ok(!JSON.stringify(entry).includes(r.auth_req_id.split('.')[1]), 'the app never sees the counter\'s secret');

  const ok = await simTpapp(['ciba-approve', '--account', citizen.account, '--issod', stack.issuer]);
  assert.equal(ok.code, 0, `${ok.stderr} ${JSON.stringify(ok.out)}`);
  assert.equal(ok.out.result, 'approved');
  assert.equal(ok.out.binding_message, BINDING);
  const again = await simTpapp(['ciba-approve', entry.request, '--account', citizen.account, '--issod', stack.issuer]);
  assert.equal(again.code, 1, 'answered requests leave the list');

  await sleep((INTERVAL + 0.5) * 1000);
  const tok = await poll(counter, r.auth_req_id);
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  assert.equal(tok.headers.get('cache-control'), 'no-store');
  const idt = decodeJwt(tok.body.id_token).payload;
  assert.equal(idt.iss, stack.issuer);
  assert.equal(idt.aud, counter.client_id);
  assert.equal(idt.acr, 'urn:isso:loa:low');
  assert.deepEqual(idt.amr, ['swk']);
  assert.ok(Math.abs(idt.auth_time - Date.now() / 1000) < 30);
  assert.equal(idt.nonce, undefined);
  const ui = await (await fetch(stack.url('/userinfo'), { headers: { authorization: `Bearer ${tok.body.access_token}` } })).json();
  assert.equal(ui.sub, idt.sub);
  assert.equal(ui.uuid, citizen.uuid);
  assert.equal(ui.name, citizen.name);
  assert.equal(ui.email, citizen.email);
  assert.equal(ui.phone_number, undefined, 'phone was not asked for');

  // single use
  await sleep((INTERVAL + 0.5) * 1000);
  const twice = await poll(counter, r.auth_req_id);
  assert.equal(twice.body.error, 'invalid_grant');

  // the same citizen online with the same client: the same subject
  const cfg = await client.discovery(new URL(stack.issuer), counter.client_id, {},
    client.ClientSecretBasic(counter.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: SCOPE, state: 's1', nonce: 'n1',
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const cb = await new HttpAgent().loginViaPages({ authorizeUrl: url, account: citizen.account, password: citizen.password, consent: true });
  assert.ok(redirectParams(cb).get('code'), cb);
  const online = await client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier: verifier, expectedState: 's1', expectedNonce: 'n1' });
  assert.equal(online.claims().sub, idt.sub, 'the counter gets the subject of an online login');
  const oui = await (await fetch(stack.url('/userinfo'), { headers: { authorization: `Bearer ${online.access_token}` } })).json();
  assert.equal(oui.uuid, ui.uuid);

  // the approval was recorded as a consent and a release
  const audit = await stack.issoctl(['audit', 'export']);
  const releases = audit.filter((e) => e.event === 'release' && e.data.uuid === citizen.uuid && e.data.client_id === counter.client_id);
  assert.equal(releases.length, 2, 'the counter\'s release and the online one');
  assert.deepEqual(releases[0].data.fields.sort(), ['email', 'email_verified', 'member_level', 'name', 'uuid'].sort());
  assert.equal(releases[0].data.acr, 'urn:isso:loa:low');
});

test('an approval whose tokens cannot be stored is not lost: 503, then the next poll gets them', T, async () => {
  const r = await start(citizen.account);
  const ok = await simTpapp(['ciba-approve', '--account', citizen.account, '--issod', stack.issuer]);
  assert.equal(ok.code, 0, `${ok.stderr} ${JSON.stringify(ok.out)}`);
  // the store refuses new token rows for a moment, after the approval was taken
  const db = path.join(stack.tmp, 'isso.db');
  const sql = (text) => execFileSync('sqlite3', ['-cmd', '.timeout 10000', db, text], { encoding: 'utf8' });
  sql("CREATE TRIGGER ciba_test_no_tokens BEFORE INSERT ON tokens BEGIN SELECT RAISE(ABORT, 'refused for the test'); END;");
  try {
    const failed = await poll(counter, r.auth_req_id);
    assert.equal(failed.status, 503, JSON.stringify(failed.body));
    assert.equal(failed.body.error, 'temporarily_unavailable');
  } finally {
    sql('DROP TRIGGER ciba_test_no_tokens;');
  }
  await sleep((INTERVAL + 0.5) * 1000);
  const tok = await poll(counter, r.auth_req_id);
  assert.equal(tok.status, 200, `the approval is still there: ${JSON.stringify(tok.body)}`);
  const ui = await (await fetch(stack.url('/userinfo'), { headers: { authorization: `Bearer ${tok.body.access_token}` } })).json();
  assert.equal(ui.uuid, citizen.uuid);
  await sleep((INTERVAL + 0.5) * 1000);
  assert.equal((await poll(counter, r.auth_req_id)).body.error, 'invalid_grant', 'and it is used once');
});

test('the citizen declines (national ID hint): access_denied', T, async () => {
  const r = await start('a123456789');
  const no = await simTpapp(['ciba-deny', '--account', citizen.account, '--issod', stack.issuer]);
  assert.equal(no.code, 0, `${no.stderr} ${JSON.stringify(no.out)}`);
  assert.equal(no.out.result, 'denied');
  const p = await poll(counter, r.auth_req_id);
  assert.equal(p.status, 400);
  assert.equal(p.body.error, 'access_denied');
});

/** The citizen's device key, as the sim's app keeps it. */
function citizenDevice() {
  const key = JSON.parse(fs.readdirSync(simState).filter((f) => f.startsWith('tpapp-')).map((f) => fs.readFileSync(path.join(simState, f), 'utf8'))[0]);
  assert.equal(key.account, citizen.account);
  return { device: key.device, privateKey: crypto.createPrivateKey({ key: JSON.parse(key.jwk), format: 'jwk' }) };
}

/** An answer to entry signed by d over payload (what the body says, and
 * payload's changes), the body with body's changes. */
async function signedAnswer(d, entry, decision, { payload = {}, body = {} } = {}) {
  const p = { request: entry.request, device: d.device, decision, nonce: entry.nonce, iat: Math.floor(Date.now() / 1000), ...payload };
  const b = { request: entry.request, device: d.device, decision, ...body, signature: tpapp.signJws(d.privateKey, p) };
  const res = await fetch(stack.url('/app/v1/ciba/answer'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(b) });
  return { status: res.status, body: await res.json() };
}

async function simHttp(what, body) {
  const res = await fetch(`${stack.simUrl}/phone/tpapp/${what}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

test('a mobile-number hint reaches the app too (the sim\'s phone HTTP API)', T, async () => {
  const r = await start('0922-333-444');
  const who = { issod: stack.issuer, account: citizen.account, password: citizen.password };
  const list = await simHttp('ciba-list', who);
  assert.equal(list.status, 200, JSON.stringify(list.body));
  assert.equal(list.body.requests.length, 1, JSON.stringify(list.body));
  assert.equal(list.body.requests[0].service, SERVICE);
  const wrong = await simHttp('ciba-deny', { ...who, request: 'A'.repeat(22) });
  assert.equal(wrong.status, 404);
  assert.equal(wrong.body.error, 'no_such_request');
  const no = await simHttp('ciba-deny', { ...who, request: list.body.requests[0].request });
  assert.equal(no.status, 200, JSON.stringify(no.body));
  assert.equal(no.body.result, 'denied');
  assert.equal((await poll(counter, r.auth_req_id)).body.error, 'access_denied');
});

test('a hint that names nobody: the same answer, never approvable, then expired_token; the logs do not tell', T, async () => {
  const logs = () => (stack.issod.stderr + stack.issod.stdout);
  const before1 = logs().length;
  const known = await start(citizen.account, { requested_expiry: '2' });
  const knownLog = logs().slice(before1);
  const before2 = logs().length;
  const unknown = await start('nobody.at.all', { requested_expiry: '2' });
  const unknownLog = logs().slice(before2);
  assert.deepEqual(Object.keys(unknown).sort(), Object.keys(known).sort());
  assert.equal(unknown.expires_in, 2);
  assert.equal(unknown.interval, known.interval);
  const events = (s) => s.split('\n').filter(Boolean).map((l) => { try { return JSON.parse(l).event ?? JSON.parse(l).msg; } catch { return l.replace(/[0-9]/g, ''); } });
  assert.ok(knownLog.includes('ciba_requested'), knownLog);
  assert.deepEqual(events(unknownLog), events(knownLog), 'the same log lines either way');
  assert.equal((await poll(counter, unknown.auth_req_id)).body.error, 'authorization_pending');
  await sleep(2500);
  assert.equal((await poll(counter, unknown.auth_req_id)).body.error, 'expired_token');
  assert.equal((await poll(counter, known.auth_req_id)).body.error, 'expired_token');
  assert.ok(!logs().includes('nobody.at.all'), 'the hint never reaches the logs');
  assert.ok(!logs().includes('A123456789') && !logs().includes('a123456789'), 'nor a national ID');
  // an expired request is no longer listed
  const list = await simTpapp(['ciba-list', '--account', citizen.account, '--issod', stack.issuer]);
  assert.equal(list.out.requests.length, 0, JSON.stringify(list.out));
});

test('refusals: binding message, scope, hints, acr, clients without the grant, another client\'s auth_req_id', T, async () => {
  const bad = async (form, error, c = counter) => {
    const r = await post('/bc-authorize', c, { scope: SCOPE, binding_message: BINDING, login_hint: citizen.account, ...form });
    assert.equal(r.status, 400, `${JSON.stringify(form)}: ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.error, error, JSON.stringify(form));
  };
  await bad({ binding_message: '' }, 'invalid_binding_message');
  await bad({ binding_message: '一二三四五六七八九十一二三四五六七八九十一' }, 'invalid_binding_message');
  await bad({ binding_message: 'A12\n櫃台' }, 'invalid_binding_message');
  await bad({ scope: 'uuid profile' }, 'invalid_scope');
  await bad({ login_hint: '' }, 'invalid_request');
  await bad({ id_token_hint: 'x.y.z' }, 'invalid_request');
  await bad({ acr_values: 'urn:isso:loa:substantial' }, 'invalid_request');
  await bad({ requested_expiry: '-5' }, 'invalid_request');
  await bad({ requested_expiry: '60s' }, 'invalid_request');
  await bad({ login_hint_token: 'x' }, 'invalid_request');
  await bad({ request: 'x.y.z' }, 'invalid_request');
  // a repeated parameter is refused, not picked from
  const twice = await fetch(stack.url('/bc-authorize'), {
    method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(counter) },
    body: `scope=openid&binding_message=A1&login_hint=${citizen.account}&login_hint=someone.else`,
  });
  assert.equal(twice.status, 400);
  assert.equal((await twice.json()).error, 'invalid_request');
  // twenty characters are fine
  assert.equal((await bcAuthorize(counter, { login_hint: 'x', binding_message: '一二三四五六七八九十一二三四五六七八九十' })).status, 200);

  const online = await stack.registerClient({ name: 'online only', redirectUris: [RP], scope: SCOPE });
  await bad({}, 'unauthorized_client', online);
  const pub = await stack.registerClient({ name: 'public', redirectUris: [RP], scope: SCOPE, public: true });
  await bad({}, 'unauthorized_client', pub);
  const wrongSecret = await post('/bc-authorize', { ...counter, client_secret: 'wrong' }, { scope: SCOPE, binding_message: BINDING, login_hint: 'x' });
  assert.equal(wrongSecret.status, 401);
  assert.equal(wrongSecret.body.error, 'invalid_client');

  const r = await start(citizen.account);
  const other = await stack.registerClient({ name: '另一個臨櫃', redirectUris: [RP], scope: SCOPE, grantTypes: ['authorization_code', CIBA] });
  assert.equal((await poll(other, r.auth_req_id)).body.error, 'invalid_grant', 'another client\'s auth_req_id');
  assert.equal((await poll(online, r.auth_req_id)).body.error, 'unauthorized_client');
  assert.equal((await poll(counter, `${r.auth_req_id.slice(0, 23)}${'A'.repeat(43)}`)).body.error, 'invalid_grant', 'a guessed secret');
  assert.equal((await poll(counter, 'nonsense')).body.error, 'invalid_grant');
  const no = await simTpapp(['ciba-deny', '--account', citizen.account, '--issod', stack.issuer]);
  assert.equal(no.out.result, 'denied');
});

test('one counter client starts at most 120 requests a minute', T, async () => {
  const busy = await stack.registerClient({ name: '忙碌臨櫃', redirectUris: [RP], scope: SCOPE, grantTypes: [CIBA] });
  // counted per clock minute: the first refusal comes after 120 (or, across
  // a minute's turn, up to 240) requests
  let ok = 0;
  let last;
  for (let i = 0; i < 241; i++) {
    last = await bcAuthorize(busy, { login_hint: `nobody${i}` });
    if (last.status !== 200) break;
    ok++;
  }
  assert.ok(ok >= 120 && ok < 241, `${ok} accepted before ${last.status}`);
  assert.equal(last.status, 429);
  assert.equal(last.body.error, 'slow_down');
  assert.equal(last.headers.get('retry-after'), '60');
  // other counters are not held back
  assert.equal((await bcAuthorize(counter, { login_hint: 'nobody' })).status, 200);
});

test('the app\'s CIBA endpoints: signed by the enrolled device key, a listing signature works once, another member\'s device answers nothing', T, async () => {
  const other = await stack.addUser({ account: 'lin.other', password: 'Tp-Other-Horse-42', phone: '0933444555' });
  const dev = await tpapp.enrolled(stack, other);
  const r = await start(citizen.account);
  const listBy = async (d, payload = {}) => {
    const p = { device: d.device, action: 'ciba_pending', jti: `jti-${Math.random()}-${Date.now()}`, iat: Math.floor(Date.now() / 1000), ...payload };
    const sig = tpapp.signJws(d.privateKey, p);
    const res = await fetch(stack.url('/app/v1/ciba/pending'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: d.device, signature: sig }) });
    return { status: res.status, body: await res.json(), sig };
  };
  const mine = await listBy(dev);
  assert.equal(mine.status, 200);
  assert.deepEqual(mine.body.requests, [], 'another member sees nothing');
  const replay = await fetch(stack.url('/app/v1/ciba/pending'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: dev.device, signature: mine.sig }) });
  assert.equal(replay.status, 401, 'a listing signature works once');
  assert.equal((await listBy(dev, { iat: Math.floor(Date.now() / 1000) - 3600 })).status, 401, 'a stale signature');
  assert.equal((await listBy(dev, { action: 'other' })).status, 401);
  const noSig = await fetch(stack.url('/app/v1/ciba/pending'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ device: dev.device }) });
  assert.equal(noSig.status, 401);

  // the citizen's request, answered by the other member's device: as if gone
  const list = await simTpapp(['ciba-list', '--account', citizen.account, '--issod', stack.issuer]);
  const entry = list.out.requests[0];
  const answer = async (d, decision, payload = {}) => {
    const p = { request: entry.request, device: d.device, decision, nonce: entry.nonce, iat: Math.floor(Date.now() / 1000), ...payload };
    const res = await fetch(stack.url('/app/v1/ciba/answer'), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ request: entry.request, device: d.device, decision, signature: tpapp.signJws(d.privateKey, p) }) });
    return { status: res.status, body: await res.json() };
  };
  const foreign = await answer(dev, 'approve');
  assert.equal(foreign.status, 404);
  assert.equal(foreign.body.error, 'expired');
  assert.equal((await poll(counter, r.auth_req_id)).body.error, 'authorization_pending');
  // a signature over another decision
  const citizenDev = citizenDevice();
  const lie = await answer(citizenDev, 'approve', { decision: 'deny' });
  assert.equal(lie.status, 401);
  assert.equal(lie.body.error, 'invalid_signature');
  const stale = await answer(citizenDev, 'approve', { nonce: 'x'.repeat(43) });
  assert.equal(stale.status, 401);
  const yes = await answer(citizenDev, 'deny');
  assert.equal(yes.status, 200);
  assert.equal(yes.body.result, 'denied');
  const twice = await answer(citizenDev, 'deny');
  assert.equal(twice.status, 409);
});

test('optional fields at the counter: listed as such, the citizen declines one, the counter gets the rest; the records agree', T, async () => {
  const scope = 'openid uuid profile email phone';
  const agency = await stack.registerClient({ name: '臺北市立圖書館臨櫃', redirectUris: [RP], scope, grantTypes: ['authorization_code', CIBA] });
  await stack.issoctl(['client', 'set-optional-scopes', agency.client_id, 'email']);
  const r = (await bcAuthorize(agency, { login_hint: citizen.account, scope })).body;
  assert.ok(r.auth_req_id, JSON.stringify(r));
  const who = ['--account', citizen.account, '--issod', stack.issuer];
  const list = await simTpapp(['ciba-list', ...who]);
  assert.equal(list.out.requests.length, 1, JSON.stringify(list.out));
  const entry = list.out.requests[0];
  assert.deepEqual(entry.fields, ['uuid', 'profile', 'email', 'phone']);
  assert.deepEqual(entry.optional, ['email'], 'the optional fields, a subset of fields');

  // a required, unknown or repeated field cannot be declined: 400, and the
  // request stays pending
  for (const d of [['profile'], ['phone'], ['openid'], ['address'], ['email', 'email'], ['email', 'uuid']]) {
    const no = await simTpapp(['ciba-approve', entry.request, ...d.flatMap((f) => ['--decline', f]), ...who]);
    assert.equal(no.code, 1, `${d}: ${no.stderr} ${JSON.stringify(no.out)}`);
    assert.equal(no.out.status, 400, `${d}: ${JSON.stringify(no.out)}`);
    assert.equal(no.out.error, 'invalid_request');
  }
  const httpNo = await simHttp('ciba-approve', { issod: stack.issuer, account: citizen.account, password: citizen.password, request: entry.request, decline: ['profile'] });
  assert.equal(httpNo.status, 400, JSON.stringify(httpNo.body));
  assert.equal(httpNo.body.error, 'invalid_request');
  // the sim's app declines only in an approval
  assert.equal((await simTpapp(['ciba-deny', entry.request, '--decline', 'email', ...who])).code, 2, 'a usage error');
  const denyDecline = await simHttp('ciba-deny', { issod: stack.issuer, account: citizen.account, password: citizen.password, request: entry.request, decline: ['email'] });
  assert.equal(denyDecline.status, 400, JSON.stringify(denyDecline.body));
  const notArray = await signedAnswer(citizenDevice(), entry, 'approve', { payload: { declined: 'email' }, body: { declined: 'email' } });
  assert.equal(notArray.status, 400);
  assert.equal(notArray.body.error, 'invalid_request');

  // declined must be what the device key signed: added, dropped or changed
  // in the body, the signature does not hold
  const dev = citizenDevice();
  for (const [what, change] of [
    ['added to the body', { body: { declined: ['email'] } }],
    ['dropped from the body', { payload: { declined: ['email'] } }],
    ['emptied in the body', { payload: { declined: ['email'] }, body: { declined: [] } }],
  ]) {
    const lie = await signedAnswer(dev, entry, 'approve', change);
    assert.equal(lie.status, 401, `${what}: ${JSON.stringify(lie.body)}`);
    assert.equal(lie.body.error, 'invalid_signature', what);
  }
  assert.equal((await poll(agency, r.auth_req_id)).body.error, 'authorization_pending', 'nothing changed');
  assert.equal((await simTpapp(['ciba-list', ...who])).out.requests.length, 1, 'still listed');

  // the citizen declines e-mail
  const ok = await simTpapp(['ciba-approve', entry.request, '--decline', 'email', ...who]);
  assert.equal(ok.code, 0, `${ok.stderr} ${JSON.stringify(ok.out)}`);
  assert.equal(ok.out.result, 'approved');
  await sleep((INTERVAL + 0.5) * 1000);
  const tok = await poll(agency, r.auth_req_id);
  assert.equal(tok.status, 200, JSON.stringify(tok.body));
  assert.deepEqual(tok.body.scope.split(' '), ['openid', 'uuid', 'profile', 'phone'], 'the grant leaves e-mail out');
  const idt = decodeJwt(tok.body.id_token).payload;
  assert.equal(idt.email, undefined, 'the ID token has no e-mail (iSSO puts fields in UserInfo only)');
  const ui = await (await fetch(stack.url('/userinfo'), { headers: { authorization: `Bearer ${tok.body.access_token}` } })).json();
  assert.equal(ui.sub, idt.sub);
  assert.equal(ui.name, citizen.name);
  assert.equal(ui.phone_number, '+886922333444');
  assert.equal(ui.email, undefined, 'UserInfo has no e-mail');
  assert.equal(ui.email_verified, undefined);

  // the consent record, the audit log and the citizen's releases agree
  const db = path.join(stack.tmp, 'isso.db');
  const q = (text) => JSON.parse(execFileSync('sqlite3', ['-json', db, text], { encoding: 'utf8' }) || '[]');
  const consent = () => q(`SELECT scope, record FROM consents WHERE uuid = '${citizen.uuid}' AND client_id = '${agency.client_id}'`);
  const [c1] = consent();
  assert.equal(c1.scope, 'openid uuid profile email- phone');
  const record = JSON.parse(c1.record);
  assert.deepEqual(record.declined, ['email']);
  const ev = (await stack.issoctl(['audit', 'export'])).filter((e) => e.data.client_id === agency.client_id);
  const granted = ev.filter((e) => e.event === 'consent_granted');
  assert.equal(granted.length, 1);
  assert.equal(granted[0].data.declined, 'email');
  assert.equal(granted[0].data.scope, scope);
  assert.ok(record.notice && record.notice === granted[0].data.notice, `the notice version (${record.notice})`);
  const rel = ev.filter((e) => e.event === 'release');
  assert.equal(rel.length, 1);
  assert.deepEqual([...rel[0].data.fields].sort(), ['member_level', 'name', 'phone_number', 'phone_number_verified', 'uuid'].sort());
  assert.equal(rel[0].data.scope, 'openid uuid profile phone');
  const rows = q(`SELECT data FROM releases WHERE uuid = '${citizen.uuid}' AND client_id = '${agency.client_id}'`);
  assert.equal(rows.length, 1);
  const { uuid: _u, client_id: _c, ...released } = rel[0].data; // the row's own columns
  assert.deepEqual(JSON.parse(rows[0].data), released);

  // an answer without declined (an older app) releases every field
  const r2 = (await bcAuthorize(agency, { login_hint: citizen.account, scope })).body;
  const all = await simTpapp(['ciba-approve', ...who]);
  assert.equal(all.code, 0, `${all.stderr} ${JSON.stringify(all.out)}`);
  await sleep((INTERVAL + 0.5) * 1000);
  const tok2 = await poll(agency, r2.auth_req_id);
  assert.equal(tok2.status, 200, JSON.stringify(tok2.body));
  assert.deepEqual(tok2.body.scope.split(' '), scope.split(' '));
  const ui2 = await (await fetch(stack.url('/userinfo'), { headers: { authorization: `Bearer ${tok2.body.access_token}` } })).json();
  assert.equal(ui2.email, citizen.email);
  const [c2] = consent();
  assert.equal(c2.scope, scope);
  assert.deepEqual(JSON.parse(c2.record).declined, []);
});
