// The TaipeiPass app QR login (台北通APP掃描QR code登入): the login page's
// 點擊掃描QRcode進行登入, a QR code carrying a one-time challenge that
// isso-sim's TaipeiPass app answers at issod's POST /app/v1/qr/approve
// (through `isso-sim phone tpapp …` and the sim's phone HTTP API), the
// page's polling, and the outcomes: approved (acr substantial, amr swk
// mca), denied, expired, a wrong app password (with the lockout the
// password page shares), a replayed approval, a challenge of another
// login, and acr_values=substantial (the password is not offered, and a
// password login is refused). Once in headless Chromium with axe.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, REPO, BUILD_DIR, limit, redirectParams, sameEndpoint, sleep, decodeEntities,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots,
} from './lib/browser.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid uuid profile phone email';
const ACR_LOW = 'urn:isso:loa:low';
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
const shots = new Screenshots();

async function setupClient(s) {
  const c = await s.registerClient({
    name: '臺北市測試機關', purpose: '台北通APP整合測試', redirectUris: [RP], scope: SCOPE,
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
  if (!NO_BROWSER) browser = await launchBrowser();
}, { timeout: limit(60_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (stackShort) await stackShort.stop({ check: false });
  if (stack) await stack.stop({ check: false });
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

/** `isso-sim phone tpapp ARGS`: {code, out}. */
function simTpapp(args) {
  return new Promise((resolve) => {
    execFile(path.join(BUILD_DIR, 'isso-sim'), ['phone', 'tpapp', ...args],
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

/** issod's app endpoint, directly: {status, body}. */
async function approveDirect(s, fields) {
  const res = await fetch(s.url('/app/v1/qr/approve'), {
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
  assert.equal(claims.acr, ACR_SUBSTANTIAL, 'acr substantial');
  assert.deepEqual([...claims.amr].sort(), ['mca', 'swk'], `amr ${JSON.stringify(claims.amr)}`);
  return { tokens, claims };
}

// ---------------------------------------------------------------- tests

test('acr_values=substantial: the card is shown, only the QR code is offered; approved by `isso-sim phone tpapp` (CLI) → acr substantial, amr swk mca', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth({ extra: { acr_values: ACR_SUBSTANTIAL } });
  const { res: login } = await toLogin(agent, a);
  assert.ok(!login.forms().some((f) => f.has('password')), 'no password form');
  assert.ok(login.pageText().includes(msg('tp.app_only')), 'says why');
  const { res, t, qr } = await toQr(agent, a);
  assert.ok(!res.links().some((l) => l.text === msg('tp.app_use_password')), 'no way back to the password');
  assert.match(res.text, /<svg [^>]*role="img"/, 'an inline SVG QR code');
  assert.match(res.text, /data-poll="\/login\/taipeipass\/app-status\?t=/);
  const seconds = Number(/id="qr-timer" data-timer="(\d+)"/.exec(res.text)?.[1]);
  assert.ok(seconds >= 115 && seconds <= 120, `countdown ${seconds}`);
  const qf = res.forms().find((f) => f.buttons.some((b) => b.value === 'check'));
  assert.ok(qf && qf.buttons.some((b) => b.value === 'regenerate'), 'check and regenerate buttons');

  const first = await appStatus(agent, t);
  assert.equal(first.status, 200);
  assert.equal(first.body.state, 'pending');
  assert.equal(first.body.next, undefined);
  const early = await agent.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  assert.equal(pathOf(early.url), '/login/taipeipass/app', 'no login before the approval');

  // the sim finds the password in sim/identities.json; issod from the QR
  const cli = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account]);
  assert.equal(cli.code, 0, `isso-sim: ${cli.stderr} ${JSON.stringify(cli.out)}`);
  assert.equal(cli.out.result, 'approved');
  // replaying the approval: one use
  const again = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account]);
  assert.equal(again.code, 1);
  assert.equal(again.out.error, 'already_used');

  const done = await appStatus(agent, t);
  assert.equal(done.body.state, 'approved');
  const { claims } = await finish(agent, a, done.body.next);
  assert.ok(claims.sub);

  // after the login the challenge is gone
  const late = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account]);
  assert.equal(late.code, 1);
  assert.equal(late.out.error, 'expired');
});

test('from the password page (acr low): approved through the sim phone HTTP API; userinfo is the member', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth({ extra: { acr_values: ACR_LOW } });
  const { res: login } = await toLogin(agent, a);
  assert.ok(login.forms().some((f) => f.has('password')), 'the password form');
  assert.ok(login.pageText().includes(msg('tp.tab_password')), '帳號登入');
  const { t, qr, res } = await toQr(agent, a);
  assert.ok(res.links().some((l) => l.text === msg('tp.app_use_password')), 'the password is offered');
  const r = await simHttp('approve', { qr, account: WANG.taipeipass.account });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  assert.equal(r.body.result, 'approved');
  const replay = await simHttp('approve', { qr, account: WANG.taipeipass.account, password: WANG.taipeipass.password });
  assert.equal(replay.status, 409);
  assert.equal(replay.body.error, 'already_used');
  const denyAfter = await simHttp('deny', { qr, account: WANG.taipeipass.account });
  assert.equal(denyAfter.status, 409, 'nor a later deny');
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
  const ok = await simHttp('approve', { qr: qr2, account: WANG.taipeipass.account });
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
  const old = await simHttp('approve', { qr, account: WANG.taipeipass.account });
  assert.equal(old.status, 404);
  assert.equal(old.body.error, 'expired');
});

test('a wrong app password is refused; the lockout is the password page\'s', T, async () => {
  const member = await stack.addUser({ account: 'lock.me', password: 'Right-pass-42', phone: '0912000888' });
  const agent = new HttpAgent();
  const a = await startAuth();
  const { t, qr } = await toQr(agent, a);
  const wrong = await simTpapp(['approve', qr, '--account', member.account, '--password', 'Wrong-pass-1']);
  assert.equal(wrong.code, 1);
  assert.equal(wrong.out.error, 'invalid_credentials');
  assert.equal(wrong.out.status, 401);
  assert.equal((await appStatus(agent, t)).body.state, 'pending', 'still waiting');
  const unknown = await simHttp('approve', { qr, account: 'no.such.account' });
  assert.equal(unknown.status, 404, 'the sim knows no password for an unknown account');
  // four more (security.max_failures 5): the last one locks
  let last;
  for (let i = 0; i < 4; i++) last = await approveDirect(stack, { qr, account: member.account, password: `Wrong-${i}`, decision: 'approve' });
  assert.equal(last.status, 429);
  assert.equal(last.body.error, 'locked');
  const right = await approveDirect(stack, { challenge: qr.split('/').pop(), account: member.account, password: member.password, decision: 'approve' });
  assert.equal(right.status, 429, 'locked even with the right password');
  // the password page is locked too
  const agent2 = new HttpAgent();
  const { res: login } = await toLogin(agent2, await startAuth());
  const lf = login.forms().find((x) => x.has('password'));
  const r = await agent2.submit(lf, { account: member.account, password: member.password }, null, isRp);
  assert.equal(r.res.status, 429);
  assert.deepEqual(r.res.alerts(), [msg('tp.locked')]);
  // form-encoded answers and bad requests
  const form = await fetch(stack.url('/app/v1/qr/approve'), {
    method: 'POST', body: new URLSearchParams({ qr, account: member.account, password: 'x', decision: 'maybe' }),
  });
  assert.equal(form.status, 400);
  assert.equal((await form.json()).error, 'invalid_request');
});

test('a challenge belongs to its own login', T, async () => {
  const agentA = new HttpAgent();
  const agentB = new HttpAgent();
  const a = await startAuth();
  const b = await startAuth();
  const A = await toQr(agentA, a);
  const B = await toQr(agentB, b);
  assert.notEqual(A.qr, B.qr);
  const r = await simHttp('approve', { qr: A.qr, account: WANG.taipeipass.account });
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

test('acr_values=substantial: a direct POST of the password form is refused by flow_complete', T, async () => {
  const agent = new HttpAgent();
  // a tp-login CSRF token from a low login in the same browser
  const { res: lowLogin } = await toLogin(agent, await startAuth());
  const lf = lowLogin.forms().find((x) => x.has('password'));
  const csrf = lf.controls.find((c) => c.name === 'csrf').value;
  const { t } = await toLogin(agent, await startAuth({ extra: { acr_values: ACR_SUBSTANTIAL } }));
  const res = await agent.postForm(stack.url('/login/taipeipass'), {
    csrf, t, account: WANG.taipeipass.account, password: WANG.taipeipass.password,
  });
  assert.equal(res.status, 403);
  assert.ok(res.pageText().includes(msg('error.loa_too_low')), res.pageText().slice(0, 300));
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
  await simHttp('approve', { qr, account: WANG.taipeipass.account });
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
  const late = await approveDirect(stackShort, { qr, account: 'short.member', password: 'Short-pass-42', decision: 'approve' });
  assert.equal(late.status, 404);
  assert.equal(late.body.error, 'expired');
  const f = page.forms().find((x) => x.buttons.some((b) => b.value === 'regenerate'));
  const fresh = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'regenerate'));
  assert.equal(fresh.res.status, 200);
  const qr2 = qrOf(fresh.res, stackShort);
  assert.notEqual(qr2, qr);
  // security.ip_rate_per_min 4 on this stack: the app's answers are limited per address
  let r;
  for (let i = 0; i < 5; i++) r = await approveDirect(stackShort, { qr: qr2, account: 'short.member', password: 'Wrong-pass', decision: 'approve' });
  assert.equal(r.status, 429);
  assert.equal(r.body.error, 'rate_limited');
});

test('app-status is JSON, GET only, for this browser only', T, async () => {
  const agent = new HttpAgent();
  const { t } = await toQr(agent, await startAuth());
  const post = await agent.request(stack.url(`/login/taipeipass/app-status?t=${t}`), { method: 'POST', form: { t } });
  assert.equal(post.status, 405);
  const other = await new HttpAgent().get(stack.url(`/login/taipeipass/app-status?t=${t}`));
  assert.notEqual(other.status, 200);
});

test('browser: 點擊掃描QRcode進行登入 → the QR page polls and moves on by itself → consent, axe', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
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
    await page.getByRole('link', { name: msg('tp.tab_app') }).click();
    await page.waitForURL(onIssuer('/login/taipeipass/app'));
    const img = page.getByRole('img', { name: msg('tp.app_qr_alt') });
    await img.waitFor();
    const box = await img.boundingBox();
    assert.ok(box.width >= 150, `the QR code is large enough (${box.width})`);
    const c1 = Number(await page.locator('#qr-timer .timer-secs').innerText());
    await sleep(1200);
    const c2 = Number(await page.locator('#qr-timer .timer-secs').innerText());
    assert.ok(c2 < c1, `the countdown runs (${c1} → ${c2})`);
    await axeCheck(page, 'the QR page');
    await shots.take(t, page, 'tpapp-qr');
    const qr = decodeEntities(await page.locator('[data-qr]').getAttribute('data-qr'));
    const navigations = [];
    page.on('framenavigated', (f) => { if (f === page.mainFrame()) navigations.push(new URL(f.url()).pathname); });
    const r = await simHttp('approve', { qr, account: member.account, password: member.password });
    assert.equal(r.status, 200);
    await page.waitForURL(onIssuer('/consent'), { timeout: limit(10_000) });
    assert.deepEqual(navigations.filter((p) => p !== '/login/taipeipass/app-done'), ['/consent'], 'the page moved on by itself');
    await axeCheck(page, 'the consent page');
  } finally {
    await context.close();
  }
});

test('issod is still healthy', T, async () => {
  assert.ok(await stack.healthy());
  assert.ok(await stackShort.healthy());
});
