// Password guessing slowed, never turned into a lock-out (src/auth/throttle.c):
// twenty wrong passwords from one address leave the owner logging in from
// another within 10 s; the owner's browser with a device cookie is not
// delayed at all; an abused device cookie loses its exemption; delays per
// address (IPv4 /32, IPv6 /64 through a trusted proxy) apart from the
// account's; and the security events in issod's log. Loopback has the
// whole 127/8, so each client here binds its own source address.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import {
  startStack, HttpAgent, REPO, limit, sameEndpoint, sleep,
} from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted
const T = { timeout: limit(60_000) };
const MSG = JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8'));
const DEVICE_MAX = 3; // security.device_cookie_max_failures on this stack
const ADDRESS_FREE = 5; // security.address_free_failures on this stack

let stack;
let proxied; // a second issod behind a "proxy" (trust_proxy: X-Forwarded-For)
let rp;
let rpProxied;

before(async () => {
  stack = await startStack({
    label: 'throttle',
    env: {
      ISSO_SECURITY_ADDRESS_FREE_FAILURES: String(ADDRESS_FREE),
      ISSO_SECURITY_DEVICE_COOKIE_MAX_FAILURES: String(DEVICE_MAX),
    },
  });
  rp = await stack.registerClient({ name: 'throttle rp', redirectUris: [RP], scope: 'openid' });
  proxied = await startStack({
    label: 'throttle-proxy',
    env: { ISSO_SERVER_TRUST_PROXY: '1', ISSO_SECURITY_ADDRESS_FREE_FAILURES: '2' },
  });
  rpProxied = await proxied.registerClient({ name: 'throttle rp', redirectUris: [RP], scope: 'openid' });
}, { timeout: limit(60_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
  if (proxied) await proxied.stop({ check: false });
});

// ---------------------------------------------------------------- helpers

const b64url = (buf) => buf.toString('base64url');

function authorizeUrl(s = stack, client = rp, extra = {}) {
  const verifier = b64url(crypto.randomBytes(32));
  const u = new URL('/authorize', s.issuer);
  u.search = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: RP, scope: 'openid',
    state: b64url(crypto.randomBytes(8)), nonce: b64url(crypto.randomBytes(8)),
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
    ...extra,
  }).toString();
  return u.href;
}

/** The login form of a new authorization for agent (prompt=login: a
 * browser that is logged in already is asked again). */
async function openLogin(agent, s = stack, client = rp) {
  const first = await agent.followUntil(authorizeUrl(s, client, { prompt: 'login' }), (next) => sameEndpoint(next, RP));
  assert.equal(first.res.status, 200, 'the method page');
  const pick = first.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/taipeipass');
  assert.ok(pick, 'the method page links to /login/taipeipass');
  const res = await agent.get(pick.href);
  assert.equal(res.status, 200, 'the 台北通 login page');
  return loginForm(res);
}

function loginForm(res) {
  const f = res.forms().find((x) => x.has('account') && x.has('password'));
  assert.ok(f, `no login form (${res.status}): ${res.pageText().slice(0, 300)}`);
  return f;
}

/** Submits the login form once; headers (optional) go with the POST. */
async function submit(agent, form, account, password, headers = {}) {
  const req = agent.formRequest(form, { account, password });
  return agent.request(req.url, { method: 'POST', form: req.form, headers });
}

const retryAfter = (res) => Number(res.headers.get('retry-after'));
const isConsent = (res) => res.status === 303 && new URL(res.location).pathname === '/consent';

/** Security events of issod's log (parsed JSON lines) named event. */
function events(s, event) {
  return s.issod.stderr.split('\n').filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l)).filter((e) => e.event === event);
}

/** The events named event once one satisfies pred (issod's stderr
 * reaches the test a moment after the answer): polls for up to 3 s. */
async function eventsSoon(s, event, pred = () => true) {
  const deadline = Date.now() + 3000;
  for (;;) {
    const list = events(s, event);
    if (list.some(pred) || Date.now() > deadline) return list;
    await sleep(50);
  }
}

let seq = 0;
async function member(s = stack) {
  seq += 1;
  return s.addUser({ account: `owner${seq}x`, password: `Tp-Owner-${seq}-kx7Qm2`, phone: `09334${String(10000 + seq).padStart(5, '0')}` });
}

/** Wrong passwords from agent until an answer is a delay; waits out
 * delays of up to maxWait seconds, so that the account gets deep into its
 * schedule. Returns every status seen. */
async function guess(agent, form, account, count, maxWait = 2) {
  const statuses = [];
  let f = form;
  for (let i = 0; i < count; i++) {
    const res = await submit(agent, f, account, `Wrong-guess-${i}-x9`);
    statuses.push(res.status);
    assert.ok([401, 429].includes(res.status), `a wrong password gets 401 or 429, not ${res.status}`);
    assert.ok(!res.pageText().includes('15'), 'no lock-out of minutes');
    f = loginForm(res);
    if (res.status === 429) {
      const wait = retryAfter(res);
      assert.ok(wait >= 1, `Retry-After ${wait}`);
      if (wait <= maxWait) await sleep(wait * 1000 + 100);
    }
  }
  return { statuses, form: f };
}

// ---------------------------------------------------------------- tests

test('the owner\'s browser with a device cookie is not delayed at all while strangers are', T, async () => {
  const m = await member();
  const owner = new HttpAgent({ localAddress: '127.0.0.2' });
  // a first login gives the owner's browser its device cookie
  const first = await submit(owner, await openLogin(owner), m.account, m.password);
  assert.ok(isConsent(first), `the first login: ${first.status}`);
  const dev = first.headers.getSetCookie().find((c) => c.startsWith('isso_dev='));
  assert.ok(dev, 'a device cookie');
  assert.match(dev, /HttpOnly/i);
  assert.match(dev, /Max-Age=7776000/, 'for security.device_cookie_days (90)');
  assert.ok(!dev.includes(m.account), 'the cookie does not name the account in clear');

  // a stranger guesses until the account is held
  const attacker = new HttpAgent({ localAddress: '127.0.0.3' });
  const { statuses } = await guess(attacker, await openLogin(attacker), m.account, 8, 0);
  assert.ok(statuses.includes(429), `the stranger is delayed: ${statuses}`);
  // another browser without the cookie, from a clean address, is held too
  const other = new HttpAgent({ localAddress: '127.0.0.4' });
  const held = await submit(other, await openLogin(other), m.account, m.password);
  assert.equal(held.status, 429, 'the account is held for browsers it does not know');
  assert.ok(retryAfter(held) <= 10, `at most 10 s: ${retryAfter(held)}`);
  // ... but not the owner's browser, and not even for a moment
  const t0 = Date.now();
  const ok = await submit(owner, await openLogin(owner), m.account, m.password);
  assert.ok(isConsent(ok), `the owner's browser: ${ok.status} ${ok.alerts().join(' | ')}`);
  assert.ok(Date.now() - t0 < limit(3000), 'at once');
  const used = await eventsSoon(stack, 'device_cookie_used', (e) => e.exempt === true && e.address === '127.0.0.2');
  assert.ok(used.some((e) => e.exempt === true && e.address === '127.0.0.2'), 'device_cookie_used is logged');
});

test('twenty wrong passwords from 127.0.0.3 leave the owner logging in from 127.0.0.2 within 10 seconds', T, async () => {
  const m = await member();
  const attacker = new HttpAgent({ localAddress: '127.0.0.3' });
  const { statuses } = await guess(attacker, await openLogin(attacker), m.account, 20, 2);
  assert.equal(statuses.length, 20);
  assert.ok(statuses.includes(429), `the guesses are slowed: ${statuses}`);

  // the owner, in a browser iSSO does not know, from another address
  const owner = new HttpAgent({ localAddress: '127.0.0.2' });
  let form = await openLogin(owner);
  const t0 = Date.now();
  let res = await submit(owner, form, m.account, m.password);
  if (res.status === 429) {
    const wait = retryAfter(res);
    assert.ok(wait <= 10, `the owner waits at most 10 s, not ${wait}`);
    assert.ok(res.alerts()[0].startsWith(MSG['tp.wait']), res.alerts()[0]);
    await sleep(wait * 1000 + 100);
    form = loginForm(res);
    res = await submit(owner, form, m.account, m.password);
  }
  const elapsed = Date.now() - t0;
  assert.ok(isConsent(res), `the owner logs in: ${res.status} ${res.alerts().join(' | ')}`);
  assert.ok(elapsed <= 10_000 + limit(1500), `within 10 s: ${elapsed} ms`);
  // the stranger's address is held on its own
  const delayed = (await eventsSoon(stack, 'login_delayed', (e) => e.address === '127.0.0.3')).filter((e) => e.address === '127.0.0.3');
  assert.ok(delayed.length > 0, 'login_delayed is logged for the stranger');
});

test('an abused device cookie is locked: it loses its exemption, the account stays open', T, async () => {
  const m = await member();
  const owner = new HttpAgent({ localAddress: '127.0.0.2' });
  const first = await submit(owner, await openLogin(owner), m.account, m.password);
  assert.ok(isConsent(first));
  // the cookie, stolen, is used to guess from elsewhere
  const thief = new HttpAgent({ localAddress: '127.0.0.5' });
  const cookie = owner.jar.header(stack.url('/login/taipeipass')).split('; ').find((c) => c.startsWith('isso_dev='));
  assert.ok(cookie);
  let form = await openLogin(thief);
  const headers = { cookie: `${thief.jar.header(stack.url('/login/taipeipass'))}; ${cookie}` };
  for (let i = 0; i < DEVICE_MAX; i++) {
    const res = await submit(thief, form, m.account, `Stolen-guess-${i}-x9`, headers);
    assert.equal(res.status, 401, `guess ${i + 1} with the cookie: never delayed while it is trusted`);
    form = loginForm(res);
  }
  const locked = await eventsSoon(stack, 'device_cookie_locked');
  assert.equal(locked.length, 1, 'device_cookie_locked is logged once');
  assert.match(locked[0].account, /^[0-9a-f]{16}$/);
  // the locked cookie is now as good as none
  const after = await submit(thief, form, m.account, 'Stolen-guess-x-x9', headers);
  assert.equal(after.status, 401);
  const used = (await eventsSoon(stack, 'device_cookie_used', (e) => e.address === '127.0.0.5' && e.exempt === false))
    .filter((e) => e.address === '127.0.0.5');
  assert.equal(used.at(-1).exempt, false, 'no exemption for a locked cookie');
  // and the owner still logs in (delays at most 10 s, no lock-out)
  let res = await submit(owner, await openLogin(owner), m.account, m.password);
  if (res.status === 429) {
    assert.ok(retryAfter(res) <= 10);
    await sleep(retryAfter(res) * 1000 + 100);
    res = await submit(owner, loginForm(res), m.account, m.password);
  }
  assert.ok(isConsent(res), `the owner: ${res.status}`);
});

test('parallel guesses under one device cookie: no more are exempt than its limit', T, async () => {
  const m = await member();
  const owner = new HttpAgent({ localAddress: '127.0.0.2' });
  assert.ok(isConsent(await submit(owner, await openLogin(owner), m.account, m.password)));
  const cookie = owner.jar.header(stack.url('/login/taipeipass')).split('; ').find((c) => c.startsWith('isso_dev='));
  assert.ok(cookie);
  // all at once, before any of them has been verified
  const thief = new HttpAgent({ localAddress: '127.0.0.9' });
  const form = await openLogin(thief);
  const headers = { cookie: `${thief.jar.header(stack.url('/login/taipeipass'))}; ${cookie}` };
  const n = DEVICE_MAX + 4;
  await Promise.all(Array.from({ length: n }, (_, i) => submit(thief, form, m.account, `Parallel-guess-${i}-x9`, headers)));
  const used = (await eventsSoon(stack, 'device_cookie_used', (e) => e.address === '127.0.0.9'))
    .filter((e) => e.address === '127.0.0.9');
  assert.equal(used.length, n, 'every guess presented the cookie');
  const exempt = used.filter((e) => e.exempt === true).length;
  assert.ok(exempt <= DEVICE_MAX, `${exempt} of ${n} parallel guesses were exempt (limit ${DEVICE_MAX})`);
});

test('per-address delays: one address guessing many accounts is slowed; another address is not', T, async () => {
  const sprayer = new HttpAgent({ localAddress: '127.0.0.6' });
  let form = await openLogin(sprayer);
  const statuses = [];
  for (let i = 0; i < ADDRESS_FREE + 2; i++) {
    const res = await submit(sprayer, form, `sprayed${i}x`, 'Spray-guess-x9');
    statuses.push(res.status);
    form = loginForm(res);
  }
  assert.deepEqual(statuses.slice(0, ADDRESS_FREE + 1), Array(ADDRESS_FREE + 1).fill(401), `free failures: ${statuses}`);
  assert.equal(statuses.at(-1), 429, 'then the address waits');
  const byAddress = (await eventsSoon(stack, 'login_delayed', (e) => e.address === '127.0.0.6')).filter((e) => e.address === '127.0.0.6');
  assert.equal(byAddress.at(-1).by, 'address');
  const neighbour = new HttpAgent({ localAddress: '127.0.0.7' });
  const res = await submit(neighbour, await openLogin(neighbour), 'sprayed-other', 'Spray-guess-x9');
  assert.equal(res.status, 401, 'another address is not held');
});

test('IPv6: every address of a /64 counts as one client; the next /64 is another', T, async () => {
  // issod trusts X-Forwarded-For from its loopback proxy on this stack;
  // security.address_free_failures is 2 there.
  const agent = new HttpAgent();
  let form = await openLogin(agent, proxied, rpProxied);
  const from = (ip) => ({ 'x-forwarded-for': ip });
  const statuses = [];
  for (const [i, ip] of ['2001:db8:1:2::a', '2001:db8:1:2::b', '2001:db8:1:2:ffff::c', '2001:db8:1:2::d'].entries()) {
    const res = await submit(agent, form, `v6guess${i}x`, 'Six-guess-x9', from(ip));
    statuses.push(res.status);
    form = loginForm(res);
  }
  assert.deepEqual(statuses, [401, 401, 401, 429], 'one /64, one client');
  const delayed = (await eventsSoon(proxied, 'login_delayed', (e) => e.address === '2001:db8:1:2::d')).at(-1);
  assert.equal(delayed.by, 'address');
  assert.equal(delayed.address, '2001:db8:1:2::d', 'the event names the address itself');
  const next = await submit(agent, form, 'v6guess9x', 'Six-guess-x9', from('2001:db8:1:3::a'));
  assert.equal(next.status, 401, 'the next /64 is another client');
});

test('issod is still healthy and both stop cleanly on SIGTERM', T, async () => {
  for (const s of [stack, proxied]) assert.ok(await s.healthy());
  const [a, b] = [stack, proxied];
  stack = null;
  proxied = null;
  await a.stop();
  await b.stop();
});
