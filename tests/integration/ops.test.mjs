// The operators' endpoints (src/portal/ops.c, src/lib/metrics.c): a login
// with openid-client moves the counters of /metrics (login completed and
// failed for the method, token issued for the grant, the route's latency
// histogram, the store's); /metrics answers only allowed addresses over a
// direct connection (127.0.0.2 and a proxied request are refused) and not
// at all when metrics.enabled = 0; /healthz answers 200 "ok"; /readyz 200,
// then 503 with a JSON reason once the SQLite file is moved away under the
// running daemon, and 200 again once it is back (no restart).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as client from 'openid-client';
import { startStack, HttpAgent, limit, sleep, REPO, BUILD_DIR } from './lib/harness.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted
const T = { timeout: limit(20_000) };

let stack;
let off; // a second issod with metrics.enabled = 0
let rp;
let user;

before(async () => {
  stack = await startStack({ label: 'ops' });
  rp = await stack.registerClient({ name: 'ops rp', redirectUris: [RP], scope: 'openid' });
  user = await stack.addUser({});
  off = await startStack({ label: 'ops-off', env: { ISSO_METRICS_ENABLED: '0' } });
}, { timeout: limit(60_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
  if (off) await off.stop({ check: false });
});

// ---------------------------------------------------------------- helpers

async function get(url, headers = {}) {
  const res = await fetch(url, { headers, redirect: 'manual', signal: AbortSignal.timeout(5000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"(,|$)/y;

/** Parses the Prometheus text format strictly: every family has HELP and
 * TYPE before its samples, every sample line is name{labels} value.
 * Returns {types, samples: [{name, labels, value}]}. */
function parseExposition(text) {
  assert.ok(text.endsWith('\n'), 'the exposition ends with a newline');
  const types = new Map();
  const helps = new Set();
  const samples = [];
  for (const line of text.slice(0, -1).split('\n')) {
    let m = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (m) {
      assert.match(m[2], NAME, `metric name ${m[2]}`);
      if (m[1] === 'HELP') {
        assert.ok(!helps.has(m[2]), `one HELP for ${m[2]}`);
        helps.add(m[2]);
      } else {
        assert.ok(['counter', 'gauge', 'histogram'].includes(m[3]), `type ${m[3]}`);
        assert.ok(!types.has(m[2]), `one TYPE for ${m[2]}`);
        types.set(m[2], m[3]);
      }
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${JSON.stringify(line)}`);
    const labels = {};
    if (m[2] !== undefined) {
      LABEL.lastIndex = 0;
      while (LABEL.lastIndex < m[2].length) {
        const l = LABEL.exec(m[2]);
        assert.ok(l, `labels of ${JSON.stringify(line)}`);
        assert.ok(!(l[1] in labels), `label ${l[1]} once`);
        labels[l[1]] = l[2].replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    const value = Number(m[3] === '+Inf' ? Infinity : m[3]);
    assert.ok(!Number.isNaN(value), `value of ${line}`);
    const family = m[1].replace(/_(bucket|sum|count)$/, '');
    assert.ok(types.has(m[1]) || types.get(family) === 'histogram', `TYPE before ${m[1]}`);
    samples.push({ name: m[1], labels, value });
  }
  return { types, samples };
}

function sample(parsed, name, labels = {}) {
  return parsed.samples.find((s) => s.name === name &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v) &&
    Object.keys(s.labels).length === Object.keys(labels).length);
}

async function scrape(s = stack) {
  const r = await get(s.url('/metrics'));
  assert.equal(r.status, 200, r.text);
  assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  return parseExposition(r.text);
}

/** Checks one histogram series: buckets cumulative, ascending le, +Inf
 * last and equal to _count. Returns the count. */
function histogram(parsed, name, labels) {
  const buckets = parsed.samples.filter((s) => s.name === `${name}_bucket` &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(buckets.length >= 2, `buckets of ${name} ${JSON.stringify(labels)}`);
  let prevLe = -Infinity;
  let prev = 0;
  for (const b of buckets) {
    const le = b.labels.le === '+Inf' ? Infinity : Number(b.labels.le);
    assert.ok(le > prevLe, 'le ascending');
    assert.ok(b.value >= prev, 'buckets cumulative');
    prevLe = le;
    prev = b.value;
  }
  assert.equal(buckets.at(-1).labels.le, '+Inf');
  const count = sample(parsed, `${name}_count`, labels);
  const sum = sample(parsed, `${name}_sum`, labels);
  assert.ok(count && sum, `${name}_count and _sum`);
  assert.equal(count.value, prev, '_count is the +Inf bucket');
  assert.ok(sum.value >= 0);
  return count.value;
}

const counter = (parsed, name, labels) => sample(parsed, name, labels)?.value ?? 0;

// ---------------------------------------------------------------- tests

test('a login with openid-client moves the login, token, route and store metrics', T, async () => {
  const before0 = await scrape();
  const cfg = await client.discovery(new URL(stack.issuer), rp.client_id, {},
    client.ClientSecretBasic(rp.client_secret), { execute: [client.allowInsecureRequests], timeout: 5 });

  // a wrong password first: a failed login of the method
  const bad = new HttpAgent();
  await assert.rejects(bad.loginViaPages({
    authorizeUrl: client.buildAuthorizationUrl(cfg, {
      redirect_uri: RP, scope: 'openid', state: client.randomState(),
      code_challenge: await client.calculatePKCECodeChallenge(client.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    }),
    account: user.account, password: 'Wrong-Password-1234',
  }), /login was refused/);

  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: 'openid', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const cb = await new HttpAgent().loginViaPages({ authorizeUrl: url, account: user.account, password: user.password });
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  assert.ok(tokens.access_token);

  const after0 = await scrape();
  assert.equal(after0.types.get('isso_logins_total'), 'counter');
  assert.equal(
    counter(after0, 'isso_logins_total', { method: 'taipeipass', result: 'completed' }) -
      counter(before0, 'isso_logins_total', { method: 'taipeipass', result: 'completed' }),
    1, 'one completed login of the method');
  assert.ok(
    counter(after0, 'isso_logins_total', { method: 'taipeipass', result: 'failed' }) >
      counter(before0, 'isso_logins_total', { method: 'taipeipass', result: 'failed' }),
    'the wrong password counted as a failed login');
  assert.equal(
    counter(after0, 'isso_tokens_issued_total', { grant_type: 'authorization_code' }) -
      counter(before0, 'isso_tokens_issued_total', { grant_type: 'authorization_code' }),
    1, 'one token response for the code');

  assert.equal(after0.types.get('isso_http_request_duration_seconds'), 'histogram');
  assert.ok(histogram(after0, 'isso_http_request_duration_seconds', { route: '/token' }) >= 1);
  assert.ok(histogram(after0, 'isso_http_request_duration_seconds', { route: '/authorize' }) >= 2);
  assert.ok(histogram(after0, 'isso_http_request_duration_seconds', { route: '/login/' }) >= 2,
    'the method pages by their route pattern');
  assert.ok(histogram(after0, 'isso_store_call_duration_seconds', {}) > 0);
  assert.ok(counter(after0, 'isso_http_responses_total', { code: '2xx' }) > 0);

  // route patterns only: no raw path, code, token or client id in any label
  for (const s of after0.samples) {
    for (const v of Object.values(s.labels)) {
      assert.ok(!v.includes('?') && !v.includes(rp.client_id) && !v.includes(tokens.access_token),
        `label value ${v} is a pattern`);
    }
  }
  const routes = new Set(after0.samples.filter((s) => s.name === 'isso_http_request_duration_seconds_count').map((s) => s.labels.route));
  await get(stack.url(`/no/such/${'x'.repeat(40)}`));
  await get(stack.url('/login/taipeipass/does-not-exist?t=abc'));
  const after1 = await scrape();
  const routes1 = new Set(after1.samples.filter((s) => s.name === 'isso_http_request_duration_seconds_count').map((s) => s.labels.route));
  for (const r of routes1) assert.ok(routes.has(r) || r === '(none)', `no new route label ${r} for unknown paths`);

  assert.equal(after1.types.get('isso_worker_queue_depth'), 'gauge');
  assert.ok(sample(after1, 'isso_worker_queue_depth', { pool: 'background' }).value >= 0);
  assert.equal(sample(after1, 'isso_worker_queue_depth', { pool: 'hash' }).value, 0, 'no password waits');
  // counted at most every 10 s: here the count of the first scrape
  assert.ok(sample(after1, 'isso_sessions_active').value >= 0);
  assert.ok(sample(after1, 'process_start_time_seconds').value > 1.7e9);
});

test('/metrics is refused to a non-allowed address and through a proxy', T, async () => {
  const other = new HttpAgent({ localAddress: '127.0.0.2' });
  const r = await other.get(stack.url('/metrics'));
  assert.equal(r.status, 403);
  assert.ok(!/isso_/.test(r.body), 'no metric in the refusal');
  // the same address is allowed by default for the rest
  assert.equal((await other.get(stack.url('/healthz'))).status, 200);

  // from loopback but through a proxy that names its client
  const viaProxy = await get(stack.url('/metrics'), { 'X-Forwarded-For': '203.0.113.9' });
  assert.equal(viaProxy.status, 403);
  const forwarded = await get(stack.url('/metrics'), { Forwarded: 'for=127.0.0.1' });
  assert.equal(forwarded.status, 403);
  assert.match(stack.issod.stderr, /"event":"metrics_refused"/);

  // metrics.enabled = 0: not served at all
  assert.equal((await get(off.url('/metrics'))).status, 404);
  assert.equal((await get(off.url('/healthz'))).status, 200);
});

test('a metrics.allow that does not parse stops the start', T, async () => {
  const r = await stack.issoctl(['client', 'list'], { env: { ISSO_METRICS_ALLOW: '127.0.0.1, 10.0.0.0/33' }, allowFailure: true });
  assert.ok(r.failed, 'issoctl refused the configuration');
  assert.match(r.stderr + r.stdout, /metrics\.allow: a network's prefix length is out of range/);
});

test('/healthz answers ok; /readyz follows the store', T, async () => {
  const h = await get(stack.url('/healthz'));
  assert.equal(h.status, 200);
  assert.equal(h.text, 'ok\n');
  const ready = await get(stack.url('/readyz'));
  assert.equal(ready.status, 200, ready.text);
  assert.deepEqual(JSON.parse(ready.text), { status: 'ready' });

  // The SQLite file moved away under the running daemon: its open
  // connections would go on writing to a file nobody will read again.
  const db = path.join(stack.tmp, 'isso.db');
  fs.renameSync(db, `${db}.moved`);
  try {
    const r = await get(stack.url('/readyz'));
    assert.equal(r.status, 503, r.text);
    assert.match(r.headers.get('content-type'), /^application\/json/);
    const body = JSON.parse(r.text);
    assert.equal(body.status, 'unavailable');
    assert.match(body.reason, /database file/);
    assert.equal((await get(stack.url('/healthz'))).status, 200, 'the process still answers');
  } finally {
    fs.renameSync(`${db}.moved`, db);
  }
  // back without a restart
  let back;
  for (let i = 0; i < 20; i++) {
    back = await get(stack.url('/readyz'));
    if (back.status === 200) break;
    await sleep(100);
  }
  assert.equal(back.status, 200, back.text);
});

// The unit in dist/systemd passes systemd-analyze verify without a single
// warning (verify only warns about unknown keys and bad values, so any
// output fails here) and its hardening scores as exposure "OK". verify
// insists that ExecStart exists: the copy checked runs the built issod.
test('dist/systemd/issod.service verifies and is hardened', T, (t) => {
  const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((f) => fs.existsSync(f));
  if (!analyze) {
    t.skip('systemd-analyze is not installed (Debian package systemd): the unit was NOT verified');
    return;
  }
  const unit = fs.readFileSync(path.join(REPO, 'dist', 'systemd', 'issod.service'), 'utf8');
  for (const line of ['ProtectSystem=strict', 'NoNewPrivileges=yes', 'PrivateTmp=yes', 'ProtectHome=yes',
    'CapabilityBoundingSet=\n', 'MemoryDenyWriteExecute=yes', 'SystemCallFilter=@system-service',
    'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX', 'User=isso', 'StateDirectory=isso',
    'ReadWritePaths=/var/lib/isso']) {
    assert.ok(unit.includes(line), `the unit has ${line}`);
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-unit-'));
  try {
    const file = path.join(dir, 'issod.service');
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/issod /m);
    fs.writeFileSync(file, unit.replace(/^ExecStart=\/usr\/local\/bin\/issod /m, `ExecStart=${path.join(BUILD_DIR, 'issod')} `));
    const v = spawnSync(analyze, ['verify', '--man=no', file], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stderr.trim(), '', 'no warning from systemd-analyze verify');

    const sec = spawnSync(analyze, ['security', '--offline=yes', '--no-pager', file], { encoding: 'utf8', timeout: 20_000 });
    const m = /Overall exposure level for issod\.service: ([0-9.]+) (\w+)/.exec(sec.stdout + sec.stderr);
    assert.ok(m, `systemd-analyze security said: ${sec.stdout}${sec.stderr}`);
    assert.ok(Number(m[1]) <= 2.0, `exposure ${m[1]} ${m[2]}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('issod stops cleanly', T, async () => {
  await off.stop();
  off = null;
  await stack.stop();
  stack = null;
});
