// Organisation login (組織 / 公司企業: 點擊掃描QRcode進行登入): the login page's
// organisation option leads to the TaipeiPass app QR page marked as an
// organisation login; the app's approval names the organisation (統一編號)
// and issod checks that the member belongs to it. Covers issoctl org …,
// the happy path (scope organization: UserInfo organization {ubn, name}
// beside the acting member's own claims, acr low and amr swk like every
// app login (the app's enrolled device key signs), the app told the service's name and picking the
// page's number,
// the consent page naming the organisation), refusals (a member of another
// organisation, of none, an approval without an organisation, an
// organisation named in a personal login), a client not approved for the
// organization scope, and a browser walk with axe.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import {
  startStack, HttpAgent, REPO, BUILD_DIR, limit, redirectParams, sameEndpoint, decodeEntities,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots, tabTo, assertFocusAtTop, assertErrorFocus,
} from './lib/browser.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid profile organization';
const ACR_LOW = 'urn:isso:loa:low';
const T = { timeout: limit(20_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const IDENTITIES = JSON.parse(fs.readFileSync(path.join(REPO, 'sim', 'identities.json'), 'utf8'));

function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  return MSG[key];
}

// The test identities' organisation and its members (by national ID).
const ORG = IDENTITIES.organisations[0];
const citizen = (id) => IDENTITIES.citizens.find((c) => c.national_id === id);
const WANG = citizen(ORG.members[0]);
const OTHER_ORG = { ubn: '22099131', name: '第二測試有限公司' };
const OUTSIDER = IDENTITIES.citizens.find((c) => c.taipeipass && !ORG.members.includes(c.national_id));

let stack;
let cfg; // approved for organization
let cfgNoOrg; // not approved for organization
let wang;
let outsider; // a member of OTHER_ORG only
let loner; // a member of no organisation
let browser;
let simState; // the command-line app's state folder (its device keys)
const shots = new Screenshots();

async function setupClient(scope) {
  const c = await stack.registerClient({
    name: '臺北市測試機關', purpose: '組織登入整合測試', redirectUris: [RP], scope,
  });
  return client.discovery(new URL(stack.issuer), c.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(c.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });
}

before(async () => {
  stack = await startStack({ label: 'tporg' });
  cfg = await setupClient(SCOPE);
  cfgNoOrg = await setupClient('openid profile');
  wang = await stack.addUser({
    account: WANG.taipeipass.account, password: WANG.taipeipass.password, phone: WANG.phone,
    name: WANG.name, email: WANG.taipeipass.email, phoneVerified: true,
  });
  outsider = await stack.addUser({
    account: OUTSIDER.taipeipass.account, password: OUTSIDER.taipeipass.password, phone: OUTSIDER.phone,
    name: OUTSIDER.name,
  });
  loner = await stack.addUser({ account: 'loner.member', password: 'Loner-pass-42', phone: '0912000888', name: '孤獨測試' });
  await stack.issoctl(['org', 'add', '--ubn', ORG.ubn, '--name', ORG.name]);
  await stack.issoctl(['org', 'member', 'add', '--ubn', ORG.ubn, '--account', wang.account, '--role', '負責人']);
  await stack.issoctl(['org', 'add', '--ubn', OTHER_ORG.ubn, '--name', OTHER_ORG.name]);
  await stack.issoctl(['org', 'member', 'add', '--ubn', OTHER_ORG.ubn, '--account', outsider.account]);
  simState = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-tpapp-state-'));
  if (!NO_BROWSER) browser = await launchBrowser();
}, { timeout: limit(60_000) });

after(async () => {
  await browser?.close().catch(() => {});
  if (stack) await stack.stop({ check: false });
  if (simState) fs.rmSync(simState, { recursive: true, force: true });
  shots.report();
});

// ---------------------------------------------------------------- helpers

async function startAuth({ conf = cfg, scope = SCOPE } = {}) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(conf, {
    redirect_uri: RP, scope, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  return { url, verifier, state, nonce, conf };
}

const isRp = (next) => sameEndpoint(next, RP);
const tOf = (url) => new URL(url).searchParams.get('t');
const pathOf = (url) => new URL(url).pathname;

/** Authorization → 台北通 → 組織 / 公司企業 → the organisation QR page. */
async function toOrgQr(agent, a) {
  const r = await agent.followUntil(a.url.href, isRp);
  assert.equal(pathOf(r.url), '/login');
  const card = r.res.links().find((l) => pathOf(l.href) === '/login/taipeipass');
  const login = await agent.get(card.href);
  assert.equal(login.status, 200);
  assert.ok(login.pageText().includes(msg('tp.org_option')), 'the login page names 組織 / 公司企業');
  const form = login.forms().find((f) => pathOf(new URL(f.action, stack.issuer).href) === '/login/taipeipass/org');
  assert.ok(form, 'the login page offers the organisation login');
  assert.equal(form.method, 'GET');
  const button = form.buttons[0];
  assert.ok(button, 'a button');
  const to = await agent.submit(form, {}, button, isRp);
  assert.equal(pathOf(to.url), '/login/taipeipass/app', 'the same QR page as the app login');
  const res = to.res;
  assert.equal(res.status, 200, `the organisation QR page: ${res.pageText().slice(0, 300)}`);
  assert.ok(res.pageText().includes(msg('tp.org_heading')), 'marked as an organisation login');
  const m = /data-qr="([^"]+)"/.exec(res.text);
  assert.ok(m, 'the QR page carries the code');
  const n = /id="tp-number">(\d{2})</.exec(res.text);
  assert.ok(n, 'the QR page shows the number to pick');
  return { res, t: tOf(r.url), qr: decodeEntities(m[1]), pick: n[1] };
}

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

async function simHttp(decision, body) {
  const res = await fetch(`${stack.simUrl}/phone/tpapp/${decision}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

async function appStatus(agent, t) {
  const res = await agent.get(stack.url(`/login/taipeipass/app-status?t=${t}`), { headers: { accept: 'application/json' } });
  return { status: res.status, body: res.json() };
}

/** After approval: app-done → consent (returned for inspection) → allow → tokens. */
async function finish(agent, a, next, { onConsent } = {}) {
  assert.equal(pathOf(new URL(next, stack.issuer).href), '/login/taipeipass/app-done');
  const r = await agent.followUntil(stack.url(next), isRp);
  let cb = r.url;
  if (!r.stopped) {
    assert.equal(pathOf(r.url), '/consent', `after app-done: ${r.res.pageText().slice(0, 300)}`);
    onConsent?.(r.res);
    const cf = r.res.forms().find((f) => f.buttons.some((b) => b.name === 'decision'));
    const s = await agent.submit(cf, {}, cf.buttons.find((b) => b.value === 'allow'), isRp);
    assert.ok(s.stopped, 'consent leads back to the client');
    cb = s.url;
  }
  assert.ok(redirectParams(cb).get('code'), `a code in ${cb}`);
  const tokens = await client.authorizationCodeGrant(a.conf, new URL(cb), {
    pkceCodeVerifier: a.verifier, expectedState: a.state, expectedNonce: a.nonce,
  });
  const claims = tokens.claims();
  assert.equal(claims.acr, ACR_LOW, 'acr low: the app\'s device key is one factor');
  assert.deepEqual(claims.amr, ['swk'], `amr ${JSON.stringify(claims.amr)}`);
  const userinfo = await client.fetchUserInfo(a.conf, tokens.access_token, claims.sub);
  return { tokens, claims, userinfo };
}

/** A refused approval: the app is told, the page shows the refusal and a retry. */
async function assertRefused(agent, t, reply) {
  assert.equal(reply.status, 403, JSON.stringify(reply.body));
  assert.equal(reply.body.error, 'not_a_member');
  const st = await appStatus(agent, t);
  assert.equal(st.body.state, 'refused');
  assert.equal(pathOf(new URL(st.body.next, stack.issuer).href), '/login/taipeipass/app');
  const done = await agent.followUntil(stack.url(`/login/taipeipass/app-done?t=${t}`), isRp);
  assert.equal(pathOf(done.url), '/login/taipeipass/app', 'no login');
  assert.ok(done.res.pageText().includes(msg('tp.org_refused')), 'the page shows the refusal');
  const retry = done.res.forms().find((f) => f.buttons.some((b) => b.value === 'regenerate'));
  assert.ok(retry, 'with a way to try again');
  const again = await agent.submit(retry, {}, retry.buttons.find((b) => b.value === 'regenerate'));
  assert.equal(again.res.status, 200);
  assert.match(again.res.text, /data-qr="isso-tpapp:/, 'a new organisation QR code');
  assert.ok(again.res.pageText().includes(msg('tp.org_heading')));
}

// ---------------------------------------------------------------- tests

test('issoctl org: add validates the 統一編號, show, member add needs a known member', T, async () => {
  const bad = await stack.issoctl(['org', 'add', '--ubn', '12345678', '--name', 'x'], { allowFailure: true });
  assert.equal(bad.code, 1);
  assert.match(bad.json.error, /UBN/);
  const dup = await stack.issoctl(['org', 'add', '--ubn', ORG.ubn, '--name', 'again'], { allowFailure: true });
  assert.equal(dup.code, 1);
  const usage = await stack.issoctl(['org', 'add', '--ubn', ORG.ubn], { allowFailure: true });
  assert.equal(usage.code, 2);
  const shown = await stack.issoctl(['org', 'show', ORG.ubn]);
  assert.equal(shown.ubn, ORG.ubn);
  assert.equal(shown.name, ORG.name);
  const none = await stack.issoctl(['org', 'show', '22099136'], { allowFailure: true });
  assert.equal(none.code, 1);
  const nobody = await stack.issoctl(['org', 'member', 'add', '--ubn', ORG.ubn, '--account', 'no.such.member'], { allowFailure: true });
  assert.equal(nobody.code, 1);
  const twice = await stack.issoctl(['org', 'member', 'add', '--ubn', ORG.ubn, '--account', wang.account], { allowFailure: true });
  assert.equal(twice.code, 1);
});

test('discovery lists the organization scope', T, async () => {
  const d = await (await fetch(stack.url('/.well-known/openid-configuration'))).json();
  assert.ok(d.scopes_supported.includes('organization'));
  assert.ok(d.claims_supported.includes('organization'));
});

test('組織 / 公司企業 → QR → the member approves for their organisation (isso-sim --org) → consent names it → UserInfo organization + the member; acr low, amr swk', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const { t, qr, pick } = await toOrgQr(agent, a);

  // the app is told it is an organisation login, for which service
  const show = await simTpapp(['show', qr]);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.out.organisation, true);
  assert.equal(show.out.service, '臺北市測試機關');
  assert.ok(show.out.choices.includes(Number(pick)));

  // an organisation login needs the organisation named
  const bare = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--pick', pick]);
  assert.equal(bare.code, 1);
  assert.equal(bare.out.error, 'organisation_required');
  assert.equal((await appStatus(agent, t)).body.state, 'pending', 'still waiting');

  const cli = await simTpapp(['approve', qr, '--account', WANG.taipeipass.account, '--org', ORG.ubn, '--pick', pick]);
  assert.equal(cli.code, 0, `isso-sim: ${cli.stderr} ${JSON.stringify(cli.out)}`);
  assert.equal(cli.out.result, 'approved');
  const st = await appStatus(agent, t);
  assert.equal(st.body.state, 'approved');

  let consentText = '';
  const { claims, userinfo } = await finish(agent, a, st.body.next, {
    onConsent: (res) => { consentText = res.pageText(); },
  });
  assert.ok(consentText.includes(msg('claim.organization')), 'the consent page lists the organisation');
  assert.ok(consentText.includes(ORG.name), 'by name');
  assert.ok(consentText.includes(`${msg('claim.ubn')} ${ORG.ubn}`), 'and 統一編號');
  assert.equal(userinfo.sub, claims.sub);
  assert.deepEqual(userinfo.organization, { ubn: ORG.ubn, name: ORG.name });
  assert.equal(userinfo.name, WANG.name, 'the acting member stays the subject');
});

test('a member of another organisation is refused (clear error to the app, refusal and retry on the page)', T, async () => {
  const agent = new HttpAgent();
  const { t, qr, pick } = await toOrgQr(agent, await startAuth());
  const r = await simHttp('approve', { qr, account: outsider.account, password: outsider.password, org: ORG.ubn, pick });
  await assertRefused(agent, t, r);
});

test('a member of no organisation, and an unregistered 統一編號, are refused alike', T, async () => {
  const agent = new HttpAgent();
  const { t, qr, pick } = await toOrgQr(agent, await startAuth());
  const r = await simHttp('approve', { qr, account: loner.account, password: loner.password, org: ORG.ubn, pick });
  await assertRefused(agent, t, r);

  const agent2 = new HttpAgent();
  const second = await toOrgQr(agent2, await startAuth());
  const r2 = await simHttp('approve', { qr: second.qr, account: wang.account, password: wang.password, org: '22099136', pick: second.pick });
  await assertRefused(agent2, second.t, r2);

  const agent3 = new HttpAgent();
  const third = await toOrgQr(agent3, await startAuth());
  const bad = await simHttp('approve', { qr: third.qr, account: wang.account, password: wang.password, org: '12345678', pick: third.pick });
  assert.equal(bad.status, 400);
  assert.equal(bad.body.error, 'organisation_required');
});

test('a wrong number in an organisation login ends the code with the number\'s message, not the organisation\'s', T, async () => {
  const agent = new HttpAgent();
  const { t, qr, pick } = await toOrgQr(agent, await startAuth());
  const show = await simTpapp(['show', qr]);
  const wrong = String(show.out.choices.find((c) => c !== Number(pick)));
  const r = await simHttp('approve', { qr, account: wang.account, password: wang.password, org: ORG.ubn, pick: wrong });
  assert.equal(r.status, 403);
  assert.equal(r.body.error, 'wrong_number');
  const st = await appStatus(agent, t);
  assert.equal(st.body.state, 'refused');
  const page = await agent.get(stack.url(st.body.next));
  assert.deepEqual(page.alerts(), [msg('tp.app_wrong_number')]);
  assert.ok(page.pageText().includes(msg('tp.org_heading')), 'still the organisation login');
});

test('on a phone: the organisation login through the app link returns to consent with the organisation', T, async () => {
  const agent = new HttpAgent({ userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148' });
  const a = await startAuth();
  const { res } = await toOrgQr(agent, a);
  const link = decodeEntities(/href="(isso-tpapp:[^"]+)" id="tp-app-open"/.exec(res.text)?.[1] ?? '');
  assert.match(link, /\/app\/v1\/link\//, 'the organisation page offers the app link too');
  const bare = await simTpapp(['open-link', link, '--account', wang.account]);
  assert.equal(bare.code, 1);
  assert.equal(bare.out.error, 'organisation_required');
  const open = await simTpapp(['open-link', link, '--account', wang.account, '--org', ORG.ubn]);
  assert.equal(open.code, 0, JSON.stringify(open.out));
  const r = await agent.followUntil(open.out.return_url, isRp);
  let consentText = '';
  if (!r.stopped) {
    assert.equal(pathOf(r.url), '/consent', r.res.pageText().slice(0, 300));
    consentText = r.res.pageText();
  }
  assert.ok(r.stopped || consentText.includes(ORG.name), 'the consent page names the organisation');
});

test('a personal QR login does not take an organisation', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth();
  const r = await agent.followUntil(a.url.href, isRp);
  const t = tOf(r.url);
  const res = await agent.get(stack.url(`/login/taipeipass/app?t=${t}`));
  assert.ok(!res.pageText().includes(msg('tp.org_heading')), 'a personal QR page');
  const qr = decodeEntities(/data-qr="([^"]+)"/.exec(res.text)[1]);
  const pick = /id="tp-number">(\d{2})</.exec(res.text)[1];
  const out = await simHttp('approve', { qr, account: wang.account, password: wang.password, org: ORG.ubn, pick });
  assert.equal(out.status, 400);
  assert.equal(out.body.error, 'not_an_organisation_login');
});

test('a client not approved for the organization scope gets no organization claim', T, async () => {
  const agent = new HttpAgent();
  const a = await startAuth({ conf: cfgNoOrg });
  const { t, qr, pick } = await toOrgQr(agent, a);
  const r = await simHttp('approve', { qr, account: wang.account, password: wang.password, org: ORG.ubn, pick });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const st = await appStatus(agent, t);
  let consentText = '';
  const { claims, userinfo } = await finish(agent, a, st.body.next, {
    onConsent: (res) => { consentText = res.pageText(); },
  });
  assert.equal(userinfo.organization, undefined);
  assert.equal(claims.organization, undefined);
  assert.ok(!consentText.includes(ORG.ubn), 'the consent page does not show it either');
  assert.equal(userinfo.name, WANG.name);
});

test('browser: 組織 / 公司企業 → the organisation QR page (axe) → approved → consent lists the organisation (axe)', { timeout: limit(60_000), skip: NO_BROWSER }, async (t) => {
  const member = await stack.addUser({ account: 'org.browser', password: 'Browser-pass-42', phone: '0912000998', name: '瀏覽測試' });
  await stack.issoctl(['org', 'member', 'add', '--ubn', ORG.ubn, '--account', member.account]);
  const a = await startAuth();
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await page.locator('a[href*="/login/taipeipass?"]').first().click();
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await axeCheck(page, 'the login page with the organisation option');
    // its own name, not the personal app link's (issue 15); by keyboard
    await page.locator('#tp-org-link').focus();
    assert.equal(await page.evaluate(() => document.activeElement.textContent.trim()), msg('tp.org_link') + msg('tp.org_link_for'));
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass/app'));
    await page.getByRole('heading', { name: msg('tp.org_heading') }).waitFor();
    await page.getByRole('img', { name: msg('tp.app_qr_alt') }).waitFor();
    await axeCheck(page, 'the organisation QR page');
    await shots.take(t, page, 'tporg-qr');
    const qr = decodeEntities(await page.locator('[data-qr]').getAttribute('data-qr'));
    const pick = (await page.locator('#tp-number').innerText()).trim();
    const r = await simHttp('approve', { qr, account: member.account, password: member.password, org: ORG.ubn, pick });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await page.waitForURL(onIssuer('/consent'), { timeout: limit(10_000) });
    const text = await page.locator('main, body').first().innerText();
    assert.ok(text.includes(ORG.name) && text.includes(ORG.ubn), 'consent lists the organisation');
    await axeCheck(page, 'the consent page');
  } finally {
    await context.close();
  }
});

test('keyboard only (Tab, Enter, Space): 組織 / 公司企業 → QR → a refusal focuses its summary → Enter regenerates → approved → consent; axe on every state', { timeout: limit(90_000), skip: NO_BROWSER }, async (t) => {
  const member = await stack.addUser({ account: 'org.keyboard', password: 'Keyboard-pass-42', phone: '0912000997', name: '鍵盤測試' });
  await stack.issoctl(['org', 'member', 'add', '--ubn', ORG.ubn, '--account', member.account]);
  const a = await startAuth();
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  await context.route((u) => sameEndpoint(u.href, RP), (route) => route.fulfill({ status: 200, contentType: 'text/plain', body: 'agency' }));
  const onIssuer = (p) => (u) => u.origin === stack.issuer && u.pathname === p;
  const qrOf = async () => ({
    qr: decodeEntities(await page.locator('[data-qr]').getAttribute('data-qr')),
    pick: (await page.locator('#tp-number').innerText()).trim(),
  });
  try {
    await page.goto(a.url.href);
    await page.waitForURL(onIssuer('/login'));
    await assertFocusAtTop(page, 'the method choice');
    await tabTo(page, (el) => el.tag === 'a' && /^\/login\/taipeipass\?/.test(el.href ?? ''), 'the 台北通 card', 80);
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass'));
    await assertFocusAtTop(page, 'the login page');
    await axeCheck(page, 'keyboard: the login page');
    // the organisation's own button, reached by Tab, pressed with Enter
    await tabTo(page, (el) => el.tag === 'button' && el.text.startsWith(msg('tp.org_link')), 'the organisation button');
    await page.keyboard.press('Enter');
    await page.waitForURL(onIssuer('/login/taipeipass/app'));
    await page.getByRole('heading', { name: msg('tp.org_heading') }).waitFor();
    await assertFocusAtTop(page, 'the organisation QR page');
    await axeCheck(page, 'keyboard: the organisation QR page');

    // a member of another organisation approves: the page moves to the
    // refusal, whose summary takes focus
    const first = await qrOf();
    const refused = await simHttp('approve', { qr: first.qr, account: outsider.account, password: outsider.password, org: ORG.ubn, pick: first.pick });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    await page.locator('#error-summary').waitFor({ timeout: limit(15_000) });
    await assertErrorFocus(page, 'the refusal', msg('error.title_prefix'));
    assert.ok((await page.locator('#error-summary').innerText()).includes(msg('tp.org_refused')));
    await axeCheck(page, 'keyboard: the refusal');
    await shots.take(t, page, 'tporg-kb-refused');
    // Enter on 重新產生QR code: a new organisation code
    await tabTo(page, (el) => el.tag === 'button' && el.text === msg('tp.app_regenerate'), 'the regenerate button');
    await page.keyboard.press('Enter');
    await page.waitForLoadState('load');
    await page.locator('[data-qr]').waitFor();
    await page.getByRole('heading', { name: msg('tp.org_heading') }).waitFor();
    await assertFocusAtTop(page, 'the new organisation QR code');
    await axeCheck(page, 'keyboard: the new QR code');
    const second = await qrOf();
    assert.notEqual(second.qr, first.qr, 'a new code');
    const ok = await simHttp('approve', { qr: second.qr, account: member.account, password: member.password, org: ORG.ubn, pick: second.pick });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));

    await page.waitForURL(onIssuer('/consent'), { timeout: limit(15_000) });
    await assertFocusAtTop(page, 'consent');
    await axeCheck(page, 'keyboard: consent with the organisation');
    await tabTo(page, (el) => el.tag === 'button' && el.text === msg('consent.allow'), 'the allow button');
    const [req] = await Promise.all([
      page.waitForRequest((r) => sameEndpoint(r.url(), RP)),
      page.keyboard.press('Space'),
    ]);
    assert.ok(redirectParams(req.url()).get('code'), 'a code for the client');
  } finally {
    await context.close();
  }
});

test('issod is still healthy', T, async () => {
  assert.ok(await stack.healthy());
});
