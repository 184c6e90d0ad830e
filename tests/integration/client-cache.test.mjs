// The client cache at its production default (store.client_cache_ms
// 1000): issod's OpenID endpoints may use a client's registration read up
// to a second before. A change made with issoctl — another process, like
// another node — is in force within that second plus the request: a
// suspended client is refused, a resumed one served again, a rotated
// secret replaces the old one. What issod answers in between is allowed
// either way and not asserted. A change made through issod itself (a city
// administrator suspending and resuming on the review page) is in force
// at its very next request.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, HttpAgent, limit, sleep, decodeEntities } from './lib/harness.mjs';
import { cardOf, fileSign } from './lib/cards.mjs';

const RP = 'http://127.0.0.1:9/cb';
const T = { timeout: limit(60_000) };
const CARD_ADMIN = 'TP03000000000006';
// A change made elsewhere is in force within the lifetime (1 s) and the
// request: the tests poll every 100 ms for this long.
const DEADLINE_MS = 2000;

let stack;
let md;
let phoneSeq = 0;

const formEnc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
const basic = (id, secret) => `Basic ${Buffer.from(`${formEnc(id)}:${formEnc(secret)}`).toString('base64')}`;

/** POST /token, grant client_credentials, as id with secret. */
async function ccToken(id, secret) {
  const res = await fetch(md.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
    body: new URLSearchParams({ grant_type: 'client_credentials' }),
    signal: AbortSignal.timeout(5000),
  });
  const text = await res.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: res.status, text, json };
}

/** Polls the token request every 100 ms until it answers want (200 or
 * 401); fails if no request started within DEADLINE_MS of since answered
 * so. Any other status fails at once. Returns the answer and when the
 * request that gave it started, in ms after since. */
async function tokenUntil(id, secret, want, since) {
  for (;;) {
    const started = Date.now() - since;
    const r = await ccToken(id, secret);
    assert.ok(r.status === 200 || r.status === 401, `token: ${r.status} ${r.text}`);
    if (r.status === want) return { ...r, after: started };
    assert.ok(started <= DEADLINE_MS,
      `still ${r.status} for a request started ${started} ms after the change (want ${want} within ${DEADLINE_MS} ms)`);
    await sleep(100);
  }
}

/** Opens startPath, logs in with card sn (signature, phone, SMS code) and
 * returns where the login came back to ({res, url}). */
async function cardLogin(agent, startPath, sn) {
  const c = cardOf(stack, sn);
  const choice = await agent.followUntil(`${stack.issuer}${startPath}`);
  assert.equal(new URL(choice.url).pathname, '/login', `${startPath} sends to a login`);
  const link = choice.res.links().find((l) => new URL(l.href).pathname === '/login/moica-card');
  assert.ok(link, 'the card is offered');
  const res = await agent.get(link.href);
  const form = res.forms().find((f) => f.has('challenge'));
  assert.ok(form, 'the card form');
  const tbs = decodeEntities(/data-tbs="([^"]*)"/.exec(res.text)?.[1] ?? '');
  const posted = await agent.submit(form, { id_number: c.national_id, ...fileSign(stack.pki, sn, tbs) }, null,
    (next) => new URL(next).pathname === '/login/moica-card/phone');
  assert.ok(posted.stopped, `the card was accepted: ${posted.res?.status}`);
  phoneSeq += 1;
  const phone = `0937${String(700000 + phoneSeq * 131).padStart(6, '0')}`;
  const page = await agent.get(posted.url);
  const f = page.forms().find((x) => x.has('phone'));
  const sent = await agent.submit(f, { phone }, f.buttons.find((b) => b.value === 'send'));
  const cf = sent.res.forms().find((x) => x.has('code'));
  assert.ok(cf, 'the code field');
  const sms = await stack.readLastSms(phone);
  return agent.submit(cf, { code: sms.code }, cf.buttons.find((b) => b.value === 'verify'));
}

async function registerCc(name) {
  return stack.registerClient({
    name, redirectUris: [RP], scope: 'openid', grantTypes: ['authorization_code', 'client_credentials'],
  });
}

before(async () => {
  stack = await startStack({
    label: 'client-cache',
    pki: true, // the city administrator logs in with a MOICA card
    // issod's own default (1000 ms), not the tests' shorter one: the
    // harness's issoctl() waits that out too.
    env: { ISSO_STORE_CLIENT_CACHE_MS: undefined },
  });
  md = await stack.metadata();
}, { timeout: limit(60_000) });

after(async () => {
  await stack?.stop();
});

test('issoctl: a suspension, a resumption and a rotated secret are in force within the lifetime', T, async () => {
  const c = await registerCc('快取測試服務');
  // issod reads the client and keeps it.
  assert.equal((await ccToken(c.client_id, c.client_secret)).status, 200);

  // runIssoctl: without the harness's wait, the test polls itself.
  await stack.runIssoctl(['client', 'suspend', c.client_id]);
  let since = Date.now();
  const refused = await tokenUntil(c.client_id, c.client_secret, 401, since);
  assert.equal(refused.json?.error, 'invalid_client');
  assert.equal((await ccToken(c.client_id, c.client_secret)).status, 401, 'and refused from then on');

  await stack.runIssoctl(['client', 'approve', c.client_id]);
  since = Date.now();
  await tokenUntil(c.client_id, c.client_secret, 200, since);

  const rotated = await stack.runIssoctl(['client', 'rotate-secret', c.client_id]);
  assert.notEqual(rotated.client_secret, c.client_secret);
  since = Date.now();
  await tokenUntil(c.client_id, rotated.client_secret, 200, since);
  // issod has read the new secret: the old one is void.
  assert.equal((await ccToken(c.client_id, c.client_secret)).status, 401);
  assert.equal((await ccToken(c.client_id, rotated.client_secret)).status, 200);

  // The harness's issoctl() waits the lifetime out: right after it, the
  // change is in force.
  await stack.issoctl(['client', 'suspend', c.client_id]);
  assert.equal((await ccToken(c.client_id, rotated.client_secret)).status, 401);

  // The polls above were served from the cache, and read the store again.
  const metrics = await (await fetch(stack.url('/metrics'), { signal: AbortSignal.timeout(5000) })).text();
  assert.match(metrics, /^isso_store_client_cache_total\{result="hit"\} [1-9]/m);
  assert.match(metrics, /^isso_store_client_cache_total\{result="miss"\} [1-9]/m);
});

test('the review page: a city administrator\'s suspension and resumption are in force at the next request', T, async () => {
  const ac = cardOf(stack, CARD_ADMIN);
  await stack.addUser({ account: 'cache.admin', password: 'Cache-admin-42', phone: '0912000701', name: ac.name, idNumber: ac.national_id });
  await stack.issoctl(['admin', 'grant', '--account', 'cache.admin']);
  const c = await registerCc('快取審查服務');
  const reviewPath = `/admin/applications/${c.client_id}`;
  const admin = new HttpAgent();
  const landed = await cardLogin(admin, reviewPath, CARD_ADMIN);
  assert.equal(new URL(landed.url).pathname, reviewPath);
  const csrfField = landed.res.forms().find((f) => f.has('csrf'))?.fields().find(([n]) => n === 'csrf');
  assert.ok(csrfField, 'the review page carries a CSRF token');
  const decide = (fields) => admin.request(stack.url(reviewPath), { method: 'POST', form: { csrf: csrfField[1], ...fields } });

  // Read (and kept) by issod just before the decision: the decision
  // through issod empties the cache, so the next request sees it.
  assert.equal((await ccToken(c.client_id, c.client_secret)).status, 200);
  const filled = Date.now();
  assert.equal((await decide({ decision: 'suspend', suspension: '資安事件調查中' })).status, 303);
  const r = await ccToken(c.client_id, c.client_secret);
  const elapsed = Date.now() - filled;
  assert.equal(r.status, 401, `suspended at once: ${r.text}`);
  assert.equal(r.json?.error, 'invalid_client');
  // Only meaningful while issod's copy was still fresh.
  assert.ok(elapsed < 1000, `the decision and the check took ${elapsed} ms, past the lifetime`);

  // Resumed the same way: served again at once (the refusal above read
  // the suspended row, so it was kept too).
  const filled2 = Date.now();
  assert.equal((await decide({ decision: 'resume' })).status, 303);
  const again = await ccToken(c.client_id, c.client_secret);
  const elapsed2 = Date.now() - filled2;
  assert.equal(again.status, 200, `resumed at once: ${again.text}`);
  assert.ok(elapsed2 < 1000, `the decision and the check took ${elapsed2} ms, past the lifetime`);
});
