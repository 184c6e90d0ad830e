// /account, the citizen's own page, in headless Chromium with agencies
// that are openid-client relying parties: a fresh login and two single
// sign-on logins are each recorded as a release (audit log and release
// history, never the values); /account lists the consents and the
// history; withdrawing a consent deletes it, revokes the agency's tokens
// at once (the refresh-token call then fails) and sends a back-channel
// logout; "log out everywhere" ends the sessions of every browser. axe-core
// on every page, a phone viewport in English, the keyboard only.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startStack, startTestServer, limit, HttpAgent, sleep } from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage as openPage, axeCheck, Screenshots, tabTo, assertNoHorizontalScroll,
} from './lib/browser.mjs';

const T = { timeout: limit(120_000), skip: NO_BROWSER };

let stack;
let browser;
let rp; // the agencies' callback and back-channel endpoints
const backchannel = [];
let agencyA;
let agencyB;
let cfgA;
let cfgB;
let user;
const shots = new Screenshots();

const NAME_A = '市民服務平台';
const NAME_B = 'Parking permits';

before(async () => {
  if (NO_BROWSER) return;
  stack = await startStack({ label: 'account' });
  rp = await startTestServer((req, body, res) => {
    const u = new URL(req.url, 'http://x');
    if (u.pathname === '/backchannel') {
      backchannel.push(new URLSearchParams(body.toString('utf8')).get('logout_token'));
      res.statusCode = 200;
      res.end();
      return;
    }
    res.setHeader('content-type', 'text/html; charset=utf-8');
    res.end('<!doctype html><html lang="en"><head><title>Agency</title></head><body><main><h1>Agency</h1><p>Back at the agency.</p></main></body></html>');
  });
  agencyA = await stack.registerClient({
    name: NAME_A, purpose: '市民線上申辦', redirectUris: [`${rp.url}/cb`],
    backchannelLogoutUri: `${rp.url}/backchannel`, scope: 'openid profile email phone',
  });
  agencyB = await stack.registerClient({
    name: NAME_B, purpose: 'Parking permits for residents', redirectUris: [`${rp.url}/cb`],
    scope: 'openid profile',
  });
  const config = (c) => client.discovery(new URL(stack.issuer), c.client_id, {}, client.ClientSecretBasic(c.client_secret), {
    execute: [client.allowInsecureRequests], timeout: 5,
  });
  cfgA = await config(agencyA);
  cfgB = await config(agencyB);
  user = await stack.addUser({
    account: 'wang.account', password: 'Tp-Account-Page-7', phone: '0933444555',
    email: 'wang@example.tw', name: '王小明', idNumber: 'A123456789', birthdate: '1990-01-02', gold: true,
  });
  browser = await launchBrowser();
}, { timeout: limit(60_000) });

after(async () => {
  await browser?.close().catch(() => {});
  await rp?.close();
  if (stack) await stack.stop();
  shots.report();
});

const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
const onRp = (u) => u.origin === rp.url && u.pathname === '/cb';

async function jwks() {
  return jose.createLocalJWKSet(await (await fetch(`${stack.issuer}/jwks`)).json());
}

/** One authorization through the browser: login when asked, consent when
 * asked; returns openid-client's tokens. */
async function authorize(page, cfg, scope, { login = false, consent = false } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: `${rp.url}/cb`, scope, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  await page.goto(url.href);
  if (login) {
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/taipeipass"]').first().click();
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await page.locator('[name="account"]').fill(user.account);
    await page.locator('[name="password"]').fill(user.password);
    await page.getByRole('button', { name: '登入', exact: true }).click();
  }
  if (consent) {
    await page.waitForURL(onIssuer('/consent'));
    await page.locator('button[value="allow"]').click();
  }
  await page.waitForURL(onRp);
  return client.authorizationCodeGrant(cfg, new URL(page.url()), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
}

async function audit() {
  return stack.issoctl(['audit', 'export']);
}

test('releases on fresh and single sign-on logins; /account lists consents and history; withdrawal revokes the tokens', T, async (t) => {
  const { context, page } = await openPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  try {
    // A fresh login to A, then single sign-on to B (consent asked) and A
    // again (nothing asked).
    const tokA = await authorize(page, cfgA, 'openid profile email', { login: true, consent: true });
    assert.ok(tokA.refresh_token, 'agency A got a refresh token');
    const tokB = await authorize(page, cfgB, 'openid profile', { consent: true });
    assert.equal((await client.fetchUserInfo(cfgB, tokB.access_token, tokB.claims().sub)).name, '王小明');
    const tokA2 = await authorize(page, cfgA, 'openid profile email');
    assert.ok(tokA2.access_token);

    // One audit event per release, fresh and single sign-on alike, with
    // the field names and never their values.
    const releases = (await audit()).filter((e) => e.event === 'release' && e.data.uuid === user.uuid);
    assert.equal(releases.length, 3, 'three releases recorded');
    assert.deepEqual(releases.map((e) => [e.data.client_id, e.data.sso]), [
      [agencyA.client_id, false], [agencyB.client_id, true], [agencyA.client_id, true],
    ]);
    for (const e of releases) {
      assert.equal(e.data.method, 'taipeipass');
      assert.match(e.data.acr, /^urn:isso:loa:/);
      assert.ok(e.data.fields.includes('name'), 'the released field names');
      const text = JSON.stringify(e.data);
      for (const value of ['王小明', 'wang@example.tw', 'A123456789', '0933444555']) {
        assert.ok(!text.includes(value), `the audit event holds no value (${value})`);
      }
    }
    assert.deepEqual([...releases[0].data.fields].sort(), ['email', 'email_verified', 'member_level', 'name'].sort());

    // The citizen's page: same session, no new login.
    await page.goto(`${stack.issuer}/account`);
    await page.waitForURL(onIssuer('/account'));
    assert.equal(await page.locator('h1').innerText(), '我的帳戶');
    await axeCheck(page, '/account');
    await shots.take(t, page, 'account');
    const consents = page.locator('#consents .account-item');
    assert.equal(await consents.count(), 2, 'two agencies hold a consent');
    const itemA = consents.filter({ hasText: NAME_A });
    assert.match(await itemA.innerText(), /姓名/);
    assert.match(await itemA.innerText(), /電子郵件/);
    assert.match(await itemA.innerText(), /市民線上申辦/);
    assert.match(await itemA.innerText(), /2026-12-consent-1/, 'the notice version the citizen saw');
    const history = page.locator('#history .account-item');
    assert.equal(await history.count(), 3, 'three releases in the history');
    // Newest first: the single sign-on to A, then B, then the fresh login.
    assert.match(await history.nth(0).innerText(), new RegExp(`${NAME_A}[\\s\\S]*單一登入`));
    assert.match(await history.nth(1).innerText(), new RegExp(`${NAME_B}[\\s\\S]*單一登入`));
    assert.match(await history.nth(2).innerText(), new RegExp(`${NAME_A}[\\s\\S]*重新登入`));
    assert.match(await page.locator('#member').innerText(), /wang\.account/);
    assert.ok(!(await page.locator('body').innerText()).includes('A123456789'), 'the whole ID never appears');
    assert.match(await page.locator('#sessions').innerText(), /目前這個瀏覽器/);

    // Withdraw A's consent with the keyboard.
    await page.locator('h1').focus();
    await tabTo(page, (el) => el.tag === 'button' && el.text.startsWith('撤回同意') && el.text.includes(NAME_A), `the withdraw button of ${NAME_A}`, 60);
    await page.keyboard.press('Enter');
    await page.waitForURL((u) => onIssuer('/account')(u) && u.searchParams.get('done') === 'withdrawn');
    await page.getByRole('status').filter({ hasText: '已撤回同意' }).waitFor();
    assert.equal(await page.locator('#consents .account-item').count(), 1, 'one consent left');
    assert.ok(!(await page.locator('#consents').innerText()).includes(NAME_A), 'A is no longer listed');
    await axeCheck(page, '/account after withdrawal');
    await shots.take(t, page, 'account-withdrawn');

    // A's refresh token and access tokens stopped working at once; B's did not.
    await assert.rejects(client.refreshTokenGrant(cfgA, tokA.refresh_token), (err) => {
      assert.equal(err.error, 'invalid_grant');
      return true;
    }, 'the refresh-token call fails after withdrawal');
    await assert.rejects(client.fetchUserInfo(cfgA, tokA2.access_token, tokA2.claims().sub), 'UserInfo refuses A\'s access token');
    const infoB = await client.fetchUserInfo(cfgB, tokB.access_token, tokB.claims().sub);
    assert.equal(infoB.name, '王小明');
    const audited = (await audit()).filter((e) => e.event === 'consent_withdrawn');
    assert.deepEqual(audited.map((e) => [e.data.uuid, e.data.client_id]), [[user.uuid, agencyA.client_id]]);

    // A hears of it by back-channel logout (the subject, no session).
    const deadline = Date.now() + limit(10_000);
    while (backchannel.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(backchannel.length, 1, 'one back-channel logout notice');
    const { payload } = await jose.jwtVerify(backchannel[0], await jwks(), { issuer: stack.issuer, audience: agencyA.client_id });
    assert.equal(payload.sub, tokA.claims().sub);
    assert.equal(payload.sid, undefined);

    // The next authorization by A asks for consent again.
    await authorize(page, cfgA, 'openid profile', { consent: true });

    // A withdrawal for a consent the person does not hold changes nothing.
    await page.goto(`${stack.issuer}/account`);
    const csrf = await page.locator('#consents input[name="csrf"]').first().getAttribute('value');
    const r = await page.request.post(`${stack.issuer}/account/withdraw`, {
      form: { csrf, client_id: 'no-such-client' }, maxRedirects: 0,
    });
    assert.equal(r.status(), 303);
    const bad = await page.request.post(`${stack.issuer}/account/withdraw`, {
      form: { csrf: 'forged', client_id: agencyB.client_id }, maxRedirects: 0,
    });
    assert.equal(bad.status(), 403, 'a forged CSRF token is refused');
    for (const form of [{ csrf }, { csrf, client_id: '' }, { csrf, client_id: 'x'.repeat(200) }]) {
      const odd = await page.request.post(`${stack.issuer}/account/withdraw`, { form, maxRedirects: 0 });
      assert.equal(odd.status(), 400, `a bad client_id is a clear error (${JSON.stringify(form).slice(0, 60)})`);
    }
    const get = await page.request.get(`${stack.issuer}/account/withdraw`, { maxRedirects: 0 });
    assert.equal(get.status(), 405, 'withdrawal is a POST only');
    await page.goto(`${stack.issuer}/account`);
    assert.equal(await page.locator('#consents .account-item').count(), 2);
  } finally {
    await context.close();
  }
});

test('phone, English, keyboard: log in to /account, log out everywhere ends every browser\'s session', T, async (t) => {
  // A first browser logged in to agency B (single sign-on session).
  const first = await openPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  const phone = await openPage(browser, {
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'en-US',
  });
  try {
    const tokB = await authorize(first.page, cfgB, 'openid profile', { login: true });
    assert.ok(tokB.refresh_token);
    // …and by single sign-on to A, which registered a back-channel URI.
    const tokA = await authorize(first.page, cfgA, 'openid profile');
    const before = backchannel.length;

    const { page } = phone;
    await page.goto(`${stack.issuer}/account?lang=en`);
    await page.waitForURL(onIssuer('/login'));
    assert.match(await page.evaluate(() => document.documentElement.lang), /^en/i);
    await assertNoHorizontalScroll(page, 'the method page for /account');
    await axeCheck(page, 'the method page for /account (en, phone)');
    await tabTo(page, (el) => el.tag === 'a' && (el.href || '').includes('/login/taipeipass'), 'the TaipeiPass card link');
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await tabTo(page, (el) => el.name === 'account', 'the account field');
    await page.keyboard.type(user.account);
    await tabTo(page, (el) => el.name === 'password', 'the password field', 5);
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');

    await page.waitForURL(onIssuer('/account'));
    assert.equal(await page.locator('h1').innerText(), 'My account');
    await assertNoHorizontalScroll(page, '/account');
    await axeCheck(page, '/account (en, phone)');
    await shots.take(t, page, 'account-phone-en');
    assert.match(await page.locator('#history').innerText(), /Single sign-on/);
    const sessions = page.locator('#sessions .account-list > li');
    assert.ok(await sessions.count() >= 2, 'both browsers are listed');
    assert.match(await sessions.first().innerText(), /This browser/);

    await tabTo(page, (el) => el.tag === 'button' && el.text === 'Log out everywhere', 'the log out everywhere button', 80);
    await page.keyboard.press('Enter');
    await page.getByText('You have been logged out everywhere.').waitFor();
    await axeCheck(page, 'logged out everywhere (en, phone)');

    // Both browsers' sessions ended: /account asks for a login, and the
    // refresh token bound to the first browser's session no longer works.
    await page.goto(`${stack.issuer}/account`);
    await page.waitForURL(onIssuer('/login'));
    await first.page.goto(`${stack.issuer}/account`);
    await first.page.waitForURL(onIssuer('/login'));
    await assert.rejects(client.refreshTokenGrant(cfgB, tokB.refresh_token), 'the session-bound refresh token died');
    const ev = (await audit()).filter((e) => e.event === 'logout_everywhere');
    assert.deepEqual(ev.map((e) => e.data.uuid), [user.uuid]);
    // A was told that each session it knew ended: the first browser's,
    // and the earlier test's browser session, still live until now.
    const deadline = Date.now() + limit(10_000);
    const sids = async () => {
      const out = [];
      for (const tok of backchannel.slice(before)) {
        const { payload } = await jose.jwtVerify(tok, await jwks(), { issuer: stack.issuer, audience: agencyA.client_id });
        assert.equal(payload.sub, tokA.claims().sub);
        out.push(payload.sid);
      }
      return out;
    };
    while (!(await sids()).includes(tokA.claims().sid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const told = await sids();
    assert.equal(told.filter((x) => x === tokA.claims().sid).length, 1, 'one notice names the first browser\'s session');
    assert.equal(new Set(told).size, told.length, 'one notice per session');
  } finally {
    await first.context.close();
    await phone.context.close();
  }
});

test('optional fields: the citizen unticks one, and the agency receives only what was ticked', T, async (t) => {
  const agencyC = await stack.registerClient({
    name: '圖書館借閱服務', purpose: '借閱證申辦', redirectUris: [`${rp.url}/cb`],
    scope: 'openid profile email phone',
  });
  // The operator marks e-mail and phone optional; a scope the client is
  // not approved for, or one that releases nothing, is refused.
  const refused = await stack.issoctl(['client', 'set-optional-scopes', agencyC.client_id, 'address'], { allowFailure: true });
  assert.ok(refused.failed, 'an optional scope outside the client\'s scopes is refused');
  const refused2 = await stack.issoctl(['client', 'set-optional-scopes', agencyC.client_id, 'openid'], { allowFailure: true });
  assert.ok(refused2.failed, 'openid cannot be optional');
  const set = await stack.issoctl(['client', 'set-optional-scopes', agencyC.client_id, 'email', 'phone']);
  assert.deepEqual(set.settings.optional_scopes, ['email', 'phone']);
  const cfgC = await client.discovery(new URL(stack.issuer), agencyC.client_id, {}, client.ClientSecretBasic(agencyC.client_secret), {
    execute: [client.allowInsecureRequests], timeout: 5,
  });

  const { context, page } = await openPage(browser, {
    viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true, locale: 'zh-TW',
  });
  try {
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const url = client.buildAuthorizationUrl(cfgC, {
      redirect_uri: `${rp.url}/cb`, scope: 'openid profile email phone', state,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    await page.goto(url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/taipeipass"]').first().click();
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await page.locator('[name="account"]').fill(user.account);
    await page.locator('[name="password"]').fill(user.password);
    await page.getByRole('button', { name: '登入', exact: true }).click();
    await page.waitForURL(onIssuer('/consent'));
    // Name is required (no checkbox); e-mail and phone are optional, ticked.
    const email = page.getByRole('checkbox', { name: /電子郵件/ });
    const phoneBox = page.getByRole('checkbox', { name: /手機號碼/ });
    assert.ok(await email.isChecked(), 'optional fields start ticked');
    assert.ok(await phoneBox.isChecked());
    assert.equal(await page.getByRole('checkbox', { name: /姓名/ }).count(), 0, 'a required field has no checkbox');
    await assertNoHorizontalScroll(page, 'consent with optional fields');
    await axeCheck(page, 'consent with optional fields (phone)');
    await shots.take(t, page, 'consent-optional');
    // Untick e-mail with the keyboard, then agree.
    await tabTo(page, (el) => el.tag === 'input' && el.value === 'email', 'the e-mail checkbox');
    await page.keyboard.press('Space');
    assert.equal(await email.isChecked(), false);
    await page.locator('button[value="allow"]').click();
    await page.waitForURL(onRp);
    const tokens = await client.authorizationCodeGrant(cfgC, new URL(page.url()), { pkceCodeVerifier: verifier, expectedState: state });
    assert.ok(!tokens.scope.split(' ').includes('email'), `the granted scope leaves e-mail out (${tokens.scope})`);
    assert.ok(tokens.scope.split(' ').includes('phone'));
    const info = await client.fetchUserInfo(cfgC, tokens.access_token, tokens.claims().sub);
    assert.equal(info.name, '王小明');
    assert.equal(info.phone_number, '+886933444555');
    assert.equal(info.email, undefined, 'UserInfo has no e-mail');
    assert.equal(tokens.claims().email, undefined, 'the ID token has no e-mail');
    // A refresh keeps it out.
    const refreshed = await client.refreshTokenGrant(cfgC, tokens.refresh_token);
    const info2 = await client.fetchUserInfo(cfgC, refreshed.access_token, tokens.claims().sub);
    assert.equal(info2.email, undefined);

    // Single sign-on for the same agency: not asked again, still no e-mail.
    const v2 = client.randomPKCECodeVerifier();
    const s2 = client.randomState();
    await page.goto(client.buildAuthorizationUrl(cfgC, {
      redirect_uri: `${rp.url}/cb`, scope: 'openid profile email phone', state: s2,
      code_challenge: await client.calculatePKCECodeChallenge(v2), code_challenge_method: 'S256',
    }).href);
    await page.waitForURL(onRp);
    const t2 = await client.authorizationCodeGrant(cfgC, new URL(page.url()), { pkceCodeVerifier: v2, expectedState: s2 });
    assert.equal((await client.fetchUserInfo(cfgC, t2.access_token, t2.claims().sub)).email, undefined);

    // Once the agency makes e-mail required, the citizen is asked again.
    await stack.issoctl(['client', 'set-optional-scopes', agencyC.client_id, 'phone']);
    await page.goto(client.buildAuthorizationUrl(cfgC, {
      redirect_uri: `${rp.url}/cb`, scope: 'openid profile email phone', state: client.randomState(),
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    }).href);
    await page.waitForURL(onIssuer('/consent'));
    assert.equal(await page.getByRole('checkbox', { name: /電子郵件/ }).count(), 0, 'e-mail is now required');
    await page.locator('a[href^="/cancel"], button[value="deny"]').first().click();
    await page.waitForURL(onRp);
    await stack.issoctl(['client', 'set-optional-scopes', agencyC.client_id, 'email', 'phone']);

    // The records: consent with the declined field, releases without it.
    const ev = (await audit()).filter((e) => e.data.client_id === agencyC.client_id);
    const granted = ev.find((e) => e.event === 'consent_granted');
    assert.equal(granted.data.declined, 'email');
    const rel = ev.filter((e) => e.event === 'release');
    assert.equal(rel.length, 2);
    for (const e of rel) {
      assert.ok(!e.data.fields.includes('email'), 'no e-mail released');
      assert.ok(e.data.fields.includes('phone_number'));
    }
    await page.goto(`${stack.issuer}/account`);
    const item = page.locator('#consents .account-item').filter({ hasText: '圖書館借閱服務' });
    assert.match(await item.innerText(), /您選擇不提供\s*電子郵件/);
    assert.doesNotMatch(await item.locator('dd').first().innerText(), /電子郵件/);
    await axeCheck(page, '/account with a declined field (phone)');
    await assertNoHorizontalScroll(page, '/account (phone)');
  } finally {
    await context.close();
  }
});

test('any method: a 手機電信驗證 login reaches /account, and the person (same national ID) sees the same consents', { timeout: limit(60_000), skip: NO_BROWSER }, async () => {
  // isso-sim's subscriber with the national ID user was enrolled with.
  const p = { id: 'A123456789', phone: '0912345678', birthdate: '1985-03-14', carrier: 'cht' };
  const agent = new HttpAgent();
  const choice = await agent.followUntil(`${stack.issuer}/account`);
  assert.equal(new URL(choice.url).pathname, '/login', 'no session: the method page');
  assert.match(choice.res.pageText(), /我的帳戶/, 'the method page names the citizen\'s own page');
  const pick = choice.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/telecom');
  assert.ok(pick, 'the method page offers 手機電信驗證');
  const t = new URL(pick.href).searchParams.get('t');
  const formPage = await agent.get(pick.href);
  const form = formPage.forms().find((f) => f.has('id_number') && f.has('carrier'));
  const { res: codePage } = await agent.submit(form, {
    id_number: p.id, phone: p.phone, birthdate: p.birthdate, carrier: p.carrier, agree: '1',
  });
  const codeForm = codePage.forms().find((f) => f.has('code'));
  assert.ok(codeForm, `the SMS code page: ${codePage.pageText().slice(0, 300)}`);
  const sms = await stack.readLastSms(p.phone);
  const { res: qr } = await agent.submit(codeForm, { code: sms.code }, codeForm.buttons.find((b) => b.value === 'verify'));
  const link = qr.links().find((l) => l.attrs.id === 'open-here');
  assert.ok(link, `the QR page: ${qr.pageText().slice(0, 300)}`);
  const u = new URL(link.href);
  u.searchParams.set('network', 'mobile');
  assert.equal((await fetch(u, { signal: AbortSignal.timeout(5000) })).status, 200);
  const deadline = Date.now() + limit(10_000);
  for (;;) {
    const st = (await agent.get(`${stack.issuer}/login/telecom/status?t=${t}&shown=pending`)).json();
    if (st.state === 'done') break;
    assert.ok(Date.now() < deadline, `the telecom login never finished: ${JSON.stringify(st)}`);
    await sleep(300);
  }
  const done = await agent.followUntil(`${stack.issuer}/login/telecom/done?t=${t}`);
  assert.equal(new URL(done.url).pathname, '/account', 'the login comes back to /account, not to consent');
  const text = done.res.pageText();
  assert.match(text, /手機電信驗證/, 'the session\'s method');
  assert.match(text, /身分證字號已驗證/, 'the verified national ID is a linked method');
  assert.match(text, new RegExp(NAME_B), 'the same person: the consents given through 台北通');
  assert.ok(!text.includes(p.id), 'the whole ID never appears');
  const logins = (await audit()).filter((e) => e.event === 'login' && e.data.method === 'telecom');
  assert.equal(logins.at(-1).data.uuid, user.uuid, 'the same uuid');
  assert.equal(logins.at(-1).data.client_id, '', 'a login to /account names no agency');
});
