// A keyboard-only citizen in headless Chromium: every step is reached with
// Tab and used with Enter, Space and typing, never a click. After each load
// and each error the test asserts where focus is; Enter in a field submits
// the form's primary action; the time limits (QR codes, the SMS code) are
// said once in the polite live region at the warning and at expiry; the
// language switch keeps the login; an English browser goes from the demo
// agency to the claims in English. axe-core runs on every state.
//
// The time limits are short on this stack (security.otp_ttl 40 s,
// twfido.time_limit 30 s, taipeipass.app_qr_ttl 25 s, telecom.window 25 s)
// so the warnings (20 s before a QR code expires, 60 s before the SMS code
// does: at once here) and the expiries come within the test's time.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, Daemon, waitReady, freePort, HttpAgent, REPO, limit, sameEndpoint, sleep, startTestServer,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots, tabTo,
} from './lib/browser.mjs';

let RP; // the agency's callback: a local server answering "agency"
let rpServer;
const SCOPE = 'openid uuid profile phone email id_number birthdate';
const CLIENT_NAME = '臺北市鍵盤測試機關';
const ZH = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const EN = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'en.json'), 'utf8'));
const T = { timeout: limit(120_000), skip: NO_BROWSER };

// isso-sim's citizens (sim/identities.json)
const MOICA_ENROLLED = ['A123456789', 'H187654320'];
const TELECOM = { id: 'A123456789', phone: '0912345678', birthdate: '1985-03-14', roc: '民國74-03-14', carrier: 'cht' };

let stack;
let cfg;
let demo;
let demoUrl;
let browser;
const shots = new Screenshots();

function msg(key, lang = 'zh') {
  const m = (lang === 'en' ? EN : ZH)[key];
  assert.ok(typeof m === 'string', `no message ${key}`);
  return m;
}

before(async () => {
  if (NO_BROWSER) return;
  rpServer = await startTestServer((req, body, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('agency');
  });
  RP = `${rpServer.url}/cb`;
  stack = await startStack({
    label: 'keyboard',
    pki: true, // the mobile certificate is checked against the test PKI
    env: {
      ISSO_SECURITY_OTP_TTL: '40',
      ISSO_TWFIDO_TIME_LIMIT: '30',
      ISSO_TAIPEIPASS_APP_QR_TTL: '25',
      ISSO_TELECOM_WINDOW: '25',
    },
  });
  const c = await stack.registerClient({
    name: CLIENT_NAME, purpose: '以鍵盤完成每一種登入方式', redirectUris: [RP], scope: SCOPE,
  });
  cfg = await client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });

  // the demo agency, for the English browser end to end
  const port = await freePort();
  demoUrl = `http://127.0.0.1:${port}`;
  const d = await stack.registerClient({
    name: '示範機關線上服務', purpose: '示範：以 iSSO 登入並顯示取得的資料',
    redirectUris: [`${demoUrl}/callback`], postLogoutRedirectUri: `${demoUrl}/`,
    scope: 'openid uuid profile id_number phone email birthdate',
  });
  const clientFile = path.join(stack.tmp, 'demo-client.json');
  fs.writeFileSync(clientFile, JSON.stringify({ client_id: d.client_id, client_secret: d.client_secret }));
  demo = new Daemon('demo', process.execPath, [path.join(REPO, 'demo', 'agency.mjs')], {
    cwd: REPO,
    env: { PATH: process.env.PATH, DEMO_PORT: String(port), DEMO_ISSUER: stack.issuer, DEMO_CLIENT_FILE: clientFile },
  });
  await waitReady(demo, `${demoUrl}/health`);
  browser = await launchBrowser();
}, { timeout: limit(60_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (demo) await demo.stop();
  if (stack) await stack.stop({ check: false });
  await rpServer?.close();
  shots.report();
});

// ---------------------------------------------------------------- helpers

async function startAuth(extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  return client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: SCOPE, state: client.randomState(), nonce: client.randomNonce(), ...extra,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
}

const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;

async function openBrowser(opts = {}) {
  return newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW', ...opts });
}

/** What has focus: {id, role, tag, name, value}. */
function focused(page) {
  return page.evaluate(() => {
    const a = document.activeElement;
    return a ? { id: a.id, role: a.getAttribute('role'), tag: a.tagName.toLowerCase(), name: a.getAttribute('name'), value: a.value ?? null } : null;
  });
}

/** Waits until the element with id has focus. */
async function focusIs(page, id, what) {
  try {
    await page.waitForFunction((x) => document.activeElement?.id === x, id, { timeout: limit(5000) });
  } catch {
    assert.fail(`${what}: focus is on ${JSON.stringify(await focused(page))}, not #${id}`);
  }
}

/** After a form error: focus on the summary, the title says so. */
async function assertErrorState(page, what, lang = 'zh') {
  await focusIs(page, 'error-summary', what);
  assert.equal(await page.locator('#error-summary').getAttribute('role'), 'alert', `${what}: the summary is an alert`);
  assert.ok((await page.title()).startsWith(msg('error.title_prefix', lang)), `${what}: the title starts with the error prefix (${await page.title()})`);
}

/** Tab to the field named name and type text into it. */
async function typeInto(page, name, text) {
  await tabTo(page, (el) => el.name === name && (el.tag === 'input' || el.tag === 'textarea'), `the ${name} field`);
  await page.keyboard.type(text);
}

/** Tab to the button whose text is label and press key (Enter or Space). */
async function pressButton(page, label, key = 'Enter') {
  await tabTo(page, (el) => el.tag === 'button' && el.text === label, `the button ${label}`);
  await page.keyboard.press(key);
}

/** Tab to the link whose href matches re and press Enter. */
async function followLink(page, re, what) {
  await tabTo(page, (el) => el.tag === 'a' && el.href != null && re.test(el.href), what, 80);
  await page.keyboard.press('Enter');
}

const announced = (page) => page.locator('#countdown-announcer').textContent();

/** Waits until the polite live region says text. */
async function waitAnnounced(page, text, ms, what) {
  try {
    await page.waitForFunction((x) => document.getElementById('countdown-announcer')?.textContent === x, text, { timeout: ms });
  } catch {
    assert.fail(`${what}: the live region says "${await announced(page)}", not "${text}"`);
  }
}

async function smsCode(phone) {
  const sms = await stack.readLastSms(phone);
  assert.ok(sms?.code, `no SMS code reached ${phone}`);
  return sms.code;
}

/** Records every text the live region says, in order. */
async function recordLive(page) {
  await page.evaluate(() => {
    window.__said = [];
    const live = document.getElementById('countdown-announcer');
    if (!live) return;
    new MutationObserver(() => { if (live.textContent) window.__said.push(live.textContent); })
      .observe(live, { childList: true, characterData: true, subtree: true });
  });
}
const said = (page) => page.evaluate(() => window.__said ?? []);

/** The phone's TW FidO app approves the newest ticket for id (isso-sim). */
async function mobileApproves(id) {
  const list = await (await fetch(`${stack.simUrl}/phone/mobilecert/pending?id_num=${id}`)).json();
  assert.ok(list.length >= 1, `no pending ticket for ${id}`);
  const res = await fetch(`${stack.simUrl}/phone/mobilecert/approve?ticket=${encodeURIComponent(list[0].sp_ticket)}`, { method: 'POST' });
  assert.equal(res.status, 200, `isso-sim approve: ${await res.text()}`);
}

/** From the method choice to a method's first page, by keyboard. */
async function chooseMethod(page, method) {
  await page.waitForURL(onIssuer('/login'));
  await followLink(page, new RegExp(`^/login/${method}\\?`), `the ${method} card`);
  await page.waitForURL(onIssuer(`/login/${method}`));
}

let phoneSeq = 0;
const newPhone = () => `0937${String(100000 + (phoneSeq += 1) * 37).padStart(6, '0')}`;

// ---------------------------------------------------------------- 台北通

test('台北通 by keyboard: a wrong password focuses the summary, its link the field; the switch keeps the login; Enter logs in', T, async (t) => {
  const user = await stack.addUser({ account: 'kb.member', password: 'Kb-Right-Pass-42', phone: '0955123001', name: '林鍵盤' });
  const { context, page } = await openBrowser();
  try {
    await page.goto((await startAuth()).href);
    await axeCheck(page, 'the method choice');
    await chooseMethod(page, 'taipeipass');
    await axeCheck(page, 'the login page');
    // the personal QR link and the organisation button have names of their own
    const appLink = await page.locator('#tp-app-link').textContent();
    const orgButton = await page.getByRole('button', { name: new RegExp(msg('tp.org_link')) }).first().evaluate((b) => b.textContent);
    assert.notEqual(appLink.trim(), orgButton.trim(), 'two names for two different things');

    await typeInto(page, 'account', user.account);
    await typeInto(page, 'password', 'Kb-Wrong-Pass-1');
    await page.keyboard.press('Enter'); // Enter in the password field: 登入
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await assertErrorState(page, 'a wrong password');
    assert.equal(await page.locator('#account').getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator('#account').getAttribute('aria-describedby'), /account-error/);
    assert.equal(await page.locator('#account').inputValue(), user.account, 'the account stays');
    assert.equal(await page.locator('#password').inputValue(), '', 'the password does not');
    await axeCheck(page, 'the login error');
    await shots.take(t, page, 'tp-login-error');
    // the summary's link moves focus to the field
    await page.keyboard.press('Tab');
    assert.equal((await focused(page)).tag, 'a', 'the first Tab reaches the summary link');
    await page.keyboard.press('Enter');
    await focusIs(page, 'account', 'the summary link');

    // the language switch after the failed POST keeps the login
    await followLink(page, /lang=en/, 'the language switch');
    await page.waitForURL((u) => u.searchParams.get('lang') === 'en');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    assert.equal(new URL(page.url()).pathname, '/login/taipeipass', 'still the login page, not an error');
    assert.ok(new URL(page.url()).searchParams.get('t'), 'the login travels with the switch');
    assert.ok(await page.locator('#password').count(), 'the password form is there');
    const cookies = await context.cookies(stack.issuer);
    assert.equal(cookies.find((c) => c.name === 'isso_lang')?.value, 'en', 'the switch sets the language cookie');

    await typeInto(page, 'account', user.account);
    await typeInto(page, 'password', user.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/consent'));
    await axeCheck(page, 'consent in English');
    assert.equal(await page.locator('.consent-client strong').getAttribute('lang'), 'zh-Hant-TW', 'the agency\'s Chinese name is marked');
    const nameCell = page.locator('dd', { hasText: '林鍵盤' });
    assert.equal(await nameCell.getAttribute('lang'), 'zh-Hant-TW', 'the citizen\'s Chinese name is marked');
    await shots.take(t, page, 'tp-consent-en');
    await pressButton(page, msg('consent.allow', 'en'));
    await page.waitForURL((u) => sameEndpoint(u.href, RP));
  } finally {
    await context.close();
  }
});

test('台北通 registration by keyboard: Space ticks the agreement; after an error it stays ticked and the number stays', T, async (t) => {
  const { context, page } = await openBrowser();
  const phone = newPhone();
  try {
    await page.goto((await startAuth()).href);
    await chooseMethod(page, 'taipeipass');
    await followLink(page, /^\/taipeipass\/register/, 'the registration link');
    await page.waitForURL(onIssuer('/taipeipass/register'));
    await axeCheck(page, 'registration');
    await typeInto(page, 'account', 'kbreg01');
    await typeInto(page, 'phone', phone);
    await typeInto(page, 'password', 'Kb-Reg-Pass-42');
    await typeInto(page, 'password2', 'Kb-Reg-Pass-43');
    await tabTo(page, (el) => el.name === 'agree', 'the agreement');
    await page.keyboard.press('Space');
    assert.ok(await page.locator('#agree').isChecked(), 'Space ticks the box');
    await page.keyboard.press('Enter'); // Enter on the form's last field: the primary button
    await page.waitForURL(onIssuer('/taipeipass/register'));
    await assertErrorState(page, 'mismatched passwords');
    assert.equal(await page.locator('#password2').getAttribute('aria-invalid'), 'true');
    assert.ok(await page.locator('#agree').isChecked(), 'the agreement is still ticked');
    assert.equal(await page.locator('#phone').inputValue(), phone, 'the number is still there');
    assert.equal(await page.locator('#password').inputValue(), '', 'passwords are typed again');
    await axeCheck(page, 'the registration error');
    await shots.take(t, page, 'tp-register-error');
    await typeInto(page, 'password', 'Kb-Reg-Pass-42');
    await typeInto(page, 'password2', 'Kb-Reg-Pass-42');
    await page.keyboard.press('Enter');
    await page.locator('#code').waitFor();
    await typeInto(page, 'code', '000000');
    await page.keyboard.press('Enter');
    await page.locator('#error-summary').waitFor();
    await assertErrorState(page, 'a wrong code');
    assert.equal(await page.locator('#code').getAttribute('aria-invalid'), 'true');
    await axeCheck(page, 'a wrong registration code');
  } finally {
    await context.close();
  }
});

test('forgotten password: the SMS code survives an error on the new password; the number survives a bad send', T, async () => {
  const member = await stack.addUser({ account: 'kb.forgot', password: 'Kb-Old-Pass-42', phone: '0955123002' });
  const agent = new HttpAgent();
  const start = await agent.get(stack.url('/taipeipass/forgot'));
  const f1 = start.forms().find((f) => f.has('phone'));
  const bad = await agent.submit(f1, { phone: '09551' });
  assert.equal(bad.res.status, 400);
  assert.equal(bad.res.forms().find((f) => f.has('phone')).value('phone'), '09551', 'what was typed stays to be corrected');
  assert.match(bad.res.text, /id="phone"[^>]*aria-describedby="phone-error"[^>]*aria-invalid="true"/, 'the number is tied to its error');
  const sent = await agent.submit(bad.res.forms().find((f) => f.has('phone')), { phone: member.phone });
  const f2 = sent.res.forms().find((f) => f.has('code'));
  assert.ok(f2, 'the code page');
  const code = await smsCode(member.phone);
  const weak = await agent.submit(f2, { code, password: 'short', password2: 'short' });
  assert.equal(weak.res.status, 400);
  assert.ok(weak.res.title().startsWith(msg('error.title_prefix')));
  const again = weak.res.forms().find((f) => f.has('code'));
  assert.equal(again.value('code'), code, 'the code is not typed twice');
  assert.equal(again.value('password') ?? '', '', 'the password is');
  const done = await agent.submit(again, { password: 'Kb-New-Pass-42', password2: 'Kb-New-Pass-42' });
  assert.equal(done.res.status, 200, done.res.pageText().slice(0, 300));
  assert.ok(done.res.pageText().includes(msg('tp.reset_done')));
});

test('台北通 registration code by keyboard: its time limit is text of its own, warned and said at expiry; focus goes to resend, Enter gives a new code', T, async (t) => {
  const { context, page } = await openBrowser();
  const phone = newPhone();
  try {
    await page.goto(stack.url('/taipeipass/register'));
    await typeInto(page, 'account', 'kbreg02');
    await typeInto(page, 'phone', phone);
    await typeInto(page, 'password', 'Kb-Reg-Pass-42');
    await typeInto(page, 'password2', 'Kb-Reg-Pass-42');
    await tabTo(page, (el) => el.name === 'agree', 'the agreement');
    await page.keyboard.press('Space');
    await page.keyboard.press('Enter');
    await page.locator('#code').waitFor();
    await recordLive(page);
    const timer = page.locator('#code-timer');
    const secs = Number(await timer.getAttribute('data-timer'));
    assert.ok(secs > 30 && secs <= 40, `the code's real time left, from the server (${secs} of otp_ttl 40 s)`);
    assert.equal(await timer.getAttribute('aria-live'), null, 'the ticking text is not live');
    assert.equal(await timer.getAttribute('data-focus'), 'resend-btn');
    assert.ok((await timer.textContent()).startsWith(msg('otp.timer_before')));
    // otp_ttl 40 s is under the 60 s warning: said at once
    await waitAnnounced(page, msg('tp.code_timer_warn'), limit(5000), 'the registration code\'s warning');
    await axeCheck(page, 'the registration code at the warning');
    await shots.take(t, page, 'tp-register-code-warning');
    await waitAnnounced(page, msg('otp.timer_expired'), limit((secs + 4) * 1000), 'the registration code\'s expiry');
    await focusIs(page, 'resend-btn', 'the registration code\'s expiry: the way to a new code');
    // (the warning was said on load, before the recorder; the cool-down's
    // end comes 5 s before the code's)
    assert.deepEqual(await said(page), [msg('otp.can_resend'), msg('otp.timer_expired')], 'the cool-down\'s end and the expiry, nothing while it ticks');
    assert.equal(await timer.textContent(), msg('otp.timer_expired'), 'seen as well as heard');
    await axeCheck(page, 'the registration code expired');
    await page.keyboard.press('Enter'); // 重新發送驗證碼
    await page.waitForLoadState('load');
    await page.locator('#code-timer').waitFor();
    assert.ok(Number(await page.locator('#code-timer').getAttribute('data-timer')) > 30, 'the new code with its full time');
    assert.ok((await page.locator('main').innerText()).includes(msg('otp.resent')));
    await typeInto(page, 'code', await smsCode(phone));
    await page.keyboard.press('Enter');
    await page.getByText(msg('tp.register_done')).waitFor({ timeout: limit(10_000) }); // registered with the new code
  } finally {
    await context.close();
  }
});

test('forgotten password: the code page\'s timer counts the code\'s real time left, a new code restarts it', T, async () => {
  const member = await stack.addUser({ account: 'kb.forgot2', password: 'Kb-Old-Pass-42', phone: '0955123004' });
  const agent = new HttpAgent();
  const timerOf = (res) => {
    const m = /<p class="countdown timer" id="code-timer" data-timer="(\d+)"[^>]* data-warn="([^"]*)"[^>]* data-focus="([^"]*)"/.exec(res.text);
    assert.ok(m, `the code page has its timer (${res.status}): ${res.pageText().slice(0, 300)}`);
    return { secs: Number(m[1]), warn: m[2], focus: m[3] };
  };
  const start = await agent.get(stack.url('/taipeipass/forgot'));
  const sent = await agent.submit(start.forms().find((f) => f.has('phone')), { phone: member.phone });
  const first = timerOf(sent.res);
  assert.ok(first.secs > 35 && first.secs <= 40, `a new code's full time (${first.secs} of otp_ttl 40 s)`);
  assert.equal(first.focus, 'resend-btn', 'at expiry, focus goes to the way to a new code');
  assert.ok(sent.res.text.includes('id="resend-btn"'));
  await sleep(3000);
  const weak = await agent.submit(sent.res.forms().find((f) => f.has('code')), { code: '000000', password: 'short', password2: 'short' });
  assert.equal(weak.res.status, 400);
  const later = timerOf(weak.res);
  assert.ok(later.secs <= first.secs - 2, `the time left goes down (${first.secs} → ${later.secs}), not restarted by an error`);
  // after the 35 s cool-down, a new code: its full time again
  await sleep(33_000);
  const again = weak.res.forms().find((f) => f.has('code'));
  const resent = await agent.submit(again, {}, again.buttons.find((b) => b.name === 'resend'));
  assert.equal(resent.res.status, 200, resent.res.pageText().slice(0, 300));
  const fresh = timerOf(resent.res);
  assert.ok(fresh.secs > 35, `a new code restarts the timer (${fresh.secs})`);
});

// ---------------------------------------------------------------- 行動自然人憑證 and the SMS step

test('行動自然人憑證 by keyboard: the QR warning is said once; the SMS step: Enter sends, Enter verifies, the number stays', T, async (t) => {
  const { context, page } = await openBrowser();
  const id = MOICA_ENROLLED[0];
  const phone = newPhone();
  try {
    await page.goto((await startAuth()).href);
    await chooseMethod(page, 'moica-mobile');
    await axeCheck(page, 'the notice');
    await pressButton(page, msg('mm.next'));
    await page.locator('#error-summary').waitFor();
    await assertErrorState(page, 'the notice without the box');
    await tabTo(page, (el) => el.name === 'agree', 'the box');
    await page.keyboard.press('Space');
    await pressButton(page, msg('mm.next'));
    await page.waitForURL(onIssuer('/login/moica-mobile/id'));
    await typeInto(page, 'id_number', 'A123');
    await page.keyboard.press('Enter');
    await page.locator('#error-summary').waitFor();
    await assertErrorState(page, 'a bad ID');
    assert.equal(await page.locator('#id_number').inputValue(), 'A123', 'the ID stays to be corrected');
    await axeCheck(page, 'the ID error');
    await page.locator('#id_number').evaluate((e) => { e.value = ''; }); // as Ctrl+A, Delete would
    await typeInto(page, 'id_number', id);
    await page.keyboard.press('Enter');

    // the QR code: the timer is text of its own; the warning is said once
    await page.waitForURL(onIssuer('/login/moica-mobile/qr'));
    await recordLive(page);
    assert.equal((await page.locator('#regen-btn').textContent()).trim(), msg('mm.regenerate'), 'the button\'s name has no seconds in it');
    assert.equal(await page.locator('#qr-timer').getAttribute('aria-live'), null, 'the ticking text is not live');
    const secs = Number(await page.locator('#qr-timer').getAttribute('data-timer'));
    assert.ok(secs > 20 && secs <= 30, `the ticket's seconds (${secs})`);
    await waitAnnounced(page, msg('mm.timer_warn'), limit((secs - 20 + 4) * 1000), 'the QR warning');
    await axeCheck(page, 'the QR step at the warning');
    await shots.take(t, page, 'mm-qr-warning');
    await sleep(2000);
    assert.deepEqual(await said(page), [msg('mm.timer_warn')], 'said once, nothing while it ticks');
    await mobileApproves(id);
    await page.waitForURL(onIssuer('/login/moica-mobile/phone'), { timeout: limit(15_000) });

    // the SMS step
    await axeCheck(page, 'the phone step');
    await typeInto(page, 'phone', phone);
    await page.keyboard.press('Enter'); // in the number field: send
    await page.locator('#code').waitFor();
    assert.equal(await page.locator('#phone').inputValue(), phone, 'the number stays after sending');
    // otp_ttl 40 s is under the 60 s warning: said at once, with the way out
    await waitAnnounced(page, msg('otp.timer_warn'), limit(5000), 'the code\'s warning');
    assert.equal((await page.locator('#send-btn').evaluate((b) => b.textContent.replace(/\(\d+\)/, ''))).trim(), msg('otp.resend'));
    await axeCheck(page, 'the code field');
    await shots.take(t, page, 'otp-step');
    await typeInto(page, 'code', '000000');
    await page.keyboard.press('Enter'); // in the code field: verify, even during the cool-down
    await page.locator('#error-summary').waitFor();
    await assertErrorState(page, 'a wrong code');
    assert.equal(await page.locator('#code').getAttribute('aria-invalid'), 'true');
    assert.match(await page.locator('#code').getAttribute('aria-describedby'), /code-error/);
    assert.equal(await page.locator('#phone').inputValue(), phone, 'the number stays after an error');
    await axeCheck(page, 'a wrong code');
    await typeInto(page, 'code', await smsCode(phone));
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/consent'));
    await pressButton(page, msg('consent.allow'));
    await page.waitForURL((u) => sameEndpoint(u.href, RP));
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------- 手機電信驗證

test('手機電信驗證 by keyboard: a 民國 birthdate, the agreement by Space, Enter through the code, the QR warning', T, async (t) => {
  const { context, page } = await openBrowser();
  const p = TELECOM;
  try {
    await page.goto((await startAuth()).href);
    await chooseMethod(page, 'telecom');
    await axeCheck(page, 'the telecom form');
    assert.equal(await page.locator('#birthdate').getAttribute('type'), 'text', 'typed, not a locale-dependent date control');
    await typeInto(page, 'id_number', p.id);
    await typeInto(page, 'phone', p.phone);
    await typeInto(page, 'birthdate', p.roc);
    await tabTo(page, (el) => el.name === 'carrier', 'the carrier');
    await page.keyboard.press('ArrowDown'); // the first carrier: 中華電信
    assert.equal(await page.locator('#carrier').inputValue(), p.carrier);
    await pressButton(page, msg('tel.next'));
    await page.locator('#error-summary').waitFor();
    await assertErrorState(page, 'the form without the agreement');
    assert.equal(await page.locator('#birthdate').inputValue(), p.roc, 'the birthdate as typed stays');
    assert.equal(await page.locator('#agree').getAttribute('aria-invalid'), 'true');
    await page.keyboard.press('Tab');
    await page.keyboard.press('Enter'); // the summary's link
    await focusIs(page, 'agree', 'the summary link to the agreement');
    await page.keyboard.press('Space');
    await pressButton(page, msg('tel.next'));

    await page.waitForURL(onIssuer('/login/telecom/code'));
    assert.ok(Number(await page.locator('#code-timer').getAttribute('data-timer')) > 30, 'the code\'s time limit, as text of its own');
    await waitAnnounced(page, msg('otp.timer_warn'), limit(5000), 'the telecom code\'s warning (otp_ttl 40 s)');
    await axeCheck(page, 'the code page');
    await typeInto(page, 'code', await smsCode(p.phone));
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/login/telecom/qr'));
    await recordLive(page);
    const secs = Number(await page.locator('#qr-timer').getAttribute('data-timer'));
    await waitAnnounced(page, msg('tel.timer_warn'), limit((secs - 20 + 4) * 1000), 'the telecom QR warning');
    await axeCheck(page, 'the QR at the warning');
    await shots.take(t, page, 'tel-qr-warning');
    const link = await page.locator('#open-here').getAttribute('href');
    const u = new URL(link);
    u.searchParams.set('network', 'mobile');
    assert.equal((await fetch(u)).status, 200);
    await page.waitForURL(onIssuer('/consent'), { timeout: limit(10_000) });
    await pressButton(page, msg('consent.allow'));
    await page.waitForURL((x) => sameEndpoint(x.href, RP));
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------- expiry

test('at expiry: the QR pages say so and focus the way to start again (nothing reloads under the message); telecom moves focus to its message', T, async (t) => {
  const pages = [];
  const open = async () => {
    const b = await openBrowser();
    pages.push(b.context);
    await b.page.goto((await startAuth()).href);
    return b.page;
  };
  try {
    // 台北通 app QR code (25 s)
    const app = await open();
    await chooseMethod(app, 'taipeipass');
    await followLink(app, /^\/login\/taipeipass\/app\?/, 'the app link');
    await app.waitForURL(onIssuer('/login/taipeipass/app'));
    await recordLive(app);
    // 行動自然人憑證 QR code (30 s)
    const mm = await open();
    await chooseMethod(mm, 'moica-mobile');
    await tabTo(mm, (el) => el.name === 'agree', 'the box');
    await mm.keyboard.press('Space');
    await pressButton(mm, msg('mm.next'));
    await mm.waitForURL(onIssuer('/login/moica-mobile/id'));
    await typeInto(mm, 'id_number', MOICA_ENROLLED[1]);
    await mm.keyboard.press('Enter');
    await mm.waitForURL(onIssuer('/login/moica-mobile/qr'));
    await recordLive(mm);
    // telecom QR (25 s window)
    const tel = await open();
    await chooseMethod(tel, 'telecom');
    await typeInto(tel, 'id_number', 'A223456781');
    await typeInto(tel, 'phone', '0922000002');
    await typeInto(tel, 'birthdate', '79/7/2');
    await tabTo(tel, (el) => el.name === 'carrier', 'the carrier');
    await tel.keyboard.press('ArrowDown');
    await tel.keyboard.press('ArrowDown'); // 台灣大哥大
    await tabTo(tel, (el) => el.name === 'agree', 'the agreement');
    await tel.keyboard.press('Space');
    await pressButton(tel, msg('tel.next'));
    await tel.waitForURL(onIssuer('/login/telecom/code'));
    await typeInto(tel, 'code', await smsCode('0922000002'));
    await tel.keyboard.press('Enter');
    await tel.waitForURL(onIssuer('/login/telecom/qr'));

    await Promise.all([
      (async () => {
        await waitAnnounced(app, msg('tp.app_timer_warn'), limit(15_000), 'the app QR warning');
        await waitAnnounced(app, msg('tp.app_expired_announce'), limit(35_000), 'the app QR expiry');
        await focusIs(app, 'regen-btn', 'the app QR expiry');
        assert.deepEqual(await said(app), [msg('tp.app_timer_warn'), msg('tp.app_expired_announce')], 'the warning and the expiry, nothing else');
        await axeCheck(app, 'the app QR expired');
        await shots.take(t, app, 'tpapp-expired');
        await sleep(3000);
        assert.equal(new URL(app.url()).pathname, '/login/taipeipass/app', 'no reload swallowed the message');
        const before = new URL(app.url()).searchParams.get('t');
        await app.keyboard.press('Enter'); // 重新產生QR code
        await app.waitForLoadState('load');
        await app.locator('#qr-timer').waitFor();
        assert.ok(Number(await app.locator('#qr-timer').getAttribute('data-timer')) > 20, 'a new code with its full time');
        assert.equal(await app.locator('input[name="t"]').first().inputValue(), before, 'the same login');
      })(),
      (async () => {
        await waitAnnounced(mm, msg('mm.expired_announce'), limit(45_000), 'the mobile certificate QR expiry');
        await focusIs(mm, 'regen-btn', 'the mobile certificate QR expiry');
        assert.deepEqual(await said(mm), [msg('mm.timer_warn'), msg('mm.expired_announce')]);
        await mm.keyboard.press('Enter');
        await mm.waitForLoadState('load');
        await mm.locator('#qr-timer').waitFor();
        assert.equal(new URL(mm.url()).pathname, '/login/moica-mobile/qr');
      })(),
      (async () => {
        // the carrier's window is fixed: at its end the page moves to the
        // message, which takes focus, with the button for a new code
        await tel.waitForURL((u) => u.pathname === '/login/telecom/qr' && u.searchParams.has('t'), { timeout: limit(5000) });
        await tel.locator('#result-expired').waitFor({ timeout: limit(45_000) });
        await focusIs(tel, 'result-expired', 'the telecom expiry');
        assert.ok((await tel.locator('#result-expired').textContent()).includes(msg('tel.expired')));
        await axeCheck(tel, 'the telecom expiry');
        await shots.take(t, tel, 'tel-expired');
      })(),
    ]);
  } finally {
    for (const c of pages) await c.close();
  }
});

test('the SMS code\'s expiry is said, with the way to a new code', T, async () => {
  const { context, page } = await openBrowser();
  const phone = newPhone();
  try {
    await page.goto((await startAuth()).href);
    await chooseMethod(page, 'moica-mobile');
    await tabTo(page, (el) => el.name === 'agree', 'the box');
    await page.keyboard.press('Space');
    await pressButton(page, msg('mm.next'));
    await page.waitForURL(onIssuer('/login/moica-mobile/id'));
    await typeInto(page, 'id_number', MOICA_ENROLLED[0]);
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/moica-mobile/qr'));
    await mobileApproves(MOICA_ENROLLED[0]);
    await page.waitForURL(onIssuer('/login/moica-mobile/phone'), { timeout: limit(15_000) });
    await typeInto(page, 'phone', phone);
    await page.keyboard.press('Enter');
    await page.locator('#code').waitFor();
    await recordLive(page);
    const secs = Number(await page.locator('#code-timer').getAttribute('data-timer'));
    assert.ok(secs > 30 && secs <= 40, `the code's seconds (${secs})`);
    await waitAnnounced(page, msg('otp.timer_expired'), limit((secs + 4) * 1000), 'the code\'s expiry');
    await focusIs(page, 'send-btn', 'the code\'s expiry: the way to a new code');
    await page.keyboard.press('Enter');
    await page.locator('#code').waitFor();
    assert.equal(await page.locator('#phone').inputValue(), phone, 'a new code to the same number');
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------- English, from the demo agency

test('an English browser, end to end from the demo agency: English everywhere, no language cookie set for it', T, async (t) => {
  const user = await stack.addUser({ account: 'kb.english', password: 'Kb-English-42', phone: '0955123003', name: '王英文' });
  const { context, page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'en-US' });
  try {
    await page.goto(`${demoUrl}/`);
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en', 'the demo follows the browser');
    await tabTo(page, (el) => el.tag === 'a' && el.href === '/login' || (el.href ?? '').startsWith('/login?'), 'the demo login button');
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login'));
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en', 'iSSO in English');
    await axeCheck(page, 'the method choice in English');
    await followLink(page, /^\/login\/taipeipass\?/, 'the 台北通 card');
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await typeInto(page, 'account', user.account);
    await typeInto(page, 'password', user.password);
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/consent'));
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    assert.equal(await page.locator('.consent-client strong').getAttribute('lang'), 'zh-Hant-TW');
    await axeCheck(page, 'consent in English on a phone');
    await shots.take(t, page, 'demo-en-consent');
    await pressButton(page, msg('consent.allow', 'en'));
    await page.waitForURL((u) => u.origin === demoUrl && u.pathname === '/me');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    const names = (await context.cookies(stack.issuer)).map((c) => c.name);
    assert.ok(!names.includes('isso_lang'), `only the switch sets the language cookie (${names.join(', ')})`);
  } finally {
    await context.close();
  }
});

test('ui_locales holds for that login only; the switch is the citizen\'s choice and outweighs it', T, async () => {
  const agent = new HttpAgent({ lang: 'zh-TW,zh;q=0.9' });
  const names = () => agent.jar.header(stack.issuer) ?? '';
  const r = await agent.followUntil((await startAuth({ ui_locales: 'en' })).href, (u) => sameEndpoint(u, RP));
  assert.equal(new URL(r.url).pathname, '/login');
  assert.match(r.res.text, /<html lang="en">/, 'the agency asked for English');
  assert.match(names(), /isso_login_lang=en/, 'for this login');
  assert.doesNotMatch(names(), /isso_lang=/, 'not the citizen\'s lasting choice');
  const t = new URL(r.url).searchParams.get('t');
  const next = await agent.get(stack.url(`/login/taipeipass?t=${t}`));
  assert.match(next.text, /<html lang="en">/, 'every page of the login');
  const switched = await agent.get(stack.url(`/login/taipeipass?t=${t}&lang=zh-TW`));
  assert.match(switched.text, /<html lang="zh-Hant-TW">/);
  assert.match(names(), /isso_lang=zh-TW/, 'the switch sets the lasting choice');
  assert.doesNotMatch(names(), /isso_login_lang=/, 'and ends the agency\'s for this login');
  const after = await agent.get(stack.url(`/login/taipeipass?t=${t}`));
  assert.match(after.text, /<html lang="zh-Hant-TW">/, 'the switch sticks');
  // a failed POST: the switch link carries the login
  const form = after.forms().find((f) => f.has('password'));
  const failed = await agent.submit(form, { account: 'nobody.here', password: 'Wrong-pass-1' });
  const link = failed.res.links().find((l) => /lang=en/.test(l.href));
  assert.ok(link, 'the switch link');
  assert.equal(new URL(link.href).searchParams.get('t'), t, 'it carries t');
  const en = await agent.get(link.href);
  assert.equal(en.status, 200);
  assert.ok(en.forms().some((f) => f.has('password')), 'the same login, in English');
});

test('in the browser: ui_locales outweighs the browser\'s language, and the switch outweighs both', T, async () => {
  const lang = (page) => page.evaluate(() => document.documentElement.lang);
  const toSwitch = (page, to) => tabTo(page, (el) => el.tag === 'a' && new RegExp(`[?&]lang=${to}(&|$)`).test(el.href ?? ''), `the switch to ${to}`);
  // an English browser, an agency asking for Chinese
  const { context, page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'en-US' });
  try {
    await page.goto((await startAuth({ ui_locales: 'zh-TW' })).href);
    await page.waitForURL(onIssuer('/login'));
    assert.equal(await lang(page), 'zh-Hant-TW', 'ui_locales over Accept-Language');
    await axeCheck(page, 'the method choice, ui_locales=zh-TW in an English browser');
    // the citizen's choice outweighs the agency's, for the rest of the login
    await toSwitch(page, 'en');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => document.documentElement.lang === 'en');
    await followLink(page, /^\/login\/taipeipass\?/, 'the TaipeiPass card');
    await page.waitForURL(onIssuer('/login/taipeipass'));
    assert.equal(await lang(page), 'en', 'the switch over ui_locales');
  } finally {
    await context.close();
  }
  // an English browser: English; the switch to Chinese outweighs the
  // browser's language from then on, in the next login too
  const second = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  try {
    const p = second.page;
    await p.goto((await startAuth()).href);
    await p.waitForURL(onIssuer('/login'));
    assert.equal(await lang(p), 'en', 'Accept-Language: en-US');
    await toSwitch(p, 'zh-TW');
    await p.keyboard.press('Enter');
    await p.waitForFunction(() => document.documentElement.lang === 'zh-Hant-TW');
    await axeCheck(p, 'the method choice switched to Chinese in an English browser');
    await p.goto((await startAuth()).href);
    await p.waitForURL(onIssuer('/login'));
    assert.equal(await lang(p), 'zh-Hant-TW', 'the switch over Accept-Language, in a new login');
    assert.ok((await p.locator('body').innerText()).includes(msg('portal.choose')), 'the page reads in Chinese');
  } finally {
    await second.context.close();
  }
});

test('issod is still healthy', { skip: NO_BROWSER }, async () => {
  assert.ok(await stack.healthy());
});
