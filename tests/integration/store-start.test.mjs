// issod started while its PostgreSQL store is unreachable: it does not
// listen, tries again with a growing pause (one store_waiting line per
// attempt, never the conninfo's password), and serves once the server is
// up: a full login and a client_credentials grant. Past
// store.start_timeout it exits non-zero saying why; SIGTERM during the
// wait ends it at once. The cluster is a throwaway one (lib/pgsql.mjs).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as client from 'openid-client';
import { startStack, Daemon, waitReady, HttpAgent, redirectParams, limit, sleep, BUILD_DIR, REPO } from './lib/harness.mjs';
import { Postgres } from './lib/pgsql.mjs';

const RP = 'http://127.0.0.1:9/cb'; // never contacted: the agent stops at it
const T = { timeout: limit(90_000) };
const PASSWORD = 'Never-In-Logs-7f3a91';

let pg;
let stack;
let user;
let rp;

/** A new issod on the stack's port and store; env overrides the stack's. */
function startIssod(env = {}) {
  const d = new Daemon('issod', path.join(BUILD_DIR, 'issod'), [], {
    env: {
      ...stack.env,
      // trust authentication ignores it; it must never reach a log line
      ISSO_STORE_CONNINFO: `${pg.conninfo} password=${PASSWORD}`,
      ...env,
    },
    cwd: stack.tmp,
  });
  stack.issod = d;
  return d;
}

async function untilLog(daemon, re, count, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if ((daemon.stderr.match(re) ?? []).length >= count) return;
    if (!daemon.running) throw daemon.failure(`exited before logging ${re} ${count} times`);
    await sleep(50);
  }
  throw daemon.failure(`did not log ${re} ${count} times within ${timeoutMs} ms`);
}

async function listening(url) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

/** Parsed JSON log lines of the daemon with this event. */
function events(daemon, name) {
  return daemon.stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => {
    try { return JSON.parse(l); } catch { return null; }
  }).filter((e) => e?.event === name);
}

const SANITIZER = /(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:)/;

function noSanitizerReport(d) {
  assert.ok(!SANITIZER.test(d.stderr), `${d.name} reported a sanitizer error:\n${d.tail()}`);
}

before(async () => {
  pg = new Postgres().init();
  stack = await startStack({
    label: 'store-start',
    env: { ISSO_STORE_DRIVER: 'postgresql', ISSO_STORE_CONNINFO: pg.conninfo },
  });
  user = await stack.addUser({
    account: 'wait.citizen', password: 'Tp-Waiting-Store-42', phone: '0912000222',
    name: '陳等待', idNumber: 'A123456789', birthdate: '1990-04-05',
  });
  rp = await stack.registerClient({
    name: '臺北市測試機關 等待', redirectUris: [RP], scope: 'openid profile',
    grantTypes: ['authorization_code', 'client_credentials'],
  });
  const r = await stack.issod.stop();
  assert.equal(r.code, 0, 'the first issod stops cleanly');
}, { timeout: limit(60_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
  if (pg) pg.destroy();
});

test('started with PostgreSQL down: waits without listening, then serves a login and client_credentials', T, async () => {
  pg.stop();
  let d;
  try {
    d = startIssod();
    await untilLog(d, /"event":"store_waiting"/g, 3, limit(20_000));
    assert.equal(d.running, true);
    assert.equal(await listening(`${stack.issuer}/healthz`), false, 'not listening while the store is away');
    const waits = events(d, 'store_waiting');
    assert.deepEqual(waits.slice(0, 3).map((e) => e.attempt), ['1', '2', '3']);
    assert.deepEqual(waits.slice(0, 3).map((e) => e.retry_in_ms), ['500', '1000', '2000'], 'the pause doubles');
    assert.match(waits[0].reason, /postgresql/i);
  } finally {
    pg.start();
  }
  await waitReady(d, `${stack.issuer}/readyz`, limit(30_000));
  assert.equal(events(d, 'store_reached').length, 1);
  assert.ok(!d.stderr.includes(PASSWORD), 'the conninfo password is never logged');

  const cfg = await client.discovery(new URL(stack.issuer), rp.client_id, { id_token_signed_response_alg: 'ES256' },
    client.ClientSecretBasic(rp.client_secret), { execute: [client.allowInsecureRequests], timeout: 15 });
  const verifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(cfg, {
    redirect_uri: RP, scope: 'openid profile', state, nonce,
    code_challenge: await client.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
  });
  const cb = await new HttpAgent().loginViaPages({ authorizeUrl: url, account: user.account, password: user.password, consent: true });
  assert.ok(redirectParams(cb).get('code'), `a code in ${cb}`);
  const tokens = await client.authorizationCodeGrant(cfg, new URL(cb), {
    pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce,
  });
  assert.equal(tokens.claims().iss, stack.issuer);
  const info = await client.fetchUserInfo(cfg, tokens.access_token, tokens.claims().sub);
  assert.equal(info.sub, tokens.claims().sub);
  const cc = await client.clientCredentialsGrant(cfg);
  assert.ok(cc.access_token, 'a client_credentials token');

  const r = await d.stop();
  assert.equal(r.code, 0, 'stops cleanly on SIGTERM');
  noSanitizerReport(d);
});

test('store.start_timeout passed: issod exits non-zero and says why', T, async () => {
  pg.stop();
  try {
    const t0 = Date.now();
    const d = startIssod({ ISSO_STORE_START_TIMEOUT: '2' });
    const exited = await Promise.race([d.exited.then(() => true), sleep(limit(20_000)).then(() => false)]);
    assert.ok(exited, 'issod exited');
    assert.notEqual(d.exitCode, 0, `exit code ${d.exitCode}`);
    assert.ok(Date.now() - t0 >= 2000, 'it waited for the timeout');
    const failed = events(d, 'startup_failed');
    assert.equal(failed.length, 1, d.tail());
    assert.match(failed[0].reason, /store\.start_timeout \(2 s/);
    assert.ok(events(d, 'store_waiting').length >= 2, 'it tried more than once');
    assert.ok(!d.stderr.includes(PASSWORD), 'the conninfo password is never logged');
    noSanitizerReport(d);
  } finally {
    pg.start();
  }
});

test('SIGTERM while waiting for the store: issod stops at once', T, async () => {
  pg.stop();
  try {
    const d = startIssod();
    // past the first pauses, into a long one
    await untilLog(d, /"event":"store_waiting"/g, 4, limit(20_000));
    const t0 = Date.now();
    d.child.kill('SIGTERM');
    await d.exited;
    assert.ok(Date.now() - t0 < 2000, `stopped in ${Date.now() - t0} ms`);
    assert.equal(d.exitCode, 0);
    assert.equal(events(d, 'startup_failed').length, 0);
    noSanitizerReport(d);
  } finally {
    pg.start();
  }
});

test('a store that answers but cannot be used is not waited for', T, async () => {
  // Another master key cannot open the stored signing keys: no outage
  // that waiting would cure, so issod exits at once.
  const d = startIssod({ ISSO_KEYS_MASTER_KEY_FILE: path.join(stack.tmp, 'another-master.key') });
  const exited = await Promise.race([d.exited.then(() => true), sleep(limit(10_000)).then(() => false)]);
  assert.ok(exited, `issod exited: ${d.tail()}`);
  assert.notEqual(d.exitCode, 0);
  assert.equal(events(d, 'store_waiting').length, 0);
  assert.match(events(d, 'startup_failed')[0]?.reason ?? '', /master key/);
  noSanitizerReport(d);
});

test('no session is waited out, whatever the reason (here no such database); a failing migration is not', T, async () => {
  // no such database: issod cannot get a session, like a server still
  // starting; it waits (an operator may be creating it), then gives up
  const nodb = startIssod({
    ISSO_STORE_CONNINFO: `${pg.conninfo} dbname=isso_no_such_db password=${PASSWORD}`,
    ISSO_STORE_START_TIMEOUT: '2',
  });
  const gone = await Promise.race([nodb.exited.then(() => true), sleep(limit(15_000)).then(() => false)]);
  assert.ok(gone, `issod exited: ${nodb.tail()}`);
  assert.notEqual(nodb.exitCode, 0);
  assert.ok(events(nodb, 'store_waiting').length >= 1, 'it waited');
  assert.match(events(nodb, 'store_waiting')[0].reason, /isso_no_such_db/);
  assert.match(events(nodb, 'startup_failed')[0]?.reason ?? '', /store\.start_timeout/);
  assert.ok(!nodb.stderr.includes(PASSWORD), 'the password stays out of the log');
  noSanitizerReport(nodb);

  // a data folder whose migrations end with one that fails
  const datadir = path.join(stack.tmp, 'datadir-broken');
  fs.mkdirSync(path.join(datadir, 'migrations'), { recursive: true });
  for (const d of ['templates', 'static', 'locales', 'data']) fs.symlinkSync(path.join(REPO, d), path.join(datadir, d));
  fs.cpSync(path.join(REPO, 'migrations', 'postgresql'), path.join(datadir, 'migrations', 'postgresql'), { recursive: true });
  fs.writeFileSync(path.join(datadir, 'migrations', 'postgresql', '9999-broken.sql'),
    'CREATE TABLE broken_half (x INTEGER);\nTHIS IS NOT SQL;\n');
  const before = pg.psql('SELECT max(version) FROM schema_version');
  const broken = startIssod({ ISSO_SERVER_DATADIR: datadir });
  const ended = await Promise.race([broken.exited.then(() => true), sleep(limit(15_000)).then(() => false)]);
  assert.ok(ended, `issod exited: ${broken.tail()}`);
  assert.notEqual(broken.exitCode, 0);
  assert.equal(events(broken, 'store_waiting').length, 0);
  assert.match(events(broken, 'startup_failed')[0]?.reason ?? '', /9999/);
  assert.equal(pg.psql('SELECT max(version) FROM schema_version'), before, 'the schema is as it was');
  assert.equal(pg.psql("SELECT count(*) FROM pg_tables WHERE tablename = 'broken_half'"), '0', 'nothing of the failed migration stays');
  noSanitizerReport(broken);
});

test('a SQLite file that cannot be opened is not waited for', T, async () => {
  const d = startIssod({ ISSO_STORE_DRIVER: 'sqlite', ISSO_STORE_PATH: path.join(stack.tmp, 'no-such-dir', 'isso.db') });
  const exited = await Promise.race([d.exited.then(() => true), sleep(limit(10_000)).then(() => false)]);
  assert.ok(exited, `issod exited: ${d.tail()}`);
  assert.notEqual(d.exitCode, 0);
  assert.equal(events(d, 'store_waiting').length, 0);
  assert.equal(events(d, 'startup_failed').length, 1);
  noSanitizerReport(d);
});
