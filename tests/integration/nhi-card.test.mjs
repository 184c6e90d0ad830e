// The NHI card method (健保卡晶片驗證, nhi-card) through its pages: over
// plain HTTP (HttpAgent), with the card's answers made by signing with the
// test cards' keys, and in headless Chromium through the real
// isso-cardagent (its NHI WebSocket) on SoftHSM2 test cards: card + ID →
// registration password → phone + SMS code → consent, through an OpenID
// Connect authorization. Also: wrong passwords (tries left, then the
// 10-minute suspension), an ID that is not the card's (the same page for an
// ID nobody has), a replayed random, a signature by another card, a card
// changed between the steps, the NHI service unreachable, no card read,
// steps out of order, and that neither the password nor the ID reach
// issod's log.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, REPO, limit, redirectParams, sameEndpoint,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots, assertNoHorizontalScroll,
  tabTo, focusIs, assertFocusAtTop, assertErrorFocus,
} from './lib/browser.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid uuid profile phone id_number';
const ACR_SUBSTANTIAL = 'urn:isso:loa:substantial';
const AMR = ['sc', 'pwd', 'sms', 'mfa'];
const T = { timeout: limit(30_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));

function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  return MSG[key];
}

/** A valid ID (check digit computed) from a letter and 8 digits. */
function validId(letter, eight) {
  const code = 'ABCDEFGHJKLMNPQRSTUVXYWZIO'.indexOf(letter) + 10;
  const digits = [Math.floor(code / 10), code % 10, ...eight.split('').map(Number)];
  const weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1];
  const sum = digits.reduce((s, d, i) => s + d * weights[i], 0);
  return `${letter}${eight}${(10 - (sum % 10)) % 10}`;
}

let stack;
let deadStack; // issod whose NHI service address answers nothing
let cfg;
let deadCfg;
let browser;
const shots = new Screenshots();
const secrets = new Set(); // IDs, passwords, codes: never in issod's log

/** The test card of national ID id, from the PKI manifest: {card_no,
 * national_id, registration_password, key (PEM)}. */
function card(id) {
  const c = stack.cards.nhi.find((x) => x.national_id === id);
  assert.ok(c, `${id} has an NHI test card`);
  secrets.add(c.national_id);
  secrets.add(c.registration_password);
  const key = fs.readFileSync(path.join(stack.pki, c.cert.replace(/\.crt$/, '.key')), 'utf8');
  const cert = fs.readFileSync(path.join(stack.pki, c.cert), 'utf8');
  const der = new crypto.X509Certificate(cert).raw.toString('base64');
  return { ...c, key, certB64: der };
}

/** What the card component answers to H_Sign and EnCrypt (our contract,
 * docs/cardagent.md): RSA PKCS#1 v1.5 SHA-256 by the card's key over the
 * random; the password RSA-OAEP-encrypted to the NHI service's key. */
function cardAnswers(c, random, password) {
  const sign = (text) => crypto.sign('sha256', Buffer.from(text, 'utf8'), c.key).toString('base64');
  const service = fs.readFileSync(path.join(stack.pki, stack.cards.nhi_service_cert), 'utf8');
  return {
    signature: sign(random),
    cert: c.certB64,
    blob: crypto.publicEncrypt({ key: service, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from(`NHI-PWD\n${random}\n${password}`, 'utf8')).toString('base64'),
    signed_card_no: c.card_no,
  };
}

let phoneSeq = 0;
function newPhone() {
  phoneSeq += 1;
  const p = `0937${String(400000 + phoneSeq * 173).padStart(6, '0')}`;
  secrets.add(p);
  return p;
}

async function setupClient(s) {
  const c = await s.registerClient({
    name: '臺北市測試機關', purpose: '健保卡整合測試', redirectUris: [RP], scope: SCOPE,
  });
  const conf = await client.discovery(new URL(s.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
  return conf;
}

before(async () => {
  stack = await startStack({ label: 'nhi-card', cards: true, env: { ISSO_LOG_LEVEL: 'debug' } });
  cfg = await setupClient(stack);
  deadStack = await startStack({ label: 'nhi-card-dead', env: { ISSO_NHI_URL: 'http://127.0.0.1:9/nhi', ISSO_NHI_TIMEOUT_MS: '1000' } });
  deadCfg = await setupClient(deadStack);
  if (!NO_BROWSER) browser = await launchBrowser();
}, { timeout: limit(120_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (deadStack) await deadStack.stop({ check: false });
  if (stack) {
    const log = stack.issod.stderr;
    await stack.stop();
    for (const s of secrets) assert.ok(!log.includes(s), 'a national ID, password, phone or code reached the log');
  }
  shots.report();
});

// ---------------------------------------------------------------- helpers

async function startAuth({ conf = cfg, scope = SCOPE, extra = {} } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(conf, {
    redirect_uri: RP, scope, state, nonce, ...extra,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { url, verifier, state, nonce };
}

const isRp = (next) => sameEndpoint(next, RP);
const tOf = (url) => new URL(url).searchParams.get('t');
const pathOf = (url) => new URL(url).pathname;

/** The method choice of a new authorization: {res, t, link}. */
async function choice(agent, authorizeUrl) {
  const r = await agent.followUntil(authorizeUrl, isRp);
  assert.ok(!r.stopped, `went straight back to the client: ${r.url}`);
  assert.equal(r.res.status, 200, 'the method choice');
  const link = r.res.links().find((l) => pathOf(l.href) === '/login/nhi-card');
  return { res: r.res, t: tOf(r.url), link };
}

/** Step 1 for card c with the ID typed: returns the password page. */
async function toPassword(agent, a, c, id = c.national_id) {
  const { link } = await choice(agent, a.url.href);
  assert.ok(link, 'the method choice offers 健保卡');
  const first = await agent.get(link.href);
  assert.equal(first.status, 200, 'the card step');
  const f = first.forms().find((x) => x.has('card_no'));
  assert.ok(f, 'the card form');
  const r = await agent.submit(f, { id_number: id, card_no: c.card_no });
  assert.equal(r.res.status, 200, `after the card step: ${r.res.pageText().slice(0, 300)}`);
  assert.equal(pathOf(r.url), '/login/nhi-card/password');
  return r.res;
}

/** The password form of page res and its one-time random. */
function passwordForm(res) {
  const f = res.forms().find((x) => x.has('random'));
  assert.ok(f, `the password form: ${res.pageText().slice(0, 300)}`);
  const random = f.controls.find((x) => x.name === 'random').value;
  assert.match(random, /^[A-Za-z0-9_-]{43}$/);
  return { f, random };
}

/** Posts the card's answers for password on the password page res. */
async function answer(agent, res, c, password, overrides = {}) {
  const { f, random } = passwordForm(res);
  return agent.submit(f, { ...cardAnswers(c, random, password), ...overrides });
}

async function smsCode(phone, s = stack) {
  const sms = await s.readLastSms(phone);
  assert.ok(sms?.code, `no SMS code reached ${phone}`);
  secrets.add(sms.code);
  return sms.code;
}

/** At the phone step page url: code sent to phone and entered; stops at
 * the client or the consent page. */
async function phoneStep(agent, url, phone) {
  const page = await agent.get(url);
  assert.equal(page.status, 200, `the phone step: ${page.pageText().slice(0, 300)}`);
  const f = page.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(f, { phone }, f.buttons.find((b) => b.value === 'send'));
  assert.equal(sent.res.status, 200, `after sending: ${sent.res.alerts().join(' | ')}`);
  const cf = sent.res.forms().find((x) => x.has('code'));
  return agent.submit(cf, { code: await smsCode(phone) }, cf.buttons.find((b) => b.value === 'verify'), isRp);
}

async function allow(agent, res) {
  const cf = res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
  assert.ok(cf, `the consent page (${res.status}): ${res.pageText().slice(0, 300)}`);
  const r = await agent.submit(cf, {}, cf.buttons.find((b) => b.value === 'allow'), isRp);
  assert.ok(r.stopped, 'consent leads back to the client');
  return r.url;
}

// ---------------------------------------------------------------- the card

test('the portal card and the help page', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { res, link, t } = await choice(agent, a.url.href);
  assert.ok(link, 'a login link');
  const text = res.pageText();
  for (const k of ['nhi.title', 'nhi.bullet1', 'nhi.bullet2']) assert.ok(text.includes(msg(k)), `card shows ${k}`);
  const reg = res.links().find((l) => pathOf(l.href) === '/nhi-card/help');
  assert.ok(reg, 'the card has 前往註冊');
  const help = await agent.get(reg.href);
  assert.equal(help.status, 200);
  assert.equal(help.title(), `${msg('nhi.help_title')} - ${msg('site.name')}`);
  const back = help.links().find((l) => l.text === msg('nhi.back_to_login'));
  assert.equal(back && tOf(back.href), t, 'back to the same login');
});

// ---------------------------------------------------------------- happy path

test('login: card + ID → registration password → phone + SMS code → consent → tokens (acr substantial)', T, async () => {
  const c = card('A123456789');
  const agent = new HttpAgent();
  const a = await startAuth({ extra: { acr_values: ACR_SUBSTANTIAL } });
  const { link, t } = await choice(agent, a.url.href);
  const first = await agent.get(link.href);
  assert.equal(first.title(), `${msg('nhi.heading')} - ${msg('site.name')}`);
  const steps = /<nav class="steps"[\s\S]*?<\/nav>/.exec(first.text)[0];
  for (const k of ['nhi.step1', 'nhi.step2', 'nhi.step3']) assert.ok(steps.includes(msg(k)), `step label ${k}`);
  assert.match(first.text, /<script src="\/static\/card-nhi\.js" defer><\/script>/);
  assert.ok(first.text.includes(`data-nhi-url="${stack.nhiUrl}"`), 'the page knows the component');
  const csp = first.headers.get('content-security-policy');
  assert.ok(csp.includes(`connect-src 'self' ws://127.0.0.1:${new URL(stack.nhiUrl).port}`), `CSP lets the page reach the component: ${csp}`);

  // without a card read, the step says what to fix
  const f = first.forms().find((x) => x.has('card_no'));
  const none = await agent.submit(f, { id_number: c.national_id, card_no: '' });
  assert.equal(none.res.status, 400);
  assert.deepEqual(none.res.alerts(), [msg('nhi.no_card')]);
  // a later step refuses to run first
  for (const step of ['phone', 'password']) {
    const early = await agent.get(stack.url(`/login/nhi-card/${step}?t=${t}`));
    assert.equal(early.status, 403, `no ${step} step before the card step`);
  }

  const pw = await agent.submit(none.res.forms().find((x) => x.has('card_no')),
    { id_number: ` ${c.national_id.toLowerCase()} `, card_no: c.card_no });
  assert.equal(pathOf(pw.url), '/login/nhi-card/password');
  const page = pw.res;
  assert.ok(page.pageText().includes(msg('nhi.password_warning')), 'the 3-tries warning');
  assert.ok(page.pageText().includes(`****${c.card_no.slice(-4)}`), 'the card number, masked');
  assert.ok(!page.text.includes(c.national_id), 'the ID is not on the page');
  const { f: pf } = passwordForm(page);
  assert.ok(!pf.controls.some((x) => x.type === 'password' && x.name), 'the password field has no name: the form cannot send it');

  const r = await answer(agent, page, c, c.registration_password);
  assert.equal(pathOf(r.url), '/login/nhi-card/phone', `after the password: ${r.res.pageText().slice(0, 300)}`);
  const phone = newPhone();
  const done = await phoneStep(agent, r.url, phone);
  const cb = done.stopped ? done.url : await allow(agent, done.res);
  const p = redirectParams(cb);
  assert.ok(p.get('code'));
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  });
  const claims = tokens.claims();
  assert.equal(claims.acr, ACR_SUBSTANTIAL);
  for (const v of AMR) assert.ok(claims.amr.includes(v), `amr ${JSON.stringify(claims.amr)} lacks ${v}`);
  const info = await client.fetchUserInfo(cfg, tokens.access_token, claims.sub);
  assert.equal(info.id_number, c.national_id);
  assert.equal(info.phone_number, `+886${phone.slice(1)}`, 'the number proven in this login (E.164)');
});

// ---------------------------------------------------------------- refusals

test('wrong registration passwords: 2 tries left, 1, then the card is suspended (even for the right one)', T, async () => {
  const c = card('A113579248');
  const agent = new HttpAgent();
  let page = await toPassword(agent, await startAuth(), c);
  let r = await answer(agent, page, c, 'wrong-pw-1');
  assert.equal(r.res.status, 403);
  assert.deepEqual(r.res.alerts(), [msg('nhi.password_wrong_n').replace('%d', '2')]);
  r = await answer(agent, r.res, c, 'wrong-pw-2');
  assert.deepEqual(r.res.alerts(), [msg('nhi.password_wrong_n').replace('%d', '1')]);
  r = await answer(agent, r.res, c, 'wrong-pw-3');
  assert.equal(r.res.status, 403);
  assert.equal(r.res.title(), `${msg('nhi.suspended_title')} - ${msg('site.name')}`);
  assert.ok(r.res.alerts()[0].includes('10'), `minutes shown: ${r.res.alerts()[0]}`);
  // a new login with the right password is still refused
  const again = new HttpAgent();
  page = await toPassword(again, await startAuth(), c);
  r = await answer(again, page, c, c.registration_password);
  assert.equal(r.res.title(), `${msg('nhi.suspended_title')} - ${msg('site.name')}`);
});

test('an ID that is not the card holder\'s, and one nobody has, get the same page', T, async () => {
  const c = card('F228033121');
  const pages = [];
  for (const id of ['A223456781', validId('Q', '12345678')]) {
    secrets.add(id);
    const agent = new HttpAgent();
    const page = await toPassword(agent, await startAuth(), c, id);
    const r = await answer(agent, page, c, c.registration_password);
    assert.equal(r.res.status, 403);
    pages.push(r.res.alerts());
    assert.equal(r.res.title(), `${msg('nhi.mismatch_title')} - ${msg('site.name')}`);
  }
  assert.deepEqual(pages[0], [msg('nhi.mismatch')]);
  assert.deepEqual(pages[0], pages[1], 'nothing tells whether an ID exists');
});

test('a random is good once: the same answer posted twice is refused', T, async () => {
  const c = card('A220000125');
  const agent = new HttpAgent();
  const page = await toPassword(agent, await startAuth(), c);
  const { f, random } = passwordForm(page);
  const fields = cardAnswers(c, random, 'not-the-pass');
  const first = await agent.submit(f, fields);
  assert.equal(first.res.status, 403, 'a wrong password spends the random');
  const replay = await agent.submit(f, fields);
  assert.equal(replay.res.status, 400);
  assert.deepEqual(replay.res.alerts(), [msg('nhi.stale')]);
  // the fresh page works
  const ok = await answer(agent, replay.res, c, c.registration_password);
  assert.equal(pathOf(ok.url), '/login/nhi-card/phone');
});

test('posts racing with one random: exactly one reaches the NHI service', T, async () => {
  const c = card('A113579248'); // suspended by the wrong-password test: any answer but "stale" counts
  const agent = new HttpAgent();
  const page = await toPassword(agent, await startAuth(), c);
  const { f, random } = passwordForm(page);
  const fields = cardAnswers(c, random, 'race-pass');
  const results = await Promise.all(Array.from({ length: 8 }, () => agent.submit(f, fields)));
  const stale = results.filter((r) => r.res.status === 400 && r.res.alerts().includes(msg('nhi.stale')));
  assert.equal(stale.length, 7, `one winner: ${results.map((r) => r.res.status).join(',')}`);
});

test('junk posted with someone\'s ID never uses up that ID\'s tries', T, async () => {
  const victim = card('A224680138');
  const other = card('A109876547');
  // a stranger's card-less posts naming the victim's ID: each is "signature"
  for (let i = 0; i < 12; i++) {
    const agent = new HttpAgent();
    const page = await toPassword(agent, await startAuth(), other, victim.national_id);
    const r = await answer(agent, page, other, 'whatever', { signature: Buffer.from(`junk ${i}`).toString('base64') });
    assert.equal(r.res.status, 403, `junk ${i}`);
    assert.equal(r.res.title(), `${msg('nhi.signature_title')} - ${msg('site.name')}`);
  }
  // the victim still logs in
  const agent = new HttpAgent();
  const page = await toPassword(agent, await startAuth(), victim);
  const r = await answer(agent, page, victim, victim.registration_password);
  assert.equal(pathOf(r.url), '/login/nhi-card/phone', `the victim is not locked out: ${r.res.alerts().join(' | ')}`);
});

test('once an ID reached its limit, the NHI service is not asked again', T, async () => {
  const c = card('F228033121');
  const target = validId('R', '24681357'); // not this card's holder: each answer is "mismatch"
  secrets.add(target);
  const verifies = () => (stack.sim.stderr.match(/"event":"nhi_verify"/g) ?? []).length;
  const start = verifies();
  for (let i = 0; i < 10; i++) {
    const agent = new HttpAgent();
    const page = await toPassword(agent, await startAuth(), c, target);
    const r = await answer(agent, page, c, c.registration_password);
    assert.equal(r.res.status, 403, `card-proven answer ${i}: ${r.res.alerts().join(' | ')}`);
  }
  assert.equal(verifies(), start + 10, 'each of those reached the NHI service');
  for (let i = 0; i < 2; i++) {
    const agent = new HttpAgent();
    const page = await toPassword(agent, await startAuth(), c, target);
    const r = await answer(agent, page, c, c.registration_password);
    assert.equal(r.res.status, 429);
    assert.deepEqual(r.res.alerts(), [msg('nhi.id_limited')]);
  }
  assert.equal(verifies(), start + 10, 'the NHI service heard nothing once the limit was reached');
  // the card's own holder is not held back by someone else's limit
  const agent = new HttpAgent();
  const page = await toPassword(agent, await startAuth(), c);
  const ok = await answer(agent, page, c, c.registration_password);
  assert.equal(pathOf(ok.url), '/login/nhi-card/phone');
  assert.equal(verifies(), start + 11);
  // security events: method, reason and address only
  const events = stack.issod.stderr.split('\n').filter((l) => l.includes('"event":"login_failed"')).map((l) => JSON.parse(l))
    .filter((e) => e.method === 'nhi-card');
  for (const e of events) assert.deepEqual(Object.keys(e).sort(), ['address', 'event', 'level', 'method', 'reason', 'ts']);
  const reasons = new Set(events.map((e) => e.reason));
  for (const r of ['id_limited', 'id_mismatch', 'wrong_password', 'suspended', 'bad_signature', 'random_stale']) {
    assert.ok(reasons.has(r), `login_failed ${r} (seen: ${[...reasons].join(', ')})`);
  }
});

test('a signature by another card, and a card changed between the steps, are refused', T, async () => {
  const c = card('A224680138');
  const other = card('A109876547');
  let agent = new HttpAgent();
  let page = await toPassword(agent, await startAuth(), c);
  const { random } = passwordForm(page);
  const forged = cardAnswers(other, random, c.registration_password);
  let r = await answer(agent, page, c, c.registration_password,
    { signature: forged.signature, blob: forged.blob });
  assert.equal(r.res.status, 403);
  assert.equal(r.res.title(), `${msg('nhi.signature_title')} - ${msg('site.name')}`);

  agent = new HttpAgent();
  page = await toPassword(agent, await startAuth(), c);
  const { f, random: r2 } = passwordForm(page);
  r = await agent.submit(f, cardAnswers(other, r2, other.registration_password));
  assert.equal(r.res.status, 409);
  assert.deepEqual(r.res.alerts(), [msg('nhi.changed')]);
});

test('malformed answers and a bad ID are refused with a page, never a crash', T, async () => {
  const c = card('A131415925');
  const agent = new HttpAgent();
  const { link } = await choice(agent, (await startAuth()).url.href);
  const first = await agent.get(link.href);
  const f = first.forms().find((x) => x.has('card_no'));
  let r = await agent.submit(f, { id_number: 'A123456780', card_no: c.card_no });
  assert.equal(r.res.status, 400);
  assert.deepEqual(r.res.alerts(), [msg('nhi.bad_id')]);
  r = await agent.submit(f, { id_number: c.national_id, card_no: '12345' });
  assert.deepEqual(r.res.alerts(), [msg('nhi.no_card')]);
  for (const bad of [{ signature: '***' }, { blob: 'x'.repeat(5000) }, { cert: '' }]) {
    const again = await toPassword(agent, await startAuth(), c);
    r = await answer(agent, again, c, c.registration_password, bad);
    assert.equal(r.res.status, 400, JSON.stringify(Object.keys(bad)));
    assert.deepEqual(r.res.alerts(), [msg('nhi.card_failed')]);
  }
  assert.ok(await stack.healthy());
});

test('the NHI service unreachable: a clear page offering another method', T, async () => {
  const c = card('A227182817');
  const agent = new HttpAgent();
  const a = await startAuth({ conf: deadCfg });
  const r0 = await agent.followUntil(a.url.href, isRp);
  const link = r0.res.links().find((l) => pathOf(l.href) === '/login/nhi-card');
  const first = await agent.get(link.href);
  const s1 = await agent.submit(first.forms().find((x) => x.has('card_no')), { id_number: c.national_id, card_no: c.card_no });
  const r = await answer(agent, s1.res, c, c.registration_password);
  assert.equal(r.res.status, 503);
  assert.deepEqual(r.res.alerts(), [msg('nhi.error')]);
  assert.ok(r.res.links().some((l) => l.text === msg('nhi.other_method') && pathOf(l.href) === '/login'));
});

// ---------------------------------------------------------------- browser

const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;

test('browser: the card read through isso-cardagent, password encrypted to the NHI service, SMS, consent; axe on each page', { timeout: limit(120_000), skip: NO_BROWSER }, async (t) => {
  const c = card('A227182817');
  const a = await startAuth();
  // only this card in a reader: the component answers for the first card it sees
  const others = stack.cards.nhi.filter((x) => x.card_no !== c.card_no);
  for (const x of others) stack.removeCard(x.card_no);
  const { context, page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'zh-TW' });
  const posted = [];
  page.on('request', (r) => { if (r.method() === 'POST') posted.push(r.postData() || ''); });
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/nhi-card"]').first().click();
    await page.waitForURL(onIssuer('/login/nhi-card'));
    // the page reads the card by itself
    await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_found').replace('%s', c.card_no.slice(-4)) }).waitFor({ timeout: limit(10_000) });
    await axeCheck(page, 'nhi-card: card + ID');
    await assertNoHorizontalScroll(page, 'nhi-card: card + ID');
    await shots.take(t, page, 'nhi-card-1-card');
    await page.getByLabel(msg('nhi.id_label')).fill(c.national_id);
    await page.getByRole('button', { name: msg('nhi.next') }).click();
    await page.waitForURL(onIssuer('/login/nhi-card/password'));
    await axeCheck(page, 'nhi-card: password');
    // a wrong password first: the agent encrypts it, the service says 2 left
    await page.getByLabel(msg('nhi.password_label')).fill('wrong-pass');
    await page.getByRole('button', { name: msg('nhi.verify') }).click();
    await page.getByRole('alert').filter({ hasText: msg('nhi.password_wrong_n').replace('%d', '2') }).waitFor({ timeout: limit(10_000) });
    await shots.take(t, page, 'nhi-card-2-password-wrong');
    await page.getByLabel(msg('nhi.password_label')).fill(c.registration_password);
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/nhi-card/phone'), { timeout: limit(10_000) });
    await axeCheck(page, 'nhi-card: phone');
    const phone = newPhone();
    await page.getByLabel(msg('otp.step_phone')).fill(phone);
    await page.getByRole('button', { name: msg('otp.send') }).click();
    const code = page.getByLabel(msg('otp.code'));
    await code.waitFor();
    await code.fill(await smsCode(phone));
    await page.getByRole('button', { name: msg('otp.step_submit'), exact: true }).click();
    await page.waitForURL(onIssuer('/consent'));
    await axeCheck(page, 'nhi-card: consent');
    const [req] = await Promise.all([
      page.waitForRequest((r) => r.url().startsWith(RP)),
      page.getByRole('button', { name: msg('consent.allow') }).click(),
    ]);
    assert.ok(redirectParams(req.url()).get('code'), 'a code for the client');
    for (const body of posted) {
      assert.ok(!body.includes(c.registration_password), 'the registration password never left the browser');
      assert.ok(!body.includes('wrong-pass'), 'nor the wrong one');
    }

    // Again with prompt=login: consent is remembered, so the SMS step's
    // answer redirects (via /consent) straight to the client, which the
    // page's CSP form-action must allow or the browser stops it.
    const again = await startAuth({ extra: { prompt: 'login' } });
    const p2 = await context.newPage(); // the same browser: its cookies
    await p2.goto(again.url.href);
    await p2.waitForURL(onIssuer('/login'));
    await p2.locator('a[href*="/login/nhi-card"]').first().click();
    await p2.locator('#nhi-status').filter({ hasText: msg('nhi.js_found').split('%s')[0] }).waitFor({ timeout: limit(10_000) });
    await p2.getByLabel(msg('nhi.id_label')).fill(c.national_id);
    await p2.getByRole('button', { name: msg('nhi.next') }).click();
    await p2.waitForURL(onIssuer('/login/nhi-card/password'));
    await p2.getByLabel(msg('nhi.password_label')).fill(c.registration_password);
    await p2.getByRole('button', { name: msg('nhi.verify') }).click();
    await p2.waitForURL(onIssuer('/login/nhi-card/phone'), { timeout: limit(10_000) });
    const phone2 = newPhone(); // the first number is in its resend cool-down
    await p2.getByLabel(msg('otp.step_phone')).fill(phone2);
    await p2.getByRole('button', { name: msg('otp.send') }).click();
    await p2.getByLabel(msg('otp.code')).waitFor();
    await p2.waitForLoadState('load');
    const code2 = p2.getByLabel(msg('otp.code'));
    await code2.fill(await smsCode(phone2));
    const [back] = await Promise.all([
      p2.waitForRequest((r) => r.url().startsWith(RP), { timeout: limit(10_000) }),
      p2.getByRole('button', { name: msg('otp.step_submit'), exact: true }).click(),
    ]);
    assert.ok(redirectParams(back.url()).get('code'), 'straight back to the client with a code');
  } finally {
    await context.close();
    for (const x of others) stack.insertCard(x.card_no);
  }
});

test('keyboard only (Tab, Enter, Space, typing): focus after each load and each error, Enter submits each step; axe on every state', { timeout: limit(120_000), skip: NO_BROWSER }, async (t) => {
  const c = card('A223456781');
  const a = await startAuth();
  const others = stack.cards.nhi.filter((x) => x.card_no !== c.card_no);
  for (const x of others) stack.removeCard(x.card_no);
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const prefix = msg('error.title_prefix');
  const type = async (matches, what, text) => {
    await tabTo(page, matches, what);
    await page.keyboard.type(text);
  };
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await assertFocusAtTop(page, 'the method choice');
    await tabTo(page, (el) => el.tag === 'a' && /^\/login\/nhi-card\?/.test(el.href ?? ''), 'the 健保卡 card', 80);
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/nhi-card'));
    await assertFocusAtTop(page, 'the card step');
    await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_found').replace('%s', c.card_no.slice(-4)) }).waitFor({ timeout: limit(10_000) });
    await axeCheck(page, 'keyboard: the card step');

    // a wrong ID: Enter in the field submits 下一步; the summary takes focus
    await type((el) => el.name === 'id_number', 'the ID field', 'A123456780');
    await page.keyboard.press('Enter');
    await page.locator('#error-summary').waitFor({ timeout: limit(10_000) });
    await assertErrorFocus(page, 'a wrong ID', prefix);
    assert.equal(await page.locator('#id_number').getAttribute('aria-invalid'), 'true');
    await axeCheck(page, 'keyboard: the ID error');
    await shots.take(t, page, 'nhi-kb-id-error');
    await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_found').split('%s')[0] }).waitFor({ timeout: limit(10_000) });
    await page.locator('#id_number').evaluate((e) => { e.value = ''; }); // as Ctrl+A, Delete would
    await type((el) => el.name === 'id_number', 'the ID field', c.national_id);
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/login/nhi-card/password'), { timeout: limit(10_000) });
    await assertFocusAtTop(page, 'the password step');
    await axeCheck(page, 'keyboard: the password step');
    const isPw = (el) => el.tag === 'input' && el.type === 'password';
    // too short for a registration password: said, focus back in the field
    await type(isPw, 'the password field', 'abc');
    await page.keyboard.press('Enter');
    await page.locator('#nhi-alert').filter({ hasText: msg('nhi.js_bad_password') }).waitFor();
    assert.equal(await page.locator('#nhi-alert').getAttribute('role'), 'alert');
    await focusIs(page, 'nhi-password', 'a too short password: back in the field');
    await axeCheck(page, 'keyboard: a too short password');
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    // a wrong one: the card signs, the NHI service counts it
    await page.keyboard.type('wrong-pass');
    await page.keyboard.press('Enter');
    await page.locator('#error-summary').waitFor({ timeout: limit(10_000) });
    await assertErrorFocus(page, 'a wrong registration password', prefix);
    assert.ok((await page.locator('#error-summary').innerText()).includes(msg('nhi.password_wrong_n').replace('%d', '2')));
    await axeCheck(page, 'keyboard: a wrong password');
    await shots.take(t, page, 'nhi-kb-password-wrong');
    await type(isPw, 'the password field', c.registration_password);
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/login/nhi-card/phone'), { timeout: limit(10_000) });
    await assertFocusAtTop(page, 'the phone step');
    await axeCheck(page, 'keyboard: the phone step');
    const phone = newPhone();
    await type((el) => el.name === 'phone', 'the phone field', phone);
    await page.keyboard.press('Enter'); // in the number field: send
    await page.locator('#code').waitFor();
    await assertFocusAtTop(page, 'the code field');
    await axeCheck(page, 'keyboard: the code field');
    await type((el) => el.name === 'code', 'the code field', '000000');
    await page.keyboard.press('Enter'); // in the code field: verify
    await page.locator('#error-summary').waitFor({ timeout: limit(10_000) });
    await assertErrorFocus(page, 'a wrong code', prefix);
    assert.equal(await page.locator('#code').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('#phone').inputValue(), phone, 'the number stays');
    await axeCheck(page, 'keyboard: a wrong code');
    await type((el) => el.name === 'code', 'the code field', await smsCode(phone));
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/consent'), { timeout: limit(10_000) });
    await assertFocusAtTop(page, 'consent');
    await axeCheck(page, 'keyboard: consent');
    await tabTo(page, (el) => el.tag === 'button' && el.text === msg('consent.allow'), 'the allow button');
    const [req] = await Promise.all([
      page.waitForRequest((r) => sameEndpoint(r.url(), RP)),
      page.keyboard.press('Space'),
    ]);
    assert.ok(redirectParams(req.url()).get('code'), 'a code for the client');
  } finally {
    await context.close();
    for (const x of others) stack.insertCard(x.card_no);
  }
});

test('browser: no component, no card and a card pulled out each say what to do', { timeout: limit(90_000), skip: NO_BROWSER }, async (t) => {
  const c = card('A131415925');
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  try {
    const a = await startAuth();
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/nhi-card"]').first().click();
    await page.waitForURL(onIssuer('/login/nhi-card'));
    await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_found').split('%s')[0] }).waitFor({ timeout: limit(10_000) });

    // every card out of the reader
    for (const x of stack.cards.nhi) stack.removeCard(x.card_no);
    await page.getByRole('button', { name: msg('nhi.detect') }).click();
    await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_no_card') }).waitFor({ timeout: limit(10_000) });
    await page.getByLabel(msg('nhi.id_label')).fill(c.national_id);
    await page.getByRole('button', { name: msg('nhi.next') }).click();
    await page.getByRole('alert').filter({ hasText: msg('nhi.js_no_card') }).waitFor();
    await axeCheck(page, 'nhi-card: no card');
    await shots.take(t, page, 'nhi-card-no-card');
    for (const x of stack.cards.nhi) stack.insertCard(x.card_no);

    // the component stopped
    await stack.stopAgent();
    try {
      await page.getByRole('button', { name: msg('nhi.detect') }).click();
      await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_no_component') }).waitFor({ timeout: limit(15_000) });
      await shots.take(t, page, 'nhi-card-no-component');
    } finally {
      await stack.startAgent();
    }
    await page.getByRole('button', { name: msg('nhi.detect') }).click();
    await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_found').split('%s')[0] }).waitFor({ timeout: limit(10_000) });
  } finally {
    await context.close();
  }
});
