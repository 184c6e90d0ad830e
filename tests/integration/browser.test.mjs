// The citizen's view in headless Chromium: demo agency service -> iSSO
// method page -> 台北通 login (wrong password, then right) -> consent ->
// back at the agency with the claims. axe-core (WCAG 2.1 A/AA) runs on every
// iSSO page; a second pass uses a 390x844 phone viewport, English, and the
// keyboard only. Screenshots go to a temp dir whose path is printed.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  startStack, Daemon, waitReady, freePort, REPO, limit,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage as openPage, axeCheck, Screenshots, tabTo, assertNoHorizontalScroll,
} from './lib/browser.mjs';

const DEMO_CLIENT_NAME = '示範機關線上服務';
const T = { timeout: limit(60_000), skip: NO_BROWSER };

let stack;
let demo;
let demoUrl;
let browser;
const shots = new Screenshots();

before(async () => {
  if (NO_BROWSER) return;
  stack = await startStack({ label: 'browser' });
  const port = await freePort();
  demoUrl = `http://127.0.0.1:${port}`;
  const c = await stack.registerClient({
    name: DEMO_CLIENT_NAME,
    purpose: '示範：以 iSSO 登入並顯示取得的資料',
    redirectUris: [`${demoUrl}/callback`],
    postLogoutRedirectUri: `${demoUrl}/`,
    scope: 'openid uuid profile id_number phone email birthdate',
  });
  const clientFile = path.join(stack.tmp, 'demo-client.json');
  fs.writeFileSync(clientFile, JSON.stringify({ client_id: c.client_id, client_secret: c.client_secret }));
  demo = new Daemon('demo', process.execPath, [path.join(REPO, 'demo', 'agency.mjs')], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH,
      DEMO_PORT: String(port),
      DEMO_ISSUER: stack.issuer,
      DEMO_CLIENT_FILE: clientFile,
    },
  });
  await waitReady(demo, `${demoUrl}/health`);
  browser = await launchBrowser();
}, { timeout: limit(60_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (demo) await demo.stop();
  if (stack) await stack.stop({ check: false });
  shots.report();
});

// ---------------------------------------------------------------- helpers

const shot = (t, page, name) => shots.take(t, page, name);

const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
const onDemo = (p) => (u) => u.origin === demoUrl && u.pathname === p;

// The fields by their accessible labels (帳號…, 密碼), pinned to the contract's names.
const account = (page) => page.getByLabel(/帳號|account/i).and(page.locator('[name="account"]'));
const password = (page) => page.getByLabel(/密碼|password/i).and(page.locator('[name="password"]'));

const newPage = (opts = {}) => openPage(browser, opts);

// ---------------------------------------------------------------- tests

test('desktop, zh-TW: demo -> method page -> 台北通 -> wrong then right password -> consent -> claims', T, async (t) => {
  const user = await stack.addUser({
    account: 'chen.meiling', password: 'Tp-Browser-Flow-8', phone: '0955666777',
    email: 'meiling@example.tw', name: '陳美玲', idNumber: 'F223456786', birthdate: '1985-07-15', gold: true,
  });
  const { context, page } = await newPage({ viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  try {
    await page.goto(`${demoUrl}/`);
    await axeCheck(page, 'the demo home page');
    await page.getByRole('link', { name: '使用臺北市單一身分驗證登入' }).click();

    // method choice
    await page.waitForURL(onIssuer('/login'));
    assert.match(await page.title(), /臺北市(政)?府單一身分驗證入口/); // the briefing uses both names
    assert.match(await page.evaluate(() => document.documentElement.lang), /^zh/i);
    await page.getByText('請選擇以下方式擇一登入').first().waitFor();
    await axeCheck(page, 'the method page');
    await shot(t, page, 'method-page');
    await page.getByRole('link', { name: /點我登入/ }).and(page.locator('a[href*="/login/taipeipass"]')).click();

    // TaipeiPass login: wrong password first
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await axeCheck(page, 'the 台北通 login page');
    await shot(t, page, 'login-page');
    await account(page).fill(user.account);
    await password(page).fill('this-is-wrong');
    await page.getByRole('button', { name: '登入', exact: true }).click();
    const alert = page.getByRole('alert');
    await alert.first().waitFor();
    assert.ok((await alert.first().innerText()).trim().length > 0, 'the error message has text');
    await axeCheck(page, 'the login page with an error');
    await shot(t, page, 'login-error');

    await account(page).fill(user.account);
    await password(page).fill(user.password);
    await page.getByRole('button', { name: '登入', exact: true }).click();

    // consent
    await page.waitForURL(onIssuer('/consent'));
    assert.ok((await page.locator('body').innerText()).includes(DEMO_CLIENT_NAME), 'the consent page names the agency');
    await axeCheck(page, 'the consent page');
    await shot(t, page, 'consent');
    await page.getByRole('button', { name: '同意授權' }).and(page.locator('[value="allow"]')).click();

    // back at the agency
    await page.waitForURL(onDemo('/me'));
    const cell = (table, claim) => page.locator(`#${table} tr[data-claim="${claim}"] td`);
    assert.equal((await cell('userinfo', 'name').innerText()).trim(), '陳美玲');
    const sub = (await cell('idtoken', 'sub').innerText()).trim();
    assert.ok(sub.length > 0, 'the sub is shown');
    assert.equal((await cell('userinfo', 'sub').innerText()).trim(), sub, 'UserInfo and ID token agree on sub');
    assert.equal((await cell('userinfo', 'uuid').innerText()).trim(), user.uuid);
    await axeCheck(page, 'the demo claims page');
    await shot(t, page, 'agency-claims');

    // RP-initiated logout from the agency brings the citizen home
    await page.getByRole('link', { name: '登出' }).first().click();
    await page.waitForURL((u) => onDemo('/')(u) || (u.origin === stack.issuer && u.pathname === '/logout'));
    if (new URL(page.url()).origin === stack.issuer) {
      await axeCheck(page, 'the logout confirmation page');
      await page.getByRole('button').first().click();
      await page.waitForURL(onDemo('/'));
    }
    await page.getByRole('status').filter({ hasText: '已登出' }).waitFor();
  } finally {
    await context.close();
  }
});

test('phone 390x844, English, keyboard only', T, async (t) => {
  const user = await stack.addUser({
    account: 'lin.zhiwei', password: 'Tp-Keyboard-Only-3', phone: '0966777888',
    email: 'zhiwei@example.tw', name: 'Lin Zhi-Wei', birthdate: '1979-02-28',
  });
  const { context, page } = await newPage({
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-US',
  });
  try {
    await page.goto(`${demoUrl}/?lang=en`);
    await axeCheck(page, 'the demo home page (en, phone)');
    await tabTo(page, (el) => el.tag === 'a' && /^\/login(\?|$)/.test(el.href || '') && !/acr=/.test(el.href), 'the login button');
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/login'));
    assert.match(await page.evaluate(() => document.documentElement.lang), /^en/i, 'ui_locales=en gives an English page');
    assert.ok(!(await page.locator('body').innerText()).includes('請選擇以下方式擇一登入'), 'the method page is in English');
    await assertNoHorizontalScroll(page, 'method page');
    await axeCheck(page, 'the method page (en, phone)');
    await shot(t, page, 'phone-en-method-page');
    await tabTo(page, (el) => el.tag === 'a' && (el.href || '').includes('/login/taipeipass'), 'the TaipeiPass card link');
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/login/taipeipass'));
    assert.match(await page.evaluate(() => document.documentElement.lang), /^en/i);
    await assertNoHorizontalScroll(page, 'login page');
    await axeCheck(page, 'the login page (en, phone)');
    await shot(t, page, 'phone-en-login');
    await tabTo(page, (el) => el.name === 'account', 'the account field');
    await page.keyboard.type(user.account);
    await tabTo(page, (el) => el.name === 'password', 'the password field', 5);
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/consent'));
    assert.match(await page.evaluate(() => document.documentElement.lang), /^en/i);
    await assertNoHorizontalScroll(page, 'consent page');
    await axeCheck(page, 'the consent page (en, phone)');
    await shot(t, page, 'phone-en-consent');
    await tabTo(page, (el) => el.name === 'decision' && el.value === 'allow', 'the allow button');
    await page.keyboard.press('Enter');

    await page.waitForURL(onDemo('/me'));
    assert.equal((await page.locator('#userinfo tr[data-claim="name"] td').innerText()).trim(), 'Lin Zhi-Wei');
    assert.equal((await page.locator('#userinfo tr[data-claim="uuid"] td').innerText()).trim(), user.uuid);
    await assertNoHorizontalScroll(page, 'demo claims page');
    await shot(t, page, 'phone-en-agency-claims');
  } finally {
    await context.close();
  }
});

test('declining consent shows a clear page at the agency', T, async (t) => {
  const user = await stack.addUser({ account: 'decline.me', password: 'Tp-Decline-5', phone: '0977888999', name: '張大同' });
  const { context, page } = await newPage({ viewport: { width: 1024, height: 800 }, locale: 'zh-TW' });
  try {
    await page.goto(`${demoUrl}/`);
    await page.getByRole('link', { name: '使用臺北市單一身分驗證登入' }).click();
    await page.waitForURL(onIssuer('/login'));
    await page.getByRole('link', { name: /點我登入/ }).and(page.locator('a[href*="/login/taipeipass"]')).click();
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await account(page).fill(user.account);
    await password(page).fill(user.password);
    await page.getByRole('button', { name: '登入', exact: true }).click();
    await page.waitForURL(onIssuer('/consent'));
    await page.getByRole('button', { name: '不同意' }).and(page.locator('[value="deny"]')).click();
    await page.waitForURL(onDemo('/callback'));
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match(await alert.innerText(), /不同意授權/);
    assert.match(await page.locator('main').innerText(), /access_denied/);
    await axeCheck(page, 'the demo error page');
    await shot(t, page, 'agency-access-denied');
  } finally {
    await context.close();
  }
});

test('the demo service and issod stop cleanly', { timeout: limit(30_000), skip: NO_BROWSER }, async () => {
  await browser.close();
  browser = null;
  const d = demo;
  demo = null;
  const r = await d.stop();
  assert.equal(r.code, 0, d.failure('did not exit 0').message);
  const s = stack;
  stack = null;
  await s.stop();
});
