// The personal data notice (個人資料保護法 §8, templates/notice.html): every
// login method shows it on its first step, before it collects anything —
// the agency service's name and purpose, the method's own data list, and
// the period, recipients, rights and effect of refusal — in Chromium,
// axe-clean, in zh-TW and English. The TaipeiPass registration's
// agreement links to the terms page (/terms), which opens by keyboard.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import { startStack, REPO, limit } from './lib/harness.mjs';
import { NO_BROWSER, launchBrowser, newPage, axeCheck, tabTo, Screenshots } from './lib/browser.mjs';

const T = { timeout: limit(90_000), skip: NO_BROWSER };
const ZH = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const EN = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'en.json'), 'utf8'));
const RP = 'http://127.0.0.1:9/cb';
const CLIENT_NAME = '臺北市告知測試機關';
const PURPOSE = '辦理市民線上申辦案件';

/** The first step of each method and the notice.*.<id> texts it shows. */
const METHODS = [
  { id: 'taipeipass', path: '/login/taipeipass' },
  { id: 'taipeipass-app', path: '/login/taipeipass/app' },
  { id: 'moica-mobile', path: '/login/moica-mobile' },
  { id: 'telecom', path: '/login/telecom' },
  { id: 'moica-card', path: '/login/moica-card' },
  { id: 'nhi-card', path: '/login/nhi-card' },
  { id: 'taipeipass-register', path: '/taipeipass/register' },
];
const ITEMS = ['notice.who_h', 'notice.purpose_h', 'notice.data_h', 'notice.period_h', 'notice.recipients_h', 'notice.rights_h', 'notice.refuse_h'];

let stack;
let cfg;
let browser;
const shots = new Screenshots();

function msg(key, lang = 'zh') {
  const m = (lang === 'en' ? EN : ZH)[key];
  assert.ok(typeof m === 'string', `no message ${key}`);
  return m;
}

before(async () => {
  if (NO_BROWSER) return;
  stack = await startStack({ label: 'notice', cards: true });
  const c = await stack.registerClient({ name: CLIENT_NAME, purpose: PURPOSE, redirectUris: [RP], scope: 'openid profile' });
  cfg = await client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
  browser = await launchBrowser();
}, { timeout: limit(90_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (stack) await stack.stop({ check: false });
  shots.report();
});

/** A login under way: its t, from the method choice page. */
async function loginT(page, extra = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: 'openid profile', state: client.randomState(), nonce: client.randomNonce(),
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256', ...extra,
  });
  await page.goto(url.href);
  await page.waitForURL((u) => u.pathname === '/login');
  return new URL(page.url()).searchParams.get('t');
}

async function noticeText(page) {
  const notice = page.locator('section.notice');
  assert.equal(await notice.count(), 1, 'one notice on the page');
  assert.equal(await notice.getAttribute('aria-labelledby'), 'notice-h');
  return notice.innerText();
}

test('every method\'s first step shows the §8 notice with the agency, purpose and the method\'s data (zh-TW, axe)', T, async (t) => {
  const { context, page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'zh-TW' });
  try {
    const txn = await loginT(page);
    for (const m of METHODS) {
      await page.goto(stack.url(`${m.path}?t=${txn}`));
      assert.equal(await page.evaluate(() => document.documentElement.lang), 'zh-Hant-TW');
      const text = await noticeText(page);
      assert.ok(text.includes(msg(m.id === 'telecom' ? 'notice.title.telecom' : 'notice.title')), `${m.id}: the title`);
      for (const k of ITEMS) assert.ok(text.includes(msg(k)), `${m.id}: item ${k}`);
      assert.ok(text.includes(msg(`notice.who.${m.id}`)), `${m.id}: who collects, through whom`);
      assert.ok(text.includes(msg(`notice.data.${m.id}`)), `${m.id}: the method's own data list`);
      for (const k of ['notice.purpose', 'notice.period', 'notice.recipients', 'notice.rights', 'notice.refuse']) {
        assert.ok(text.includes(msg(k)), `${m.id}: ${k}`);
      }
      assert.ok(text.includes(CLIENT_NAME), `${m.id}: the agency service's name`);
      assert.ok(text.includes(PURPOSE), `${m.id}: the agency's purpose`);
      // before anything is collected: the notice comes before the
      // method's first form field in reading order
      const before = await page.evaluate(() => {
        const n = document.querySelector('section.notice');
        const f = document.querySelector('form input:not([type=hidden]), form button');
        return !f || Boolean(n.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING);
      });
      assert.ok(before, `${m.id}: the notice comes before the form`);
      await axeCheck(page, `${m.id}: the first step with its notice`);
      await shots.take(t, page, `notice-${m.id}`);
    }
  } finally {
    await context.close();
  }
});

test('the notice in English marks the agency\'s Chinese name and purpose; a registration on its own still has one', T, async () => {
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  try {
    const t = await loginT(page);
    await page.goto(stack.url(`/login/telecom?t=${t}`));
    assert.equal(await page.evaluate(() => document.documentElement.lang), 'en');
    const text = await noticeText(page);
    for (const k of [...ITEMS, 'notice.title.telecom', 'notice.who.telecom', 'notice.data.telecom']) assert.ok(text.includes(msg(k, 'en')), `en: ${k}`);
    assert.equal(await page.locator('section.notice strong', { hasText: CLIENT_NAME }).getAttribute('lang'), 'zh-Hant-TW');
    await axeCheck(page, 'the telecom notice in English');

    // no login under way: the registration names no agency, says the rest
    await page.goto(stack.url('/taipeipass/register'));
    const alone = await noticeText(page);
    assert.ok(alone.includes(msg('notice.data.taipeipass-register', 'en')));
    assert.ok(!alone.includes(msg('notice.service', 'en').trim()), 'no agency to name');
    await axeCheck(page, 'the registration notice without a login');
  } finally {
    await context.close();
  }
});

test('the registration\'s agreement links to the terms, which open by keyboard (zh-TW first, English)', T, async (t) => {
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  try {
    const txn = await loginT(page);
    await page.goto(stack.url(`/taipeipass/register?t=${txn}`));
    const box = page.locator('#agree');
    assert.match(await box.getAttribute('aria-describedby'), /\bagree-terms\b/, 'the box is described by the terms sentence');
    await tabTo(page, (el) => el.tag === 'a' && el.href === '/terms', 'the terms link', 60);
    const [terms] = await Promise.all([context.waitForEvent('page'), page.keyboard.press('Enter')]);
    await terms.waitForLoadState();
    assert.equal(new URL(terms.url()).pathname, '/terms');
    assert.equal(await terms.locator('h1').innerText(), msg('terms.title'));
    assert.equal(await terms.evaluate(() => document.documentElement.lang), 'zh-Hant-TW');
    for (const k of ['terms.service_h', 'terms.account_h', 'terms.privacy_h', 'terms.law_h']) {
      assert.ok((await terms.locator('body').innerText()).includes(msg(k)), k);
    }
    await axeCheck(terms, 'the terms page');
    await shots.take(t, terms, 'terms');
    // the form is still there with what was typed
    await page.locator('#account').fill('terms.reader');
    await terms.close();
    assert.equal(await page.locator('#account').inputValue(), 'terms.reader');
    // Space ticks the box after the links
    await tabTo(page, (el) => el.name === 'agree', 'the agreement box', 10);
    await page.keyboard.press('Space');
    assert.ok(await box.isChecked());
    // and in English
    const en = await context.newPage();
    await en.goto(stack.url('/terms?lang=en'));
    assert.equal(await en.locator('h1').innerText(), msg('terms.title', 'en'));
    assert.equal(await en.evaluate(() => document.documentElement.lang), 'en');
    await axeCheck(en, 'the terms page in English');
  } finally {
    await context.close();
  }
});

test('issod is still healthy', { skip: NO_BROWSER }, async () => {
  assert.ok(await stack.healthy());
});
