// Password hashing never blocks serving: argon2id runs on issod's hashing
// pool (server.hash_workers, server.hash_queue), the login request waits
// suspended meanwhile. While a storm of password logins is being checked,
// discovery and JWKS still answer at once; when the queue is full the
// login page answers 503 with Retry-After and a clear page (zh-TW and
// English), the app's device enrolment 503 {"error":"busy"}, and nobody is counted
// as guessing; clients that leave in the middle of a check leave nothing
// behind (the ASan build's leak check at the SIGTERM stop).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as tpapp from './lib/tpapp.mjs';
import {
  startStack, HttpAgent, REPO, limit, sameEndpoint, sleep, decodeEntities,
} from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted
const T = { timeout: limit(60_000) };
const MSG = {
  'zh-TW': JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'zh-TW.json'), 'utf8')),
  en: JSON.parse(fs.readFileSync(path.join(REPO, 'locales', 'en.json'), 'utf8')),
};
// A request answered while the storm runs must not wait for it: a
// generous bound, not a benchmark.
const PROMPT_MS = 500;

let storm; // one hashing thread, the default queue
let busy; // one hashing thread, room for one waiting check
let rpStorm;
let rpBusy;
const passwords = new Set();

before(async () => {
  storm = await startStack({
    label: 'hashpool-storm',
    env: { ISSO_SERVER_THREADS: '2', ISSO_SERVER_HASH_WORKERS: '1' },
  });
  rpStorm = await storm.registerClient({ name: 'storm rp', redirectUris: [RP], scope: 'openid' });
  busy = await startStack({
    label: 'hashpool-busy',
    // no free failures: an attempt that counted would hold its account
    // back a second, so an immediate retry shows that a refusal counted
    // nothing
    env: { ISSO_SERVER_HASH_WORKERS: '1', ISSO_SERVER_HASH_QUEUE: '1', ISSO_SECURITY_ACCOUNT_FREE_FAILURES: '0' },
  });
  rpBusy = await busy.registerClient({ name: 'busy rp', redirectUris: [RP], scope: 'openid' });
}, { timeout: limit(60_000) });

after(async () => {
  if (storm) await storm.stop({ check: false });
  if (busy) await busy.stop({ check: false });
});

// ---------------------------------------------------------------- helpers

const b64url = (buf) => buf.toString('base64url');

function authorizeUrl(s, client) {
  const verifier = b64url(crypto.randomBytes(32));
  const u = new URL('/authorize', s.issuer);
  u.search = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: RP, scope: 'openid',
    state: b64url(crypto.randomBytes(8)), nonce: b64url(crypto.randomBytes(8)),
    code_challenge: b64url(crypto.createHash('sha256').update(verifier).digest()), code_challenge_method: 'S256',
    prompt: 'login',
  }).toString();
  return u.href;
}

/** A new authorization up to the 台北通 login page: {agent, res}. */
async function loginPage(s, client, lang) {
  const agent = new HttpAgent(lang ? { lang } : {});
  const first = await agent.followUntil(authorizeUrl(s, client), (next) => sameEndpoint(next, RP));
  assert.equal(first.res.status, 200, 'the method page');
  const pick = first.res.links().find((l) => l.href && new URL(l.href).pathname === '/login/taipeipass');
  assert.ok(pick, 'the method page links to /login/taipeipass');
  const res = await agent.get(pick.href);
  assert.equal(res.status, 200, 'the 台北通 login page');
  return { agent, res };
}

function loginForm(res) {
  const f = res.forms().find((x) => x.has('account') && x.has('password'));
  assert.ok(f, `no login form (${res.status}): ${res.pageText().slice(0, 300)}`);
  return f;
}

/** Posts the login form once (no redirects followed). */
function submit(agent, form, account, password, opts = {}) {
  const req = agent.formRequest(form, { account, password });
  return agent.request(req.url, { method: 'POST', form: req.form, ...opts });
}

const isConsent = (res) => res.status === 303 && new URL(res.location).pathname === '/consent';

let seq = 0;
async function members(s, n) {
  const out = [];
  for (let i = 0; i < n; i++) {
    seq += 1;
    const password = `Tp-Storm-${seq}-qz8Lw3`;
    passwords.add(password);
    out.push(await s.addUser({
      account: `storm${seq}x`, password, phone: `09335${String(10000 + seq).padStart(5, '0')}`,
    }));
  }
  return out;
}

/** n login pages, one per member, ready to submit: [{agent, form, m}]. */
async function readyLogins(s, client, ms, lang) {
  const out = [];
  for (const m of ms) {
    const { agent, res } = await loginPage(s, client, lang);
    out.push({ agent, form: loginForm(res), m });
  }
  return out;
}

function events(s, event) {
  return s.issod.stderr.split('\n').filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l)).filter((e) => e.event === event);
}

/** A GET timed from send to last byte: {status, ms}. */
async function timed(url) {
  const t0 = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(10_000) });
  await res.arrayBuffer();
  return { status: res.status, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------- tests

test('during a storm of password logins, discovery and JWKS answer promptly and every login succeeds', T, async () => {
  const N = 16;
  const logins = await readyLogins(storm, rpStorm, await members(storm, N));
  let finished = 0;
  const all = Promise.all(logins.map(async ({ agent, form, m }) => {
    const res = await submit(agent, form, m.account, m.password);
    finished += 1;
    return res;
  }));
  // One hashing thread checks 16 passwords one after another: the storm
  // lasts far longer than the probes below.
  await sleep(60);
  const probes = [];
  let deepest = 0;
  for (let i = 0; i < 4; i++) {
    const during = finished < N;
    const d = await timed(storm.url('/.well-known/openid-configuration'));
    const j = await timed(storm.url('/jwks'));
    probes.push({ during, d, j });
    // operators see the waiting checks (isso_worker_queue_depth{pool="hash"})
    const m = await fetch(storm.url('/metrics')).then((r) => r.text());
    const depth = m.match(/^isso_worker_queue_depth\{pool="hash"\} (\S+)$/m);
    assert.ok(depth, 'the hashing queue depth is exported');
    if (finished < N) deepest = Math.max(deepest, Number(depth[1]));
    await sleep(30);
  }
  const results = await all;
  for (const [i, res] of results.entries()) {
    assert.ok(isConsent(res), `login ${i}: ${res.status} ${res.pageText?.().slice(0, 200)}`);
  }
  const inStorm = probes.filter((p) => p.during);
  assert.ok(deepest >= 1, `checks were seen waiting for the one hashing thread (deepest ${deepest})`);
  assert.ok(inStorm.length >= 2, `probes issued while logins were in flight: ${JSON.stringify(probes)}`);
  for (const p of inStorm) {
    assert.equal(p.d.status, 200);
    assert.equal(p.j.status, 200);
    assert.ok(p.d.ms < PROMPT_MS, `discovery took ${p.d.ms.toFixed(0)} ms during the storm`);
    assert.ok(p.j.ms < PROMPT_MS, `JWKS took ${p.j.ms.toFixed(0)} ms during the storm`);
  }
  assert.equal(events(storm, 'login_failed').length, 0);
});

async function busyRound(lang) {
  const N = 10;
  const logins = await readyLogins(busy, rpBusy, await members(busy, N), lang);
  const results = await Promise.all(logins.map(({ agent, form, m }) => submit(agent, form, m.account, m.password)));
  const refused = [];
  for (const [i, res] of results.entries()) {
    if (res.status === 503) {
      refused.push(logins[i]);
      assert.equal(res.headers.get('retry-after'), '5', 'Retry-After');
      assert.match(res.contentType(), /^text\/html/);
      assert.equal(res.headers.get('cache-control'), 'no-store');
      const text = res.pageText();
      assert.ok(text.includes(MSG[lang]['tp.busy']), `the ${lang} busy message: ${text.slice(0, 300)}`);
      assert.ok(res.alerts().some((a) => a.includes(MSG[lang]['tp.busy'])), 'said in a role=alert');
      assert.match(res.text, new RegExp(`<html[^>]* lang="${lang === 'en' ? 'en' : 'zh-Hant-TW'}"`));
      // the login form again, to try once more
      const again = loginForm(res);
      assert.equal(decodeEntities(again.fields().find(([k]) => k === 'account')?.[1] ?? ''), logins[i].m.account);
      logins[i].form = again;
    } else {
      assert.ok(isConsent(res), `login ${i}: ${res.status} ${res.pageText().slice(0, 200)}`);
    }
  }
  assert.ok(refused.length >= 1, `one hashing thread and a queue of one: some of ${N} parallel logins are refused (${results.map((r) => r.status)})`);
  assert.ok(refused.length < N, 'and some get through');
  return refused;
}

test('a full hashing queue: the login page answers 503 with Retry-After, in zh-TW; the refused citizen logs in afterwards', T, async () => {
  const refused = await busyRound('zh-TW');
  // Nothing was checked or counted: a refusal is no failed guess, and
  // the same citizen gets in at once.
  assert.equal(events(busy, 'login_failed').length, 0, 'no login_failed for refused logins');
  assert.ok(events(busy, 'http_defer_busy').length >= refused.length);
  for (const { agent, form, m } of refused) {
    const res = await submit(agent, form, m.account, m.password);
    assert.ok(isConsent(res), `${m.account} after the storm: ${res.status}`);
  }
});

test('a full hashing queue in English', T, async () => {
  await busyRound('en');
});

test('a full hashing queue: the app\'s device enrolment answers 503 {"error":"busy"} with Retry-After', T, async () => {
  const N = 10;
  const ms = await members(busy, N);
  const keys = ms.map(() => tpapp.deviceKey());
  const results = await Promise.all(ms.map(async (m, i) => {
    const r = await tpapp.enrol(busy, { account: m.account, password: m.password, jwk: keys[i].jwk });
    return { status: r.status, retry: r.headers.get('retry-after'), body: r.body };
  }));
  const refused = results.filter((r) => r.status === 503);
  assert.ok(refused.length >= 1, `some enrolments are refused: ${JSON.stringify(results)}`);
  for (const r of refused) {
    assert.deepEqual(r.body, { error: 'busy' });
    assert.equal(r.retry, '5');
  }
  for (const r of results.filter((x) => x.status !== 503)) {
    assert.equal(r.status, 201, JSON.stringify(r));
    assert.match(r.body.device, /^[A-Za-z0-9_-]{43}$/);
  }
  // a refused enrolment was not counted: the app may try again at once
  const i = results.findIndex((r) => r.status === 503);
  const again = await tpapp.enrol(busy, { account: ms[i].account, password: ms[i].password, jwk: keys[i].jwk });
  assert.equal(again.status, 201, JSON.stringify(again.body));
});

/** The code of the last SMS to phone (polls: some are queued). */
async function smsCode(s, phone) {
  for (let i = 0; i < 100; i++) {
    const sms = await s.readLastSms(phone);
    if (/^\d{6}$/.test(sms?.code ?? '')) return sms.code;
    await sleep(50);
  }
  throw new Error(`no code reached ${phone}`);
}

const codeForm = (res) => res.forms().find((f) => f.has('pending') && f.has('code'));

/** Submits every {agent, form, fields} at once; a 503 must be the busy
 * page with the code form again (the code still good): those are
 * submitted again, one by one, and must then get done. */
async function codeStorm(what, runs, doneKey) {
  const results = await Promise.all(runs.map(({ agent, form, fields }) => agent.submit(form, fields)));
  let refused = 0;
  for (const [i, { res }] of results.entries()) {
    if (res.status === 503) {
      refused += 1;
      assert.equal(res.headers.get('retry-after'), '5');
      assert.ok(res.pageText().includes(MSG['zh-TW']['tp.busy']), `${what}: the busy page`);
      const again = codeForm(res);
      assert.ok(again, `${what}: the code form again`);
      const retry = (await runs[i].agent.submit(again, runs[i].fields)).res;
      assert.equal(retry.status, 200, `${what} ${i} again: ${retry.pageText().slice(0, 300)}`);
      assert.ok(retry.pageText().includes(MSG['zh-TW'][doneKey]), `${what} ${i} again: done`);
    } else {
      assert.equal(res.status, 200, `${what} ${i}: ${res.pageText().slice(0, 300)}`);
      assert.ok(res.pageText().includes(MSG['zh-TW'][doneKey]), `${what} ${i}: done`);
    }
  }
  assert.ok(refused >= 1, `${what}: some of ${runs.length} are refused while the queue is full`);
  assert.ok(refused < runs.length, `${what}: and some get through`);
}

test('a full hashing queue at registration and password reset: 503 busy page, the same SMS code works again', T, async () => {
  const N = 8;
  const regs = [];
  for (let i = 0; i < N; i++) {
    seq += 1;
    const agent = new HttpAgent();
    const page = await agent.get(busy.url('/taipeipass/register'));
    const form = page.forms().find((f) => f.has('account') && f.has('password2') && f.has('phone'));
    assert.ok(form, 'the registration form');
    const password = `Tp-Reg-${seq}-qz8Lw3`;
    passwords.add(password);
    const f = { account: `reg${seq}x`, phone: `09336${String(10000 + seq).padStart(5, '0')}`, password };
    const { res } = await agent.submit(form, {
      account: f.account, name: '', phone: f.phone, email: '', password, password2: password, agree: '1',
    });
    const cf = codeForm(res);
    assert.ok(cf, `the code page: ${res.pageText().slice(0, 300)}`);
    regs.push({ agent, form: cf, fields: { code: await smsCode(busy, f.phone) }, f });
  }
  await codeStorm('registration', regs, 'tp.register_done');
  // the new members log in
  const { agent, res } = await loginPage(busy, rpBusy);
  assert.ok(isConsent(await submit(agent, loginForm(res), regs[0].f.account, regs[0].f.password)));

  const resets = [];
  for (const m of await members(busy, N)) {
    const a = new HttpAgent();
    const page = await a.get(busy.url('/taipeipass/forgot'));
    const form = page.forms().find((f) => f.has('phone') && !f.has('account'));
    assert.ok(form, 'the forgot form');
    const { res: sent } = await a.submit(form, { phone: m.phone });
    const cf = codeForm(sent);
    assert.ok(cf, `the code page: ${sent.pageText().slice(0, 300)}`);
    const password = `${m.password}-new`;
    passwords.add(password);
    m.newPassword = password;
    resets.push({ agent: a, form: cf, fields: { code: await smsCode(busy, m.phone), password, password2: password }, m });
  }
  await codeStorm('reset', resets, 'tp.reset_done');
  const again = await loginPage(busy, rpBusy);
  assert.ok(isConsent(await submit(again.agent, loginForm(again.res), resets[0].m.account, resets[0].m.newPassword)));
});

test('clients that leave while their password is checked: the others finish, issod serves on', T, async () => {
  const N = 8;
  const logins = await readyLogins(storm, rpStorm, await members(storm, N));
  const aborts = logins.map(() => new AbortController());
  // HttpAgent cannot abort: the same POST by hand, with its cookies
  const runs = logins.map(async ({ agent, form, m }, i) => {
    const req = agent.formRequest(form, { account: m.account, password: m.password });
    try {
      const res = await fetch(req.url, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          cookie: agent.jar.header(req.url),
          origin: new URL(req.url).origin,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams(req.form).toString(),
        signal: aborts[i].signal,
      });
      await res.arrayBuffer();
      return { status: res.status, location: res.headers.get('location') };
    } catch (e) {
      return { error: e.name };
    }
  });
  // the later half leave while their checks wait or run (one hashing
  // thread: the first four checks alone outlast the pause)
  await sleep(40);
  for (let i = N / 2; i < N; i++) aborts[i].abort();
  const results = await Promise.all(runs);
  for (let i = 0; i < N / 2; i++) {
    assert.equal(results[i].status, 303, `login ${i}: ${JSON.stringify(results[i])}`);
    assert.equal(new URL(results[i].location, storm.issuer).pathname, '/consent');
  }
  for (let i = N / 2; i < N; i++) assert.equal(results[i].error, 'AbortError', `login ${i} left`);
  // the pool drains the abandoned checks; then everything answers again
  await sleep(1500);
  const d = await timed(storm.url('/.well-known/openid-configuration'));
  assert.equal(d.status, 200);
  const { agent, res } = await loginPage(storm, rpStorm);
  const [m] = await members(storm, 1);
  assert.ok(isConsent(await submit(agent, loginForm(res), m.account, m.password)));
});

test('no password reaches the log; both issod stop cleanly on SIGTERM (no leak report)', T, async () => {
  for (const s of [storm, busy]) {
    assert.ok(await s.healthy());
    for (const p of passwords) assert.ok(!s.issod.stderr.includes(p), 'a password in the log');
  }
  const [a, b] = [storm, busy];
  storm = null;
  busy = null;
  await a.stop();
  await b.stop();
});
