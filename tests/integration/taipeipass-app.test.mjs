// The TaipeiPass app login (台北通APP登入): the login page's 台北通APP登入
// link, a QR code carrying a one-time challenge that isso-sim's TaipeiPass
// app answers at issod's POST /app/v1/qr/approve (through `isso-sim phone
// tpapp …` and the sim's phone HTTP API), the page's polling, and the
// outcomes: approved, denied, expired, a replayed approval, a challenge of
// another login. The app answers with an ES256 signature of the device key
// it enrolled once with the member's password (a wrong password at the
// enrolment meets the password page's guess delays); an answer with the
// account and password, with another key, over other data, a stale one,
// or from a revoked device is refused. An app login is acr low with amr
// ["swk"], and a service asking for substantial is offered neither the
// password nor the app (issue 14's probe). Number matching: the page shows the agency service's name and a
// two-digit number, the app (POST /app/v1/qr/details) the name and three
// numbers; a wrong pick ends the code. On a phone, the same challenge as
// an app link: the app returns the browser to app-return with a one-time
// code, which completes only in the browser that started the login (a
// forwarded link completes nothing for the one who forwarded it). Chromium
// walks on a desktop and on a phone viewport, keyboard only, with axe.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, REPO, BUILD_DIR, limit, redirectParams, sameEndpoint, sleep, decodeEntities,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots, tabTo, assertNoHorizontalScroll,
  waitForFocus,
} from './lib/browser.mjs';
import * as tpapp from './lib/tpapp.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid uuid profile phone email';
const ACR_LOW = 'urn:isso:loa:low';
const PHONE_UA = 'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36';
const SERVICE = '臺北市測試機關';
const ACR_SUBSTANTIAL = 'urn:isso:loa:substantial';
const T = { timeout: limit(20_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const IDENTITIES = JSON.parse(fs.readFileSync(path.join(REPO, 'sim', 'identities.json'), 'utf8'));

function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  return MSG[key];
}

// A test identity with a TaipeiPass account: the sim knows its password.
const WANG = IDENTITIES.citizens.find((c) => c.taipeipass?.account === 'wang.xiaoming');

let stack;
let stackShort; // app_qr_ttl 2 s, a low per-address limit
let cfg;
let cfgShort;
let wang; // the member, added to issod with the identities' password
let browser;
let simState; // the command-line app's state folder (its device keys)
const shots = new Screenshots();

async function setupClient(s) {
  const c = await s.registerClient({
    name: SERVICE, purpose: '台北通APP整合測試', redirectUris: [RP], scope: SCOPE,
  });
  return client.discovery(new URL(s.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
}

before(async () => {
  stack = await startStack({ label: 'tpapp' });
  cfg = await setupClient(stack);
  wang = await stack.addUser({
    account: WANG.taipeipass.account, password: WANG.taipeipass.password, phone: WANG.phone,
    name: WANG.name, email: WANG.taipeipass.email, phoneVerified: true,
  });
  stackShort = await startStack({
    label: 'tpapp-short', env: { ISSO_TAIPEIPASS_APP_QR_TTL: '2', ISSO_SECURITY_IP_RATE_PER_MIN: '4' },
  });
  cfgShort = await setupClient(stackShort);
  await stackShort.addUser({ account: 'short.member', password: 'Short-pass-42', phone: '0912000777' });
  simState = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-tpapp-state-'));
  if (!NO_BROWSER) browser = await launchBrowser();
}, { timeout: limit(60_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (stackShort) await stackShort.stop({ check: false });
  if (stack) await stack.stop({ check: false });
  if (simState) fs.rmSync(simState, { recursive: true, force: true });
  shots.report();
});

// ---------------------------------------------------------------- helpers

async function startAuth({ conf = cfg, extra = {} } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(conf, {
    redirect_uri: RP, scope: SCOPE, state, nonce, ...extra,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { url, verifier, state, nonce, conf };
}

const isRp = (next) => sameEndpoint(next, RP);
const tOf = (url) => new URL(url).searchParams.get('t');
const pathOf = (url) => new URL(url).pathname;

/** Authorization → method choice → the TaipeiPass login page: {res, t}. */
async function toLogin(agent, a) {
  const r = await agent.followUntil(a.url.href, isRp);
  assert.equal(r.res.status, 200, 'the method choice');
  assert.equal(pathOf(r.url), '/login');
  const card = r.res.links().find((l) => pathOf(l.href) === '/login/taipeipass');
  assert.ok(card, 'the method choice offers 台北通');
  const res = await agent.get(card.href);
  assert.equal(res.status, 200, 'the TaipeiPass login page');
  return { res, t: tOf(r.url) };
}

/** The login page → 點擊掃描QRcode進行登入 → the QR page: {res, t, qr}. */
async function toQr(agent, a, s = stack) {
  const { res: login, t } = await toLogin(agent, a);
  const link = login.links().find((l) => l.text === msg('tp.tab_app'));
  assert.ok(link, 'the login page offers the QR code');
  assert.equal(pathOf(link.href), '/login/taipeipass/app');
  const res = await agent.get(link.href);
  assert.equal(res.status, 200, `the QR page: ${res.pageText().slice(0, 300)}`);
  return { res, t, qr: qrOf(res, s) };
}

/** The QR code's text on a QR page. */
function qrOf(res, s = stack) {
  const m = /data-qr="([^"]+)"/.exec(res.text);
  assert.ok(m, 'the QR page carries the code');
  const qr = decodeEntities(m[1]);
  assert.match(qr, new RegExp(`^isso-tpapp:${s.issuer.replace(/[.]/g, '\\.')}/app/v1/qr/[A-Za-z0-9_-]{43}$`));
  return qr;
}

/** The two-digit number the QR page shows (number matching). */
function numberOf(res) {
  const m = /id="tp-number">(\d{2})</.exec(res.text);
  assert.ok(m, 'the QR page shows a two-digit number');
  return m[1];
}

/** The app link on a QR page (the same challenge, for the app on this phone). */
function linkOf(res, s = stack) {
  const a = res.links().find((l) => l.text === msg('tp.app_open'));
  assert.ok(a, 'the page offers the app link');
  const link = a.href;
  assert.match(link, new RegExp(`^isso-tpapp:${s.issuer.replace(/[.]/g, '\\.')}/app/v1/link/[A-Za-z0-9_-]{43}$`));
  return link;
}

/** A wrong pick among the app's choices. */
const wrongPick = (choices, right) => String(choices.find((c) => c !== Number(right))).padStart(2, '0');

/** `isso-sim phone tpapp ARGS`: {code, out}. */
function simTpapp(args) {
  return new Promise((resolve) => {
    const state = args[0] === 'show' ? [] : ['--state', simState];
    execFile(path.join(BUILD_DIR, 'isso-sim'), ['phone', 'tpapp', ...args, ...state],
      { timeout: 10_000 }, (err, stdout, stderr) => {
        let out = null;
        try { out = JSON.parse(stdout); } catch { /* usage or connection error */ }
        resolve({ code: err ? err.code : 0, out, stderr });
      });
  });
}

/** The sim's phone HTTP API: {status, body}. */
async function simHttp(decision, body, s = stack) {
  const res = await fetch(`${s.simUrl}/phone/tpapp/${decision}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

/** issod's app endpoints, directly: {status, body}. */
async function approveDirect(s, fields, what = 'approve') {
  const res = await fetch(s.url(`/app/v1/qr/${what}`), {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(fields),
  });
  return { status: res.status, body: await res.json() };
}

async function appStatus(agent, t, s = stack) {
  const res = await agent.get(s.url(`/login/taipeipass/app-status?t=${t}`), { headers: { accept: 'application/json' } });
  return { status: res.status, body: res.contentType().startsWith('application/json') ? res.json() : null };
}

/** Consent page → allow → the client's redirect URL. */
async function allow(agent, res) {
  const cf = res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
  assert.ok(cf, `the consent page (${res.status}): ${res.pageText().slice(0, 300)}`);
  const r = await agent.submit(cf, {}, cf.buttons.find((b) => b.value === 'allow'), isRp);
  assert.ok(r.stopped, 'consent leads back to the client');
  return r.url;
}

/** Follows status.next to consent, allows, redeems; checks acr and amr. */
async function finish(agent, a, next, s = stack) {
  assert.equal(pathOf(new URL(next, s.issuer).href), '/login/taipeipass/app-done');
  const r = await agent.followUntil(s.url(next), isRp);
  // consent once per client: later logins go straight back
  if (!r.stopped) assert.equal(pathOf(r.url), '/consent', `after app-done: ${r.res.pageText().slice(0, 300)}`);
  const cb = r.stopped ? r.url : await allow(agent, r.res);
  const p = redirectParams(cb);
  assert.ok(p.get('code'), `a code in ${cb}`);
  const tokens = await client.authorizationCodeGrant(a.conf, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  });
  const claims = tokens.claims();
  // the app proved its enrolled device key: one factor, no more
  assert.equal(claims.acr, ACR_LOW, 'acr low');
  assert.deepEqual(claims.amr, ['swk'], `amr ${JSON.stringify(claims.amr)}`);
  return { tokens, claims };
}

// ---------------------------------------------------------------- tests

test('an app approval signed by the enrolled device key is acr low, amr ["swk"] (CLI, --pick the page\'s number)', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { res, t, qr } = await toQr(agent, a);
  assert.match(res.text, /<svg [^>]*role="img"/, 'an inline SVG QR code');
  assert.match(res.text, /data-poll="\/login\/taipeipass\/app-status\?t=/);
  const seconds = Number(/id="qr-timer" data-timer="(\d+)"/.exec(res.text)?.[1]);
  assert.ok(seconds >= 115 && seconds <= 120, `countdown ${seconds}`);
  const qf = res.forms().find((f) => f.buttons.some((b) => b.value === 'check'));
  assert.ok(qf && qf.buttons.some((b) => b.value === 'regenerate'), 'check and regenerate buttons');
  assert.ok(res.pageText().includes(`${msg('tp.app_service')} ${SERVICE}`), 'the page names the agency service');
  const number = numberOf(res);

  const first = await appStatus(agent, t);
  assert.equal(first.status, 200);
  assert.equal(first.body.state, 'pending');
  assert.equal(first.body.next, undefined);
  const early = await agent.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  assert.equal(pathOf(early.url), '/login/taipeipass/app', 'no login before the approval');

  // the sim finds the password in sim/identities.json and enrols its
  // device key first (the app's first start); issod from the QR
  const cli = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--pick', number]);
  assert.equal(cli.code, 0, `isso-sim: ${cli.stderr} ${JSON.stringify(cli.out)}`);
  assert.equal(cli.out.result, 'approved');
  assert.equal(cli.out.service, SERVICE, 'the app showed the service name');
  // replaying the approval: one use
  const again = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--pick', number]);
  assert.equal(again.code, 1);
  assert.equal(again.out.error, 'already_used');

  const done = await appStatus(agent, t);
  assert.equal(done.body.state, 'approved');
  const { claims } = await finish(agent, a, done.body.next);
  assert.ok(claims.sub);

  // after the login the challenge is gone
  const late = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--pick', number]);
  assert.equal(late.code, 1);
  assert.equal(late.out.error, 'expired');
});

test('issue 14 probe: acr_values=substantial offers neither the password nor the app, and refuses both', T, async () => {
  // an approved app login in a low request, to have the app's answer at hand
  const agent = new HttpAgent();
  const a = await startAuth({ extra: { acr_values: ACR_SUBSTANTIAL } });
  const r = await agent.followUntil(a.url.href, isRp);
  assert.equal(r.res.status, 200, 'the method choice');
  assert.equal(pathOf(r.url), '/login');
  assert.ok(!r.res.links().some((l) => pathOf(l.href).startsWith('/login/taipeipass')), '台北通 is not offered');
  const t = tOf(r.url);
  for (const step of ['', '/app', '/org', '/app-done', `/app-return`]) {
    const res = await agent.get(stack.url(`/login/taipeipass${step}?t=${t}&r=${'A'.repeat(43)}`));
    assert.equal(res.status, 403, `/login/taipeipass${step}`);
    assert.ok(res.pageText().includes(msg('error.loa_too_low')), `/login/taipeipass${step}: ${res.pageText().slice(0, 200)}`);
  }
  const st = await appStatus(agent, t);
  assert.equal(st.status, 403);
  assert.equal(st.body.state, 'none');
  // no challenge was ever made for it: nothing for the app to answer
  const page = await agent.get(stack.url(`/login/taipeipass/app?t=${t}`));
  assert.ok(!/data-qr=/.test(page.text), 'no QR code');
});

test('acr_values=substantial: a direct POST of the password form is refused', T, async () => {
  const agent = new HttpAgent();
  // a tp-login CSRF token from a low login in the same browser
  const { res: lowLogin } = await toLogin(agent, await startAuth());
  const lf = lowLogin.forms().find((x) => x.has('password'));
  const csrf = lf.controls.find((c) => c.name === 'csrf').value;
  const r = await agent.followUntil((await startAuth({ extra: { acr_values: ACR_SUBSTANTIAL } })).url.href, isRp);
  const res = await agent.postForm(stack.url('/login/taipeipass'), {
    csrf, t: tOf(r.url), account: WANG.taipeipass.account, password: WANG.taipeipass.password,
  });
  assert.equal(res.status, 403);
  assert.ok(res.pageText().includes(msg('error.loa_too_low')), res.pageText().slice(0, 300));
});

test('number matching: the app sees the service and three numbers (one the page\'s), never which is right', T, async () => {
  const agent = new HttpAgent();
  const { res, qr } = await toQr(agent, await startAuth());
  const number = numberOf(res);
  const show = await simTpapp(['show', qr]);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.out.service, SERVICE);
  assert.equal(show.out.organisation, false);
  assert.equal(show.out.choices.length, 3);
  assert.equal(new Set(show.out.choices).size, 3, 'three different numbers');
  for (const c of show.out.choices) assert.ok(c >= 10 && c <= 99, `two digits: ${c}`);
  assert.ok(show.out.choices.includes(Number(number)), `the page's ${number} is among ${show.out.choices}`);
  const direct = await approveDirect(stack, { challenge: qr.split('/').pop() }, 'details');
  assert.equal(direct.status, 200);
  assert.deepEqual(Object.keys(direct.body).sort(), ['choices', 'nonce', 'organisation', 'service'], 'nothing else, no number');
  assert.match(direct.body.nonce, /^[A-Za-z0-9_-]{43}$/, 'a nonce for the signature');
  assert.deepEqual(direct.body.choices, show.out.choices, 'the same choices each time');
  // the sim app offers only these; approving without a pick is not possible
  const noPick = await simHttp('approve', { qr, account: WANG.taipeipass.account });
  assert.equal(noPick.status, 400);
  assert.equal(noPick.body.error, 'pick_required');
  const notChoice = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--pick', '00']);
  assert.equal(notChoice.code, 2, 'the app offers no such number');
  const cliNoPick = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account]);
  assert.equal(cliNoPick.code, 2, 'without a terminal to ask on, --pick is needed');
  assert.match(cliNoPick.stderr, /--pick/);
  // issod: a scanned code is not approved without a number
  const bare = await approveDirect(stack, { qr, device: 'A'.repeat(43), signature: 'a.b.c', decision: 'approve' });
  assert.equal(bare.status, 400);
  assert.equal(bare.body.error, 'number_required');
  const bad = await approveDirect(stack, { qr: 'isso-tpapp:x/app/v1/qr/short' }, 'details');
  assert.equal(bad.status, 400);
  const gone = await approveDirect(stack, { challenge: 'A'.repeat(43) }, 'details');
  assert.equal(gone.status, 404);
});

test('number matching: a wrong pick ends the QR code (refused), the page says so and offers a new one', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { res, t, qr } = await toQr(agent, a);
  const number = numberOf(res);
  const show = await simTpapp(['show', qr]);
  const wrong = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--pick', wrongPick(show.out.choices, number)]);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.out.status, 403);
  assert.equal(wrong.out.error, 'wrong_number');
  assert.deepEqual(Object.keys(wrong.out).sort(), ['error', 'service', 'status'], 'the reply does not tell the right number');
  // the code is finished: the right number no longer helps
  const right = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--pick', number]);
  assert.equal(right.code, 1);
  assert.ok(['already_used', 'expired'].includes(right.out.error), JSON.stringify(right.out));
  const st = await appStatus(agent, t);
  assert.equal(st.body.state, 'refused');
  const page = await agent.get(stack.url(st.body.next));
  assert.deepEqual(page.alerts(), [msg('tp.app_wrong_number')]);
  assert.ok(!/data-poll=/.test(page.text), 'no polling');
  const done = await agent.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  assert.equal(pathOf(done.url), '/login/taipeipass/app', 'nobody is logged in');
  const f = page.forms().find((x) => x.buttons.some((b) => b.value === 'regenerate'));
  const fresh = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'regenerate'));
  assert.equal(fresh.res.status, 200);
  const qr2 = qrOf(fresh.res);
  assert.notEqual(qr2, qr, 'a new challenge');
  const ok = await simHttp('approve', { qr: qr2, account: WANG.taipeipass.account, pick: numberOf(fresh.res) });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  await finish(agent, a, (await appStatus(agent, t)).body.next);
});

test('a wrong number outside the choices, straight to issod, ends the code too', T, async () => {
  const agent = new HttpAgent();
  const { res, t, qr } = await toQr(agent, await startAuth());
  const number = Number(numberOf(res));
  const other = String(((number - 10 + 45) % 90) + 10); // another two-digit number
  const dev = await tpapp.enrolled(stack, wang);
  const r = await tpapp.answer(stack, qr, dev, { number: other });
  assert.equal(r.status, 403);
  assert.equal(r.body.error, 'wrong_number');
  assert.equal((await appStatus(agent, t)).body.state, 'refused');
});

test('from the password page (acr low): approved through the sim phone HTTP API; userinfo is the member', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth({ extra: { acr_values: ACR_LOW } });
  const { res: login } = await toLogin(agent, a);
  assert.ok(login.forms().some((f) => f.has('password')), 'the password form');
  assert.ok(login.pageText().includes(msg('tp.tab_password')), '帳號登入');
  const { t, qr, res } = await toQr(agent, a);
  assert.ok(res.links().some((l) => l.text === msg('tp.app_use_password')), 'the password is offered');
  const pick = numberOf(res);
  const r = await simHttp('approve', { qr, account: WANG.taipeipass.account, pick });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.result, 'approved');
  const replay = await simHttp('approve', { qr, account: WANG.taipeipass.account, password: WANG.taipeipass.password, pick });
  assert.equal(replay.status, 409);
  assert.equal(replay.body.error, 'already_used');
  const denyAfter = await simHttp('deny', { qr, account: WANG.taipeipass.account });
  assert.equal(denyAfter.status, 409, 'nor a later deny');
  // the sim app answered with its device key, enrolled once: it is listed
  const devices = await stack.issoctl(['member', 'device', 'list', '--account', WANG.taipeipass.account]);
  assert.ok(devices.some((d) => d.name === 'isso-sim' && !d.revoked && d.last_used_at > 0), JSON.stringify(devices));
  const done = await appStatus(agent, t);
  const { tokens, claims } = await finish(agent, a, done.body.next);
  const ui = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(ui.uuid, wang.uuid, 'the member who approved');
  // the finished login cannot be replayed
  const replayDone = await agent.get(stack.url(done.body.next));
  assert.notEqual(replayDone.status, 200);
});

test('denied in the app: its own message, a new QR code, or the password', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { t, qr } = await toQr(agent, a);
  const r = await simTpapp(['deny', qr, '--account', WANG.taipeipass.account, '--password', WANG.taipeipass.password, '--issod', stack.issuer]);
  assert.equal(r.code, 0);
  assert.equal(r.out.result, 'denied');
  const st = await appStatus(agent, t);
  assert.equal(st.body.state, 'denied');
  assert.equal(pathOf(stack.url(st.body.next)), '/login/taipeipass/app');
  const page = await agent.get(stack.url(st.body.next));
  assert.deepEqual(page.alerts(), [msg('tp.app_denied')]);
  assert.ok(!/data-poll=/.test(page.text), 'no polling');
  assert.ok(page.links().some((l) => l.text === msg('tp.app_use_password')), 'the password is offered');
  const done = await agent.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  assert.equal(pathOf(done.url), '/login/taipeipass/app', 'a denial logs nobody in');
  const f = page.forms().find((x) => x.buttons.some((b) => b.value === 'regenerate'));
  const fresh = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'regenerate'));
  assert.equal(fresh.res.status, 200);
  const qr2 = qrOf(fresh.res);
  assert.notEqual(qr2, qr, 'a new challenge');
  const ok = await simHttp('approve', { qr: qr2, account: WANG.taipeipass.account, pick: numberOf(fresh.res) });
  assert.equal(ok.status, 200);
  const st2 = await appStatus(agent, t);
  await finish(agent, a, st2.body.next);
});

test('regenerate kills the old code', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { res, qr } = await toQr(agent, a);
  const f = res.forms().find((x) => x.buttons.some((b) => b.value === 'regenerate'));
  const fresh = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'regenerate'));
  assert.notEqual(qrOf(fresh.res), qr);
  const old = await simHttp('approve', { qr, account: WANG.taipeipass.account, pick: numberOf(res) });
  assert.equal(old.status, 404);
  assert.equal(old.body.error, 'expired');
});

test('a wrong password at the enrolment is refused; guessing is slowed by the password page\'s delays, never locked', T, async () => {
  const member = await stack.addUser({ account: 'lock.me', password: 'Right-pass-42', phone: '0912000888' });
  const agent = new HttpAgent();
  const a = await startAuth();
  const { t, qr, res } = await toQr(agent, a);
  const number = numberOf(res);
  const wrong = await simTpapp(['approve', qr, '--account', member.account, '--password', 'Wrong-pass-1', '--pick', number]);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.out.error, 'invalid_credentials');
  assert.equal(wrong.out.status, 401);
  assert.equal((await appStatus(agent, t)).body.state, 'pending', 'still waiting');
  const unknown = await simHttp('approve', { qr, account: 'no.such.account', pick: number });
  assert.equal(unknown.status, 404, 'the sim knows no password for an unknown account');
  // more wrong passwords (security.account_free_failures 3): then a delay
  const key = tpapp.deviceKey();
  let last;
  for (let i = 0; i < 6 && last?.status !== 429; i++) last = await tpapp.enrol(stack, { account: member.account, password: `Wrong-${i}`, jwk: key.jwk });
  assert.equal(last.status, 429);
  assert.equal(last.body.error, 'slow_down');
  assert.ok(Number(last.headers.get('retry-after')) > 0);
  // the password page is delayed too, for the same account
  const agent2 = new HttpAgent();
  const { res: login } = await toLogin(agent2, await startAuth());
  const lf = login.forms().find((x) => x.has('password'));
  const r = await agent2.submit(lf, { account: member.account, password: member.password }, null, isRp);
  assert.equal(r.res.status, 429);
  assert.ok(r.res.alerts()[0].startsWith(msg('tp.wait')), r.res.alerts()[0]);
  // never locked: after the wait the right password enrols, and the key approves
  await sleep(Number(r.res.headers.get('retry-after')) * 1000 + 200);
  const ok = await tpapp.enrol(stack, { account: member.account, password: member.password, jwk: key.jwk });
  assert.equal(ok.status, 201, `the right password after the wait: ${JSON.stringify(ok.body)}`);
  assert.match(ok.body.device, /^[A-Za-z0-9_-]{43}$/);
  const right = await tpapp.answer(stack, qr, { device: ok.body.device, privateKey: key.privateKey }, { number });
  assert.equal(right.status, 200, JSON.stringify(right.body));
  // form-encoded answers and bad requests
  const form = await fetch(stack.url('/app/v1/qr/approve'), {
    method: 'POST', body: new URLSearchParams({ qr, device: ok.body.device, signature: 'a.b.c', decision: 'maybe' }),
  });
  assert.equal(form.status, 400);
  assert.equal((await form.json()).error, 'invalid_request');
  const via = await approveDirect(stack, { qr, device: ok.body.device, signature: 'a.b.c', decision: 'approve', via: 'bluetooth' });
  assert.equal(via.status, 400);
  assert.equal(via.body.error, 'invalid_request');
});

test('an app approval without the device key is refused; so is one by another key, over other data, stale, or from a revoked device', T, async () => {
  const member = await stack.addUser({ account: 'device.member', password: 'Device-pass-42', phone: '0912000886' });
  const agent = new HttpAgent();
  const a = await startAuth();
  const { t, qr, res } = await toQr(agent, a);
  const number = numberOf(res);
  const pending = async () => assert.equal((await appStatus(agent, t)).body.state, 'pending', 'the code still waits');

  // the password alone approves nothing, nor denies
  for (const decision of ['approve', 'deny']) {
    const pw = await approveDirect(stack, { qr, account: member.account, password: member.password, decision, number });
    assert.equal(pw.status, 401, JSON.stringify(pw.body));
    assert.deepEqual(pw.body, { error: 'device_key_required' });
  }
  const form = await fetch(stack.url('/app/v1/qr/approve'), {
    method: 'POST', body: new URLSearchParams({ qr, account: member.account, password: member.password, decision: 'approve', number }),
  });
  assert.equal(form.status, 401);
  await pending();

  const dev = await tpapp.enrolled(stack, member, 'Pixel 8');
  // the member is told by SMS that a device was enrolled (and nothing more)
  let notice;
  for (let i = 0; i < 50 && !notice; i++) {
    const list = await (await fetch(`${stack.simUrl}/phone/${member.phone}/sms`)).json();
    notice = list.find((m) => m.body === msg('tp.device_enrolled_sms'));
    if (!notice) await sleep(100);
  }
  assert.ok(notice, 'the enrolment notice reached the member\'s phone');
  assert.ok(!notice.code && !notice.body.includes('Pixel') && !notice.body.includes(dev.device), 'no code, device name or id in it');
  const refused = async (what, d, opts) => {
    const r = await tpapp.answer(stack, qr, d, { number, ...opts });
    assert.equal(r.status, 401, `${what}: ${JSON.stringify(r.body)}`);
    await pending();
    return r.body.error;
  };
  // another key under this device's id; a signature over other data
  const thief = tpapp.deviceKey();
  assert.equal(await refused('another key', { device: dev.device, privateKey: thief.privateKey }), 'invalid_signature');
  const other = String(((Number(number) - 10 + 45) % 90) + 10);
  assert.equal(await refused('another number signed', dev, { over: { number: Number(other) } }), 'invalid_signature');
  assert.equal(await refused('another challenge signed', dev, { over: { challenge: 'B'.repeat(43) } }), 'invalid_signature');
  assert.equal(await refused('another nonce', dev, { nonce: 'C'.repeat(43) }), 'invalid_signature');
  assert.equal(await refused('no nonce', dev, { over: { nonce: undefined } }), 'invalid_signature');
  assert.equal(await refused('a deny signed, an approval sent', dev, { over: { decision: 'deny' } }), 'invalid_signature');
  assert.equal(await refused('signed for the app link', dev, { over: { via: 'link' } }), 'invalid_signature');
  assert.equal(await refused('an hour old', dev, { over: { iat: Math.floor(Date.now() / 1000) - 3600 } }), 'invalid_signature');
  assert.equal(await refused('no time', dev, { over: { iat: undefined } }), 'invalid_signature');
  assert.equal(await refused('another device\'s id signed', dev, { over: { device: 'D'.repeat(43) } }), 'invalid_signature');
  assert.equal(await refused('an unknown device', { device: 'E'.repeat(43), privateKey: dev.privateKey }), 'unknown_device');
  // alg none: not ES256
  const d = await tpapp.details(stack, qr);
  const payload = { challenge: qr.split('/').pop(), device: dev.device, decision: 'approve', number: Number(number), nonce: d.body.nonce, iat: Math.floor(Date.now() / 1000) };
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const none = await approveDirect(stack, { qr, device: dev.device, decision: 'approve', number, signature: `${b64({ alg: 'none' })}.${b64(payload)}.` });
  assert.equal(none.status, 401);
  assert.equal(none.body.error, 'invalid_signature');
  await pending();

  // revoked (issoctl, as the member's account page will): refused alike
  const listed = await stack.issoctl(['member', 'device', 'list', '--account', member.account]);
  assert.equal(listed.length, 1);
  assert.equal(listed[0].device, dev.device);
  assert.equal(listed[0].name, 'Pixel 8');
  assert.equal(listed[0].revoked, false);
  const rv = await stack.issoctl(['member', 'device', 'revoke', '--account', member.account, '--device', dev.device]);
  assert.equal(rv.revoked, 1);
  assert.equal(await refused('a revoked device', dev), 'unknown_device');
  const again = await stack.issoctl(['member', 'device', 'revoke', '--account', member.account, '--device', dev.device], { allowFailure: true });
  assert.equal(again.failed, true, 'revoking twice: no such device in use');
  assert.equal((await stack.issoctl(['member', 'device', 'list', '--account', member.account]))[0].revoked, true);

  // a new enrolment approves, once
  const dev2 = await tpapp.enrolled(stack, member);
  const ok = await tpapp.answer(stack, qr, dev2, { number });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.deepEqual(ok.body, { result: 'approved' });
  const replay = await tpapp.answer(stack, qr, dev2, { number });
  assert.equal(replay.status, 409);
  const st = await appStatus(agent, t);
  const { tokens, claims } = await finish(agent, a, st.body.next);
  const ui = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(ui.uuid, member.uuid, 'the member whose device signed');
  const audit = await stack.issoctl(['audit', 'export']);
  assert.ok(audit.some((e) => e.event === 'tpapp_device_enrolled' && e.data.uuid === member.uuid && e.data.device === dev2.device));
  assert.ok(audit.some((e) => e.event === 'tpapp_device_revoked' && e.data.device === dev.device));
});

test('enrolment: only a P-256 public key, at most 10 devices in use, never by a wrong password', T, async () => {
  const member = await stack.addUser({ account: 'enrol.member', password: 'Enrol-pass-42', phone: '0912000885' });
  const key = tpapp.deviceKey();
  const cases = [
    ['no key', undefined],
    ['a string', 'key'],
    ['P-384', crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' })],
    ['an RSA key', crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' })],
    ['the private part', crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' })],
    ['off the curve', { ...key.jwk, y: key.jwk.x }],
    ['a short coordinate', { ...key.jwk, x: 'AAAA' }],
  ];
  for (const [what, jwk] of cases) {
    const r = await tpapp.enrol(stack, { account: member.account, password: member.password, jwk });
    assert.equal(r.status, 400, `${what}: ${JSON.stringify(r.body)}`);
    assert.deepEqual(r.body, { error: 'invalid_key' }, what);
  }
  const noPw = await tpapp.enrol(stack, { account: member.account, jwk: key.jwk });
  assert.equal(noPw.status, 400);
  const longName = await tpapp.enrol(stack, { account: member.account, password: member.password, jwk: key.jwk, name: 'x'.repeat(65) });
  assert.equal(longName.status, 400);
  const unknown = await tpapp.enrol(stack, { account: 'no.such.member', password: member.password, jwk: key.jwk });
  assert.equal(unknown.status, 401);
  assert.deepEqual(unknown.body, { error: 'invalid_credentials' });
  // ten devices in use, then no more until one is revoked
  const devices = [];
  for (let i = 0; i < 10; i++) devices.push(await tpapp.enrolled(stack, member, `phone ${i}`));
  const eleventh = await tpapp.enrol(stack, { account: member.account, password: member.password, jwk: key.jwk });
  assert.equal(eleventh.status, 409);
  assert.deepEqual(eleventh.body, { error: 'too_many_devices' });
  await stack.issoctl(['member', 'device', 'revoke', '--account', member.account, '--device', devices[0].device]);
  const again = await tpapp.enrol(stack, { account: member.account, password: member.password, jwk: key.jwk });
  assert.equal(again.status, 201, JSON.stringify(again.body));
  const all = await stack.issoctl(['member', 'device', 'revoke', '--account', member.account, '--all']);
  assert.equal(all.revoked, 10);
});

test('isso-sim: enrol keeps one device key per account in its state folder; answers reuse it', T, async () => {
  const member = await stack.addUser({ account: 'sim.enrol', password: 'Sim-enrol-42', phone: '0912000884' });
  const e = await simTpapp(['enrol', '--account', member.account, '--password', member.password, '--issod', `${stack.issuer}/`, '--name', 'sim phone']);
  assert.equal(e.code, 0, `${e.stderr} ${JSON.stringify(e.out)}`);
  assert.equal(e.out.status, 201);
  const kept = fs.readdirSync(simState).filter((f) => f.startsWith('tpapp-'));
  for (const f of kept) assert.equal(fs.statSync(path.join(simState, f)).mode & 0o077, 0, `${f} is private`);
  const file = kept.map((f) => JSON.parse(fs.readFileSync(path.join(simState, f), 'utf8'))).find((k) => k.account === member.account);
  assert.equal(file.device, e.out.device);
  assert.equal(file.issod, stack.issuer);
  // two answers, no password given: the kept key signs both
  for (let i = 0; i < 2; i++) {
    const agent = new HttpAgent();
    const { res, qr } = await toQr(agent, await startAuth());
    const r = await simTpapp(['approve', qr, '--account', member.account, '--pick', numberOf(res)]);
    assert.equal(r.code, 0, `${r.stderr} ${JSON.stringify(r.out)}`);
  }
  const devices = await stack.issoctl(['member', 'device', 'list', '--account', member.account]);
  assert.deepEqual(devices.map((d) => [d.device, d.name, d.revoked]), [[e.out.device, 'sim phone', false]]);
  // the running simulator's enrolment; a wrong password is issod's 401
  const h = await simHttp('enrol', { issod: stack.issuer, account: member.account, password: member.password });
  assert.equal(h.status, 201, JSON.stringify(h.body));
  const w = await simHttp('enrol', { issod: stack.issuer, account: member.account, password: 'Wrong-pass-9' });
  assert.equal(w.status, 401);
  assert.equal(w.body.error, 'invalid_credentials');
  const u = await simTpapp(['enrol', '--account', member.account]);
  assert.equal(u.code, 2, 'enrol needs --issod');
});

test('a challenge belongs to its own login', T, async () => {
  const agentA = new HttpAgent();
  const agentB = new HttpAgent();
  const a = await startAuth();
  const b = await startAuth();
  const A = await toQr(agentA, a);
  const B = await toQr(agentB, b);
  assert.notEqual(A.qr, B.qr);
  const r = await simHttp('approve', { qr: A.qr, account: WANG.taipeipass.account, pick: numberOf(A.res) });
  assert.equal(r.status, 200);
  assert.equal((await appStatus(agentB, B.t)).body.state, 'pending', 'B is not approved by A\'s code');
  const bDone = await agentB.followUntil(stack.url(`/login/taipeipass/app-done?t=${B.t}`), isRp);
  assert.equal(pathOf(bDone.url), '/login/taipeipass/app', 'B is not logged in');
  // B's browser cannot take A's login either
  const stolen = await agentB.get(stack.url(`/login/taipeipass/app-done?t=${A.t}`));
  assert.notEqual(stolen.status, 303);
  assert.ok(!stolen.location || pathOf(stack.url(stolen.location)) !== '/consent');
  const st = await appStatus(agentA, A.t);
  assert.equal(st.body.state, 'approved');
  await finish(agentA, a, st.body.next);
});

test('same phone: a phone browser gets the app link first; the app returns it to app-return → consent (acr low, amr swk)', T, async () => {
  const agent = new HttpAgent({ userAgent: PHONE_UA });
  const a = await startAuth();
  const { res, t, qr } = await toQr(agent, a);
  const link = linkOf(res);
  assert.equal(link.split('/').pop(), qr.split('/').pop(), 'the same challenge as the QR code');
  assert.ok(res.text.indexOf('id="tp-app-open"') < res.text.indexOf('data-qr='), 'on a phone the app link comes before the QR code');
  assert.match(res.text, /class="btn btn-primary" href="isso-tpapp:[^"]+" id="tp-app-open"/, 'and is the primary action');
  // a computer gets the QR code first, and the link as the other way
  const desk = await toQr(new HttpAgent(), await startAuth());
  assert.ok(desk.res.text.indexOf('id="tp-app-open"') > desk.res.text.indexOf('data-qr='), 'on a computer the QR code comes first');
  linkOf(desk.res);
  // client hints win over the User-Agent
  const hinted = await agent.get(stack.url(`/login/taipeipass/app?t=${t}`), { headers: { 'sec-ch-ua-mobile': '?0' } });
  assert.ok(hinted.text.indexOf('id="tp-app-open"') > hinted.text.indexOf('data-qr='), 'Sec-CH-UA-Mobile: ?0 → the QR code first');

  const open = await simTpapp(['open-link', link, '--account', WANG.taipeipass.account]);
  assert.equal(open.code, 0, `isso-sim: ${open.stderr} ${JSON.stringify(open.out)}`);
  assert.equal(open.out.result, 'approved');
  assert.equal(open.out.service, SERVICE);
  const ret = new URL(open.out.return_url);
  assert.equal(ret.origin, stack.issuer);
  assert.equal(ret.pathname, '/login/taipeipass/app-return');
  assert.equal(ret.searchParams.get('t'), t);
  assert.match(ret.searchParams.get('r'), /^[A-Za-z0-9_-]{43}$/);
  // the polling page does not complete an approval made through the link
  const st = await appStatus(agent, t);
  assert.equal(st.body.state, 'returning');
  assert.equal(st.body.next, undefined, 'no next for the polling page');
  const done = await agent.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  assert.equal(pathOf(done.url), '/login/taipeipass/app', 'app-done does not take a link approval');
  // a wrong return code does not complete it either, nor use it up
  const wrongRet = new URL(ret);
  wrongRet.searchParams.set('r', 'B'.repeat(43));
  const w = await agent.get(wrongRet.href);
  assert.equal(w.status, 400);
  assert.ok(w.pageText().includes(msg('tp.app_return_invalid')));
  // the browser that started the login, with the app's code: done
  const r = await agent.followUntil(ret.href, isRp);
  const cb = r.stopped ? r.url : await allow(agent, r.res);
  const tokens = await client.authorizationCodeGrant(a.conf, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  });
  assert.equal(tokens.claims().acr, ACR_LOW);
  assert.deepEqual(tokens.claims().amr, ['swk']);
  // once
  const again = await agent.get(ret.href);
  assert.notEqual(again.status, 303);
});

test('same phone: a forwarded app link completes nothing for the one who forwarded it', T, async () => {
  // the phisher starts a login and sends the victim its app link
  const phisher = new HttpAgent({ userAgent: PHONE_UA });
  const a = await startAuth();
  const { res, t } = await toQr(phisher, a);
  const link = linkOf(res);
  // the victim's app approves it (the victim's own password) and opens
  // the return URL in the victim's browser
  const open = await simTpapp(['open-link', link, '--account', WANG.taipeipass.account]);
  assert.equal(open.code, 0, JSON.stringify(open.out));
  const victim = new HttpAgent({ userAgent: PHONE_UA });
  const v = await victim.followUntil(open.out.return_url, isRp);
  assert.equal(v.res.status, 400, 'the victim\'s browser does not hold the login');
  assert.ok(!v.stopped && pathOf(v.url) !== '/consent');
  // the phisher's page never moves on, by polling or by asking
  const st = await appStatus(phisher, t);
  assert.equal(st.body.state, 'returning');
  assert.equal(st.body.next, undefined);
  const done = await phisher.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  assert.equal(pathOf(done.url), '/login/taipeipass/app');
  assert.ok(done.res.pageText().includes(msg('tp.app_returning')));
  const qf = done.res.forms().find((f) => f.buttons.some((b) => b.value === 'check'));
  const check = await phisher.submit(qf, {}, qf.buttons.find((b) => b.value === 'check'), isRp);
  assert.ok(!check.stopped && pathOf(check.url) === '/login/taipeipass/app', 'the check button does not complete it');
  for (const r of [undefined, '', 'A'.repeat(43), 'x'.repeat(500)]) {
    const u = stack.url(`/login/taipeipass/app-return?t=${t}${r === undefined ? '' : `&r=${r}`}`);
    const g = await phisher.get(u);
    assert.equal(g.status, 400, `app-return with r=${r}`);
  }
  // a link approval needs no number; the QR code's path needs it
  assert.equal(open.out.status, 200);
});

test('without script: "我已在APP完成確認" asks once, then moves on', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { res, qr } = await toQr(agent, a);
  const f = res.forms().find((x) => x.buttons.some((b) => b.value === 'check'));
  const check = f.buttons.find((b) => b.value === 'check');
  assert.equal(check.text, msg('tp.app_check'));
  const waiting = await agent.submit(f, {}, check);
  assert.equal(waiting.res.status, 200);
  assert.ok(waiting.res.pageText().includes(msg('tp.app_waiting')));
  await simHttp('approve', { qr, account: WANG.taipeipass.account, pick: numberOf(res) });
  const f2 = waiting.res.forms().find((x) => x.buttons.some((b) => b.value === 'check'));
  const r = await agent.submit(f2, {}, f2.buttons.find((b) => b.value === 'check'), isRp);
  assert.ok(r.stopped || pathOf(r.url) === '/consent', `after the check: ${r.url}`);
});

test('an expired QR code: its own message, then a new one (app_qr_ttl 2 s)', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth({ conf: cfgShort });
  const { t, qr, res } = await toQr(agent, a, stackShort);
  assert.ok(Number(/data-timer="(\d+)"/.exec(res.text)[1]) <= 2);
  await sleep(2500);
  const st = await appStatus(agent, t, stackShort);
  assert.equal(st.body.state, 'expired');
  const page = await agent.get(stackShort.url(st.body.next));
  assert.deepEqual(page.alerts(), [msg('tp.app_expired')]);
  assert.ok(page.links().some((l) => l.text === msg('tp.app_use_password')), 'the password is offered');
  const late = await approveDirect(stackShort, { qr, device: 'A'.repeat(43), signature: 'a.b.c', decision: 'approve', number: numberOf(res) });
  assert.equal(late.status, 404);
  assert.equal(late.body.error, 'expired');
  const f = page.forms().find((x) => x.buttons.some((b) => b.value === 'regenerate'));
  const fresh = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'regenerate'));
  assert.equal(fresh.res.status, 200);
  const qr2 = qrOf(fresh.res, stackShort);
  assert.notEqual(qr2, qr);
  // security.ip_rate_per_min 4 on this stack: the app's answers are limited per address
  let r;
  for (let i = 0; i < 5; i++) r = await approveDirect(stackShort, { qr: qr2, device: 'A'.repeat(43), signature: 'a.b.c', decision: 'approve', number: '10' });
  assert.equal(r.status, 429);
  assert.equal(r.body.error, 'rate_limited');
  for (let i = 0; i < 5; i++) r = await approveDirect(stackShort, { qr: qr2 }, 'details');
  assert.equal(r.status, 429, 'and so are the details');
});

test('hostile input to the app API: a clear 4xx, never a 5xx, and the code stays usable', T, async () => {
  const agent = new HttpAgent();
  const { res, t, qr } = await toQr(agent, await startAuth());
  const ch = qr.split('/').pop();
  const post = async (what, body, type = 'application/json') => {
    const r = await fetch(stack.url(`/app/v1/qr/${what}`), { method: 'POST', headers: { 'content-type': type }, body });
    await r.arrayBuffer();
    return r.status;
  };
  const base = { challenge: ch, device: 'A'.repeat(43), signature: 'a.b.c', decision: 'approve' };
  const cases = [
    ['details', '{'], ['details', '[]'], ['details', 'null'], ['details', JSON.stringify({ challenge: 42 })],
    ['details', JSON.stringify({ challenge: 'x'.repeat(50_000) })], ['details', Buffer.from([0xff, 0xfe, 0x00, 0x80])],
    ['details', 'challenge=%ff%00', 'application/x-www-form-urlencoded'],
    ['approve', JSON.stringify({ ...base, number: 1e300 })], ['approve', JSON.stringify({ ...base, number: -1 })],
    ['approve', JSON.stringify({ ...base, number: '4a' })], ['approve', JSON.stringify({ ...base, number: '１２' })],
    ['approve', JSON.stringify({ ...base, number: [12] })], ['approve', JSON.stringify({ ...base, via: 7 })],
    ['approve', JSON.stringify({ ...base, number: '123' })], ['approve', Buffer.from([0x80, 0x81, 0x82])],
    ['approve', 'x'.repeat(60_000), 'text/plain'],
    ['approve', JSON.stringify({ ...base, number: 12, signature: 'x'.repeat(5000) })],
    ['approve', JSON.stringify({ ...base, number: 12, signature: 42 })],
    ['approve', JSON.stringify({ ...base, number: 12, device: 'short' })],
    ['approve', JSON.stringify({ ...base, number: 12, signature: '..' })],
    ['approve', JSON.stringify({ ...base, number: 12, signature: 'eyJhbGciOiJub25lIn0.e30.' })],
  ];
  for (const [what, body, type] of cases) {
    const status = await post(what, body, type);
    assert.ok(status >= 400 && status < 500, `${what} ${String(body).slice(0, 40)}: ${status}`);
  }
  assert.equal((await appStatus(agent, t)).body.state, 'pending', 'none of it touched the code');
  const ok = await simHttp('approve', { qr, account: WANG.taipeipass.account, pick: numberOf(res) });
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.ok(await stack.healthy());
});

test('app-status is JSON, GET only, for this browser only', T, async () => {
  const agent = new HttpAgent();
  const { t } = await toQr(agent, await startAuth());
  const post = await agent.request(stack.url(`/login/taipeipass/app-status?t=${t}`), { method: 'POST', form: { t } });
  assert.equal(post.status, 405);
  const other = await new HttpAgent().get(stack.url(`/login/taipeipass/app-status?t=${t}`));
  assert.notEqual(other.status, 200);
  const ret = await agent.request(stack.url(`/login/taipeipass/app-return?t=${t}`), { method: 'POST', form: { t } });
  assert.equal(ret.status, 405, 'app-return is GET only');
});

test('browser: 台北通APP登入 (keyboard) → the QR page names the service and the number, polls and moves on by itself → consent, axe', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  // a member who has not consented yet, so the page lands on consent
  const member = await stack.addUser({ account: 'browser.member', password: 'Browser-pass-42', phone: '0912000999' });
  const a = await startAuth();
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/taipeipass?"]').first().click();
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await axeCheck(page, 'the login page with both options');
    // issue 15: the personal app link and the organisation button have names of their own
    assert.notEqual(msg('tp.tab_app'), msg('tp.org_link'));
    assert.equal(await page.getByRole('link', { name: msg('tp.tab_app'), exact: true }).count(), 1);
    // the organisation button says whom it is for (a visually hidden part of its name)
    const orgName = (await page.locator('button#tp-org-link').textContent()).trim();
    assert.ok(orgName.startsWith(msg('tp.org_link')) && orgName.endsWith(msg('tp.org_link_for')), orgName);
    assert.notEqual(orgName, msg('tp.tab_app'));
    assert.equal(await page.getByRole('link', { name: msg('tp.org_link') }).count(), 0);
    await tabTo(page, (el) => el.tag === 'a' && el.text === msg('tp.tab_app'), '台北通APP登入');
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass/app'));
    const img = page.getByRole('img', { name: msg('tp.app_qr_alt') });
    await img.waitFor();
    const box = await img.boundingBox();
    assert.ok(box.width >= 150, `the QR code is large enough (${box.width})`);
    const shown = await page.locator('#tp-service').innerText();
    assert.ok(shown.includes(SERVICE), `the service name: ${shown}`);
    const number = (await page.locator('#tp-number').innerText()).trim();
    assert.match(number, /^\d{2}$/);
    const c1 = Number(await page.locator('#qr-timer .timer-secs').innerText());
    await sleep(1200);
    const c2 = Number(await page.locator('#qr-timer .timer-secs').innerText());
    assert.ok(c2 < c1, `the countdown runs (${c1} → ${c2})`);
    await axeCheck(page, 'the QR page');
    await shots.take(t, page, 'tpapp-qr');
    const qr = decodeEntities(await page.locator('[data-qr]').getAttribute('data-qr'));
    const navigations = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(new URL(f.url()).pathname); });
    const r = await simHttp('approve', { qr, account: member.account, password: member.password, pick: number });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await page.waitForURL(onIssuer('/consent'), { timeout: limit(10_000) });
    assert.deepEqual(navigations.filter((p) => p !== '/login/taipeipass/app-done'), ['/consent'], 'the page moved on by itself');
    await axeCheck(page, 'the consent page');
  } finally {
    await context.close();
  }
});

test('browser on a phone (390×844, keyboard only): 用台北通 APP 登入 opens the app, which returns to this browser → consent; axe', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const member = await stack.addUser({ account: 'phone.member', password: 'Phone-pass-42', phone: '0912000997' });
  const a = await startAuth();
  const { context, page } = await newPage(browser, {
    viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, userAgent: PHONE_UA, locale: 'zh-TW',
  });
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await tabTo(page, (el) => el.tag === 'a' && (el.href || '').startsWith('/login/taipeipass?'), '台北通');
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await tabTo(page, (el) => el.tag === 'a' && el.text === msg('tp.tab_app'), '台北通APP登入');
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass/app'));
    await page.getByRole('heading', { name: msg('tp.app_link_heading') }).waitFor();
    await axeCheck(page, 'the app page on a phone');
    await assertNoHorizontalScroll(page, 'the app page on a phone');
    await shots.take(t, page, 'tpapp-phone');
    // the first control after the tabs is the app link; the QR code is still offered
    const el = await tabTo(page, (e) => e.tag === 'a' && e.text === msg('tp.app_open'), '用台北通 APP 登入', 6);
    assert.match(el.href, /^isso-tpapp:/);
    await page.getByRole('heading', { name: msg('tp.app_qr_other') }).waitFor();
    await page.getByRole('img', { name: msg('tp.app_qr_alt') }).waitFor();
    // the phone's app takes the link (the browser cannot open isso-tpapp:)
    const open = await simTpapp(['open-link', el.href, '--account', member.account, '--password', member.password]);
    assert.equal(open.code, 0, JSON.stringify(open.out));
    await sleep(2500); // the page's polling sees "returning" and stays put
    assert.equal(new URL(page.url()).pathname, '/login/taipeipass/app', 'the waiting page does not complete a link approval');
    // …and brings the citizen back to this browser
    await page.goto(open.out.return_url);
    await page.waitForURL(onIssuer('/consent'));
    await axeCheck(page, 'the consent page on a phone');
    await assertNoHorizontalScroll(page, 'the consent page on a phone');
  } finally {
    await context.close();
  }
});

test('browser: a wrong pick shows its message (focused, axe), and the keyboard makes a new code', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const a = await startAuth();
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    const tParam = new URL(page.url()).searchParams.get('t');
    await page.goto(stack.url(`/login/taipeipass/app?t=${tParam}`));
    const qr = decodeEntities(await page.locator('[data-qr]').getAttribute('data-qr'));
    const number = (await page.locator('#tp-number').innerText()).trim();
    const show = await simTpapp(['show', qr]);
    const r = await simHttp('approve', { qr, account: WANG.taipeipass.account, pick: wrongPick(show.out.choices, number) });
    assert.equal(r.status, 403);
    // the waiting page notices by itself and shows the refusal
    await page.getByRole('alert').filter({ hasText: msg('tp.app_wrong_number') }).waitFor({ timeout: limit(10_000) });
    await waitForFocus(page, () => document.activeElement?.id === 'error-summary');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'error-summary', 'focus on the message');
    await axeCheck(page, 'the wrong-number page');
    await shots.take(t, page, 'tpapp-wrong-number');
    await tabTo(page, (el) => el.tag === 'button' && el.value === 'regenerate', 'make a new QR code');
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass/app'));
    await page.locator('#tp-number').waitFor();
    const qr2 = decodeEntities(await page.locator('[data-qr]').getAttribute('data-qr'));
    assert.notEqual(qr2, qr, 'a new code');
  } finally {
    await context.close();
  }
});

test('issod is still healthy', T, async () => {
  assert.ok(await stack.healthy());
  assert.ok(await stackShort.healthy());
});
