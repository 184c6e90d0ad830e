// The TaipeiPass method (台北通會員帳號) through its pages, over plain HTTP
// (HttpAgent) and once in headless Chromium: registration with an SMS code
// read from isso-sim's phone, login by account / e-mail / mobile number
// through an OIDC authorization, registration refusals, SMS code limits,
// forgotten password (with no difference between members and strangers),
// guessing slowed (never locked) alike whether an account exists, CSRF on
// every form, and the absence of secrets from issod's log, security
// events included.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, REPO, limit, redirectParams, sameEndpoint, sleep,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots,
} from './lib/browser.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid uuid profile phone email id_number';
const ACR_LOW = 'urn:isso:loa:low';
const T = { timeout: limit(15_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));

/** The zh-TW catalogue text of key (fails on an unknown key). */
function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  return MSG[key];
}

let stack;
let rp; // the agency client (client_secret_basic, the demo's scopes)
let cfg; // its openid-client configuration
let browser;
const shots = new Screenshots();

// Everything secret the tests used, checked against issod's log at the end.
const secrets = { passwords: new Set(), codes: new Set(), phones: new Set(), ids: new Set(), accounts: new Set() };

// Fresh mobile numbers (a number has a 35 s cool-down between codes).
let phoneSeq = 0;
function newPhone() {
  phoneSeq += 1;
  const p = `0931${String(400000 + phoneSeq * 137).padStart(6, '0')}`;
  secrets.phones.add(p);
  return p;
}

let accountSeq = 0;
const newAccount = (prefix = 'citizen') => `${prefix}${++accountSeq}x`;

function password(label) {
  const p = `Tp-${label}-${Math.floor(Math.random() * 1e6)}a9`;
  secrets.passwords.add(p);
  return p;
}

before(async () => {
  // debug: the log check below should hold at the most talkative level
  stack = await startStack({ label: 'taipeipass', env: { ISSO_LOG_LEVEL: 'debug' } });
  rp = await stack.registerClient({
    name: '臺北市測試機關', purpose: '台北通整合測試', redirectUris: [RP], scope: SCOPE,
  });
  cfg = await client.discovery(new URL(stack.issuer), rp.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(rp.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
  if (!NO_BROWSER) browser = await launchBrowser();
}, { timeout: limit(45_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (stack) await stack.stop({ check: false });
  shots.report();
});

// ---------------------------------------------------------------- helpers

/** The last SMS a number got (null if none); its code is remembered for
 * the log check. */
async function lastSms(phone) {
  const sms = await stack.readLastSms(phone);
  if (sms?.code) secrets.codes.add(sms.code);
  return sms;
}

/** The code of the last SMS, which must be a fresh code SMS. */
async function smsCode(phone) {
  const sms = await lastSms(phone);
  assert.ok(sms, `no SMS reached ${phone}`);
  assert.match(sms.code ?? '', /^\d{6}$/, `the SMS to ${phone} has no code: ${sms.body}`);
  assert.ok(sms.body.includes(sms.code));
  return sms.code;
}

const otherCode = (code) => String((Number(code) + 1) % 1e6).padStart(6, '0');

async function startAuth({ scope = SCOPE, extra = {} } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope, state, nonce, ...extra,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { url, verifier, state, nonce };
}

/** Exchanges the redirect for tokens; checks the ID token's acr and amr. */
async function redeem(a, cb, what) {
  const p = redirectParams(cb);
  assert.ok(p.get('code'), `${what}: expected a code in ${cb}`);
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  });
  const claims = tokens.claims();
  assert.equal(claims.acr, ACR_LOW, `${what}: acr`);
  assert.deepEqual(claims.amr, ['pwd'], `${what}: amr`);
  return { tokens, claims };
}

/** A whole authorization in a fresh browser-less session, logging in with
 * login (account, e-mail or mobile number). Returns {tokens, claims}. */
async function loginFlow(login, pw, what = `login as ${login}`) {
  secrets.passwords.add(pw);
  const a = await startAuth();
  const agent = new HttpAgent();
  const cb = await agent.loginViaPages({ authorizeUrl: a.url, account: login, password: pw });
  return redeem(a, cb, what);
}

/** Opens the 台北通 login page of a new authorization: {agent, res, form, t}. */
async function openLogin(agent = new HttpAgent()) {
  const a = await startAuth();
  const first = await agent.followUntil(a.url.href, (next) => sameEndpoint(next, RP));
  assert.equal(first.res.status, 200, 'the method page');
  const pick = first.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/taipeipass');
  assert.ok(pick, 'the method page links to /login/taipeipass');
  const res = await agent.get(pick.href);
  assert.equal(res.status, 200, 'the 台北通 login page');
  const form = loginForm(res);
  return { agent, res, form, t: new URL(pick.href).searchParams.get('t'), auth: a };
}

function loginForm(res) {
  const f = res.forms().find((x) => x.has('account') && x.has('password') && !x.has('password2'));
  assert.ok(f, `no login form on ${res.url} (${res.status}): ${res.pageText().slice(0, 300)}`);
  return f;
}

const registerForm = (res) => res.forms().find((f) => f.has('account') && f.has('password2') && f.has('phone'));
const codeForm = (res) => res.forms().find((f) => f.has('pending') && f.has('code'));
const forgotForm = (res) => res.forms().find((f) => f.has('phone') && !f.has('account'));

function mustCodeForm(res, what) {
  const f = codeForm(res);
  assert.ok(f, `${what}: expected the SMS code page, got ${res.status}: ${res.pageText().slice(0, 400)}`);
  return f;
}

/** GET the registration page (with ?t= when given). */
async function openRegister(agent, t = null) {
  const res = await agent.get(stack.url(t ? `/taipeipass/register?t=${t}` : '/taipeipass/register'));
  assert.equal(res.status, 200, 'GET /taipeipass/register');
  const form = registerForm(res);
  assert.ok(form, 'the registration form');
  return { res, form };
}

/** Fills and submits the registration form; returns the answer. */
async function submitRegistration(agent, f, { t = null, agree = true, form = null } = {}) {
  form ??= (await openRegister(agent, t)).form;
  const { res } = await agent.submit(form, {
    account: f.account, name: f.name ?? '', phone: f.phone, email: f.email ?? '',
    password: f.password, password2: f.password2 ?? f.password, agree: agree ? '1' : undefined,
  });
  return res;
}

/** Submits a code on the code page (the main button). */
async function submitCode(agent, res, code, extra = {}) {
  const form = mustCodeForm(res, 'submitting a code');
  return (await agent.submit(form, { code, ...extra })).res;
}

async function resendCode(agent, res) {
  const form = mustCodeForm(res, 'resend');
  const button = form.buttons.find((b) => b.name === 'resend');
  assert.ok(button, 'the code page has a resend button');
  return (await agent.submit(form, {}, button)).res;
}

/** Registers a member through the pages (standalone); returns the fields. */
async function register(agent, f) {
  secrets.passwords.add(f.password);
  secrets.phones.add(f.phone);
  const page = await submitRegistration(agent, f);
  assert.equal(page.status, 200, `registration of ${f.account}: ${page.alerts().join(' | ')}`);
  const done = await submitCode(agent, page, await smsCode(f.phone));
  assert.equal(done.status, 200, `code for ${f.account}: ${done.alerts().join(' | ')}`);
  assert.ok(done.pageText().includes(msg('tp.register_done')), 'the done page says the account was created');
  return f;
}

/** The page's one role=alert text (or null). */
function alertText(res) {
  const a = res.alerts();
  assert.ok(a.length <= 1, `more than one alert: ${a.join(' | ')}`);
  return a[0] ?? null;
}

/** What a visitor can tell apart about a page: status, title, heading, the
 * forms' fields, the alert; hidden values, the masked number and the
 * resend countdown's seconds (the two pages are fetched a moment apart)
 * aside. */
function looks(res) {
  const h1 = /<h1\b[^>]*>([\s\S]*?)<\/h1>/i.exec(res.text)?.[1].replace(/<[^>]+>/g, '').trim() ?? null;
  return {
    status: res.status,
    title: res.title(),
    h1,
    forms: res.forms().map((f) => `${f.method} ${new URL(f.action).pathname} ${f.controls.map((c) => `${c.type}:${c.name}`).join(',')}`),
    alert: alertText(res),
    codeForm: !!codeForm(res),
    // the countdowns: "(35 秒)" / "( 35 )" on the resend button, "300 秒" left
    text: res.pageText().replace(/0\*+\d\d/g, '<masked>')
      .replace(/\(\s*\d+\s*(秒|s)?\s*\)/g, '(<n> $1)')
      .replace(/\b\d+ (秒|seconds?)/g, '<n> $1'),
  };
}

/** Submits the login form once (no redirect followed). */
async function submitLogin(agent, form, account, pw, extra = {}) {
  const { res } = await agent.submit(form, { account, password: pw, ...extra }, null, () => true);
  return res;
}

// ---------------------------------------------------------------- 1. registration

test('registration inside a login transaction, then login by account, e-mail and mobile number', T, async () => {
  const { agent, res: login, t, auth } = await openLogin();
  assert.match(t ?? '', /^[A-Za-z0-9_-]{43}$/, 'the transaction id');
  const regLink = login.links().find((l) => new URL(l.href).pathname === '/taipeipass/register');
  assert.ok(regLink, 'the login page links to the registration');
  assert.equal(new URL(regLink.href).searchParams.get('t'), t, 'the registration link keeps the transaction');
  const forgotLink = login.links().find((l) => new URL(l.href).pathname === '/taipeipass/forgot');
  assert.equal(new URL(forgotLink.href).searchParams.get('t'), t, 'the forgot link keeps the transaction');

  const reg = await agent.get(regLink.href);
  assert.equal(reg.status, 200);
  assert.equal(reg.title(), `${msg('tp.register_title')} - ${msg('site.name')}`);
  const form = registerForm(reg);
  assert.ok(form, 'the registration form');
  assert.equal(form.value('t'), t, 'the form carries t');
  assert.equal(new URL(form.action).pathname, '/taipeipass/register');
  const agree = form.controls.find((c) => c.name === 'agree');
  assert.ok(agree && agree.type === 'checkbox' && !agree.checked, 'the agreement is an unticked checkbox');

  const f = {
    account: 'Lin.Meihua', name: '林美華', phone: newPhone(), email: 'Meihua.Lin@example.tw', password: password('Reg-In-Txn'),
  };
  const page = await submitRegistration(agent, f, { form });
  assert.equal(page.status, 200, page.alerts().join(' | '));
  const cf = mustCodeForm(page, 'after the details');
  assert.equal(cf.value('t'), t, 'the code page carries t');
  assert.match(cf.value('pending'), /^[A-Za-z0-9_-]{43}$/);
  assert.ok(!page.text.includes(f.phone), 'the code page does not show the whole number');
  assert.ok(page.pageText().includes(`${f.phone[0]}*******${f.phone.slice(-2)}`), 'the code page shows the masked number');
  assert.ok(!page.text.includes(f.password), 'the password is not echoed');

  const code = await smsCode(f.phone);
  const sms = await lastSms(f.phone);
  assert.equal(sms.body, msg('otp.sms').replace('{code}', code), 'the SMS is the catalogue text with the code');
  const done = await submitCode(agent, page, code);
  assert.equal(done.status, 200, done.alerts().join(' | '));
  assert.ok(done.pageText().includes(msg('tp.register_done_title')));
  assert.ok(done.pageText().includes(msg('tp.register_done')));
  const next = done.links().find((l) => l.text === msg('done.continue'));
  assert.ok(next, 'the done page has a continue link');
  assert.equal(new URL(next.href).pathname, '/login/taipeipass');
  assert.equal(new URL(next.href).searchParams.get('t'), t, 'continue goes back to the same login');

  // back into the waiting authorization, by account name (any case)
  const cb = await agent.loginViaPages({ authorizeUrl: next.href, account: 'lin.meihua', password: f.password });
  assert.deepEqual(agent.lastFlow.map((s) => s.step), ['login', 'consent', 'redirect']);
  const byAccount = await redeem(auth, cb, 'by account');
  const byEmail = await loginFlow('meihua.lin@EXAMPLE.tw', f.password, 'by e-mail');
  const byPhone = await loginFlow(f.phone, f.password, 'by mobile number');
  const byIntl = await loginFlow(`+886 ${f.phone.slice(1, 4)}-${f.phone.slice(4)}`, f.password, 'by +886 number');
  for (const o of [byEmail, byPhone, byIntl]) assert.equal(o.claims.sub, byAccount.claims.sub, 'one person, one sub');

  const ui = await client.fetchUserInfo(cfg, byPhone.tokens.access_token, byPhone.claims.sub);
  assert.equal(ui.name, f.name);
  assert.equal(ui.email, 'meihua.lin@example.tw');
  assert.equal(ui.phone_number_verified, true);
});

test('standalone registration (no login transaction), then an OIDC login', T, async () => {
  const agent = new HttpAgent();
  const { res, form } = await openRegister(agent);
  assert.equal(form.has('t'), false, 'no t outside a login');
  assert.ok(!/name="t"/.test(res.text));
  const f = { account: newAccount('solo'), phone: newPhone(), password: password('Solo') };
  const page = await submitRegistration(agent, f, { form });
  assert.equal(page.status, 200, page.alerts().join(' | '));
  assert.equal(mustCodeForm(page, 'standalone').has('t'), false);
  const done = await submitCode(agent, page, await smsCode(f.phone));
  assert.equal(done.status, 200);
  const next = done.links().find((l) => l.text === msg('done.continue'));
  assert.equal(new URL(next.href).pathname, '/', 'continue goes home');
  const { claims } = await loginFlow(f.account, f.password);
  assert.ok(claims.sub);

  // a bogus t is not echoed into the pages
  const bogus = await agent.get(stack.url('/taipeipass/register?t=%22%3E%3Cscript%3E'));
  assert.equal(bogus.status, 200);
  assert.equal(registerForm(bogus).has('t'), false, 'a malformed t is dropped');
});

// ---------------------------------------------------------------- 2. refusals

test('registration refusals: weak passwords (the page says why), mismatch, agreement, phone', T, async () => {
  const agent = new HttpAgent();
  const phone = newPhone();
  const base = { account: 'refused.one', name: '王大明', phone, email: 'refused@example.tw', password: 'Good-pass-123' };
  // NIST SP 800-63B: length, common, context and estimated strength; no
  // composition rules.
  const cases = [
    ['too short', { password: 'Ab1-x' }, {}, 400, 'password.too_short'],
    ['too short in characters, not bytes', { password: '台北市民密碼' }, {}, 400, 'password.too_short'],
    ['common', { password: 'Password1' }, {}, 400, 'password.common'],
    ['common, pinyin', { password: 'woaini1314' }, {}, 400, 'password.common'],
    ['keyboard run', { password: 'qwertyuiop' }, {}, 400, 'password.common'],
    ['weak by zxcvbn', { password: 'Summer2019' }, {}, 400, 'password.weak'],
    ['a date', { password: '19880808' }, {}, 400, 'password.weak'],
    ['contains the account', { account: 'chen2024abc', password: 'CHEN2024ABC-kx7Q' }, {}, 400, 'password.context'],
    ['contains the e-mail name', { password: 'kx7Q-Refused-zz' }, {}, 400, 'password.context'],
    ['contains the phone', { password: `kx7Q${phone.slice(1)}` }, {}, 400, 'password.context'],
    ['contains the name (no e-mail given)', { email: '', name: 'Margaret', password: 'Margaret-kx7Q-91' }, {}, 400, 'password.context'],
    ['mismatch', { password2: 'Good-pass-124' }, {}, 400, 'password.mismatch'],
    ['no agreement', {}, { agree: false }, 400, 'register.must_agree'],
    ['bad phone', { phone: '0212345678' }, {}, 400, 'register.bad_phone'],
    ['short phone', { phone: '09123' }, {}, 400, 'register.bad_phone'],
  ];
  for (const [what, change, opts, status, key] of cases) {
    const f = { ...base, ...change };
    const res = await submitRegistration(agent, f, opts);
    assert.equal(res.status, status, `${what}: status (${res.alerts().join(' | ')})`);
    assert.equal(alertText(res), msg(key), `${what}: message`);
    const form = registerForm(res);
    assert.ok(form, `${what}: the registration form again`);
    assert.equal(codeForm(res), undefined, `${what}: no code page`);
    assert.equal(form.value('account'), f.account, `${what}: the account is kept`);
    assert.equal(form.value('password'), '', `${what}: the password is not echoed`);
    assert.ok(!res.text.includes(f.password), `${what}: the password is nowhere in the page`);
  }
  assert.equal(await lastSms(phone), null, 'no SMS for a refused registration');

  // The English page says why too.
  const en = new HttpAgent({ lang: 'en' });
  const res = await submitRegistration(en, { ...base, password: 'Password1' });
  assert.equal(res.status, 400);
  assert.match(alertText(res), /too common/);

  // Strong passwords pass, with no composition rule: letters and spaces
  // only, or Chinese characters only.
  for (const [i, pw] of ['correct horse battery staple', '我家門前有小河後面有山坡'].entries()) {
    const f = { account: newAccount('strong'), phone: newPhone(), password: pw };
    secrets.passwords.add(pw);
    const ok = await submitRegistration(new HttpAgent(), f);
    assert.equal(ok.status, 200, `strong password ${i + 1}: ${ok.alerts().join(' | ')}`);
    mustCodeForm(ok, `strong password ${i + 1}`);
  }
});

test('a taken and a free account name get the same registration answer; the name is refused only after the code', T, async () => {
  const member = await stack.addUser({ account: 'taken.name', password: password('Taken'), phone: newPhone() });
  const a1 = new HttpAgent();
  const a2 = new HttpAgent();
  const pTaken = newPhone();
  const pFree = newPhone();
  const f1 = { account: member.account, phone: pTaken, password: password('Want-Taken') };
  const f2 = { account: 'free.name', phone: pFree, password: password('Want-Free') };
  // any case of the taken name
  const r1 = await submitRegistration(a1, { ...f1, account: 'Taken.Name' });
  const r2 = await submitRegistration(a2, f2);
  assert.equal(r1.status, 200, r1.alerts().join(' | '));
  assert.deepEqual(looks(r1), looks(r2), 'the page for a taken name looks like the one for a free name');
  const shape = (res) => ({
    headers: [...res.headers.keys()].filter((k) => !['date', 'content-length'].includes(k)).sort(),
    cookies: res.headers.getSetCookie().map((c) => c.replace(/=[^;]*/, '=…')).sort(),
  });
  assert.deepEqual(shape(r1), shape(r2), 'the same headers and cookies');
  // Both numbers get a code (they are free); only after it does the taken
  // name show, to the holder of a proven number.
  const c1 = await smsCode(pTaken);
  const c2 = await smsCode(pFree);
  const d1 = await submitCode(a1, r1, c1);
  assert.equal(d1.status, 409);
  assert.equal(alertText(d1), msg('register.account_taken'));
  assert.ok(registerForm(d1), 'the registration form, to choose another name');
  const d2 = await submitCode(a2, r2, c2);
  assert.equal(d2.status, 200, d2.alerts().join(' | '));
  // The taken account is untouched: its owner still logs in.
  await loginFlow(member.account, member.password, 'the owner of the taken name');
});

test('a number that already has an account: the same page, but the SMS says so (no code)', T, async () => {
  const member = await stack.addUser({ account: newAccount('holder'), password: password('Holder'), phone: newPhone() });
  const fresh = newPhone();
  const a1 = new HttpAgent();
  const a2 = new HttpAgent();
  const known = await submitRegistration(a1, { account: 'newcomer.a', phone: member.phone, password: password('New-A') });
  const unknown = await submitRegistration(a2, { account: 'newcomer.b', phone: fresh, password: password('New-B') });
  assert.equal(known.status, 200);
  assert.deepEqual(looks(known), looks(unknown), 'the page for a registered number looks like the one for a new number');
  mustCodeForm(known, 'registered number');

  const notice = await lastSms(member.phone);
  assert.ok(notice, 'the holder of the number got an SMS');
  assert.equal(notice.body, msg('otp.sms_registered'), 'the SMS says the number is registered');
  assert.equal(notice.code, null, 'and carries no code');
  assert.doesNotMatch(notice.body, /\d{4,}/, 'no digits that could be a code');
  await smsCode(fresh);

  // guessing codes leads nowhere, as for any number
  const r = await submitCode(a1, known, '000000');
  const r2 = await submitCode(a2, unknown, otherCode(await smsCode(fresh)));
  assert.deepEqual(looks(r), looks(r2));
  assert.equal(alertText(r), msg('otp.wrong'));
});

// ---------------------------------------------------------------- 3. OTP limits

test('wrong codes: stay on the code page; the fifth ends the attempt for good', T, async () => {
  const agent = new HttpAgent();
  const f = { account: newAccount('wrong'), phone: newPhone(), password: password('Wrong') };
  const page = await submitRegistration(agent, f);
  const pending = mustCodeForm(page, 'start').value('pending');
  const code = await smsCode(f.phone);
  let res = page;
  for (let i = 1; i <= 4; i++) {
    res = await submitCode(agent, res, i === 2 ? '12ab56' : otherCode(code));
    assert.equal(res.status, 400, `wrong code ${i}`);
    assert.equal(alertText(res), msg('otp.wrong'), `wrong code ${i}: message`);
    assert.equal(mustCodeForm(res, `wrong code ${i}`).value('pending'), pending, 'the same attempt');
    const input = mustCodeForm(res, 'x').controls.find((c) => c.name === 'code');
    assert.match(input.attrs['aria-describedby'] ?? '', /code-error/, 'the code field points at its error');
  }
  const fifth = await submitCode(agent, res, otherCode(code));
  assert.equal(fifth.status, 400);
  assert.equal(alertText(fifth), msg('otp.exhausted'));
  assert.equal(codeForm(fifth), undefined, 'back to the first step');
  assert.ok(registerForm(fifth), 'the registration form again');

  // the right code on the ended attempt does nothing
  const late = await submitCode(agent, page, code);
  assert.equal(late.status, 400);
  assert.equal(alertText(late), msg('otp.expired'));
  assert.ok(!late.pageText().includes(msg('tp.register_done')));
  const probe = await openLogin();
  const refused = await submitLogin(probe.agent, probe.form, f.account, f.password);
  assert.equal(refused.status, 401, 'no account was created');
});

test('an expired SMS code is refused and the registration starts over (security.otp_ttl=2)', T, async () => {
  const main = stack;
  const short = await startStack({ label: 'otp-expiry', env: { ISSO_SECURITY_OTP_TTL: '2' } });
  stack = short; // the page helpers speak to the stack in this variable
  try {
    const agent = new HttpAgent();
    const f = { account: newAccount('expiry'), phone: newPhone(), password: password('Expiry') };
    const page = await submitRegistration(agent, f);
    const code = await smsCode(f.phone);
    await sleep(3100);
    const r = await submitCode(agent, page, code);
    assert.equal(r.status, 400);
    assert.equal(alertText(r), msg('otp.expired'));
    assert.ok(registerForm(r), 'back to the registration form');
  } finally {
    stack = main;
    await short.stop();
  }
});

test('resend during the 35 s cool-down is refused (429); the first code still works', T, async () => {
  const agent = new HttpAgent();
  const f = { account: newAccount('resend'), phone: newPhone(), password: password('Resend') };
  const page = await submitRegistration(agent, f);
  const first = await lastSms(f.phone);
  // the page shows the cool-down: a disabled resend button counting down
  const button = /<button[^>]*name="resend"[^>]*>[\s\S]*?<\/button>/.exec(page.text)?.[0] ?? '';
  assert.match(button, /\bdisabled\b/, 'resend is disabled during the cool-down');
  const secs = Number(/class="countdown" data-seconds="(\d+)"/.exec(button)?.[1]);
  assert.ok(secs > 25 && secs <= 35, `a live countdown of the cool-down (${secs})`);
  assert.match(page.text, /id="countdown-announcer"/, 'its end is announced politely');
  const again = await resendCode(agent, page);
  assert.equal(again.status, 429);
  assert.equal(alertText(again), msg('otp.cooldown'));
  assert.equal(mustCodeForm(again, 'after resend').value('pending'), mustCodeForm(page, 'x').value('pending'));
  const after = await lastSms(f.phone);
  assert.equal(after.msgid, first.msgid, 'no second SMS');

  // starting over on the same number is held back the same way
  const restart = await submitRegistration(new HttpAgent(), { ...f, account: newAccount('resend') });
  assert.equal(restart.status, 429);
  assert.equal(alertText(restart), msg('otp.cooldown'));
  assert.equal(codeForm(restart), undefined);

  const done = await submitCode(agent, again, first.code);
  assert.equal(done.status, 200, done.alerts().join(' | '));
  assert.ok(done.pageText().includes(msg('tp.register_done')));
});

test('a code from another registration attempt does not work', T, async () => {
  const a = new HttpAgent();
  const b = new HttpAgent();
  const fa = { account: newAccount('attempta'), phone: newPhone(), password: password('Attempt-A') };
  const fb = { account: newAccount('attemptb'), phone: newPhone(), password: password('Attempt-B') };
  const pa = await submitRegistration(a, fa);
  const pb = await submitRegistration(b, fb);
  const ca = await smsCode(fa.phone);
  const cb = await smsCode(fb.phone);
  assert.notEqual(ca, cb);
  const cross = await submitCode(a, pa, cb);
  assert.equal(cross.status, 400);
  assert.equal(alertText(cross), msg('otp.wrong'));
  // B's pending id with A's code, in A's browser
  const swapped = await submitCode(a, pa, ca, { pending: mustCodeForm(pb, 'b').value('pending') });
  assert.equal(swapped.status, 400);
  assert.ok(!swapped.pageText().includes(msg('tp.register_done')));
  const ok = await submitCode(a, pa, ca);
  assert.equal(ok.status, 200, ok.alerts().join(' | '));
  assert.ok(ok.pageText().includes(msg('tp.register_done')));
});

// ---------------------------------------------------------------- 4. forgotten password

/** Starts a reset: GET then POST the forgot page. */
async function forgotStart(agent, phone) {
  const page = await agent.get(stack.url('/taipeipass/forgot'));
  assert.equal(page.status, 200);
  const form = forgotForm(page);
  assert.ok(form, 'the forgot form');
  return { page, res: (await agent.submit(form, { phone })).res };
}

test('forgotten password: code by SMS, new password set, the old one fails', T, async () => {
  const oldPw = password('Old');
  const m = await stack.addUser({ account: newAccount('forgetful'), password: oldPw, phone: newPhone(), email: 'forgetful@example.tw' });
  const agent = new HttpAgent();
  const { res } = await forgotStart(agent, m.phone);
  assert.equal(res.status, 200);
  const form = mustCodeForm(res, 'forgot');
  assert.ok(form.has('password') && form.has('password2'));
  const code = await queuedSmsCode(m.phone);

  const newPw = password('New');
  const weak = await submitCode(agent, res, code, { password: 'short1', password2: 'short1' });
  assert.equal(weak.status, 400);
  assert.equal(alertText(weak), msg('password.too_short'));
  const mismatch = await submitCode(agent, weak, code, { password: newPw, password2: `${newPw}x` });
  assert.equal(mismatch.status, 400);
  assert.equal(alertText(mismatch), msg('password.mismatch'));
  const done = await submitCode(agent, mismatch, code, { password: newPw, password2: newPw });
  assert.equal(done.status, 200, done.alerts().join(' | '));
  assert.ok(done.pageText().includes(msg('tp.reset_done')));

  const probe = await openLogin();
  const old = await submitLogin(probe.agent, probe.form, m.account, oldPw);
  assert.equal(old.status, 401, 'the old password fails');
  assert.equal(alertText(old), msg('tp.bad_login'));
  const { claims } = await loginFlow(m.email, newPw, 'new password');
  assert.ok(claims.sub);

  // the code was used up
  const reuse = await submitCode(agent, mismatch, code, { password: password('Again'), password2: undefined });
  assert.notEqual(reuse.status, 200);
});

test('forgotten password for a number with no account looks the same as for a member; no SMS', T, async () => {
  const m = await stack.addUser({ account: newAccount('member'), password: password('Member'), phone: newPhone() });
  const stranger = newPhone();
  const am = new HttpAgent();
  const as = new HttpAgent();
  /** The same step for the member and the stranger; their pages must look alike. */
  const both = async (what, step) => {
    const rm = await step(am, m.phone, 'm');
    const rs = await step(as, stranger, 's');
    assert.deepEqual(looks(rs), looks(rm), `${what}: the stranger's page differs from the member's`);
    return [rm, rs];
  };
  const start = (agent, phone) => forgotStart(agent, phone).then((x) => x.res);
  const [pm, ps] = await both('start', start);
  assert.equal(pm.status, 200);
  mustCodeForm(ps, 'the stranger gets the code page');
  const code = await queuedSmsCode(m.phone);
  const page = { m: pm, s: ps };

  const [resent] = await both('resend in the cool-down', (agent, _phone, who) => resendCode(agent, page[who]));
  assert.equal(resent.status, 429);
  assert.equal(alertText(resent), msg('otp.cooldown'));
  const [again] = await both('start again in the cool-down', start);
  assert.equal(again.status, 429);

  const pw = password('Never-Set');
  const wrong = (agent, _phone, who) => submitCode(agent, page[who], otherCode(code), { password: pw, password2: pw });
  for (let i = 1; i <= 4; i++) {
    const [r] = await both(`wrong code ${i}`, wrong);
    assert.equal(r.status, 400);
    assert.equal(alertText(r), msg('otp.wrong'));
  }
  const [last] = await both('fifth wrong code', wrong);
  assert.equal(last.status, 400);
  assert.equal(alertText(last), msg('otp.exhausted'));
  assert.ok(forgotForm(last), 'back to the first step');

  assert.equal(await lastSms(stranger), null, 'no SMS to a number without an account');
  const probe = await openLogin();
  assert.equal((await submitLogin(probe.agent, probe.form, m.account, pw)).status, 401, 'the password was not changed');
});

// ---------------------------------------------------------------- 4b. phone verification, reset revokes tokens

/** The code of an SMS that may come from the background outbox (password
 * resets): polls the phone for up to ms for an SMS other than `after`. */
async function queuedSmsCode(phone, { after = null, ms = 3000 } = {}) {
  const deadline = Date.now() + ms;
  for (;;) {
    const sms = await lastSms(phone);
    if (sms && (!after || sms.msgid !== after.msgid)) {
      assert.match(sms.code ?? '', /^\d{6}$/, `the SMS to ${phone} has no code: ${sms.body}`);
      return sms.code;
    }
    if (Date.now() >= deadline) assert.fail(`no SMS reached ${phone} within ${ms} ms`);
    await sleep(100);
  }
}

const e164 = (phone) => `+886${phone.slice(1)}`;

test('phone_number_verified: false for a member added without --phone-verified; true with it, or after an SMS registration', T, async () => {
  const unproven = await stack.addUser({ account: newAccount('unproven'), password: password('Unproven'), phone: newPhone() });
  const proven = await stack.addUser({ account: newAccount('proven'), password: password('Proven'), phone: newPhone(), phoneVerified: true });
  const registered = await register(new HttpAgent(), { account: newAccount('registered'), phone: newPhone(), password: password('Registered') });
  for (const [m, want, what] of [[unproven, false, 'issoctl without --phone-verified'], [proven, true, 'issoctl --phone-verified'], [registered, true, 'registered with an SMS code']]) {
    const { tokens, claims } = await loginFlow(m.account, m.password, what);
    const ui = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
    assert.equal(ui.phone_number, e164(m.phone), `${what}: phone_number`);
    assert.equal(ui.phone_number_verified, want, `${what}: phone_number_verified`);
  }
});

test('a password reset revokes the access and refresh tokens issued before it', T, async () => {
  const m = await stack.addUser({ account: newAccount('resetrevoke'), password: password('Before-Reset'), phone: newPhone() });
  const bystander = await stack.addUser({ account: newAccount('bystander'), password: password('Bystander'), phone: newPhone() });
  const { tokens, claims } = await loginFlow(m.account, m.password, 'before the reset');
  assert.ok(tokens.refresh_token, 'a refresh token');
  const other = await loginFlow(bystander.account, bystander.password, 'another member');
  // and a code issued before the reset, not yet exchanged
  const pending = await startAuth();
  const sessionAgent = new HttpAgent(); // a browser logged in before the reset
  const pendingCb = await sessionAgent.loginViaPages({ authorizeUrl: pending.url, account: m.account, password: m.password });
  assert.ok(redirectParams(pendingCb).get('code'), 'a pending code');
  const userinfo = (at) => fetch(stack.url('/userinfo'), { headers: { authorization: `Bearer ${at}` }, signal: AbortSignal.timeout(5000) });
  const before = await userinfo(tokens.access_token);
  assert.equal(before.status, 200, 'the access token works before the reset');
  await before.arrayBuffer();

  const agent = new HttpAgent();
  const { res } = await forgotStart(agent, m.phone);
  const code = await queuedSmsCode(m.phone); // the reset SMS goes out through the outbox
  const newPw = password('After-Reset');
  const done = await submitCode(agent, res, code, { password: newPw, password2: newPw });
  assert.equal(done.status, 200, done.alerts().join(' | '));
  assert.ok(done.pageText().includes(msg('tp.reset_done')));

  const after = await userinfo(tokens.access_token);
  assert.equal(after.status, 401, 'the old access token is refused at UserInfo');
  assert.match(after.headers.get('www-authenticate') || '', /error="invalid_token"/);
  await after.arrayBuffer();
  await assert.rejects(client.refreshTokenGrant(cfg, tokens.refresh_token), (err) => {
    const error = err?.error ?? err?.cause?.error;
    assert.equal(error, 'invalid_grant', `refresh after the reset: ${err?.name}: ${err?.message}`);
    return true;
  });
  assert.equal((await client.tokenIntrospection(cfg, tokens.access_token)).active, false);
  await assert.rejects(client.authorizationCodeGrant(cfg, new URL(pendingCb), {
    pkceCodeVerifier: pending.verifier, expectedState: pending.state, expectedNonce: pending.nonce,
  }), (err) => {
    const error = err?.error ?? err?.cause?.error;
    assert.equal(error, 'invalid_grant', `code issued before the reset: ${err?.name}: ${err?.message}`);
    return true;
  });

  // the browser session from before the reset no longer logs in silently
  const silent = await startAuth({ extra: { prompt: 'none' } });
  const sr = await sessionAgent.followUntil(silent.url, (next) => sameEndpoint(next, RP));
  assert.ok(sr.stopped, `expected a redirect, got ${sr.res.status} at ${sr.url}`);
  assert.equal(redirectParams(sr.url).get('error'), 'login_required', 'the old session ended with the reset');

  // another member's tokens are untouched; the member's new login works
  const still = await userinfo(other.tokens.access_token);
  assert.equal(still.status, 200, "another member's token is not revoked");
  await still.arrayBuffer();
  const fresh = await loginFlow(m.account, newPw, 'after the reset');
  assert.equal(fresh.claims.sub, claims.sub);
  const ui = await client.fetchUserInfo(cfg, fresh.tokens.access_token, fresh.claims.sub);
  assert.equal(ui.sub, claims.sub);
});

// ---------------------------------------------------------------- 5. guessing slowed, never locked

test('guessing is slowed, never locked: "try again in N s" (N ≤ 10) once the free failures are spent, alike for a non-existent account', T, async () => {
  const m = await stack.addUser({ account: newAccount('guessed'), password: password('Guessed'), phone: newPhone() });
  secrets.accounts.add(m.account);
  secrets.accounts.add('nobody.here');
  /** Wrong passwords until the answer is a delay (at most 8 tries). */
  const guess = async (account) => {
    const { agent, form } = await openLogin();
    const statuses = [];
    let f = form;
    for (let i = 1; i <= 8; i++) {
      const res = await submitLogin(agent, f, account, `Wrong-guess-${i}x`);
      statuses.push(res.status);
      f = loginForm(res);
      assert.equal(f.value('account'), account, 'the account is kept in the form');
      if (res.status === 429) return { agent, form: f, statuses, res };
      assert.equal(res.status, 401, `wrong password ${i}`);
      assert.equal(alertText(res), msg('tp.bad_login'));
    }
    assert.fail(`no delay after 8 wrong passwords: ${statuses}`);
  };
  const member = await guess(m.account);
  const ghost = await guess('nobody.here');
  assert.ok(member.statuses.length >= 4, `free failures first: ${member.statuses}`);
  assert.deepEqual(ghost.statuses, member.statuses, 'a non-existent account goes through the same answers');
  for (const who of [member, ghost]) {
    const wait = Number(who.res.headers.get('retry-after'));
    assert.ok(wait >= 1 && wait <= 10, `Retry-After ${wait}`);
    assert.ok(alertText(who.res).startsWith(msg('tp.wait')), alertText(who.res));
    const countdown = /<span class="countdown" data-seconds="(\d+)"/.exec(who.res.text);
    assert.ok(countdown, 'the page counts the seconds down');
    assert.equal(Number(countdown[1]), wait, 'the countdown says what Retry-After says');
  }
  const noSeconds = (res) => ({ ...looks(res), alert: null, text: looks(res).text.replace(/\d+/g, 'N') });
  assert.deepEqual(noSeconds(ghost.res), noSeconds(member.res), 'the delay pages look alike');

  // The owner is only delayed: after the wait the right password works.
  const wait = Number(member.res.headers.get('retry-after'));
  await sleep(wait * 1000 + 200);
  const ok = await submitLogin(member.agent, member.form, m.account, m.password);
  assert.equal(ok.status, 303, `after the wait: ${ok.status} ${alertText(ok)}`);
  assert.ok(ok.headers.getSetCookie().some((c) => c.startsWith('isso_dev=')), 'a device cookie for this browser');

  // other accounts are not affected
  const other = await stack.addUser({ account: newAccount('unaffected'), password: password('Unaffected'), phone: newPhone() });
  await loginFlow(other.account, other.password);
});

test('a reset password containing the member\'s own account name is refused after the code; another goes on without a new code', T, async () => {
  const m = await stack.addUser({ account: newAccount('ownword'), password: password('Own-Word'), phone: newPhone(), email: 'ownword@example.tw' });
  const agent = new HttpAgent();
  const { res } = await forgotStart(agent, m.phone);
  const code = await queuedSmsCode(m.phone);
  const withName = `${m.account}-kx7Qm2`;
  secrets.passwords.add(withName);
  const r1 = await submitCode(agent, res, code, { password: withName, password2: withName });
  assert.equal(r1.status, 400);
  assert.equal(alertText(r1), msg('password.context_proven'));
  const good = password('Fresh-Start');
  const r2 = await submitCode(agent, r1, '', { password: good, password2: good });
  assert.equal(r2.status, 200, alertText(r2));
  assert.ok(r2.headers.getSetCookie().some((c) => c.startsWith('isso_dev=')), 'the browser that proved the phone gets a device cookie');
  await loginFlow(m.account, good, 'after the reset');
});

test('browser: the delay page counts down and passes axe', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const m = await stack.addUser({ account: newAccount('countdown'), password: password('Countdown'), phone: newPhone() });
  secrets.accounts.add(m.account);
  const a = await startAuth();
  const { page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'zh-TW' });
  try {
    await page.goto(a.url.href);
    await page.locator('a[href*="/login/taipeipass"]').first().click();
    await page.waitForURL((u) => u.pathname === '/login/taipeipass');
    for (let i = 0; i < 8; i++) {
      await page.locator('[name="account"]').fill(m.account);
      await page.locator('[name="password"]').fill(`Wrong-guess-${i}x`);
      await Promise.all([page.waitForEvent('load'), page.getByRole('button', { name: msg('tp.submit'), exact: true }).click()]);
      if (await page.locator('#login-wait .countdown').count() > 0) break;
    }
    // the seconds count outside the alert, so that screen readers do not
    // hear every tick; the end is said once
    const countdown = page.locator('#login-wait .countdown');
    await countdown.waitFor();
    const secs = Number(await countdown.getAttribute('data-seconds'));
    assert.ok(secs >= 1 && secs <= 10, `countdown of ${secs} s`);
    assert.ok((await page.getByRole('alert').innerText()).includes(msg('tp.wait')));
    await axeCheck(page, 'the delay page');
    await shots.take(t, page, 'login-delay');
    // it counts down to zero and says so to screen readers
    assert.equal(await page.locator('[role="alert"] .countdown').count(), 0);
    await page.locator('#login-wait .countdown.countdown-expired').waitFor({ timeout: secs * 1000 + limit(3000) });
    assert.equal(await countdown.innerText(), '0');
    assert.equal(await page.locator('#countdown-announcer').innerText(), msg('tp.wait_over'));
  } finally {
    await page.context().close();
  }
});

// ---------------------------------------------------------------- 6. CSRF

test('CSRF: login, register, forgot and consent refuse a POST without or with a wrong csrf field (403)', T, async () => {
  const m = await stack.addUser({ account: newAccount('csrf'), password: password('Csrf'), phone: newPhone() });
  const { agent, form } = await openLogin();
  const stranger = await openLogin(); // another browser: its token is valid, but not here
  const regPage = await openRegister(agent);
  const forgotPage = await agent.get(stack.url('/taipeipass/forgot'));
  const wrongs = {
    'no csrf': undefined,
    'empty csrf': '',
    'garbage csrf': 'A'.repeat(43),
    "another browser's token": stranger.form.value('csrf'),
    "another form's token": regPage.form.value('csrf'),
  };
  const refused = (res, what) => {
    assert.equal(res.status, 403, `${what}: status`);
    assert.equal(res.redirected, false, `${what}: no redirect`);
  };

  // login
  assert.ok(form.value('csrf'), 'the login form has a csrf field');
  for (const [what, v] of Object.entries(wrongs)) {
    const res = await submitLogin(agent, form, m.account, m.password, { csrf: v });
    refused(res, `login, ${what}`);
    assert.equal(alertText(res), msg('error.csrf'), `login, ${what}: message`);
  }

  // register (no SMS may go out)
  const phone = newPhone();
  for (const [what, v] of Object.entries({ ...wrongs, "another form's token": form.value('csrf') })) {
    const { res } = await agent.submit(regPage.form, {
      csrf: v, account: newAccount('csrf'), phone, password: 'Csrf-pass-1', password2: 'Csrf-pass-1', agree: '1',
    });
    refused(res, `register, ${what}`);
    assert.equal(alertText(res), msg('error.csrf'), `register, ${what}: message`);
  }
  assert.equal(await lastSms(phone), null, 'no SMS after refused registrations');

  // forgot (no SMS may go out)
  const ff = forgotForm(forgotPage);
  for (const [what, v] of Object.entries({ ...wrongs, "another form's token": form.value('csrf') })) {
    const { res } = await agent.submit(ff, { csrf: v, phone: m.phone });
    refused(res, `forgot, ${what}`);
    assert.equal(alertText(res), msg('error.csrf'), `forgot, ${what}: message`);
  }
  assert.equal(await lastSms(m.phone), null, 'no SMS after refused resets');

  // consent: log in for real, then tamper with the consent form
  const toConsent = await submitLogin(agent, form, m.account, m.password);
  assert.ok(toConsent.redirected, `the login went through (${toConsent.status})`);
  const consentPage = (await agent.followUntil(toConsent.location, (next) => sameEndpoint(next, RP))).res;
  const cf = consentPage.forms().find((f) => f.has('decision') || f.buttons.some((b) => b.name === 'decision'));
  assert.ok(cf, `the consent page (${consentPage.status})`);
  const allow = cf.buttons.find((b) => b.name === 'decision' && b.value === 'allow');
  for (const [what, v] of Object.entries({ ...wrongs, "another form's token": form.value('csrf') })) {
    const { res } = await agent.submit(cf, { csrf: v }, allow, (next) => sameEndpoint(next, RP));
    refused(res, `consent, ${what}`);
    assert.ok(res.location === null || !sameEndpoint(res.location, RP), `consent, ${what}: no code`);
  }
  const ok = await agent.submit(cf, {}, allow, (next) => sameEndpoint(next, RP));
  assert.ok(ok.stopped, 'the genuine consent form still works');
  assert.ok(redirectParams(ok.url).get('code'));
});

// ---------------------------------------------------------------- 8. browser

test('browser (zh-TW): register through the pages, axe on every step, then log in', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const a = await startAuth();
  const phone = newPhone();
  const f = { account: 'zhang.browser', name: '張瀏覽', phone, email: 'browser@example.tw', password: password('Web-Flow') };
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  // the agency's redirect_uri is answered here, not by a real server
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  const field = (label, name) => page.getByLabel(label).and(page.locator(`[name="${name}"]`));
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.getByRole('link', { name: /點我登入/ }).and(page.locator('a[href*="/login/taipeipass"]')).click();
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await page.getByRole('link', { name: msg('tp.register_now') }).click();

    // step 1: the details (first without the agreement, to see the error state)
    await page.waitForURL(onIssuer('/taipeipass/register'));
    assert.match(await page.evaluate(() => document.documentElement.lang), /^zh/i);
    assert.equal(await page.title(), `${msg('tp.register_title')} - ${msg('site.name')}`);
    await axeCheck(page, 'the registration page');
    await shots.take(t, page, 'register');
    const fill = async () => {
      await field(msg('tp.reg_account'), 'account').fill(f.account);
      await field(msg('tp.reg_name'), 'name').fill(f.name);
      await field(msg('tp.reg_phone'), 'phone').fill(f.phone);
      await field(msg('tp.reg_email'), 'email').fill(f.email);
      await field(msg('tp.password'), 'password').fill(f.password);
      await field(msg('tp.password_again'), 'password2').fill(f.password);
    };
    await fill();
    await page.getByRole('button', { name: msg('tp.reg_send_code') }).click();
    await page.getByRole('alert').filter({ hasText: msg('register.must_agree') }).waitFor();
    assert.equal(await field(msg('tp.reg_account'), 'account').inputValue(), f.account, 'the account is kept');
    await axeCheck(page, 'the registration page with an error');
    // a common password: the page says why
    await fill();
    await field(msg('tp.password'), 'password').fill('Password1');
    await field(msg('tp.password_again'), 'password2').fill('Password1');
    await page.getByRole('checkbox', { name: msg('tp.reg_agree') }).check();
    await page.getByRole('button', { name: msg('tp.reg_send_code') }).click();
    await page.getByRole('alert').filter({ hasText: msg('password.common') }).waitFor();
    await axeCheck(page, 'the registration page refusing a common password');
    await shots.take(t, page, 'register-common-password');
    await fill();
    await page.getByRole('checkbox', { name: msg('tp.reg_agree') }).check();
    await page.getByRole('button', { name: msg('tp.reg_send_code') }).click();

    // step 2: the SMS code, a wrong one first
    const code = field(msg('otp.code'), 'code');
    await code.waitFor();
    assert.ok((await page.locator('main').innerText()).includes(`${phone[0]}*******${phone.slice(-2)}`), 'the masked number is shown');
    await axeCheck(page, 'the code page');
    await shots.take(t, page, 'register-code');
    const right = await smsCode(phone);
    await code.fill(otherCode(right));
    await page.getByRole('button', { name: msg('tp.reg_finish') }).click();
    const alert = page.getByRole('alert');
    await alert.filter({ hasText: msg('otp.wrong') }).waitFor();
    assert.match(await code.getAttribute('aria-describedby'), /code-error/, 'the field is described by its error');
    await axeCheck(page, 'the code page with an error');
    await shots.take(t, page, 'register-code-error');
    await code.fill(right);
    await page.getByRole('button', { name: msg('tp.reg_finish') }).click();

    // done
    await page.getByRole('status').filter({ hasText: msg('tp.register_done') }).waitFor();
    await axeCheck(page, 'the registration done page');
    await shots.take(t, page, 'register-done');
    await page.getByRole('link', { name: msg('done.continue') }).click();

    // back in the same login: the new account works
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await page.getByLabel(/帳號/).and(page.locator('[name="account"]')).fill(f.account);
    await page.getByLabel(/密碼/).and(page.locator('[name="password"]')).fill(f.password);
    await page.getByRole('button', { name: msg('tp.submit'), exact: true }).click();
    await page.waitForURL(onIssuer('/consent'));
    await page.getByRole('button', { name: msg('consent.allow') }).click();
    await page.waitForURL((u) => sameEndpoint(u.href, RP));
    const { claims } = await redeem(a, page.url(), 'browser registration');
    const ui = await client.fetchUserInfo(cfg, (await loginFlow(f.phone, f.password)).tokens.access_token, claims.sub);
    assert.equal(ui.name, f.name);
  } finally {
    await context.close();
  }
});

// ---------------------------------------------------------------- 7. the log

test("issod's log holds no national ID, password, account name, SMS code or whole phone number; security events carry a keyed account hash", T, async () => {
  const idn = 'A123456789';
  secrets.ids.add(idn);
  const m = await stack.addUser({
    account: newAccount('privacy'), password: password('Privacy'), phone: newPhone(), email: 'privacy@example.tw',
    name: '李隱私', idNumber: idn, birthdate: '1988-08-08',
  });
  const { tokens, claims } = await loginFlow(m.account, m.password, 'member with a national ID');
  const ui = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(ui.id_number, idn, 'the national ID reaches the agency (and so went through issod)');
  await register(new HttpAgent(), { account: newAccount('privacyreg'), phone: newPhone(), password: password('Privacy-Reg') });
  const agent = new HttpAgent();
  const { res } = await forgotStart(agent, m.phone);
  const newPw = password('Renewed-Secret');
  const reset = await submitCode(agent, res, await queuedSmsCode(m.phone), { password: newPw, password2: newPw });
  assert.equal(reset.status, 200, reset.alerts().join(' | '));
  await loginFlow(m.phone, newPw, 'after the reset');
  // failed logins, by account, e-mail and phone, and one that names nobody
  const probe = await openLogin();
  let form = probe.form;
  for (const login of [m.account, 'privacy@example.tw', m.phone, 'no.such.privacy']) {
    const wrong = password('Wrong-Privacy');
    const res = await submitLogin(probe.agent, form, login, wrong);
    assert.ok([401, 429].includes(res.status), `a wrong password: ${res.status}`);
    form = loginForm(res);
  }
  secrets.accounts.add(m.account);
  secrets.accounts.add('no.such.privacy');
  await sleep(500); // issod's last lines reach us a moment after its answers

  const log = stack.issod.stderr;
  // the log did record these flows (the check below is not vacuous)
  for (const event of ['otp_sent', 'code_issued', 'login_failed', 'login_delayed']) assert.ok(log.includes(event), `the log has ${event} events`);
  // security events: method, a keyed account hash and the address, never the account
  const events = log.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l))
    .filter((e) => ['login_failed', 'login_delayed', 'device_cookie_used', 'device_cookie_locked'].includes(e.event));
  assert.ok(events.length >= 4, `security events: ${events.length}`);
  for (const e of events) {
    assert.equal(e.method, 'taipeipass', `${e.event}: method`);
    assert.match(e.account, /^[0-9a-f]{16}$/, `${e.event}: the account as a keyed hash`);
    assert.equal(e.address, '127.0.0.1', `${e.event}: address`);
  }
  const failed = events.filter((e) => e.event === 'login_failed');
  assert.ok(failed.some((e) => e.reason === 'wrong_password') && failed.some((e) => e.reason === 'unknown_login'), 'reasons');
  const byPerson = new Set(failed.filter((e) => e.reason === 'wrong_password').map((e) => e.account));
  assert.ok(byPerson.size >= 1);
  assert.ok(secrets.codes.size >= 10, `codes collected: ${secrets.codes.size}`);
  const leaks = [];
  const digits = (s) => new RegExp(`(?<![0-9])${s}(?![0-9])`);
  for (const id of secrets.ids) if (log.toUpperCase().includes(id)) leaks.push(`national ID ${id}`);
  for (const p of secrets.passwords) if (log.includes(p)) leaks.push(`password ${p}`);
  for (const a of secrets.accounts) if (log.toLowerCase().includes(a.toLowerCase())) leaks.push(`account ${a}`);
  for (const c of secrets.codes) if (digits(c).test(log)) leaks.push(`SMS code ${c}`);
  for (const p of secrets.phones) {
    if (digits(p).test(log) || digits(p.slice(1)).test(log)) leaks.push(`phone ${p}`);
  }
  const lines = (what) => log.split('\n').filter((l) => l.includes(what.split(' ').at(-1))).slice(0, 3).join('\n');
  assert.deepEqual(leaks, [], `issod's log leaks:\n${leaks.map((l) => `${l}\n${lines(l)}`).join('\n')}`);
});

// ---------------------------------------------------------------- the end

test('issod is still healthy and stops cleanly on SIGTERM', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
