// Agency applications (申請介接) and their review, on the web and through
// issoctl. In Chromium (axe on every page, a phone-sized viewport too): an
// agency's staff member (an admin member of the organisation) logs in with
// a MOICA card (level high) and applies; a city administrator logs in the
// same way and approves, leaving a field out; the agency takes the
// credentials once; openid-client then logs a citizen in with the new
// client and gets only the approved fields. Refusals: a session below
// high goes to a step-up login offering only high methods, a non-member,
// a missing CSRF token, another organisation's service, a non-reviewer;
// rotate, suspend and delete. Through issoctl:
// application list|show|approve (narrowing a field)|refuse, client
// delete (its tokens and consents go with it), admin grant|revoke (the
// city administrator role), org list|remove (refused while the
// organisation owns services)|member remove. Every decision is an audit
// event; an approval never prints the new secret (the agency takes it
// once from its own page). Suspending and resuming: the agency resumes its
// own suspension from its page (logins refused meanwhile, working again at
// once), not the city's (no resume offered, a forged one refused with 403);
// a city administrator suspends with a reason and resumes, issoctl client
// suspend|approve act for the city; the review history, newest first with
// the refusal's reason, on both the agency's and the reviewer's page.
// Decisions: a refused application is decided no further (none offered,
// forged ones 409, issoctl exit 1) until the agency's edit; the city
// takes over a suspension the agency made (page and issoctl); a city
// administrator who is a member of the organisation gets 403 and changes
// nothing; a client suspended while pending is not resumed into approval
// by client approve, only by application approve.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import { startStack, HttpAgent, limit, decodeEntities, REPO } from './lib/harness.mjs';
import { cardOf, fileSign } from './lib/cards.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, assertNoHorizontalScroll, tabTo, Screenshots,
} from './lib/browser.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const T = { timeout: limit(30_000) };
const UBN = '04595257'; // a valid 統一編號 (checksum)

const UBN_OTHER = '22099131';
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const MSG_EN = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'en.json'), 'utf8'));
const CARD_STAFF = 'TP03000000000001';
const CARD_ADMIN = 'TP03000000000006';
const CARD_OUTSIDER = 'TP03000000000012';
const CARD_PKJWT = 'TP03000000000008';
const UBN_PKJWT = '12345670';
const CARD_STAFF2 = 'TP03000000000002';
const UBN_RESUME = '30000002';

let stack;
let citizen;
let browser;
let phoneSeq = 0;

function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key}`);
  return MSG[key];
}

/** Opens startPath without a high session: the method choice offers only
 * high methods; logs in with card sn (signature, phone, SMS code) and
 * returns where the login came back to ({res, url}). */
async function cardLogin(agent, startPath, sn) {
  const c = cardOf(stack, sn);
  const choice = await agent.followUntil(`${stack.issuer}${startPath}`);
  assert.equal(choice.res.status, 200);
  assert.equal(new URL(choice.url).pathname, '/login', `${startPath} sends to a login`);
  const paths = choice.res.links().map((l) => new URL(l.href).pathname);
  assert.ok(paths.includes('/login/moica-card'), 'the card is offered');
  assert.ok(!paths.includes('/login/taipeipass'), 'a method below high is not offered');
  const link = choice.res.links().find((l) => new URL(l.href).pathname === '/login/moica-card');
  const res = await agent.get(link.href);
  const form = res.forms().find((f) => f.has('challenge'));
  assert.ok(form, 'the card form');
  const tbs = decodeEntities(/data-tbs="([^"]*)"/.exec(res.text)?.[1] ?? '');
  const posted = await agent.submit(form, { id_number: c.national_id, ...fileSign(stack.pki, sn, tbs) }, null,
    (next) => new URL(next).pathname === '/login/moica-card/phone');
  assert.ok(posted.stopped, `the card was accepted: ${posted.res?.status}`);
  phoneSeq += 1;
  const phone = `0937${String(500000 + phoneSeq * 131).padStart(6, '0')}`;
  const page = await agent.get(posted.url);
  const f = page.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(f, { phone }, f.buttons.find((b) => b.value === 'send'));
  const cf = sent.res.forms().find((x) => x.has('code'));
  assert.ok(cf, 'the code field');
  const sms = await stack.readLastSms(phone);
  return agent.submit(cf, { code: sms.code }, cf.buttons.find((b) => b.value === 'verify'));
}

/** A Chromium page carrying agent's iSSO session. */
async function browserAs(agent, opts = {}) {
  const { context, page } = await newPage(browser, { locale: 'zh-TW', ...opts });
  await context.addCookies([{ name: 'isso_sid', value: agent.jar.get('isso_sid'), url: stack.issuer }]);
  return { context, page };
}

const shots = new Screenshots();

/** axe-core on the page, and a screenshot of it (a test diagnostic). */
async function checked(page, label) {
  await axeCheck(page, label);
  await shots.take({ diagnostic() {} }, page, label.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 60));
}

async function audit() {
  return stack.issoctl(['audit', 'export']);
}

async function events(name) {
  const all = await audit();
  return all.filter((e) => e.event === name).map((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data));
}

async function rp(clientId, secret) {
  return client.discovery(new URL(stack.issuer), clientId, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(secret), { execute: [client.allowInsecureRequests], timeout: 5 });
}

async function login(cfg, scope) {
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope, code_challenge: await client.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256', state, nonce,
  });
  const agent = new HttpAgent();
  const cb = await agent.loginViaPages({ authorizeUrl: url, account: citizen.account, password: citizen.password });
  return client.authorizationCodeGrant(cfg, new URL(cb), { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
}

before(async () => {
  stack = await startStack({ label: 'agency', pki: true });
  if (!NO_BROWSER) browser = await launchBrowser();
  citizen = await stack.addUser({
    account: 'agency.citizen', password: 'Agency-citizen-42', phone: '0912000555', name: '申請測試',
    email: 'citizen@example.test', phoneVerified: true,
  });
});

after(async () => {
  await browser?.close().catch(() => {});
  shots.report();
  await stack?.stop();
});

test('issoctl: an application is approved with a field narrowed; the secret is not printed', T, async () => {
  const added = await stack.issoctl(['client', 'add', '--name', '審核測試服務', '--redirect-uri', RP,
    '--scope', 'openid profile phone email']);
  const list = await stack.issoctl(['application', 'list']);
  const mine = list.find((c) => c.client_id === added.client_id);
  assert.ok(mine, 'the pending client is listed');
  assert.equal(mine.application_state, 'pending');

  const approved = await stack.issoctl(['application', 'approve', added.client_id, '--drop', 'email']);
  assert.equal(approved.status, 'approved');
  assert.equal(approved.application_state, 'approved');
  assert.equal(approved.scope, 'openid profile phone');
  assert.equal(approved.client_secret, undefined, 'the reviewer never sees the secret');
  assert.ok(!JSON.stringify(approved).includes(added.client_secret));
  const ev = (await events('client_approved')).find((d) => d.client_id === added.client_id);
  assert.deepEqual(ev.dropped, ['email']);
  assert.equal(ev.by, 'issoctl');

  // A client with a secret already (client add) keeps it: the approval
  // makes one only for an application that has none.
  const cfg = await rp(added.client_id, added.client_secret);
  const tokens = await login(cfg, 'openid profile phone email');
  assert.equal(tokens.scope.split(' ').includes('email'), false, 'email was left out');

  // Approved once, not again; unknown ids and bad fields are refused.
  let r = await stack.issoctl(['application', 'approve', added.client_id], { allowFailure: true });
  assert.equal(r.code, 1);
  assert.match(r.json.error, /not waiting/);
  r = await stack.issoctl(['application', 'approve', 'no-such-client'], { allowFailure: true });
  assert.equal(r.code, 1);
  r = await stack.issoctl(['application', 'approve', added.client_id, '--drop', 'nonsense'], { allowFailure: true });
  assert.equal(r.code, 2);
  assert.ok(!(await stack.issoctl(['application', 'list'])).some((c) => c.client_id === added.client_id));
});

test('issoctl: a refusal needs a reason and leaves the client unusable', T, async () => {
  const added = await stack.issoctl(['client', 'add', '--name', '拒絕測試服務', '--redirect-uri', RP, '--scope', 'openid']);
  let r = await stack.issoctl(['application', 'refuse', added.client_id], { allowFailure: true });
  assert.equal(r.code, 2);
  const refused = await stack.issoctl(['application', 'refuse', added.client_id, '--reason', '目的不明確']);
  assert.equal(refused.status, 'pending');
  assert.equal(refused.application_state, 'refused');
  assert.equal(refused.settings.application.refusal, '目的不明確');
  assert.equal(refused.settings.application.history.at(-1).event, 'client_refused');
  assert.ok((await events('client_refused')).some((d) => d.client_id === added.client_id));
  const shown = await stack.issoctl(['application', 'show', added.client_id]);
  assert.equal(shown.application_state, 'refused');
  const cfg = await rp(added.client_id, added.client_secret);
  await assert.rejects(login(cfg, 'openid'));
});

test('issoctl client delete: tokens and consents go with the client', T, async () => {
  const c = await stack.registerClient({ name: '刪除測試服務', redirectUris: [RP], scope: 'openid profile' });
  const cfg = await rp(c.client_id, c.client_secret);
  const tokens = await login(cfg, 'openid profile');
  assert.ok(tokens.refresh_token);
  const before = await client.tokenIntrospection(cfg, tokens.access_token);
  assert.equal(before.active, true);

  const out = await stack.issoctl(['client', 'delete', c.client_id]);
  assert.equal(out.deleted, true);
  assert.ok((await events('client_deleted')).some((d) => d.client_id === c.client_id));
  // The client is gone, and a client that comes back with the same
  // credentials finds nothing (discovery works: the store is what matters).
  await assert.rejects(client.refreshTokenGrant(cfg, tokens.refresh_token));
  const r = await stack.issoctl(['client', 'show', c.client_id], { allowFailure: true });
  assert.equal(r.code, 1);
  const again = await stack.issoctl(['client', 'delete', c.client_id], { allowFailure: true });
  assert.equal(again.code, 1);
  assert.match(again.json.error, /no such client/);
});

test('issoctl admin grant|revoke and org list|remove|member remove', T, async () => {
  const staff = await stack.addUser({ account: 'agency.staff', password: 'Agency-staff-42', phone: '0912000556', name: '機關承辦' });
  let g = await stack.issoctl(['admin', 'grant', '--account', 'Agency.Staff']);
  assert.equal(g.held, true);
  assert.equal(g.uuid, staff.uuid);
  g = await stack.issoctl(['admin', 'grant', '--account', staff.account]); // idempotent
  assert.equal(g.held, true);
  assert.equal((await events('admin_granted')).filter((d) => d.uuid === staff.uuid).length, 1);
  g = await stack.issoctl(['admin', 'revoke', '--account', staff.account]);
  assert.equal(g.held, false);
  assert.equal((await events('admin_revoked')).filter((d) => d.uuid === staff.uuid).length, 1);
  let r = await stack.issoctl(['admin', 'grant', '--account', 'nobody.here'], { allowFailure: true });
  assert.equal(r.code, 1);
  r = await stack.issoctl(['admin', 'promote', '--account', staff.account], { allowFailure: true });
  assert.equal(r.code, 2);

  await stack.issoctl(['org', 'add', '--ubn', UBN, '--name', '測試機關']);
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN, '--account', staff.account, '--role', 'admin']);
  const orgs = await stack.issoctl(['org', 'list']);
  assert.ok(orgs.some((o) => o.ubn === UBN && o.name === '測試機關'));
  const rm = await stack.issoctl(['org', 'member', 'remove', UBN, '--account', staff.account]);
  assert.equal(rm.removed, true);
  r = await stack.issoctl(['org', 'member', 'remove', UBN, '--account', staff.account], { allowFailure: true });
  assert.equal(r.code, 1);
  assert.ok((await events('org_member_removed')).some((d) => d.ubn === UBN && d.uuid === staff.uuid));
  const gone = await stack.issoctl(['org', 'remove', UBN]);
  assert.equal(gone.removed, true);
  assert.ok(!(await stack.issoctl(['org', 'list'])).some((o) => o.ubn === UBN));
  r = await stack.issoctl(['org', 'remove', UBN], { allowFailure: true });
  assert.equal(r.code, 1);
});

test('the web: apply, review with a field left out, credentials once, a citizen logs in', { timeout: limit(180_000), skip: NO_BROWSER }, async () => {
  const staffCard = cardOf(stack, CARD_STAFF);
  const adminCard = cardOf(stack, CARD_ADMIN);
  const staff = await stack.addUser({ account: 'web.staff', password: 'Web-staff-42', phone: '0912000601', name: staffCard.name, idNumber: staffCard.national_id });
  const admin = await stack.addUser({ account: 'web.admin', password: 'Web-admin-42', phone: '0912000602', name: adminCard.name, idNumber: adminCard.national_id });
  await stack.issoctl(['org', 'add', '--ubn', UBN, '--name', '臺北市測試局']);
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN, '--account', staff.account, '--role', 'admin']);
  await stack.issoctl(['admin', 'grant', '--account', admin.account]);

  // A session below high (台北通 password, level low) is sent to a step-up login.
  const low = new HttpAgent();
  const lowLogin = await low.followUntil(`${stack.issuer}/account`);
  const tp = lowLogin.res.links().find((l) => new URL(l.href).pathname === '/login/taipeipass');
  const tpPage = await low.get(tp.href);
  const lf = tpPage.forms().find((f) => f.has('password'));
  const lowDone = await low.submit(lf, { account: staff.account, password: staff.password });
  assert.equal(new URL(lowDone.url).pathname, '/account', 'a low login to /account');
  const stepUp = await low.followUntil(`${stack.issuer}/agency`);
  assert.equal(new URL(stepUp.url).pathname, '/login', 'a low session is sent to log in again');
  assert.ok(!stepUp.res.links().some((l) => new URL(l.href).pathname === '/login/taipeipass'));
  const lowPost = await low.request(`${stack.issuer}/agency/apply`, { method: 'POST', form: { name: 'x' } });
  assert.equal(lowPost.status, 303);
  assert.equal(new URL(lowPost.location).pathname, '/login', 'a POST below high applies nothing');

  // The staff member logs in with the card and lands on /agency.
  const agent = new HttpAgent();
  const landed = await cardLogin(agent, '/agency', CARD_STAFF);
  assert.equal(new URL(landed.url).pathname, '/agency');
  assert.equal(landed.res.status, 200);
  assert.match(landed.res.pageText(), /臺北市測試局/);

  // A POST without the CSRF token is refused.
  const noCsrf = await agent.request(`${stack.issuer}/agency/apply`, { method: 'POST', form: { name: 'x' } });
  assert.equal(noCsrf.status, 403);

  const { context, page } = await browserAs(agent);
  let clientId;
  try {
    await page.goto(`${stack.issuer}/agency`);
    assert.equal(await page.locator('h1').innerText(), msg('agency.title'));
    await checked(page, '/agency');
    // Keyboard only: Tab to the apply link, Enter.
    await tabTo(page, (el) => el.tag === 'a' && el.href === '/agency/apply', 'the apply link');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/agency\/apply$/);
    await checked(page, '/agency/apply');
    // English second, and usable on a phone.
    await page.goto(`${stack.issuer}/agency/apply?lang=en`);
    assert.equal(await page.locator('h1').innerText(), MSG_EN['agency.apply_title']);
    await checked(page, '/agency/apply in English');
    await page.setViewportSize({ width: 360, height: 740 });
    await assertNoHorizontalScroll(page, '/agency/apply on a phone');
    await page.setViewportSize({ width: 1280, height: 900 });
    await page.goto(`${stack.issuer}/agency/apply?lang=zh-TW`);

    // Nothing filled in: the error summary names the fields.
    await page.getByRole('button', { name: msg('agency.submit') }).click();
    await page.waitForSelector('#error-summary');
    const summary = await page.locator('#error-summary').innerText();
    assert.match(summary, new RegExp(msg('agency.err_name')));
    assert.match(summary, new RegExp(msg('agency.err_redirect_uris').slice(0, 6)));
    assert.equal(await page.locator('#name').getAttribute('aria-invalid'), 'true');
    await checked(page, '/agency/apply with errors');

    // A bad redirect URI and a field without a reason.
    await page.fill('#name', '臺北市測試線上申辦');
    await page.fill('#purpose', '申辦案件身分確認');
    await page.fill('#notice', '臺北市測試局依個人資料保護法第 8 條告知：蒐集目的為申辦案件身分確認……');
    await page.fill('#redirect_uris', 'http://evil.example/cb');
    await page.fill('#contacts', '承辦人 王小明 02-2720-8889');
    await page.check('#need_profile_required');
    await page.fill('#reason_profile', '核對申請人姓名');
    await page.check('#need_email_optional');
    await page.check('#need_phone_required');
    await page.fill('#reason_phone', '通知案件進度');
    await page.getByRole('button', { name: msg('agency.submit') }).click();
    await page.waitForSelector('#error-summary');
    const summary2 = await page.locator('#error-summary').innerText();
    assert.match(summary2, new RegExp(msg('agency.err_reason')));
    assert.ok(!summary2.includes(msg('agency.err_name')));
    assert.equal(await page.inputValue('#name'), '臺北市測試線上申辦', 'what was typed stays');
    await page.fill('#redirect_uris', RP);
    await page.fill('#reason_email', '寄送收據');
    await page.getByRole('button', { name: msg('agency.submit') }).click();
    await page.waitForURL(/\/agency\/service\/[A-Za-z0-9_-]+\?done=applied$/);
    clientId = new URL(page.url()).pathname.split('/').pop();
    assert.equal(await page.locator('#state').innerText(), msg('agency.state_pending'));
    await checked(page, 'the service, pending');
    await page.setViewportSize({ width: 360, height: 740 });
    await assertNoHorizontalScroll(page, 'the service on a phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  } finally {
    await context.close();
  }
  const applied = (await events('client_applied')).find((d) => d.client_id === clientId);
  assert.equal(applied.by, staff.uuid);
  assert.equal(applied.ubn, UBN);
  const pending = await stack.issoctl(['application', 'show', clientId]);
  assert.equal(pending.status, 'pending');
  assert.deepEqual(pending.settings.application.fields.phone, { required: true, reason: '通知案件進度' });
  assert.equal(pending.settings.application.fields.email.required, false);

  // The organisation now owns a service: it cannot be removed.
  const orgRm = await stack.issoctl(['org', 'remove', UBN], { allowFailure: true });
  assert.equal(orgRm.code, 1);
  assert.match(orgRm.json.error, /still has services/);

  // Not a reviewer: the staff member is refused /admin.
  const notAdmin = await agent.get(`${stack.issuer}/admin/applications`);
  assert.equal(notAdmin.status, 403);

  // The city administrator logs in with a card and approves without phone.
  const adminAgent = new HttpAgent();
  const adminLanded = await cardLogin(adminAgent, `/admin/applications/${clientId}`, CARD_ADMIN);
  assert.equal(new URL(adminLanded.url).pathname, `/admin/applications/${clientId}`);
  // Another organisation's staff (the administrator acts for another) does not see it.
  await stack.issoctl(['org', 'add', '--ubn', UBN_OTHER, '--name', '第二測試局']);
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN_OTHER, '--account', admin.account, '--role', 'admin']);
  const foreign = await adminAgent.get(`${stack.issuer}/agency/service/${clientId}`);
  assert.equal(foreign.status, 404);
  const unknown = await adminAgent.get(`${stack.issuer}/agency/service/no-such-client`);
  assert.equal(unknown.status, 404);
  assert.equal(foreign.pageText(), unknown.pageText(), 'another organisation\'s service reads as unknown');

  const a = await browserAs(adminAgent);
  try {
    await a.page.goto(`${stack.issuer}/admin/applications`);
    await checked(a.page, '/admin/applications');
    await a.page.getByRole('link', { name: '臺北市測試線上申辦' }).click();
    await a.page.waitForURL(new RegExp(`/admin/applications/${clientId}$`));
    await checked(a.page, 'the review');
    // Refusing needs a reason.
    await a.page.getByRole('button', { name: msg('admin.refuse') }).click();
    await a.page.waitForSelector('#error-summary');
    assert.equal(await a.page.locator('#reason').getAttribute('aria-invalid'), 'true');
    await checked(a.page, 'the review with an error');
    // Keyboard only: untick phone, then approve.
    await a.page.locator('#keep_phone').focus();
    await a.page.keyboard.press('Space');
    assert.equal(await a.page.isChecked('#keep_phone'), false);
    await tabTo(a.page, (el) => el.tag === 'button' && el.value === 'approve', 'the approve button');
    await a.page.keyboard.press('Enter');
    await a.page.waitForURL(/\/admin\/applications\?done=approved$/);
    await checked(a.page, 'after approval');
    assert.ok(!(await a.page.content()).includes(clientId), 'no longer pending');
  } finally {
    await a.context.close();
  }
  const approved = await stack.issoctl(['client', 'show', clientId]);
  assert.equal(approved.status, 'approved');
  assert.equal(approved.scope, 'openid profile email');
  assert.deepEqual(approved.settings.optional_scopes, ['email']);
  const ev = (await events('client_approved')).find((d) => d.client_id === clientId);
  assert.equal(ev.by, admin.uuid);
  assert.deepEqual(ev.dropped, ['phone']);

  // The agency takes the credentials, once.
  let secret;
  const s = await browserAs(agent);
  try {
    await s.page.goto(`${stack.issuer}/agency/service/${clientId}`);
    assert.equal(await s.page.locator('#state').innerText(), msg('agency.state_approved'));
    await checked(s.page, 'the approved service');
    await s.page.getByRole('button', { name: msg('agency.reveal') }).click();
    secret = await s.page.locator('#client-secret').innerText();
    assert.match(secret, /^[A-Za-z0-9_-]{43}$/);
    await checked(s.page, 'the credentials');
    await s.page.goto(`${stack.issuer}/agency/service/${clientId}`);
    assert.equal(await s.page.getByRole('button', { name: msg('agency.reveal') }).count(), 0, 'not offered again');
    assert.equal(await s.page.locator('#client-secret').count(), 0);
  } finally {
    await s.context.close();
  }
  // A replayed reveal shows nothing.
  const svc = await agent.get(`${stack.issuer}/agency/service/${clientId}`);
  const anyForm = svc.forms().find((f) => f.has('csrf'));
  const replay = await agent.request(`${stack.issuer}/agency/service/${clientId}`, {
    method: 'POST', form: { csrf: anyForm.fields().find(([n]) => n === 'csrf')[1], action: 'reveal' },
  });
  assert.equal(replay.status, 200);
  assert.ok(!replay.text.includes(secret));
  assert.match(replay.pageText(), new RegExp(msg('agency.reveal_gone').slice(0, 10)));

  // A citizen logs in with the new client and gets only what was approved;
  // the consent page shows the agency's own notice.
  const cfg = await rp(clientId, secret);
  {
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: RP, scope: 'openid profile email', state: client.randomState(),
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()), code_challenge_method: 'S256',
    });
    const ca = new HttpAgent();
    const ch = await ca.followUntil(url.href);
    const tpl = ch.res.links().find((l) => new URL(l.href).pathname === '/login/taipeipass');
    const lp = await ca.get(tpl.href);
    const consentPage = await ca.submit(lp.forms().find((f) => f.has('password')), { account: citizen.account, password: citizen.password });
    assert.equal(new URL(consentPage.url).pathname, '/consent');
    const text = consentPage.res.pageText();
    assert.ok(text.includes(msg('consent.agency_notice')));
    assert.ok(text.includes('臺北市測試局依個人資料保護法第 8 條告知'), 'the agency\'s notice is on consent');
  }
  const tokens = await login(cfg, 'openid profile email');
  const ui = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
  assert.equal(ui.name, citizen.name);
  assert.equal(ui.email, citizen.email);
  assert.equal(ui.phone_number, undefined);
  // Asking for the field left out releases nothing of it.
  const asked = await login(cfg, 'openid phone');
  assert.ok(!String(asked.scope ?? '').split(' ').includes('phone'), `granted ${asked.scope}`);
  const ui2 = await client.fetchUserInfo(cfg, asked.access_token, asked.claims().sub);
  assert.equal(ui2.phone_number, undefined);

  // A change of the contacts alone is saved as it is.
  const editUrl = `${stack.issuer}/agency/service/${clientId}/edit`;
  const e = await browserAs(agent);
  try {
    await e.page.goto(`${stack.issuer}/agency/service/${clientId}`);
    await e.page.getByRole('link', { name: msg('agency.edit') }).click();
    await e.page.waitForURL(/\/edit$/);
    assert.equal(await e.page.locator('h1').innerText(), msg('agency.edit_title'));
    assert.equal(await e.page.inputValue('#name'), '臺北市測試線上申辦');
    assert.equal(await e.page.isChecked('#need_email_optional'), true);
    await checked(e.page, 'the edit form');
  } finally {
    await e.context.close();
  }
  let ef = (await agent.get(editUrl)).forms().find((f) => f.has('contacts'));
  assert.ok(ef, 'the edit form');
  let saved = await agent.submit(ef, { contacts: '承辦人 陳美玲 02-2720-8889' });
  assert.match(saved.url, /\?done=saved$/);
  assert.equal((await stack.issoctl(['client', 'show', clientId])).status, 'approved');
  // A change of fields goes back to review: logins are refused meanwhile.
  ef = (await agent.get(editUrl)).forms().find((f) => f.has('contacts'));
  assert.equal(ef.fields().find(([n]) => n === 'reason_email')[1], '寄送收據', 'the form holds what was applied for');
  saved = await agent.submit(ef, { need_birthdate: 'required', reason_birthdate: '確認年齡資格' });
  assert.match(saved.url, /\?done=edited$/);
  const edited = await stack.issoctl(['client', 'show', clientId]);
  assert.equal(edited.status, 'pending');
  assert.equal(edited.settings.application.fields.birthdate.reason, '確認年齡資格');
  const ed = (await events('client_edited')).filter((d) => d.client_id === clientId);
  assert.deepEqual(ed.map((d) => d.review), [false, true]);
  assert.deepEqual(ed[1].changed, ['fields']);
  await assert.rejects(login(cfg, 'openid profile'), 'no logins while under review');
  // Approved again, the service runs on with the secret it has.
  await stack.issoctl(['application', 'approve', clientId]);
  const again = await login(cfg, 'openid profile birthdate');
  assert.ok(again.scope.split(' ').includes('birthdate'));

  // Rotate: the new secret works, the old one not; suspend; delete.
  const rot = await agent.request(`${stack.issuer}/agency/service/${clientId}`, {
    method: 'POST', form: { csrf: anyForm.fields().find(([n]) => n === 'csrf')[1], action: 'rotate' },
  });
  assert.equal(rot.status, 200);
  const fresh = /id="client-secret">([A-Za-z0-9_-]{43})</.exec(rot.text)?.[1];
  assert.ok(fresh && fresh !== secret);
  await assert.rejects(login(await rp(clientId, secret), 'openid profile'));
  const cfg2 = await rp(clientId, fresh);
  const t2 = await login(cfg2, 'openid profile');
  assert.ok((await events('client_secret_rotated')).some((d) => d.client_id === clientId && d.by === staff.uuid));
  const sus = await agent.request(`${stack.issuer}/agency/service/${clientId}`, {
    method: 'POST', form: { csrf: anyForm.fields().find(([n]) => n === 'csrf')[1], action: 'suspend' },
  });
  assert.equal(sus.status, 303);
  await assert.rejects(login(cfg2, 'openid profile'));
  assert.ok((await events('client_suspended')).some((d) => d.client_id === clientId));
  const del = await agent.request(`${stack.issuer}/agency/service/${clientId}`, {
    method: 'POST', form: { csrf: anyForm.fields().find(([n]) => n === 'csrf')[1], action: 'delete', confirm: '1' },
  });
  assert.equal(del.status, 303);
  assert.equal(new URL(del.location).pathname, '/agency');
  await assert.rejects(client.refreshTokenGrant(cfg2, t2.refresh_token));
  assert.ok((await events('client_deleted')).some((d) => d.client_id === clientId && d.by === staff.uuid));
  assert.equal((await stack.issoctl(['client', 'show', clientId], { allowFailure: true })).code, 1);

  // Ids not as iSSO makes them never reach the store or a Location header.
  for (const bad of ['a%0d%0aSet-Cookie:x=1', 'a.b', 'x'.repeat(65)]) {
    // (the server's parser may refuse the encoded line break first: 400)
    assert.ok([400, 404].includes((await agent.get(`${stack.issuer}/agency/service/${bad}`)).status), bad);
    assert.ok([400, 404].includes((await adminAgent.get(`${stack.issuer}/admin/applications/${bad}`)).status), bad);
    assert.ok(!agent.jar.get('x'));
  }

  // One organisation holds at most 100 services and applications.
  const applyForm = (await agent.get(`${stack.issuer}/agency/apply`)).forms().find((f) => f.has('notice'));
  const csrf = applyForm.fields().find(([n]) => n === 'csrf')[1];
  const one = (i) => ({
    csrf, ubn: UBN, name: `大量申請 ${i}`, purpose: '上限測試', notice: '告知事項', contacts: '承辦人',
    redirect_uris: RP, auth_method: 'client_secret_basic',
  });
  for (let i = 0; i < 100; i++) {
    const r = await agent.request(`${stack.issuer}/agency/apply`, { method: 'POST', form: one(i) });
    assert.equal(r.status, 303, `application ${i}`);
  }
  const over = await agent.request(`${stack.issuer}/agency/apply`, { method: 'POST', form: one(100) });
  assert.equal(over.status, 429);
  assert.equal((await stack.issoctl(['application', 'list'])).filter((c) => c.name.startsWith('大量申請')).length, 100);

  // Someone of no organisation, logged in at high, is refused /agency.
  const out = new HttpAgent();
  const outLanded = await cardLogin(out, '/agency', CARD_OUTSIDER);
  assert.equal(outLanded.res.status, 403);
  assert.match(outLanded.res.pageText(), new RegExp(msg('agency.not_staff').slice(0, 8)));
});

test('the web: a private_key_jwt application registers its JWK set and gets no secret', { timeout: limit(120_000) }, async () => {
  const c = cardOf(stack, CARD_PKJWT);
  const staff = await stack.addUser({ account: 'pk.staff', password: 'Pk-staff-42', phone: '0912000603', name: c.name, idNumber: c.national_id });
  await stack.issoctl(['org', 'add', '--ubn', UBN_PKJWT, '--name', '金鑰測試局']);
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN_PKJWT, '--account', staff.account, '--role', 'admin']);
  const agent = new HttpAgent();
  const landed = await cardLogin(agent, '/agency/apply', CARD_PKJWT);
  assert.equal(new URL(landed.url).pathname, '/agency/apply');
  const form = landed.res.forms().find((f) => f.has('notice'));
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'agency-key-1', alg: 'ES256', use: 'sig' };
  const base = {
    name: '金鑰測試服務', purpose: '金鑰登入測試', notice: '告知事項', contacts: '承辦人',
    redirect_uris: RP, need_profile: 'required', reason_profile: '核對姓名', auth_method: 'private_key_jwt',
  };
  // No keys, keys that are not a set, a jwks_uri not https or on a private address: refused.
  // Keys that are no public signing keys we accept: refused too.
  const priv = { ...(await jose.exportJWK(privateKey)), kid: 'leaked' };
  const rsa1024 = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
  const set = (...keys) => ({ jwks: JSON.stringify({ keys }) });
  const badKeys = [
    set(priv), set(rsa1024), set({ kty: 'oct', k: 'c2VjcmV0' }), set({ ...jwk, use: 'enc' }),
    set({ ...jwk, crv: 'P-384' }), set(jwk, { ...jwk }), set(...Array.from({ length: 11 }, (_, i) => ({ ...jwk, kid: `k${i}` }))),
  ];
  for (const bad of [{}, { jwks: '{"keys":[]}' }, { jwks: 'not json' }, { jwks_uri: 'http://jwks.example/jwks' }, { jwks_uri: 'https://10.0.0.1/jwks' }, ...badKeys]) {
    const r = await agent.submit(form, { ...base, ...bad });
    assert.equal(r.res.status, 400, `${JSON.stringify(bad)}: ${r.url} ${r.res.pageText().slice(0, 300)}`);
    assert.match(r.res.alerts().join(' '), new RegExp(msg('agency.err_jwks').slice(0, 8)));
  }
  const done = await agent.submit(form, { ...base, jwks: JSON.stringify({ keys: [jwk] }) });
  assert.match(done.url, /\/agency\/service\/[A-Za-z0-9_-]+\?done=applied$/);
  const clientId = new URL(done.url).pathname.split('/').pop();
  // A reviewer who applied does not decide on their own application.
  await stack.issoctl(['admin', 'grant', '--account', staff.account]);
  const own = await agent.get(`${stack.issuer}/admin/applications/${clientId}`);
  assert.equal(own.status, 403);
  assert.match(own.pageText(), new RegExp(msg('admin.own').slice(0, 8)));
  const ownPost = await agent.request(`${stack.issuer}/admin/applications/${clientId}`, { method: 'POST', form: { decision: 'approve' } });
  assert.equal(ownPost.status, 403);
  assert.equal((await stack.issoctl(['client', 'show', clientId])).status, 'pending');
  const approved = await stack.issoctl(['application', 'approve', clientId]);
  assert.equal(approved.token_endpoint_auth_method, 'private_key_jwt');
  assert.equal(approved.status, 'approved');
  const page = await agent.get(`${stack.issuer}/agency/service/${clientId}`);
  assert.ok(!page.forms().some((f) => f.buttons.some((b) => b.value === 'reveal')), 'no secret to take');
  assert.ok(!page.forms().some((f) => f.buttons.some((b) => b.value === 'rotate')), 'no secret to rotate');
  const cfg = await client.discovery(new URL(stack.issuer), clientId, { id_token_signed_response_alg: 'ES256' },
    client.PrivateKeyJwt({ key: privateKey, kid: 'agency-key-1' }), { execute: [client.allowInsecureRequests], timeout: 5 });
  const tokens = await login(cfg, 'openid profile');
  const ui = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
  assert.equal(ui.name, citizen.name);
});

test('suspend and resume: the agency lifts only its own suspension, the city any; the review history on both pages', { timeout: limit(240_000), skip: NO_BROWSER }, async () => {
  const sc = cardOf(stack, CARD_STAFF2);
  const staff = await stack.addUser({ account: 'resume.staff', password: 'Resume-staff-42', phone: '0912000604', name: sc.name, idNumber: sc.national_id });
  // The city administrator of the web test (added here when that test did not run).
  const ac = cardOf(stack, CARD_ADMIN);
  await stack.addUser({ account: 'web.admin', password: 'Web-admin-42', phone: '0912000602', name: ac.name, idNumber: ac.national_id }).catch(() => {});
  const adminUuid = (await stack.issoctl(['admin', 'grant', '--account', 'web.admin'])).uuid;
  await stack.issoctl(['org', 'add', '--ubn', UBN_RESUME, '--name', '恢復測試局']);
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN_RESUME, '--account', staff.account, '--role', 'admin']);

  // Applied, refused with a reason, changed, approved; the agency takes its secret.
  const agent = new HttpAgent();
  const landed = await cardLogin(agent, '/agency/apply', CARD_STAFF2);
  const form = landed.res.forms().find((f) => f.has('notice'));
  const applied = await agent.submit(form, {
    name: '恢復測試服務', purpose: '停用與恢復測試', notice: '告知事項', contacts: '承辦人', redirect_uris: RP,
    need_profile: 'required', reason_profile: '核對姓名', auth_method: 'client_secret_basic',
  });
  assert.match(applied.url, /\/agency\/service\/[A-Za-z0-9_-]+\?done=applied$/);
  const clientId = new URL(applied.url).pathname.split('/').pop();
  const svcUrl = `${stack.issuer}/agency/service/${clientId}`;
  const reviewUrl = `${stack.issuer}/admin/applications/${clientId}`;
  await stack.issoctl(['application', 'refuse', clientId, '--reason', '蒐集目的說明不足']);
  const ef = (await agent.get(`${svcUrl}/edit`)).forms().find((f) => f.has('contacts'));
  assert.match((await agent.submit(ef, { purpose: '停用與恢復測試：核對申辦人姓名' })).url, /\?done=edited$/);
  await stack.issoctl(['application', 'approve', clientId]);
  const csrfOf = async (a, url) => (await a.get(url)).forms().find((f) => f.has('csrf')).fields().find(([n]) => n === 'csrf')[1];
  const agencyPost = async (fields) => agent.request(svcUrl, { method: 'POST', form: { csrf: await csrfOf(agent, svcUrl), ...fields } });
  const revealed = await agencyPost({ action: 'reveal' });
  const secret = /id="client-secret">([A-Za-z0-9_-]{43})</.exec(revealed.text)?.[1];
  assert.ok(secret, 'the secret is shown once');
  const cfg = await rp(clientId, secret);
  await login(cfg, 'openid profile');
  const status = async () => (await stack.issoctl(['client', 'show', clientId])).status;

  // The agency suspends (an incident on its side): logins are refused; it resumes from its page.
  const sus = await agencyPost({ action: 'suspend' });
  assert.equal(sus.status, 303);
  assert.equal(await status(), 'suspended');
  assert.equal((await stack.issoctl(['client', 'show', clientId])).settings.application.suspended_by, 'agency');
  await assert.rejects(login(cfg, 'openid profile'), 'no logins while suspended');
  const s = await browserAs(agent);
  try {
    await s.page.goto(svcUrl);
    assert.equal(await s.page.locator('#state').innerText(), msg('agency.state_suspended'));
    assert.equal(await s.page.locator('#city-suspension').count(), 0);
    await checked(s.page, 'the service suspended by the agency');
    // Keyboard only: Tab to the resume button, Enter.
    await tabTo(s.page, (el) => el.tag === 'button' && el.value === 'resume', 'the resume button');
    await s.page.keyboard.press('Enter');
    await s.page.waitForURL(/\?done=resumed$/);
    assert.equal(await s.page.locator('#state').innerText(), msg('agency.state_approved'));
    assert.match(await s.page.locator('[role=status]').first().innerText(), new RegExp(msg('agency.resumed')));
    await checked(s.page, 'the service resumed');
  } finally {
    await s.context.close();
  }
  assert.equal(await status(), 'approved');
  await login(cfg, 'openid profile'); // works again at once
  const susEv = (await events('client_suspended')).filter((d) => d.client_id === clientId);
  assert.deepEqual(susEv.map((d) => [d.by, d.suspended_by]), [[staff.uuid, 'agency']]);
  let resEv = (await events('client_resumed')).filter((d) => d.client_id === clientId);
  assert.deepEqual(resEv.map((d) => [d.by, d.suspended_by]), [[staff.uuid, 'agency']]);
  // Resume only what is suspended.
  assert.equal((await agencyPost({ action: 'resume' })).status, 400);

  // The city suspends from the review page, with a reason (required).
  const adminAgent = new HttpAgent();
  const adminLanded = await cardLogin(adminAgent, `/admin/applications/${clientId}`, CARD_ADMIN);
  assert.equal(new URL(adminLanded.url).pathname, `/admin/applications/${clientId}`);
  const a = await browserAs(adminAgent);
  try {
    await a.page.goto(reviewUrl);
    // The reviewer sees the earlier decisions, newest first, with the refusal's reason.
    const rows = a.page.locator('#history > li');
    assert.deepEqual(await rows.locator('h3').evaluateAll((hs) => hs.map((h) => h.textContent.replace(/^\S+ \S+ /, ''))), [
      msg('agency.history_resumed'), msg('agency.history_suspended'), msg('agency.history_approved'),
      msg('agency.history_edited'), msg('agency.history_refused'), msg('agency.history_applied'),
    ]);
    const times = await rows.locator('time').evaluateAll((ts) => ts.map((t) => t.getAttribute('datetime')));
    assert.ok(times.every((t) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+08:00$/.test(t)), times.join());
    assert.deepEqual([...times].sort().reverse(), times, 'newest first');
    assert.match(await rows.nth(4).innerText(), /蒐集目的說明不足/);
    assert.match(await rows.nth(4).innerText(), new RegExp(msg('agency.by_city')));
    assert.match(await rows.nth(0).innerText(), new RegExp(msg('agency.by_agency')));
    const text = await a.page.locator('main').innerText();
    assert.ok(!text.includes(staff.uuid) && !text.includes(sc.national_id), 'no person on the history');
    await checked(a.page, 'the review page with its history');
    await a.page.goto(`${reviewUrl}?lang=en`);
    assert.equal(await a.page.locator('#history-title').innerText(), MSG_EN['agency.history']);
    assert.match(await rows.nth(4).innerText(), new RegExp(MSG_EN['agency.by_city']));
    await checked(a.page, 'the review page in English');
    await a.page.goto(`${reviewUrl}?lang=zh-TW`);
    await a.page.setViewportSize({ width: 360, height: 740 });
    await assertNoHorizontalScroll(a.page, 'the review page on a phone');
    await a.page.setViewportSize({ width: 1280, height: 900 });
    await a.page.getByRole('button', { name: msg('admin.suspend') }).click();
    await a.page.waitForSelector('#error-summary');
    assert.equal(await a.page.locator('#suspension').getAttribute('aria-invalid'), 'true');
    await checked(a.page, 'suspending without a reason');
    assert.equal(await status(), 'approved');
    await a.page.fill('#suspension', '資安事件調查中');
    await a.page.getByRole('button', { name: msg('admin.suspend') }).click();
    await a.page.waitForURL(/\?done=suspended$/);
    assert.equal(await a.page.getByRole('button', { name: msg('admin.resume') }).count(), 1);
    await checked(a.page, 'the review page of a suspended service');
    await a.page.goto(`${stack.issuer}/admin/applications`);
    assert.equal(await a.page.getByRole('link', { name: '恢復測試服務' }).count(), 1, 'listed as suspended');
    await checked(a.page, '/admin/applications with a suspended service');
  } finally {
    await a.context.close();
  }
  assert.equal(await status(), 'suspended');
  await assert.rejects(login(cfg, 'openid profile'));
  const cityEv = (await events('client_suspended')).filter((d) => d.client_id === clientId).at(-1);
  assert.deepEqual([cityEv.by, cityEv.suspended_by, cityEv.reason], [adminUuid, 'city', '資安事件調查中']);

  // The agency sees why, is offered no resume, and a forged resume changes nothing.
  const e = await browserAs(agent, { viewport: { width: 360, height: 740 } });
  try {
    await e.page.goto(`${svcUrl}?lang=en`);
    assert.equal(await e.page.locator('#history-title').innerText(), MSG_EN['agency.history']);
    await e.page.goto(`${svcUrl}?lang=zh-TW`);
    assert.equal(await e.page.getByRole('button', { name: msg('agency.resume') }).count(), 0);
    assert.equal(await e.page.locator('#suspension').innerText(), '資安事件調查中');
    const first = await e.page.locator('#history > li').first().innerText();
    assert.match(first, new RegExp(msg('agency.history_suspended')));
    assert.match(first, /資安事件調查中/);
    assert.match(await e.page.locator('#history').innerText(), /蒐集目的說明不足/, 'the agency reads the refusal\'s reason');
    assert.ok(!(await e.page.content()).includes(adminUuid), 'the reviewer is not named');
    await checked(e.page, 'the service suspended by the city');
    await assertNoHorizontalScroll(e.page, 'the service with its history on a phone');
  } finally {
    await e.context.close();
  }
  const forged = await agencyPost({ action: 'resume' });
  assert.equal(forged.status, 403);
  assert.match(forged.pageText(), new RegExp(msg('agency.resume_city').slice(0, 10)));
  assert.equal(await status(), 'suspended');
  assert.equal((await events('client_resumed')).filter((d) => d.client_id === clientId).length, 1);
  await assert.rejects(login(cfg, 'openid profile'));

  // The city resumes: logins work again at once.
  const resumed = await adminAgent.request(reviewUrl, { method: 'POST', form: { csrf: await csrfOf(adminAgent, reviewUrl), decision: 'resume' } });
  assert.equal(resumed.status, 303);
  assert.equal(await status(), 'approved');
  await login(cfg, 'openid profile');
  resEv = (await events('client_resumed')).filter((d) => d.client_id === clientId).at(-1);
  assert.deepEqual([resEv.by, resEv.suspended_by], [adminUuid, 'city']);

  // issoctl suspends for the city too; issoctl client approve resumes.
  const cs = await stack.issoctl(['client', 'suspend', clientId, '--reason', '停權測試']);
  assert.equal(cs.status, 'suspended');
  assert.equal(cs.settings.application.suspended_by, 'city');
  assert.equal((await agencyPost({ action: 'resume' })).status, 403);
  assert.equal(await status(), 'suspended');
  const ca = await stack.issoctl(['client', 'approve', clientId]);
  assert.equal(ca.status, 'approved');
  assert.equal(ca.settings.application.suspended_by, undefined);
  await login(cfg, 'openid profile');
  const last = (await stack.issoctl(['client', 'show', clientId])).settings.application.history.slice(-2);
  assert.deepEqual(last.map((h) => [h.event, h.by, h.side, h.reason]), [
    ['client_suspended', 'issoctl', 'city', '停權測試'], ['client_resumed', 'issoctl', 'city', undefined]]);
  assert.deepEqual((await events('client_resumed')).filter((d) => d.client_id === clientId).map((d) => d.by),
    [staff.uuid, adminUuid, 'issoctl']);
  // Every decision in the history is an audit event too.
  const all = (await audit()).filter((x) => {
    const d = typeof x.data === 'string' ? JSON.parse(x.data) : x.data;
    return d?.client_id === clientId;
  }).map((x) => x.event);
  for (const ev of ['client_applied', 'client_refused', 'client_edited', 'client_approved', 'client_suspended', 'client_resumed']) {
    assert.ok(all.includes(ev), `${ev} audited`);
  }
  assert.equal(all.filter((x) => x === 'client_suspended').length, 3);
  assert.equal(all.filter((x) => x === 'client_resumed').length, 3);
});

test('decisions: a refused application waits for its edit; the city takes over the agency\'s suspension; no decision by a member of the organisation; a pending suspension is never resumed into approval', { timeout: limit(240_000) }, async () => {
  const UBN_DECIDE = '50000000';
  const sc = cardOf(stack, CARD_STAFF2);
  const ac = cardOf(stack, CARD_ADMIN);
  // The staff member and the city administrator of the tests above (added here when those did not run).
  await stack.addUser({ account: 'resume.staff', password: 'Resume-staff-42', phone: '0912000604', name: sc.name, idNumber: sc.national_id }).catch(() => {});
  await stack.addUser({ account: 'web.admin', password: 'Web-admin-42', phone: '0912000602', name: ac.name, idNumber: ac.national_id }).catch(() => {});
  const adminUuid = (await stack.issoctl(['admin', 'grant', '--account', 'web.admin'])).uuid;
  await stack.issoctl(['org', 'add', '--ubn', UBN_DECIDE, '--name', '決定測試局']);
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN_DECIDE, '--account', 'resume.staff', '--role', 'admin']);

  const agent = new HttpAgent();
  const landed = await cardLogin(agent, '/agency/apply', CARD_STAFF2);
  const form = landed.res.forms().find((f) => f.has('notice'));
  const applied = await agent.submit(form, {
    ubn: UBN_DECIDE, name: '決定測試服務', purpose: '審核決定測試', notice: '告知事項', contacts: '承辦人', redirect_uris: RP,
    need_profile: 'required', reason_profile: '核對姓名', auth_method: 'client_secret_basic',
  });
  assert.match(applied.url, /\/agency\/service\/[A-Za-z0-9_-]+\?done=applied$/);
  const clientId = new URL(applied.url).pathname.split('/').pop();
  const svcUrl = `${stack.issuer}/agency/service/${clientId}`;
  const reviewUrl = `${stack.issuer}/admin/applications/${clientId}`;
  const show = async () => stack.issoctl(['client', 'show', clientId]);
  const csrfOf = async (a, url) => (await a.get(url)).forms().find((f) => f.has('csrf')).fields().find(([n]) => n === 'csrf')[1];
  const agencyPost = async (fields) => agent.request(svcUrl, { method: 'POST', form: { csrf: await csrfOf(agent, svcUrl), ...fields } });
  const decided = async () => (await audit()).filter((x) => {
    const d = typeof x.data === 'string' ? JSON.parse(x.data) : x.data;
    return d?.client_id === clientId;
  }).length;

  // A city administrator who is a member of the organisation (any role,
  // even none) neither reviews nor decides: 403, nothing changes.
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN_DECIDE, '--account', 'web.admin']);
  const adminAgent = new HttpAgent();
  const adminLanded = await cardLogin(adminAgent, `/admin/applications/${clientId}`, CARD_ADMIN);
  assert.equal(adminLanded.res.status, 403);
  assert.match(adminLanded.res.pageText(), new RegExp(msg('admin.own_org').slice(0, 12)));
  // The session's CSRF token, from a page the administrator may see.
  const other = await stack.issoctl(['client', 'add', '--name', '他機關服務', '--redirect-uri', RP, '--scope', 'openid']);
  const adminCsrf = await csrfOf(adminAgent, `${stack.issuer}/admin/applications/${other.client_id}`);
  const adminPost = (fields) => adminAgent.request(reviewUrl, { method: 'POST', form: { csrf: adminCsrf, ...fields } });
  let n = await decided();
  assert.equal((await adminPost({ decision: 'approve', keep_profile: '1' })).status, 403);
  assert.equal((await adminPost({ decision: 'refuse', reason: '同機關' })).status, 403);
  assert.equal((await show()).status, 'pending');
  assert.equal(await decided(), n, 'nothing audited');
  await stack.issoctl(['org', 'member', 'remove', UBN_DECIDE, '--account', 'web.admin']);

  // Refused: no decision is offered or taken until the agency edits it.
  assert.equal((await adminPost({ decision: 'refuse', reason: '告知事項不足' })).status, 303);
  const refusedPage = await adminAgent.get(reviewUrl);
  assert.equal(refusedPage.status, 200);
  assert.ok(!/name="decision" value="(approve|refuse)"/.test(refusedPage.text), 'no decision offered on a refused application');
  n = await decided();
  let r = await adminPost({ decision: 'approve', keep_profile: '1' });
  assert.equal(r.status, 409);
  assert.equal((await adminPost({ decision: 'refuse', reason: '再次拒絕' })).status, 409);
  r = await stack.issoctl(['application', 'approve', clientId], { allowFailure: true });
  assert.equal(r.code, 1);
  assert.match(r.json.error, /not waiting/);
  r = await stack.issoctl(['client', 'approve', clientId], { allowFailure: true });
  assert.equal(r.code, 1);
  assert.match(r.json.error, /refused/);
  let shown = await show();
  assert.deepEqual([shown.status, shown.application_state ?? shown.settings.application.state], ['pending', 'refused']);
  assert.equal(await decided(), n, 'nothing audited');
  // The agency's edit sends it back to review.
  const ef = (await agent.get(`${svcUrl}/edit`)).forms().find((f) => f.has('contacts'));
  assert.match((await agent.submit(ef, { purpose: '審核決定測試：核對姓名' })).url, /\?done=edited$/);
  assert.match((await adminAgent.get(reviewUrl)).text, /name="decision" value="approve"/);
  assert.equal((await adminPost({ decision: 'approve', keep_profile: '1' })).status, 303);
  assert.equal((await show()).status, 'approved');

  // The agency suspends; the city takes the suspension over from the
  // review page (offered), with its reason: the agency cannot lift it now.
  assert.equal((await agencyPost({ action: 'suspend' })).status, 303);
  const both = await adminAgent.get(reviewUrl);
  assert.match(both.text, /name="decision" value="suspend"/);
  assert.match(both.text, /name="decision" value="resume"/);
  if (!NO_BROWSER) {
    const a = await browserAs(adminAgent);
    try {
      await a.page.goto(reviewUrl);
      await checked(a.page, 'the review page of a service the agency suspended');
    } finally {
      await a.context.close();
    }
  }
  assert.equal((await adminPost({ decision: 'suspend', suspension: '市府接手調查' })).status, 303);
  shown = await show();
  assert.equal(shown.status, 'suspended');
  assert.deepEqual([shown.settings.application.suspended_by, shown.settings.application.suspension], ['city', '市府接手調查']);
  const h = shown.settings.application.history.at(-1);
  assert.deepEqual([h.event, h.side, h.by, h.reason], ['client_suspended', 'city', adminUuid, '市府接手調查']);
  assert.equal((await agencyPost({ action: 'resume' })).status, 403);
  assert.equal((await show()).status, 'suspended');
  assert.ok(!/name="decision" value="suspend"/.test((await adminAgent.get(reviewUrl)).text), 'the city\'s own suspension is not offered again');
  assert.equal((await adminPost({ decision: 'suspend', suspension: '再次' })).status, 409);

  // A member of the organisation does not lift the city's suspension either.
  await stack.issoctl(['org', 'member', 'add', '--ubn', UBN_DECIDE, '--account', 'web.admin']);
  n = await decided();
  assert.equal((await adminPost({ decision: 'resume' })).status, 403);
  assert.equal((await show()).status, 'suspended');
  assert.equal(await decided(), n, 'nothing audited');
  await stack.issoctl(['org', 'member', 'remove', UBN_DECIDE, '--account', 'web.admin']);
  assert.equal((await adminPost({ decision: 'resume' })).status, 303);
  assert.equal((await show()).status, 'approved');

  // issoctl takes over the agency's suspension too; suspending the
  // city's own again changes nothing, a new reason is refused.
  assert.equal((await agencyPost({ action: 'suspend' })).status, 303);
  const cs = await stack.issoctl(['client', 'suspend', clientId, '--reason', '命令列接手']);
  assert.deepEqual([cs.status, cs.settings.application.suspended_by, cs.settings.application.suspension], ['suspended', 'city', '命令列接手']);
  assert.equal((await agencyPost({ action: 'resume' })).status, 403);
  n = await decided();
  const again = await stack.issoctl(['client', 'suspend', clientId]);
  assert.equal(again.status, 'suspended');
  assert.equal(await decided(), n, 'a suspension that changes nothing is not audited');
  r = await stack.issoctl(['client', 'suspend', clientId, '--reason', '另一理由'], { allowFailure: true });
  assert.equal(r.code, 1);
  assert.equal((await show()).settings.application.suspension, '命令列接手');
  assert.equal((await stack.issoctl(['client', 'approve', clientId])).status, 'approved');

  // Suspended while pending, never approved: client approve does not
  // resume it into approval; a review does.
  const pend = await stack.issoctl(['client', 'add', '--name', '待審停用服務', '--redirect-uri', RP, '--scope', 'openid']);
  assert.equal((await stack.issoctl(['client', 'suspend', pend.client_id])).status, 'suspended');
  r = await stack.issoctl(['client', 'approve', pend.client_id], { allowFailure: true });
  assert.notEqual(r.code, 0);
  assert.match(r.json.error, /never approved.*application approve/);
  assert.equal((await stack.issoctl(['client', 'show', pend.client_id])).status, 'suspended');
  await assert.rejects(login(await rp(pend.client_id, pend.client_secret), 'openid'));
  assert.equal((await stack.issoctl(['application', 'approve', pend.client_id])).status, 'approved');
});
