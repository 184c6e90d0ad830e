// 歸戶 from /account: a TaipeiPass member who registered without a national
// ID binds the NHI card (the test cards' keys answer the card component's
// part, as in nhi-card.test.mjs; the NHI service is isso-sim): the card's
// proven ID links the member's person, the member becomes gold, and a later
// card login through an agency (openid-client) lands on the same uuid —
// the same `sub` as the member's password login. The MOICA card and the
// mobile natural-person certificate (TW FidO through isso-sim, approved on
// its phone) too (the certificate's name replaces the typed one). The merge: a citizen who
// logged in by card first (a second uuid, with a consent) binds the card
// to the member account: the consent moves (the agency asks nothing
// again), the card's uuid is gone, audit `persons_merged`, and the agency
// that held the card person's consent receives a signed persons-merged
// Security Event Token at its events_uri. The refusals: an ID bound to
// another member, a member bound to another ID, no CSRF token, a session
// that ended before the card login finished, a login that proves no ID.
// In headless Chromium: the binding with the card read by the real
// isso-cardagent (SoftHSM2 test card), then a card login at an agency in
// another browser landing on the same uuid and sub; the TaipeiPass app
// devices on /account with remove; axe-core on the pages, a phone in
// English.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import * as jose from 'jose';
import {
  startStack, startTestServer, HttpAgent, REPO, limit, sameEndpoint, sleep, decodeEntities,
} from './lib/harness.mjs';
import {
  NO_BROWSER, launchBrowser, newPage, axeCheck, Screenshots, assertNoHorizontalScroll,
} from './lib/browser.mjs';
import * as tpapp from './lib/tpapp.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const SCOPE = 'openid uuid profile';
const T = { timeout: limit(60_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));

function msg(key) {
  assert.ok(typeof MSG[key] === 'string', `no message ${key} in locales/zh-TW.json`);
  return MSG[key];
}

const EVENT = 'https://isso.gov.taipei/events/persons-merged';

let stack;
let cfg;
let browser;
const shots = new Screenshots();
let receiver; // the agency's events_uri (RFC 8935 push)
const received = []; // {type, body}
const secrets = new Set(); // IDs, passwords, codes: never in issod's log

const isRp = (next) => sameEndpoint(next, RP);
const pathOf = (url) => new URL(url).pathname;

function card(id) {
  const c = stack.cards.nhi.find((x) => x.national_id === id);
  assert.ok(c, `${id} has an NHI test card`);
  secrets.add(c.national_id);
  secrets.add(c.registration_password);
  const key = fs.readFileSync(path.join(stack.pki, c.cert.replace(/\.crt$/, '.key')), 'utf8');
  const cert = fs.readFileSync(path.join(stack.pki, c.cert), 'utf8');
  return { ...c, key, certB64: new crypto.X509Certificate(cert).raw.toString('base64') };
}

/** The card component's answers (docs/cardagent.md). */
function cardAnswers(c, random, password) {
  const service = fs.readFileSync(path.join(stack.pki, stack.cards.nhi_service_cert), 'utf8');
  return {
    signature: crypto.sign('sha256', Buffer.from(random, 'utf8'), c.key).toString('base64'),
    cert: c.certB64,
    blob: crypto.publicEncrypt({ key: service, padding: crypto.constants.RSA_PKCS1_OAEP_PADDING, oaepHash: 'sha256' },
      Buffer.from(`NHI-PWD\n${random}\n${password}`, 'utf8')).toString('base64'),
    signed_card_no: c.card_no,
  };
}

let phoneSeq = 0;
function newPhone() {
  phoneSeq += 1;
  const p = `0938${String(500000 + phoneSeq * 191).padStart(6, '0')}`;
  secrets.add(p);
  return p;
}

let userSeq = 0;
async function newMember({ name = '自填的名字' } = {}) {
  userSeq += 1;
  const u = await stack.addUser({ account: `bind.member${userSeq}`, password: `Tp-Bind-Member-${userSeq}7`, phone: newPhone(), ...(name ? { name } : {}) });
  secrets.add(u.password);
  return u;
}

before(async () => {
  stack = await startStack({ label: 'bind', cards: true });
  receiver = await startTestServer((req, body, res) => {
    received.push({ type: req.headers['content-type'], body: body.toString('utf8') });
    res.statusCode = 202;
    res.end();
  });
  const c = await stack.registerClient({
    name: '臺北市歸戶測試機關', purpose: '歸戶整合測試', redirectUris: [RP], scope: SCOPE, eventsUri: `${receiver.url}/events`,
  });
  cfg = await client.discovery(new URL(stack.issuer), c.client_id, {}, client.ClientSecretBasic(c.client_secret),
    { execute: [client.allowInsecureRequests], timeout: 5 });
  if (!NO_BROWSER) browser = await launchBrowser();
}, { timeout: limit(120_000) });

after(async () => {
  await browser?.close().catch(() => {});
  shots.report();
  await receiver?.close();
  if (stack) {
    const log = stack.issod.stderr;
    await stack.stop();
    for (const s of secrets) assert.ok(!log.includes(s), 'a national ID, password, phone or code reached the log');
  }
});

// ---------------------------------------------------------------- helpers

/** Logs member u in to /account with the TaipeiPass password: the page. */
async function accountLogin(agent, u) {
  const choice = await agent.followUntil(stack.url('/account'));
  assert.equal(pathOf(choice.url), '/login');
  const link = choice.res.links().find((l) => pathOf(l.href) === '/login/taipeipass');
  const page = await agent.get(link.href);
  const f = page.forms().find((x) => x.has('password'));
  const r = await agent.submit(f, { account: u.account, password: u.password });
  assert.equal(pathOf(r.url), '/account', `after the password: ${r.res.pageText().slice(0, 300)}`);
  assert.equal(r.res.status, 200);
  return r.res;
}

/** The bind form of an /account page and its NHI card button. */
function bindForm(res) {
  const f = res.forms().find((x) => pathOf(x.action) === '/account/bind');
  return f ? { f, button: f.buttons.find((b) => b.value === 'nhi-card') } : null;
}

/** The NHI card login at its first page url, through the phone step;
 * stop: where to stop following (the agency). */
async function nhiLogin(agent, url, c, stop = () => false) {
  const first = await agent.get(url);
  assert.equal(first.status, 200, `the card step: ${first.pageText().slice(0, 300)}`);
  const cf = first.forms().find((x) => x.has('card_no'));
  const pw = await agent.submit(cf, { id_number: c.national_id, card_no: c.card_no });
  assert.equal(pathOf(pw.url), '/login/nhi-card/password', `after the card: ${pw.res.pageText().slice(0, 300)}`);
  const pf = pw.res.forms().find((x) => x.has('random'));
  const random = pf.controls.find((x) => x.name === 'random').value;
  const r = await agent.submit(pf, cardAnswers(c, random, c.registration_password));
  assert.equal(pathOf(r.url), '/login/nhi-card/phone', `after the password: ${r.res.pageText().slice(0, 300)}`);
  const phone = newPhone();
  const page = await agent.get(r.url);
  const f = page.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(f, { phone }, f.buttons.find((b) => b.value === 'send'));
  const vf = sent.res.forms().find((x) => x.has('code'));
  const sms = await stack.readLastSms(phone);
  assert.ok(sms?.code, 'an SMS code');
  secrets.add(sms.code);
  return agent.submit(vf, { code: sms.code }, vf.buttons.find((b) => b.value === 'verify'), stop);
}

/** Binds card c to the member logged in on agent (page: its /account). */
async function bindCard(agent, page, c) {
  const b = bindForm(page);
  assert.ok(b && b.button, '/account offers to bind the NHI card');
  const start = await agent.submit(b.f, {}, b.button, () => true);
  assert.equal(start.res.status, 303);
  assert.equal(pathOf(start.url), '/login/nhi-card');
  return nhiLogin(agent, start.url, c);
}

/** An agency login by NHI card (fresh browser): {claims, consentAsked}. */
async function agencyCardLogin(c, scope = SCOPE) {
  const agent = new HttpAgent();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const choice = await agent.followUntil(url.href, isRp);
  const link = choice.res.links().find((l) => pathOf(l.href) === '/login/nhi-card');
  let r = await nhiLogin(agent, link.href, c, isRp);
  const consentAsked = !r.stopped;
  if (!r.stopped) {
    const f = r.res.forms().find((x) => x.buttons.some((b) => b.name === 'decision'));
    assert.ok(f, `the consent page: ${r.res.pageText().slice(0, 300)}`);
    r = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'allow'), isRp);
  }
  assert.ok(r.stopped, 'back at the agency');
  const tokens = await client.authorizationCodeGrant(cfg, new URL(r.url), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
  return { claims: { ...tokens.claims(), uuid: info.uuid }, consentAsked };
}

/** An agency login by the member's TaipeiPass password: the claims. */
async function agencyPasswordLogin(u) {
  const agent = new HttpAgent();
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: SCOPE, state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const cb = await agent.loginViaPages({ authorizeUrl: url.href, account: u.account, password: u.password });
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
  return { ...tokens.claims(), uuid: info.uuid };
}

async function audit() {
  return stack.issoctl(['audit', 'export']);
}

// ---------------------------------------------------------------- binding

test('a member binds the NHI card from /account: gold, and a later card login lands on the same uuid', T, async () => {
  const u = await newMember();
  const c = card('A123456789');
  const agent = new HttpAgent();
  const page = await accountLogin(agent, u);
  assert.ok(page.pageText().includes(msg('account.bind_title')), 'the bind section');
  assert.ok(!page.pageText().includes(msg('account.gold')), 'not gold yet');

  const done = await bindCard(agent, page, c);
  assert.equal(pathOf(done.url), '/account', `after the card: ${done.res.pageText().slice(0, 300)}`);
  assert.equal(done.res.status, 200);
  assert.ok(done.res.pageText().includes(msg('account.bound')), 'the notice');
  const text = done.res.pageText();
  assert.ok(text.includes(msg('account.gold')), 'gold now');
  assert.ok(text.includes(msg('account.id_linked')), 'the ID is listed as linked');
  assert.ok(!text.includes(msg('account.bind_title')), 'nothing more to bind');
  assert.ok(!done.res.text.includes(c.national_id), 'the whole ID is never on the page');
  // the same browser session goes on: it is still the member's
  const again = await agent.get(stack.url('/account'));
  assert.equal(again.status, 200);
  const bound = (await audit()).filter((e) => e.event === 'person_bound' && e.data.uuid === u.uuid);
  assert.equal(bound.length, 1);
  assert.equal(bound[0].data.method, 'nhi-card');
  // the card's own record made by the binding login is absorbed quietly
  assert.ok(!(await audit()).some((e) => e.event === 'persons_merged' && e.data.kept === u.uuid));
  assert.equal(received.length, 0, 'no agency is told of it');

  // A card login through an agency is the member: same sub, same uuid.
  const byCard = await agencyCardLogin(c);
  assert.equal(byCard.claims.uuid, u.uuid, 'the card login lands on the member\'s uuid');
  const byPassword = await agencyPasswordLogin(u);
  assert.equal(byPassword.sub, byCard.claims.sub, 'the same sub for the same agency');
  assert.equal(byPassword.uuid, u.uuid);
});

test('merge: a card login first made a second uuid with a consent; binding merges it into the member', T, async () => {
  const c = card('A223456781');
  // 'openid uuid': data both persons have, so the moved consent covers
  // the member as it covered the card's person
  const first = await agencyCardLogin(c, 'openid uuid');
  assert.ok(first.consentAsked, 'the first card login asks consent');
  const cardUuid = first.claims.uuid;
  const u = await newMember();
  assert.notEqual(cardUuid, u.uuid);

  const agent = new HttpAgent();
  const page = await accountLogin(agent, u);
  assert.ok(!page.pageText().includes('臺北市歸戶測試機關'), 'no consent on the member yet');
  const done = await bindCard(agent, page, c);
  assert.ok(done.res.pageText().includes(msg('account.bound')), `bound: ${done.res.pageText().slice(0, 300)}`);
  assert.ok(done.res.pageText().includes('臺北市歸戶測試機關'), 'the card\'s consent moved to the member');

  const merged = (await audit()).filter((e) => e.event === 'persons_merged');
  assert.equal(merged.length, 1);
  assert.equal(merged[0].data.kept, u.uuid);
  assert.equal(merged[0].data.merged, cardUuid);
  assert.deepEqual(merged[0].data.clients, [cfg.clientMetadata().client_id]);

  // the card now lands on the member, and the moved consent holds
  const later = await agencyCardLogin(c, 'openid uuid');
  assert.equal(later.claims.uuid, u.uuid);
  assert.ok(!later.consentAsked, 'the consent moved with the merge: nothing asked again');

  // The agency that held the card person's consent is told, by a signed
  // Security Event Token: the sub it knew is now the member's sub.
  for (let i = 0; i < 100 && received.length === 0; i++) await sleep(100);
  assert.equal(received.length, 1, 'one event to the one agency concerned');
  assert.equal(received[0].type, 'application/secevent+jwt');
  const jwks = jose.createLocalJWKSet(await (await fetch(`${stack.issuer}/jwks`)).json());
  const { payload, protectedHeader } = await jose.jwtVerify(received[0].body, jwks, {
    issuer: stack.issuer, audience: cfg.clientMetadata().client_id, typ: 'secevent+jwt',
  });
  assert.equal(protectedHeader.alg, 'ES256');
  assert.equal(typeof payload.jti, 'string');
  assert.equal(typeof payload.iat, 'number');
  assert.deepEqual(Object.keys(payload.events), [EVENT]);
  assert.equal(payload.events[EVENT].merged_sub, first.claims.sub, 'the sub the agency knew');
  assert.equal(payload.events[EVENT].sub, later.claims.sub, 'the sub it sees from now on');
  assert.notEqual(first.claims.sub, later.claims.sub);
});

test('a member binds the MOICA card: the certificate\'s name replaces the typed one, gold', T, async () => {
  const sn = 'TP03000000000008'; // 劉怡君 A224680138
  const c = stack.cards.moica.find((x) => x.card_sn === sn);
  assert.ok(c, `card ${sn} in cards.json`);
  secrets.add(c.national_id);
  const u = await newMember();
  const agent = new HttpAgent();
  const page = await accountLogin(agent, u);
  assert.ok(page.pageText().includes('自填的名字'));
  const f = page.forms().find((x) => pathOf(x.action) === '/account/bind');
  const start = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'moica-card'), () => true);
  assert.equal(pathOf(start.url), '/login/moica-card');
  const cardPage = await agent.get(start.url);
  const form = cardPage.forms().find((x) => x.has('challenge'));
  assert.ok(form, `the card form: ${cardPage.pageText().slice(0, 300)}`);
  const tbs = decodeEntities(/data-tbs="([^"]*)"/.exec(cardPage.text)?.[1] ?? '');
  // PKCS#1 v1.5 SHA-256 by the card's key file (test PKI), as the card would
  const key = fs.readFileSync(path.join(stack.pki, 'moica', `${sn}.key`));
  const pem = fs.readFileSync(path.join(stack.pki, 'moica', `${sn}.crt`), 'utf8');
  const signed = {
    sig_type: 'PKCS1', signature: crypto.sign('sha256', Buffer.from(tbs, 'utf8'), key).toString('base64'),
    certb64: pem.replace(/-----[^-]+-----|\s/g, ''), card_sn: sn,
  };
  const r = await agent.submit(form, { id_number: c.national_id, ...signed }, null, (next) => pathOf(next) === '/login/moica-card/phone');
  assert.ok(r.stopped, `on to the phone step: ${r.res.pageText().slice(0, 300)}`);
  const phone = newPhone();
  const pp = await agent.get(r.url);
  const pf = pp.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(pf, { phone }, pf.buttons.find((b) => b.value === 'send'));
  const cf = sent.res.forms().find((x) => x.has('code'));
  const sms = await stack.readLastSms(phone);
  secrets.add(sms.code);
  const done = await agent.submit(cf, { code: sms.code }, cf.buttons.find((b) => b.value === 'verify'));
  assert.equal(pathOf(done.url), '/account', done.res.pageText().slice(0, 300));
  const text = done.res.pageText();
  assert.ok(text.includes(msg('account.bound')));
  assert.ok(text.includes(msg('account.gold')));
  assert.ok(text.includes(c.name), 'the name the certificate proved');
  assert.ok(!text.includes('自填的名字'), 'in place of the typed one');
  const bound = (await audit()).filter((e) => e.event === 'person_bound' && e.data.uuid === u.uuid);
  assert.equal(bound[0]?.data.method, 'moica-card');
});

test('a member binds the mobile natural-person certificate: the certificate is checked, its name kept, gold', T, async () => {
  const id = 'E222223335'; // 楊佩珊, enrolled in isso-sim's TW FidO
  secrets.add(id);
  const name = JSON.parse(fs.readFileSync(path.join(REPO, 'sim', 'identities.json'), 'utf8'))
    .citizens.find((x) => x.national_id === id).name;
  const u = await newMember();
  const agent = new HttpAgent();
  const page = await accountLogin(agent, u);
  const f = page.forms().find((x) => pathOf(x.action) === '/account/bind');
  const start = await agent.submit(f, {}, f.buttons.find((b) => b.value === 'moica-mobile'), () => true);
  assert.equal(pathOf(start.url), '/login/moica-mobile');
  const t = new URL(start.url).searchParams.get('t');
  assert.ok(t, 'the binding login has its transaction');
  const notice = await agent.get(start.url);
  const nf = notice.forms().find((x) => x.has('agree'));
  assert.ok(nf, `the notice: ${notice.pageText().slice(0, 300)}`);
  const idPage = await agent.submit(nf, { agree: '1' });
  assert.equal(pathOf(idPage.url), '/login/moica-mobile/id');
  const qr = await agent.submit(idPage.res.forms().find((x) => x.has('id_number')), { id_number: id });
  assert.equal(pathOf(qr.url), '/login/moica-mobile/qr', qr.res.pageText().slice(0, 300));
  // isso-sim's phone approves the newest ticket for the ID
  const list = await (await fetch(`${stack.simUrl}/phone/mobilecert/pending?id_num=${id}`)).json();
  assert.ok(list.length >= 1, 'a pending ticket');
  const ok = await fetch(`${stack.simUrl}/phone/mobilecert/approve?${new URLSearchParams({ ticket: list[0].sp_ticket })}`, { method: 'POST' });
  assert.equal(ok.status, 200);
  let st;
  for (let i = 0; i < 15; i++) {
    const r = await agent.get(stack.url(`/login/moica-mobile/status?t=${t}`), { headers: { accept: 'application/json' } });
    st = r.json();
    if (st.state !== 'pending') break;
    await sleep(1000);
  }
  assert.equal(st.state, 'done', JSON.stringify(st));
  const phone = newPhone();
  const pp = await agent.get(stack.url(st.next));
  const pf = pp.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(pf, { phone }, pf.buttons.find((b) => b.value === 'send'));
  const cf = sent.res.forms().find((x) => x.has('code'));
  const sms = await stack.readLastSms(phone);
  secrets.add(sms.code);
  const done = await agent.submit(cf, { code: sms.code }, cf.buttons.find((b) => b.value === 'verify'));
  assert.equal(pathOf(done.url), '/account', done.res.pageText().slice(0, 300));
  const text = done.res.pageText();
  assert.ok(text.includes(msg('account.bound')), 'the notice');
  assert.ok(text.includes(msg('account.gold')), 'gold now');
  assert.ok(text.includes(name), 'the name in the certificate');
  assert.ok(!text.includes('自填的名字'), 'in place of the typed one');
  assert.ok(!done.res.text.includes(id), 'the whole ID is never on the page');
  const bound = (await audit()).filter((e) => e.event === 'person_bound' && e.data.uuid === u.uuid);
  assert.equal(bound.length, 1);
  assert.equal(bound[0].data.method, 'moica-mobile');
});

// ---------------------------------------------------------------- refusals

test('refused: an ID bound to another member, a member bound to another ID; nothing changes', T, async () => {
  // the card of the previous test's member
  const taken = card('A223456781');
  const u = await newMember();
  const agent = new HttpAgent();
  const page = await accountLogin(agent, u);
  const r = await bindCard(agent, page, taken);
  assert.equal(r.res.status, 409);
  assert.ok(r.res.pageText().includes(msg('bind.taken')), r.res.pageText().slice(0, 300));
  const after = await agent.get(stack.url('/account'));
  assert.ok(!after.pageText().includes(msg('account.gold')), 'still not gold');
  assert.ok(after.pageText().includes(msg('account.bind_title')), 'may still bind its own card');

  // the same member binds its own card, then tries another ID: the bind
  // form is gone, and a forged post is refused after the card login
  const own = card('A113579248');
  const ok = await bindCard(agent, after, own);
  assert.ok(ok.res.pageText().includes(msg('account.bound')));
  const other = card('F228033121');
  const forged = await agent.submit(bindForm(page).f, {}, bindForm(page).button, () => true);
  assert.equal(pathOf(forged.url), '/login/nhi-card');
  const r2 = await nhiLogin(agent, forged.url, other);
  assert.equal(r2.res.status, 409);
  assert.ok(r2.res.pageText().includes(msg('bind.other_id')), r2.res.pageText().slice(0, 300));
  const byOwn = await agencyCardLogin(own);
  assert.equal(byOwn.claims.uuid, u.uuid, 'the member keeps its own ID');
  const byOther = await agencyCardLogin(other);
  assert.notEqual(byOther.claims.uuid, u.uuid, 'the other ID is not the member');
});

test('refused: no CSRF token, a session ended before the card login finished, a login that proves no ID', T, async () => {
  const u = await newMember();
  const agent = new HttpAgent();
  const page = await accountLogin(agent, u);
  const noCsrf = await agent.postForm(stack.url('/account/bind'), { method: 'nhi-card' });
  assert.equal(noCsrf.status, 403);
  const bad = await agent.submit(bindForm(page).f, { method: 'taipeipass' }, null, () => true);
  assert.equal(bad.res.status, 400, 'only a method that proves the ID');

  // the session ends between the start and the card login
  const c = card('A220000125');
  const start = await agent.submit(bindForm(page).f, {}, bindForm(page).button, () => true);
  const lo = page.forms().find((x) => pathOf(x.action) === '/account/logout-all');
  await agent.submit(lo, {});
  await sleep(1100); // a login in the same second as "log out everywhere" is void
  const r = await nhiLogin(agent, start.url, c);
  assert.equal(r.res.status, 403);
  assert.ok(r.res.pageText().includes(msg('bind.session_lost')), r.res.pageText().slice(0, 300));

  // the bind transaction finished by a password login links nothing
  const agent2 = new HttpAgent();
  const page2 = await accountLogin(agent2, u);
  const start2 = await agent2.submit(bindForm(page2).f, {}, bindForm(page2).button, () => true);
  const t = new URL(start2.url).searchParams.get('t');
  const choice = await agent2.get(stack.url(`/login?t=${t}`));
  assert.ok(!choice.links().some((l) => pathOf(l.href) === '/login/taipeipass'), 'the choice offers only methods that prove the ID');
  // a password reaches no further than the level binding asks (the
  // TaipeiPass app, which reaches it, proves no ID: refused at the end)
  const tp = await agent2.get(stack.url(`/login/taipeipass?t=${t}`));
  const f = tp.forms().find((x) => x.has('password'));
  if (f) {
    const r2 = await agent2.submit(f, { account: u.account, password: u.password });
    assert.equal(r2.res.status, 403, r2.res.pageText().slice(0, 300));
  } else {
    assert.equal(tp.status, 403, tp.pageText().slice(0, 300));
  }
  const acct = await agent2.get(stack.url('/account'));
  assert.ok(!acct.pageText().includes(msg('account.gold')), 'nothing was bound');
  assert.ok(!(await audit()).some((e) => e.event === 'person_bound' && e.data.uuid === u.uuid));
});

test('refused: a person who is no TaipeiPass member (logged in by card) cannot bind', T, async () => {
  const c = card('A109876547');
  const agent = new HttpAgent();
  const choice = await agent.followUntil(stack.url('/account'));
  const link = choice.res.links().find((l) => pathOf(l.href) === '/login/nhi-card');
  const r = await nhiLogin(agent, link.href, c);
  assert.equal(pathOf(r.url), '/account');
  assert.ok(!r.res.pageText().includes(msg('account.bind_title')), 'no bind offer without a member account');
  const csrf = r.res.forms().find((x) => pathOf(x.action) === '/account/logout-all').fields().find(([k]) => k === 'csrf')[1];
  const forged = await agent.postForm(stack.url('/account/bind'), { csrf, method: 'moica-card' });
  assert.equal(forged.status, 403);
  assert.ok(forged.pageText().includes(msg('bind.not_member')));
});

// ---------------------------------------------------------------- in the browser

/** Logs member u in to /account in the browser page (any language). */
async function browserLogin(page, u) {
  await page.goto(stack.url('/account'));
  await page.locator('a[href*="/login/taipeipass"]').first().click();
  await page.locator('[name="account"]').fill(u.account);
  await page.locator('[name="password"]').fill(u.password);
  await page.locator('form:has([name="password"]) button[type="submit"]').first().click();
  await page.waitForURL((x) => x.pathname === '/account');
}

test('in Chromium: the bind choice and the app devices on /account, a device removed (zh-TW desktop, en phone)', { ...T, skip: NO_BROWSER }, async (t) => {
  const u = await newMember();
  const dev1 = await tpapp.enrolled(stack, u, 'Pixel 8');
  const dev2 = await tpapp.enrolled(stack, u, 'iPhone 15');
  const { context, page } = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
  try {
    await browserLogin(page, u);
    // binding: the three methods that prove the ID, nothing else
    const bind = page.locator('form[action="/account/bind"] button');
    assert.deepEqual((await bind.evaluateAll((b) => b.map((x) => x.value))).sort(), ['moica-card', 'moica-mobile', 'nhi-card']);
    // the devices, each with its own remove button
    const devices = page.locator('#devices li');
    assert.equal(await devices.count(), 2);
    const pixel = devices.filter({ hasText: 'Pixel 8' });
    assert.equal(await pixel.count(), 1);
    assert.equal(await devices.filter({ hasText: 'iPhone 15' }).count(), 1);
    await axeCheck(page, '/account with bind and devices');
    await shots.take(t, page, 'account-bind-devices');
    await pixel.getByRole('button').click();
    await page.waitForURL((x) => x.pathname === '/account');
    assert.ok((await page.locator('[role="status"]').innerText()).includes(msg('account.device_revoked')));
    assert.equal(await page.locator('#devices li').count(), 1);
    assert.ok(!(await page.locator('#devices').innerText()).includes('Pixel 8'), 'the removed device is gone');
    const list = await stack.issoctl(['member', 'device', 'list', '--account', u.account]);
    assert.equal(list.find((d) => d.device === dev1.device).revoked, true);
    assert.equal(list.find((d) => d.device === dev2.device).revoked, false);
    const ev = (await audit()).filter((e) => e.event === 'tpapp_device_revoked' && e.data.uuid === u.uuid);
    assert.equal(ev.length, 1);
    assert.equal(ev[0].data.by, 'citizen');
  } finally {
    await context.close();
  }
  // a phone in English
  const phone = await newPage(browser, { viewport: { width: 375, height: 740 }, locale: 'en', isMobile: true, hasTouch: true });
  try {
    await browserLogin(phone.page, u);
    assert.equal(await phone.page.locator('h1').innerText(), 'My account');
    await assertNoHorizontalScroll(phone.page);
    await axeCheck(phone.page, '/account (en, phone)');
    await shots.take(t, phone.page, 'account-bind-devices-phone');
  } finally {
    await phone.context.close();
  }
});

test('device removal: CSRF, a malformed id, and another member\'s device (same answer, nothing changes)', T, async () => {
  const u = await newMember();
  const other = await newMember();
  const theirs = await tpapp.enrolled(stack, other, 'Theirs');
  const agent = new HttpAgent();
  const page = await accountLogin(agent, u);
  assert.ok(page.pageText().includes(msg('account.no_devices')));
  const noCsrf = await agent.postForm(stack.url('/account/device/revoke'), { device: theirs.device });
  assert.equal(noCsrf.status, 403);
  const csrf = bindForm(page).f.fields().find(([k]) => k === 'csrf')[1];
  const bad = await agent.postForm(stack.url('/account/device/revoke'), { csrf, device: 'x' });
  assert.equal(bad.status, 400);
  const r = await agent.postForm(stack.url('/account/device/revoke'), { csrf, device: theirs.device });
  assert.equal(r.status, 303);
  assert.equal(new URL(r.location).pathname, '/account');
  const list = await stack.issoctl(['member', 'device', 'list', '--account', other.account]);
  assert.equal(list[0].revoked, false, 'another member\'s device is untouched');
});

/** The NHI card pages in the browser (card read by isso-cardagent): ID,
 * registration password, phone and SMS code; then the click that ends the
 * login, whose navigation the caller awaits. */
async function browserNhi(page, c) {
  await page.locator('#nhi-status').filter({ hasText: msg('nhi.js_found').replace('%s', c.card_no.slice(-4)) }).waitFor({ timeout: limit(10_000) });
  await page.getByLabel(msg('nhi.id_label')).fill(c.national_id);
  await page.getByRole('button', { name: msg('nhi.next') }).click();
  await page.waitForURL((x) => x.pathname === '/login/nhi-card/password');
  await page.getByLabel(msg('nhi.password_label')).fill(c.registration_password);
  await page.getByRole('button', { name: msg('nhi.verify') }).click();
  await page.waitForURL((x) => x.pathname === '/login/nhi-card/phone', { timeout: limit(10_000) });
  const phone = newPhone();
  await page.getByLabel(msg('otp.step_phone')).fill(phone);
  await page.getByRole('button', { name: msg('otp.send') }).click();
  const code = page.getByLabel(msg('otp.code'));
  await code.waitFor();
  await page.waitForLoadState('load');
  const sms = await stack.readLastSms(phone);
  secrets.add(sms.code);
  await code.fill(sms.code);
}

test('in Chromium: a member binds the NHI card read by isso-cardagent; a later card login at an agency is the same uuid', { timeout: limit(120_000), skip: NO_BROWSER }, async (t) => {
  const c = card('A227182817');
  const u = await newMember();
  // only this card in a reader: the component answers for the first card it sees
  const others = stack.cards.nhi.filter((x) => x.card_no !== c.card_no);
  for (const x of others) stack.removeCard(x.card_no);
  try {
    const { context, page } = await newPage(browser, { viewport: { width: 390, height: 844 }, locale: 'zh-TW' });
    try {
      await browserLogin(page, u);
      await page.locator('form[action="/account/bind"] button[value="nhi-card"]').click();
      await page.waitForURL((x) => x.pathname === '/login/nhi-card');
      await axeCheck(page, 'binding: the NHI card step');
      await browserNhi(page, c);
      await page.getByRole('button', { name: msg('otp.step_submit'), exact: true }).click();
      await page.waitForURL((x) => x.pathname === '/account');
      assert.ok((await page.locator('[role="status"]').innerText()).includes(msg('account.bound')));
      assert.ok((await page.locator('#member').innerText()).includes(msg('account.gold')));
      await axeCheck(page, '/account after binding');
      await assertNoHorizontalScroll(page, '/account after binding');
      await shots.take(t, page, 'account-bound');
    } finally {
      await context.close();
    }

    // another browser, an agency (openid-client), the same card
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(cfg, {
      redirect_uri: RP, scope: SCOPE, state, nonce,
      code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
    const second = await newPage(browser, { viewport: { width: 1280, height: 900 }, locale: 'zh-TW' });
    try {
      const p = second.page;
      await p.goto(url.href);
      await p.locator('a[href*="/login/nhi-card"]').first().click();
      await p.waitForURL((x) => x.pathname === '/login/nhi-card');
      await browserNhi(p, c);
      await p.getByRole('button', { name: msg('otp.step_submit'), exact: true }).click();
      await p.waitForURL((x) => x.pathname === '/consent');
      const [req] = await Promise.all([
        p.waitForRequest((r) => r.url().startsWith(RP)),
        p.getByRole('button', { name: msg('consent.allow') }).click(),
      ]);
      const tokens = await client.authorizationCodeGrant(cfg, new URL(req.url()), {
        pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
      });
      const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
      assert.equal(info.uuid, u.uuid, 'the second card login lands on the member\'s uuid');
      assert.equal(info.member_level, 'gold');
      const byPassword = await agencyPasswordLogin(u);
      assert.equal(byPassword.sub, tokens.claims().sub, 'the same sub as the member\'s password login');
    } finally {
      await second.context.close();
    }
  } finally {
    for (const x of others) stack.insertCard(x.card_no);
  }
});
