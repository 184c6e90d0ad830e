// The natural-person certificate card method (實體自然人憑證, moica-card)
// against the real daemons: issod, isso-sim (MOICA ID check, OCSP, CRL over
// the test PKI) and isso-cardagent over the testcard PKCS#11 module on
// SoftHSM2 tokens.
//
// Over plain HTTP (HttpAgent) the tests sign the page's challenge
// themselves, through the agent's /sign (no Origin, X-HiPKI-Site naming
// issod as the popup does) or with the
// test PKI's key files: success through phone + SMS code and consent to
// tokens (name from the certificate, ID, phone, acr high), PKCS#1 too, 歸戶
// with a TaipeiPass member, and the refusals: wrong ID (an unknown ID reads
// the same), revoked, expired, a look-alike CA (wrong chain), replayed and
// raced challenges, tampered signatures, revocation sources down, the
// method without trust anchors. In headless Chromium, through the agent's
// /popupForm: detect, wrong PINs counting down to a locked card, a card
// taken out, then a good card logging in; the component not running; axe
// on every page, keyboard only, a phone-sized viewport. No PIN ever
// reaches issod, in a request or in its log.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import { fileSign } from './lib/cards.mjs';
import {
  startStack, testPki, freePort, HttpAgent, REPO, limit, redirectParams, sameEndpoint, decodeEntities,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots, tabTo, assertNoHorizontalScroll,
  waitForFocus,
} from './lib/browser.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted
const SCOPE = 'openid uuid profile phone email id_number';
const ACR_HIGH = 'urn:isso:loa:high';
const AMR = ['sc', 'hwk', 'pin', 'sms', 'otp', 'mfa'];
const T = { timeout: limit(30_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const MSG_EN = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'en.json'), 'utf8'));
const TBS_RE = /^iSSO-LOGIN-v1\n(http:\/\/127\.0\.0\.1:\d+)\n([A-Za-z0-9_-]{43})\n(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)$/;

// Test cards (sim/identities.json → the test PKI's cards.json). Each test
// uses its own, so PIN counters and per-ID limits never meet.
const CARD = {
  happy: 'TP03000000000001', // 王小明 A123456789
  mismatch: 'TP03000000000002', // 陳美玲 A223456781 (also the browser's card to lock)
  revoked: 'TP03000000000005', // 黃建國 H187654320
  linked: 'TP03000000000006', // 李淑芬 A220000125
  pkcs1: 'TP03000000000008', // 劉怡君 A224680138
  expired: 'TP03000000000010', // 楊佩珊 E222223335
  browser: 'TP03000000000012', // 鄭雅雯 A227182817
  rogue: 'ROGUE00000000001', // 王小明's name and last four, another CA
};

let stack; // cards: agent, test PKI, isso-sim with OCSP / CRL
let stackDead; // the trust anchors, but OCSP and CRL at a dead port
let stackBare; // no trust anchors: the method is not available
let cfg;
let browser;
const shots = new Screenshots();
const secrets = { ids: new Set(), pins: new Set(), phones: new Set(), codes: new Set() };

function msg(key, vars = {}) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  let s = MSG[key];
  for (const [k, v] of Object.entries(vars)) s = s.split(`{${k}}`).join(String(v));
  return s;
}

/** A valid national ID (check digit computed) from a letter and 8 digits. */
function validId(letter, eight) {
  const code = 'ABCDEFGHJKLMNPQRSTUVXYWZIO'.indexOf(letter) + 10;
  const digits = [Math.floor(code / 10), code % 10, ...eight.split('').map(Number)];
  const weights = [1, 9, 8, 7, 6, 5, 4, 3, 2, 1];
  const sum = digits.reduce((s, d, i) => s + d * weights[i], 0);
  return `${letter}${eight}${(10 - (sum % 10)) % 10}`;
}

let phoneSeq = 0;
function newPhone() {
  phoneSeq += 1;
  const p = `0937${String(300000 + phoneSeq * 173).padStart(6, '0')}`;
  secrets.phones.add(p);
  return p;
}

/** The card's entry of cards.json: {card_sn, national_id, name, pin, cert}. */
function card(sn, s = stack) {
  const c = [...s.cards.moica, ...s.cards.rogue].find((x) => x.card_sn === sn);
  assert.ok(c, `card ${sn} in cards.json`);
  secrets.ids.add(c.national_id);
  secrets.pins.add(c.pin);
  return c;
}

async function setupClient(s) {
  const c = await s.registerClient({
    name: '臺北市測試機關', purpose: '自然人憑證整合測試', redirectUris: [RP], scope: SCOPE,
  });
  return client.discovery(new URL(s.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
}

before(async () => {
  const pki = await testPki();
  const dead = `http://127.0.0.1:${await freePort()}`;
  [stack, stackDead, stackBare] = await Promise.all([
    startStack({ label: 'moica-card', cards: true, env: { ISSO_LOG_LEVEL: 'debug' } }),
    startStack({
      label: 'moica-card-dead',
      env: {
        ISSO_MOICA_ROOTS: path.join(pki.dir, 'roots.pem'),
        ISSO_MOICA_INTERMEDIATES: path.join(pki.dir, 'chain.pem'),
        ISSO_MOICA_OCSP_URL: `${dead}/ocsp`,
        ISSO_MOICA_CRL_URL: `${dead}/crl`,
        ISSO_MOICA_TIMEOUT_MS: '2000',
      },
    }),
    startStack({ label: 'moica-card-bare' }),
  ]);
  stackDead.pkiDir = pki.dir;
  stackDead.cards = pki.cards;
  cfg = await setupClient(stack);
  if (!NO_BROWSER) browser = await launchBrowser();
}, { timeout: limit(120_000) });

after(async () => {
  await browser?.close().catch(() => {});
  for (const s of [stackBare, stackDead, stack]) if (s) await s.stop({ check: false });
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
  return { url, verifier, state, nonce };
}

const isRp = (next) => sameEndpoint(next, RP);
const tOf = (url) => new URL(url).searchParams.get('t');
const pathOf = (url) => new URL(url).pathname;
/** The page's alerts without the script's (empty until it speaks). */
const alertsOf = (res) => res.alerts().filter((a) => a !== '');

/** The method choice of a new authorization: {res, t, link}. */
async function choice(agent, authorizeUrl) {
  const r = await agent.followUntil(authorizeUrl, isRp);
  assert.equal(r.res.status, 200, 'the method choice');
  assert.equal(pathOf(r.url), '/login');
  const link = r.res.links().find((l) => pathOf(l.href) === '/login/moica-card');
  return { res: r.res, t: tOf(r.url), link };
}

/** What a card page carries: the form, its challenge and the text to sign. */
function cardForm(res) {
  const form = res.forms().find((f) => f.has('challenge'));
  assert.ok(form, `a card form (${res.status}): ${res.pageText().slice(0, 300)}`);
  const tbs = decodeEntities(/data-tbs="([^"]*)"/.exec(res.text)?.[1] ?? '');
  const challenge = form.fields().find(([n]) => n === 'challenge')[1];
  return { form, tbs, challenge };
}

/** From an authorization URL to the card page: {res, t, form, tbs, challenge}. */
async function toCard(agent, s = stack, conf = cfg) {
  const a = await startAuth({ conf });
  const { link, t } = await choice(agent, a.url.href);
  assert.ok(link, 'the method choice offers 實體自然人憑證');
  const res = await agent.get(link.href);
  assert.equal(res.status, 200, `the card page: ${res.pageText().slice(0, 300)}`);
  return { a, res, t, ...cardForm(res) };
}

/** The agent's slot holding card sn. */
async function slotOf(sn, s = stack) {
  const info = await (await fetch(`${s.agentUrl}/pkcs11info`, { headers: { 'x-hipki-site': s.issuer } })).json();
  assert.equal(info.ret_code, 0, 'pkcs11info');
  const slot = info.slots.find((x) => x.token && x.token.serialNumber.trim() === sn);
  assert.ok(slot, `card ${sn} is in a reader`);
  return slot.slotID;
}

/** The card signs tbs through the agent's /sign (as its popup would). */
async function agentSign(sn, tbs, { type = 'PKCS7', pin = card(sn).pin, s = stack } = {}) {
  const res = await fetch(`${s.agentUrl}/sign`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hipki-site': s.issuer },
    body: JSON.stringify({
      func: 'MakeSignature', signatureType: type, tbs, tbsEncoding: 'NONE', hashAlgorithm: 'SHA256',
      withCardSN: 'true', pin, nonce: '', slotID: await slotOf(sn, s),
    }),
  });
  const r = await res.json();
  assert.equal(r.ret_code, 0, `the card signed: ${JSON.stringify({ ...r, signature: undefined, certb64: undefined })}`);
  return { sig_type: type, signature: r.signature, certb64: r.certb64, card_sn: r.cardSN };
}

/** Posts the card form with the ID and a signature; stops before the phone step. */
function post(agent, form, id, signed) {
  secrets.ids.add(id.toUpperCase());
  return agent.submit(form, { id_number: id, ...signed }, null, (next) => pathOf(next) === '/login/moica-card/phone');
}

async function smsCode(phone, s = stack) {
  const sms = await s.readLastSms(phone);
  assert.ok(sms?.code, `no SMS code reached ${phone}`);
  secrets.codes.add(sms.code);
  return sms.code;
}

/** The phone step at url: number, code, on to consent or the client. */
async function phoneStep(agent, url, phone, s = stack) {
  const page = await agent.get(url);
  assert.equal(page.status, 200, `the phone step: ${page.pageText().slice(0, 300)}`);
  const f = page.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(f, { phone }, f.buttons.find((b) => b.value === 'send'));
  assert.equal(sent.res.status, 200, `after sending: ${sent.res.alerts().join(' | ')}`);
  const cf = sent.res.forms().find((x) => x.has('code'));
  assert.ok(cf, 'the code field');
  return agent.submit(cf, { code: await smsCode(phone, s) }, cf.buttons.find((b) => b.value === 'verify'), isRp);
}

/** Consent page → allow → the client's redirect URL. */
async function allow(agent, res) {
  const cf = res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
  assert.ok(cf, `the consent page (${res.status}): ${res.pageText().slice(0, 300)}`);
  const r = await agent.submit(cf, {}, cf.buttons.find((b) => b.value === 'allow'), isRp);
  assert.ok(r.stopped, 'consent leads back to the client');
  return r.url;
}

/** Code → tokens → UserInfo; checks acr and amr. */
async function redeem(a, cb, what, conf = cfg) {
  assert.ok(redirectParams(cb).get('code'), `${what}: a code in ${cb}`);
  const tokens = await client.authorizationCodeGrant(conf, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  });
  const claims = tokens.claims();
  assert.equal(claims.acr, ACR_HIGH, `${what}: acr`);
  for (const v of AMR) assert.ok(claims.amr.includes(v), `${what}: amr ${JSON.stringify(claims.amr)} lacks ${v}`);
  const ui = await client.fetchUserInfo(conf, tokens.access_token, claims.sub);
  return { tokens, claims, ui };
}

/** A refusal page: status, title and its one message, and nothing proven. */
async function refused(agent, r, t, { status, title, text }, s = stack) {
  assert.ok(!r.stopped, 'not on to the phone step');
  assert.equal(r.res.status, status, `${text}: status`);
  // back on the card form, the title starts by saying there is an error
  const prefix = title === 'mc.heading' ? msg('error.title_prefix') : '';
  assert.equal(r.res.title(), `${prefix}${msg(title)} - ${msg('site.name')}`);
  assert.deepEqual(alertsOf(r.res), [msg(text)]);
  assert.equal((await agent.get(s.url(`/login/moica-card/phone?t=${t}`))).status, 403, 'nothing proven');
}

// ---------------------------------------------------------------- the pages

test('the portal card, 前往註冊 and the help page', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { res, link, t } = await choice(agent, a.url.href);
  assert.ok(link && tOf(link.href) === t, 'a login link for this transaction');
  const text = res.pageText();
  for (const k of ['mc.title', 'mc.bullet1', 'mc.bullet2']) assert.ok(text.includes(msg(k)), `the card shows ${k}`);
  // the portal's order of the briefing: …, 手機電信驗證, 實體自然人憑證, 健保卡
  const order = res.links().filter((l) => /^\/login\/./.test(pathOf(l.href))).map((l) => pathOf(l.href));
  assert.ok(order.indexOf('/login/moica-card') > order.indexOf('/login/telecom'), `order ${order}`);
  assert.ok(order.indexOf('/login/moica-card') > order.indexOf('/login/moica-mobile'), `order ${order}`);
  const reg = res.links().find((l) => pathOf(l.href) === '/moica-card/help');
  assert.ok(reg && reg.text.startsWith(msg('portal.register')), 'the card has 前往註冊');
  assert.equal(new URL(reg.href).hash, '', 'the portal adds ?t= to the path: no fragment there');
  const help = await agent.get(reg.href);
  assert.equal(help.status, 200);
  assert.equal(help.title(), `${msg('mc.help_title')} - ${msg('site.name')}`);
  for (const id of ['need', 'apply', 'unlock', 'renew', 'faq']) assert.match(help.text, new RegExp(`id="${id}"`));
  for (const k of ['mc.need_card', 'mc.need_reader', 'mc.need_hicos', 'mc.need_component', 'mc.unlock']) {
    assert.ok(help.pageText().includes(msg(k)), `help says ${k}`);
  }
  assert.ok(help.text.includes(stack.agentUrl), 'where the page looks for the component');
  assert.ok(!help.links().some((l) => /^https?:/.test(l.attrs.href ?? '') && !l.href.startsWith(stack.issuer)),
    'link-out text only: no links away from the portal');
  const back = help.links().find((l) => l.text === msg('mc.back_to_login'));
  assert.equal(back && pathOf(back.href), '/login');
  assert.equal(tOf(back.href), t);
  const bare = await agent.get(stack.url('/moica-card/help?t=%22%3E%3Cx'));
  assert.equal(bare.status, 200);
  assert.ok(!bare.links().some((l) => l.text === msg('mc.back_to_login')), 'a malformed t is not echoed');
});

test('the card page: fields, PIN without a name, challenge per render, headers', T, async () => {
  const agent = new HttpAgent();
  const { res, t, form, tbs, challenge } = await toCard(agent);
  assert.equal(res.title(), `${msg('mc.heading')} - ${msg('site.name')}`);
  assert.equal(res.headers.get('cross-origin-opener-policy'), 'same-origin-allow-popups', 'the popup keeps its opener');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.match(res.headers.get('content-security-policy'), /script-src 'self'/);
  assert.match(res.text, /<script src="\/static\/card-moica\.js" defer><\/script>/);
  assert.ok(!/<script>|<script [^>]*>[^<]/.test(res.text.replace(/<script src="[^"]+" defer><\/script>/g, '')), 'no inline script');
  const text = res.pageText();
  for (const k of ['mc.detect_label', 'mc.id_label', 'mc.pin_label', 'mc.pin_warning', 'mc.first_time_q', 'mc.first_time']) {
    assert.ok(text.includes(msg(k)), `the page says ${k}`);
  }
  assert.ok(text.includes('請注意！PIN碼輸入累計錯誤3次，將會自動鎖卡。如需解鎖，請洽 內政部管理中心。'), 'the briefing\'s warning, word for word');
  assert.ok(text.includes('請備妥晶片讀卡機並安裝 HICOS 晶片管理工具，插卡輸入 PIN 碼即可完成驗證。'), 'the briefing\'s hint');
  const steps = /<nav class="steps"[\s\S]*?<\/nav>/.exec(res.text)[0];
  assert.match(steps, new RegExp(`<li aria-current="step">${msg('mc.step1')}</li>`));
  for (const k of ['mc.step2', 'mc.step3']) assert.ok(steps.includes(msg(k)));

  // the PIN field: never part of the form
  const pin = form.controls.find((c) => c.attrs.id === 'pin');
  assert.ok(pin, 'a PIN field');
  assert.equal(pin.name, null, 'the PIN field has no name');
  assert.equal(pin.type, 'password');
  assert.equal(pin.attrs.inputmode, 'numeric');
  assert.equal(pin.attrs.autocomplete, 'off');
  assert.equal(pin.attrs.pattern, '[0-9]{6,8}');
  assert.ok(!form.fields().some(([n]) => /pin/i.test(n)), 'no field carries a PIN');
  assert.match(res.text, /<label for="pin">/);
  // detect and its live status
  assert.match(res.text, /<button class="btn btn-secondary" type="button" id="mc-detect"/);
  assert.match(res.text, /id="mc-status"[^>]*role="status"[^>]*aria-live="polite"/);
  assert.match(res.text, /<noscript>[\s\S]*?<\/noscript>/);
  assert.ok(/<noscript>([\s\S]*?)<\/noscript>/.exec(res.text)[1].includes(msg('mc.needs_script')), 'without script, the page says why');
  // what the script needs, from the page
  assert.ok(res.text.includes(`data-agent-url="${stack.agentUrl}"`));
  assert.ok(res.text.includes(`data-agent-origin="${new URL(stack.agentUrl).origin}"`));
  for (const name of ['agent_missing', 'wrong_pin', 'pin_locked', 'card_removed', 'untrusted', 'no_reader', 'no_card', 'pin_format', 'card_found', 'tries_left']) {
    assert.match(res.text, new RegExp(`<li data-name="${name}">[^<]+</li>`), `the script's message ${name}`);
  }
  assert.ok(res.text.includes(`<li data-name="wrong_pin">${msg('mc.js.wrong_pin')}</li>`));
  // the challenge
  const m = TBS_RE.exec(tbs);
  assert.ok(m, `the text to sign: ${JSON.stringify(tbs)}`);
  assert.equal(m[1], stack.issuer);
  assert.equal(m[2], challenge, 'the form names the challenge');
  assert.ok(Math.abs(Date.parse(m[3]) - Date.now()) < 60_000, 'a current time');
  const again = cardForm(await agent.get(stack.url(`/login/moica-card?t=${t}`)));
  assert.notEqual(again.challenge, challenge, 'a new challenge for every render');
  // links: cancel and help
  assert.ok(res.links().some((l) => l.text === msg('portal.cancel_method') && pathOf(l.href) === '/login'), '取消');
  assert.ok(res.links().some((l) => pathOf(l.href) === '/moica-card/help' && tOf(l.href) === t), 'the help link');
  assert.equal((await agent.get(stack.url(`/login/moica-card/nope?t=${t}`))).status, 404);
  assert.equal((await new HttpAgent().get(stack.url(`/login/moica-card?t=${t}`))).status, 400, 'another browser');
});

// ---------------------------------------------------------------- success

test('login: card signs (PKCS#7, through the agent) → phone + SMS → consent → tokens', T, async () => {
  const c = card(CARD.happy);
  const agent = new HttpAgent();
  const { a, form, tbs, t } = await toCard(agent);
  assert.equal((await agent.get(stack.url(`/login/moica-card/phone?t=${t}`))).status, 403, 'no phone step first');
  const signed = await agentSign(CARD.happy, tbs);
  assert.equal(signed.card_sn, CARD.happy);
  const r = await post(agent, form, ` ${c.national_id.toLowerCase()} `, signed);
  assert.ok(r.stopped, `on to the phone step: ${r.res.status} ${alertsOf(r.res)}`);
  assert.equal(r.url, stack.url(`/login/moica-card/phone?t=${t}`));
  const phonePage = await agent.get(r.url);
  const steps = /<nav class="steps"[\s\S]*?<\/nav>/.exec(phonePage.text)[0];
  assert.match(steps, new RegExp(`<li aria-current="step">${msg('mc.step2')}</li>`));
  assert.ok(!phonePage.text.includes(c.national_id), 'the ID is not on the phone page');

  const phone = newPhone();
  const done = await phoneStep(agent, r.url, phone);
  assert.equal(pathOf(done.url), '/consent');
  assert.ok(done.res.text.includes(`<dt>${msg('claim.name')}</dt><dd>${c.name}</dd>`), 'consent lists the certificate\'s name');
  const { ui } = await redeem(a, await allow(agent, done.res), 'moica-card');
  assert.equal(ui.name, c.name, 'the name from the certificate');
  assert.equal(ui.id_number, c.national_id);
  assert.equal(ui.phone_number, `+886${phone.slice(1)}`);
  assert.equal(ui.phone_number_verified, true);
  assert.match(ui.uuid, /^[0-9a-f-]{36}$/);

  // the same card again (another browser): the same person
  const agent2 = new HttpAgent();
  const again = await toCard(agent2);
  const r2 = await post(agent2, again.form, c.national_id, await agentSign(CARD.happy, again.tbs));
  assert.ok(r2.stopped);
  const d2 = await phoneStep(agent2, r2.url, newPhone());
  const second = await redeem(again.a, d2.stopped ? d2.url : await allow(agent2, d2.res), 'second login');
  assert.equal(second.ui.uuid, ui.uuid, 'one ID, one uuid');
});

test('PKCS#1 signatures work too (key file and the agent)', T, async () => {
  const c = card(CARD.pkcs1);
  const agent = new HttpAgent();
  const { a, form, tbs } = await toCard(agent);
  const r = await post(agent, form, c.national_id, fileSign(stack.pki, CARD.pkcs1, tbs));
  assert.ok(r.stopped, `PKCS#1 from the key file: ${r.res.status} ${alertsOf(r.res)}`);
  const phone = newPhone();
  const done = await phoneStep(agent, r.url, phone);
  const { ui } = await redeem(a, await allow(agent, done.res), 'PKCS#1');
  assert.equal(ui.name, c.name);
  assert.equal(ui.id_number, c.national_id);

  const agent2 = new HttpAgent();
  const b = await toCard(agent2);
  const r2 = await post(agent2, b.form, c.national_id, await agentSign(CARD.pkcs1, b.tbs, { type: 'PKCS1' }));
  assert.ok(r2.stopped, `PKCS#1 from the agent: ${r2.res.status} ${alertsOf(r2.res)}`);
});

test('歸戶: a TaipeiPass member with the ID is the same person; the name released is the certificate\'s', T, async () => {
  const c = card(CARD.linked);
  const member = await stack.addUser({
    account: 'shufen.card', password: 'Card-pass-42', phone: newPhone(), name: '李舊名',
    email: 'shufen@example.tw', idNumber: c.national_id,
  });
  const agent = new HttpAgent();
  const { a, form, tbs } = await toCard(agent);
  const r = await post(agent, form, c.national_id, await agentSign(CARD.linked, tbs));
  assert.ok(r.stopped);
  const phone = newPhone();
  const done = await phoneStep(agent, r.url, phone);
  const { ui } = await redeem(a, done.stopped ? done.url : await allow(agent, done.res), 'linked');
  assert.equal(ui.uuid, member.uuid, 'the member\'s uuid');
  assert.equal(ui.name, c.name, 'the certificate\'s name, not the member record\'s');
  assert.equal(ui.email, member.email, 'a linked member\'s other data');
  assert.equal(ui.phone_number, `+886${phone.slice(1)}`, 'the phone proven now');
});

// ---------------------------------------------------------------- refusals

test('wrong ID: "身分證號與憑證不符", the same for an unknown ID; a retry with the right ID works', T, async () => {
  const c = card(CARD.mismatch);
  const last4 = c.national_id.slice(-4);
  // another citizen's valid ID with other last four digits, and an ID
  // nobody has that ends like the card's (so only the MOICA service can
  // tell): both must read the same
  let unknown = null;
  for (let n = 0; n < 100000 && !unknown; n++) {
    const eight = `2${String(n).padStart(4, '0')}${last4.slice(0, 3)}`;
    const id = validId('Q', eight);
    if (id.slice(-4) === last4) unknown = id;
  }
  assert.ok(unknown && unknown.slice(-4) === last4, 'an unknown ID ending like the card\'s');
  const pages = [];
  for (const id of ['A123456789', unknown]) {
    const agent = new HttpAgent();
    const { form, tbs, t } = await toCard(agent);
    const r = await post(agent, form, id, await agentSign(CARD.mismatch, tbs));
    await refused(agent, r, t, { status: 403, title: 'mc.heading', text: 'mc.id_mismatch' });
    assert.equal(msg('mc.id_mismatch').startsWith('身分證號與憑證不符'), true);
    pages.push({ status: r.res.status, title: r.res.title(), alerts: alertsOf(r.res), url: pathOf(r.url) });
    // a fresh challenge to try again, and the right ID works
    const next = cardForm(r.res);
    assert.ok(TBS_RE.test(next.tbs), 'the page offers a new challenge');
    const ok = await post(agent, next.form, c.national_id, await agentSign(CARD.mismatch, next.tbs));
    assert.ok(ok.stopped, `then the right ID: ${alertsOf(ok.res)}`);
  }
  assert.deepEqual(pages[0], pages[1], 'a wrong ID and an unknown one read the same');
});

test('revoked card (黃建國): "此憑證已廢止…"', T, async () => {
  const c = card(CARD.revoked);
  const agent = new HttpAgent();
  const { form, tbs, t } = await toCard(agent);
  const r = await post(agent, form, c.national_id, await agentSign(CARD.revoked, tbs));
  await refused(agent, r, t, { status: 403, title: 'mc.refused_title', text: 'mc.revoked' });
  assert.ok(msg('mc.revoked').startsWith('此憑證已廢止'));
  assert.ok(r.res.links().some((l) => l.text === msg('mc.other_method') && pathOf(l.href) === '/login'), 'another method');
  assert.ok(r.res.links().some((l) => pathOf(l.href) === '/moica-card/help' && new URL(l.href).hash === '#renew'));
});

test('expired card (楊佩珊): its own message', T, async () => {
  const c = card(CARD.expired);
  const agent = new HttpAgent();
  const { form, tbs, t } = await toCard(agent);
  const r = await post(agent, form, c.national_id, await agentSign(CARD.expired, tbs));
  await refused(agent, r, t, { status: 403, title: 'mc.refused_title', text: 'mc.cert_expired' });
});

test('a card from a look-alike CA (王小明\'s name and digits): "此卡不是內政部自然人憑證…"', T, async () => {
  const c = card(CARD.rogue);
  assert.equal(c.national_id, 'A123456789');
  const agent = new HttpAgent();
  const { form, tbs, t } = await toCard(agent);
  const r = await post(agent, form, c.national_id, await agentSign(CARD.rogue, tbs));
  await refused(agent, r, t, { status: 403, title: 'mc.refused_title', text: 'mc.wrong_chain' });
  assert.ok(msg('mc.wrong_chain').startsWith('此卡不是內政部自然人憑證'));
});

test('tampered or foreign signatures are refused with their own message', T, async () => {
  const c = card(CARD.pkcs1);
  const agent = new HttpAgent();
  let { form, tbs, t } = await toCard(agent);
  const tries = [
    ['a flipped byte in the PKCS#7', (s) => {
      const der = Buffer.from(s.signature, 'base64');
      der[der.length - 10] ^= 0x01; // inside the RSA signature
      return { ...s, signature: der.toString('base64') };
    }, 'PKCS7'],
    ['a signature over another challenge', null, 'other-tbs'],
    ['another card\'s certificate with a PKCS#1', (s) => ({ ...s, certb64: fileSign(stack.pki, CARD.happy, 'x').certb64 }), 'PKCS1'],
    ['not base64 at all', (s) => ({ ...s, signature: '!!!' }), 'PKCS1'],
    ['an unknown signature type', (s) => ({ ...s, sig_type: 'CMS' }), 'PKCS1'],
  ];
  for (const [what, change, kind] of tries) {
    let signed;
    if (kind === 'PKCS7') signed = change(await agentSign(CARD.pkcs1, tbs));
    else if (kind === 'other-tbs') signed = await agentSign(CARD.pkcs1, tbs.replace(/\n[A-Za-z0-9_-]{43}\n/, `\n${'A'.repeat(43)}\n`));
    else signed = change(fileSign(stack.pki, CARD.pkcs1, tbs));
    const r = await post(agent, form, c.national_id, signed);
    assert.ok(!r.stopped, `${what}: refused`);
    assert.equal(r.res.status, 400, what);
    assert.deepEqual(alertsOf(r.res), [msg('mc.bad_signature')], what);
    ({ form, tbs } = cardForm(r.res));
  }
  assert.equal((await agent.get(stack.url(`/login/moica-card/phone?t=${t}`))).status, 403);
});

test('a challenge is good once: replayed, raced, stale or from another login', T, async () => {
  const c = card(CARD.happy);
  const agent = new HttpAgent();
  const { form, tbs, t } = await toCard(agent);
  const signed = await agentSign(CARD.happy, tbs);
  const ok = await post(agent, form, c.national_id, signed);
  assert.ok(ok.stopped, 'the first use');
  // the same form again
  const replay = await post(agent, form, c.national_id, signed);
  assert.ok(!replay.stopped);
  assert.equal(replay.res.status, 400);
  assert.deepEqual(alertsOf(replay.res), [msg('mc.challenge_used')]);
  assert.equal((await agent.get(stack.url(`/login/moica-card/phone?t=${t}`))).status, 403, 'a replay drops what the attempt proved');

  // posts of one signed challenge at the same moment: one wins
  const fresh = cardForm(replay.res);
  const s2 = await agentSign(CARD.happy, fresh.tbs);
  const racers = await Promise.all(Array.from({ length: 8 }, () => post(agent, fresh.form, c.national_id, s2)));
  assert.equal(racers.filter((r) => r.stopped).length, 1, `exactly one of the racing posts passes: ${racers.map((r) => r.res.status)}`);
  for (const loser of racers.filter((r) => !r.stopped)) assert.deepEqual(alertsOf(loser.res), [msg('mc.challenge_used')]);

  // a page rendered since: the earlier page's challenge is dead
  const older = cardForm(await agent.get(stack.url(`/login/moica-card?t=${t}`)));
  await agent.get(stack.url(`/login/moica-card?t=${t}`));
  const stale = await post(agent, older.form, c.national_id, await agentSign(CARD.happy, older.tbs));
  assert.deepEqual(alertsOf(stale.res), [msg('mc.challenge_used')]);

  // another login's challenge, signed and posted here
  const other = await toCard(new HttpAgent());
  const mine = cardForm(stale.res);
  const foreign = await post(agent, mine.form, c.national_id, { ...(await agentSign(CARD.happy, other.tbs)), challenge: other.challenge });
  assert.deepEqual(alertsOf(foreign.res), [msg('mc.challenge_used')]);
  // this login's challenge with a signature over another login's text
  const mine2 = cardForm(foreign.res);
  const crossed = await post(agent, mine2.form, c.national_id, await agentSign(CARD.happy, other.tbs));
  assert.deepEqual(alertsOf(crossed.res), [msg('mc.bad_signature')]);
});

test('without script (no signature), a bad ID, a forged CSRF token', T, async () => {
  const agent = new HttpAgent();
  const { form, t } = await toCard(agent);
  const noscript = await post(agent, form, 'A220000125', {});
  assert.equal(noscript.res.status, 400);
  assert.deepEqual(alertsOf(noscript.res), [msg('mc.no_signature')]);
  const f2 = cardForm(noscript.res);
  const bad = await post(agent, f2.form, 'A12345', fileSign(stack.pki, CARD.happy, f2.tbs));
  assert.equal(bad.res.status, 400);
  assert.deepEqual(alertsOf(bad.res), [msg('mc.bad_id')]);
  const f3 = cardForm(bad.res);
  const forged = await agent.submit(f3.form, { csrf: 'x', id_number: 'A123456789', ...fileSign(stack.pki, CARD.happy, f3.tbs) });
  assert.equal(forged.res.status, 403);
  assert.deepEqual(alertsOf(forged.res), [msg('error.csrf')]);
  assert.equal((await agent.get(stack.url(`/login/moica-card/phone?t=${t}`))).status, 403);
  const phone = newPhone();
  const sms = await agent.postForm(stack.url('/login/moica-card/phone'), { t, action: 'send', phone, csrf: 'x' });
  assert.equal(sms.status, 403, 'no SMS step before the card');
  assert.equal(await stack.readLastSms(phone), null);
});

test('revocation sources down: the login is refused ("service failed, try another method")', T, async () => {
  const s = stackDead;
  const conf = await setupClient(s);
  const agent = new HttpAgent();
  const { form, tbs, t } = await toCard(agent, s, conf);
  const c = s.cards.moica.find((x) => x.card_sn === CARD.happy);
  const r = await post(agent, form, c.national_id, fileSign(s.pkiDir, CARD.happy, tbs));
  await refused(agent, r, t, { status: 503, title: 'mc.error_title', text: 'mc.error' }, s);
  assert.ok(r.res.links().some((l) => l.text === msg('mc.other_method') && pathOf(l.href) === '/login'));
  assert.match(s.issod.stderr, /"moica_card_result","state":"revocation_unavailable"/);
});

test('without trust anchors: issod starts, warns, and the method says it is not available', T, async () => {
  const s = stackBare;
  assert.match(s.issod.stderr, /"event":"moica_card_unavailable"/);
  const conf = await setupClient(s);
  const agent = new HttpAgent();
  const a = await startAuth({ conf });
  const { link } = await choice(agent, a.url.href);
  assert.ok(link, 'the portal still lists it');
  const res = await agent.get(link.href);
  assert.equal(res.status, 503);
  assert.equal(res.title(), `${msg('mc.unavailable_title')} - ${msg('site.name')}`);
  assert.deepEqual(alertsOf(res), [msg('mc.unavailable')]);
  assert.ok(!res.forms().some((f) => f.has('challenge')), 'no card form');
  assert.ok(res.links().some((l) => l.text === msg('mc.other_method') && pathOf(l.href) === '/login'));
});

test('too many card-proven attempts for one ID are refused; junk with the ID does not count', T, async () => {
  // E222223335 (the expired card's holder): ID_MAX (10) attempts in 10 minutes
  const c = card(CARD.expired);
  const agent = new HttpAgent();
  let { form, tbs } = await toCard(agent);
  let last;
  // a stranger posting garbage with the ID proves no card: never limited
  for (let i = 0; i < 12; i++) {
    last = await post(agent, form, c.national_id,
      { sig_type: 'PKCS7', signature: Buffer.from(`junk ${i}`).toString('base64'), certb64: '', card_sn: '' });
    assert.equal(last.res.status, 400, `junk ${i} is a bad signature, not a counted try`);
    ({ form, tbs } = cardForm(last.res));
  }
  for (let i = 0; i < 11; i++) {
    last = await post(agent, form, c.national_id, fileSign(stack.pki, CARD.happy, tbs));
    ({ form, tbs } = last.res.forms().some((f) => f.has('challenge')) ? cardForm(last.res) : await toCard(agent));
  }
  assert.equal(last.res.status, 429);
  assert.deepEqual(alertsOf(last.res), [msg('mc.id_limited')]);
});

// ---------------------------------------------------------------- browser

const cardsAllBut = (keep) => [
  ...stack.cards.moica.map((c) => c.card_sn), ...stack.cards.rogue.map((c) => c.card_sn),
  ...stack.cards.nhi.map((c) => c.card_no),
].filter((sn) => !keep.includes(sn));

test('browser: detect, wrong PINs (2, 1, locked), card taken out, then a good card logs in; keyboard only, axe', { timeout: limit(120_000), skip: NO_BROWSER }, async (t) => {
  const locked = card(CARD.mismatch);
  const good = card(CARD.browser);
  for (const sn of cardsAllBut([CARD.mismatch])) stack.removeCard(sn);
  const a = await startAuth();
  const phone = newPhone();
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const toIssod = [];
  context.on('request', (r) => {
    if (r.url().startsWith(stack.issuer)) toIssod.push(`${r.method()} ${r.url()} ${r.postData() ?? ''}`);
  });
  const popups = [];
  context.on('page', (p) => popups.push(p.url()));
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  const alertBox = page.locator('#mc-alert');
  const status = page.locator('#mc-status');
  const pin = page.locator('#pin');
  const tryPin = async (value) => {
    await tabTo(page, (el) => el.tag === 'input' && el.type === 'password', 'the PIN field');
    await page.keyboard.type(value);
    await tabTo(page, (el) => el.tag === 'button' && el.text === msg('mc.next'), '下一步');
    await page.keyboard.press('Enter');
  };
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/moica-card"]').focus();
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/moica-card'));
    assert.equal(await page.title(), `${msg('mc.heading')} - ${msg('site.name')}`);
    await axeCheck(page, 'the card page');
    await shots.take(t, page, 'mc-card');

    // 偵測: one reader, a card in it
    await page.locator('body').focus();
    await tabTo(page, (el) => el.tag === 'button' && el.text === msg('mc.detect'), 'the detect button');
    await page.keyboard.press('Enter');
    await status.filter({ hasText: msg('mc.js.card_found', { reader: 'Generic Smart Card Reader' }).replace(/ — .*/, '') }).waitFor();
    await page.waitForFunction(() => /偵測到憑證IC卡/.test(document.getElementById('mc-status').textContent));
    const found = await status.innerText();
    assert.match(found, /^Generic Smart Card Reader \d+ — 偵測到憑證IC卡$/m, `the status: ${found}`);
    assert.ok(popups.some((u) => u.startsWith(`${stack.agentUrl}/popupForm`)), 'the agent\'s popupForm opened');
    await page.waitForFunction(() => document.activeElement?.id === 'mc-detect', null, { timeout: limit(5000) });
    assert.equal(await page.evaluate(() => document.activeElement.id), 'mc-detect', 'focus is back on 偵測 after the component\'s window');
    await axeCheck(page, 'the card page after detection');

    // the ID, then a wrong PIN twice and a third time
    await tabTo(page, (el) => el.tag === 'input' && el.name === 'id_number', 'the ID field');
    await page.keyboard.type(locked.national_id);
    const wrong = locked.pin === '000000' ? '111111' : '000000';
    secrets.pins.add(wrong);
    await tryPin(wrong);
    await alertBox.filter({ hasText: msg('mc.js.wrong_pin', { n: 2 }) }).waitFor();
    assert.equal(await pin.inputValue(), '', 'the PIN field is emptied');
    await waitForFocus(page, () => document.activeElement?.id === 'mc-alert');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'mc-alert', 'focus on the message');
    await axeCheck(page, 'a wrong PIN');
    await shots.take(t, page, 'mc-wrong-pin');
    // detect tells the tries left too
    await page.locator('#mc-detect').click();
    await status.filter({ hasText: msg('mc.js.tries_left', { n: 2 }) }).waitFor();
    await tryPin(wrong);
    await alertBox.filter({ hasText: msg('mc.js.wrong_pin', { n: 1 }) }).waitFor();
    await tryPin(wrong);
    await alertBox.filter({ hasText: msg('mc.js.pin_locked') }).waitFor();
    assert.ok(await alertBox.getByRole('link', { name: msg('mc.help_link') }).isVisible(), 'unlock guidance links the help');
    await shots.take(t, page, 'mc-locked');
    // the right PIN cannot help a locked card
    await tryPin(locked.pin);
    await alertBox.filter({ hasText: msg('mc.js.pin_locked') }).waitFor();
    await page.locator('#mc-detect').click();
    await status.filter({ hasText: msg('mc.js.card_locked') }).waitFor();
    assert.equal(page.url().split('?')[0], stack.url('/login/moica-card'), 'still on the card page');

    // the card taken out: the component reports it absent (last_error
    // CKR_TOKEN_NOT_PRESENT, which the page reads first)
    stack.removeCard(CARD.mismatch);
    await tryPin(locked.pin);
    await alertBox.filter({ hasText: msg('mc.js.card_removed') }).waitFor();
    await page.locator('#mc-detect').click();
    await status.filter({ hasText: msg('mc.js.no_card') }).waitFor();
    const none = await status.innerText();
    // the test machine's many SoftHSM2 readers are counted in one line
    assert.match(none, /^另有 \d+ 部讀卡機未插入卡片$/m, `readers without cards: ${none}`);
    assert.ok(!/未插入卡片[\s\S]*未插入卡片/.test(none), `one line for the empty readers: ${none}`);
    assert.ok(!none.includes('偵測到憑證IC卡'), `no certificate card claimed: ${none}`);
    await axeCheck(page, 'no card');
    await shots.take(t, page, 'mc-no-card');

    // a good card
    stack.insertCard(CARD.browser);
    await page.locator('#id_number').fill('');
    await tabTo(page, (el) => el.tag === 'input' && el.name === 'id_number', 'the ID field');
    await page.keyboard.type(good.national_id);
    await tryPin(good.pin);
    await page.waitForURL(onIssuer('/login/moica-card/phone'), { timeout: limit(15_000) });
    await axeCheck(page, 'the phone step');
    await page.getByLabel(msg('otp.step_phone')).fill(phone);
    await page.getByRole('button', { name: msg('otp.send') }).click();
    const code = page.getByLabel(msg('otp.code'));
    await code.waitFor();
    await code.fill(await smsCode(phone));
    await page.getByRole('button', { name: msg('otp.step_submit'), exact: true }).click();
    await page.waitForURL(onIssuer('/consent'));
    await axeCheck(page, 'consent');
    await shots.take(t, page, 'mc-consent');
    assert.ok((await page.locator('main').innerText()).includes(good.name), 'the certificate\'s name on consent');
    await page.getByRole('button', { name: msg('consent.allow') }).click();
    await page.waitForURL((u) => sameEndpoint(u.href, RP));
    const { ui } = await redeem(a, page.url(), 'browser');
    assert.equal(ui.name, good.name);
    assert.equal(ui.id_number, good.national_id);

    // the PIN never went to issod
    const sent = toIssod.join('\n');
    for (const p of [wrong, locked.pin, good.pin]) {
      assert.ok(!new RegExp(`(?<![0-9A-Za-z])${p}(?![0-9A-Za-z])`).test(sent), `PIN ${p} was sent to issod`);
    }
    assert.ok(toIssod.some((r) => r.startsWith('POST') && r.includes('signature=')), 'the signature was');
  } finally {
    await context.close();
    for (const sn of cardsAllBut([])) stack.insertCard(sn);
  }
});

test('browser: two certificate cards inserted: the citizen chooses which one signs', { timeout: limit(90_000), skip: NO_BROWSER }, async (t) => {
  const first = card(CARD.happy);
  const chosen = card(CARD.linked);
  for (const sn of cardsAllBut([CARD.happy, CARD.linked])) stack.removeCard(sn);
  const a = await startAuth();
  const { context, page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'zh-TW' });
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/moica-card"]').click();
    await page.waitForURL(onIssuer('/login/moica-card'));
    assert.ok(await page.locator('#mc-choose').isHidden(), 'nothing to choose before detecting');
    await page.locator('#mc-detect').click();
    const group = page.getByRole('group', { name: msg('mc.choose_card') });
    await group.waitFor();
    const radios = group.getByRole('radio');
    assert.equal(await radios.count(), 2, 'one choice per certificate card');
    assert.ok(await radios.nth(0).isChecked(), 'the first is chosen by default');
    await axeCheck(page, 'two cards to choose from');
    await shots.take(t, page, 'mc-choose');
    // which reader holds which card: ask the agent like the test helpers do
    const slot = await slotOf(CARD.linked);
    const labels = await radios.evaluateAll((els) => els.map((e) => e.value));
    const idx = labels.indexOf(String(slot));
    assert.ok(idx >= 0, `a choice for the reader of ${CARD.linked}`);
    await radios.nth(idx).check();
    await page.locator('#id_number').fill(chosen.national_id);
    await page.locator('#pin').fill(chosen.pin);
    await page.getByRole('button', { name: msg('mc.next') }).click();
    await page.waitForURL(onIssuer('/login/moica-card/phone'), { timeout: limit(15_000) });
    assert.ok(first.pin, 'the other card was there too');
  } finally {
    await context.close();
    for (const sn of cardsAllBut([])) stack.insertCard(sn);
  }
});

test('browser: the card component not running → install guidance; English at phone width', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const a = await startAuth({ extra: { ui_locales: 'en' } });
  const { context, page } = await newPage(browser, { viewport: { width: 375, height: 800 }, locale: 'en-US', isMobile: true, hasTouch: true });
  try {
    await page.goto(a.url.href);
    await page.waitForURL((u) => u.pathname === '/login');
    await page.locator('a[href*="/login/moica-card"]').click();
    await page.waitForURL((u) => u.pathname === '/login/moica-card');
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    await axeCheck(page, 'the card page in English (phone)');
    await assertNoHorizontalScroll(page, 'the card page at 375px');
    await shots.take(t, page, 'mc-card-en-phone');
    await stack.stopAgent();
    await page.getByLabel(MSG_EN['mc.id_label']).fill(card(CARD.browser).national_id);
    await page.getByLabel(MSG_EN['mc.pin_label']).fill(card(CARD.browser).pin);
    const started = Date.now();
    await page.getByRole('button', { name: MSG_EN['mc.next'] }).click();
    await page.locator('#mc-alert').filter({ hasText: MSG_EN['mc.js.agent_missing'] }).waitFor({ timeout: limit(10_000) });
    assert.ok(Date.now() - started >= 4000, 'waited ~5 s for the component');
    assert.equal(await page.locator('#pin').inputValue(), '', 'the PIN is gone from the page');
    const help = page.locator('#mc-alert').getByRole('link', { name: MSG_EN['mc.help_link'] });
    assert.ok(await help.isVisible(), 'a link to the help page');
    await axeCheck(page, 'the component missing');
    await assertNoHorizontalScroll(page, 'the guidance at 375px');
    await shots.take(t, page, 'mc-agent-missing-en');
    await help.click();
    await page.waitForURL((u) => u.pathname === '/moica-card/help');
    await axeCheck(page, 'the help page (phone)');
    await assertNoHorizontalScroll(page, 'the help page at 375px');
  } finally {
    await context.close();
    if (!stack.agent) await stack.startAgent();
  }
});

test('browser: a script on the page swaps in other text: the agent refuses it, the page says so, no PIN try is used', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const c = card(CARD.happy);
  const a = await startAuth();
  for (const sn of cardsAllBut([CARD.happy])) stack.removeCard(sn);
  const failures = () => { try { return Number(fs.readFileSync(stack.cardFile(CARD.happy, 'pin-failures'), 'utf8')); } catch { return 0; } };
  const { context, page } = await newPage(browser, { locale: 'zh-TW' });
  try {
    await page.goto(a.url.href);
    await page.locator('a[href*="/login/moica-card"]').click();
    await page.waitForURL((u) => u.pathname === '/login/moica-card');
    const real = await page.locator('#mc-form').getAttribute('data-tbs');
    assert.match(real, TBS_RE);
    // what an injected script would do: ask the card to sign something else
    await page.evaluate(() => document.getElementById('mc-form').setAttribute('data-tbs', 'I agree to transfer NT$1,000,000'));
    await page.getByLabel(msg('mc.id_label')).fill(c.national_id);
    const wrong = c.pin === '000000' ? '111111' : '000000';
    secrets.pins.add(wrong);
    await page.getByLabel(msg('mc.pin_label')).fill(wrong);
    await page.getByRole('button', { name: msg('mc.next') }).click();
    await page.locator('#mc-alert').filter({ hasText: msg('mc.js.not_login') }).waitFor({ timeout: limit(20_000) });
    assert.equal(failures(), 0, 'the wrong PIN never reached the card');
    assert.equal(page.url().split('?')[0], stack.url('/login/moica-card'), 'still on the card page');
    await axeCheck(page, 'the refused text');
    await shots.take(t, page, 'mc-not-login');
    // the page's own challenge signs and logs in
    await page.evaluate((v) => document.getElementById('mc-form').setAttribute('data-tbs', v), real);
    await page.getByLabel(msg('mc.pin_label')).fill(c.pin);
    await page.getByRole('button', { name: msg('mc.next') }).click();
    await page.waitForURL((u) => u.pathname === '/login/moica-card/phone', { timeout: limit(30_000) });
  } finally {
    await context.close();
    for (const sn of cardsAllBut([])) stack.insertCard(sn);
  }
});

test('browser: a refusal page (revoked) and the no-script page, axe', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const c = card(CARD.revoked);
  const a = await startAuth();
  for (const sn of cardsAllBut([CARD.revoked])) stack.removeCard(sn);
  const { context, page } = await newPage(browser, { viewport: { width: 375, height: 800 }, locale: 'zh-TW' });
  try {
    await page.goto(a.url.href);
    await page.locator('a[href*="/login/moica-card"]').click();
    await page.waitForURL((u) => u.pathname === '/login/moica-card');
    await page.getByLabel(msg('mc.id_label')).fill(c.national_id);
    await page.getByLabel(msg('mc.pin_label')).fill(c.pin);
    await page.getByRole('button', { name: msg('mc.next') }).click();
    const heading = page.getByRole('heading', { level: 1, name: msg('mc.refused_title') });
    await heading.or(page.locator('#mc-alert:not([hidden])')).first().waitFor({ timeout: limit(30_000) });
    assert.ok(await heading.isVisible(), `the refusal page, not: ${await page.locator('#mc-alert').innerText().catch(() => '?')}`);
    assert.ok((await page.locator('main').innerText()).includes(msg('mc.revoked')));
    await axeCheck(page, 'the revoked page');
    await assertNoHorizontalScroll(page, 'the revoked page at 375px');
    await shots.take(t, page, 'mc-revoked');
  } finally {
    await context.close();
    for (const sn of cardsAllBut([])) stack.insertCard(sn);
  }
  const b = await startAuth();
  const ns = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW', javaScriptEnabled: false });
  try {
    await ns.page.goto(b.url.href);
    await ns.page.locator('a[href*="/login/moica-card"]').click();
    await ns.page.waitForURL((u) => u.pathname === '/login/moica-card');
    assert.ok((await ns.page.locator('main').innerText()).includes(msg('mc.needs_script')), 'the page explains that card login needs script');
    await shots.take(t, ns.page, 'mc-noscript');
  } finally {
    await ns.context.close();
  }
});

// ---------------------------------------------------------------- the log

/** The login_failed security events of a daemon log (JSON lines). */
function loginFailed(log) {
  return log.split('\n').filter((l) => l.includes('"event":"login_failed"')).map((l) => JSON.parse(l));
}

/** Each event has method, reason and addr (and nothing else besides the
 * line's ts, level and event); the given reasons for method occurred. */
function checkLoginFailed(log, method, reasons) {
  const events = loginFailed(log).filter((e) => e.method === method);
  for (const e of events) {
    assert.deepEqual(Object.keys(e).sort(), ['address', 'event', 'level', 'method', 'reason', 'ts'], JSON.stringify(e));
    assert.match(e.address, /^127\.0\.0\.1$/);
    assert.match(e.reason, /^[a-z_]+$/);
  }
  const seen = new Set(events.map((e) => e.reason));
  for (const r of reasons) assert.ok(seen.has(r), `a login_failed event for ${method} with reason ${r} (seen: ${[...seen].join(', ')})`);
}

test("issod's log holds no PIN, whole national ID, phone number, SMS code, name or certificate", T, async () => {
  const log = stack.issod.stderr + stackDead.issod.stderr;
  assert.ok(log.includes('moica_card_result'), 'the log did record the logins');
  checkLoginFailed(log, 'moica-card', ['id_mismatch', 'revoked', 'expired', 'wrong_chain', 'bad_signature', 'challenge_used', 'bad_id', 'no_signature']);
  const leaks = [];
  const digits = (s) => new RegExp(`(?<![0-9])${s}(?![0-9])`);
  for (const id of secrets.ids) if (log.toUpperCase().includes(id)) leaks.push(`national ID ${id}`);
  for (const p of secrets.pins) if (digits(p).test(log)) leaks.push(`PIN ${p}`);
  for (const c of secrets.codes) if (digits(c).test(log)) leaks.push(`SMS code ${c}`);
  for (const p of secrets.phones) if (digits(p).test(log) || digits(p.slice(1)).test(log)) leaks.push(`phone ${p}`);
  for (const c of [...stack.cards.moica, ...stack.cards.rogue]) {
    if (log.includes(c.name)) leaks.push(`name ${c.name}`);
    const der = fs.readFileSync(path.join(stack.pki, c.cert), 'utf8').replace(/-----[^-]+-----|\s/g, '');
    if (log.includes(der.slice(100, 160))) leaks.push(`certificate of ${c.card_sn}`);
  }
  assert.deepEqual(leaks, []);
  // the agent's log neither
  const agentLog = stack.agent?.stderr ?? '';
  for (const p of secrets.pins) if (digits(p).test(agentLog)) leaks.push(`PIN ${p} in the agent's log`);
  assert.deepEqual(leaks, []);
});

test('the daemons are healthy and stop cleanly', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
  const d = stackDead;
  stackDead = null;
  await d.stop();
  const b = stackBare;
  stackBare = null;
  await b.stop();
});
