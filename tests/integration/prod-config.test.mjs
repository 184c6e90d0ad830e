// Production refuses simulators: issod and issoctl, given an issuer that is
// not on loopback, refuse to start when a connector is in mode sim, uses
// plain http, carries isso-sim's secret or the published TW FidO test key,
// or card revocation checking is off — in one line naming the setting. A
// correct production configuration starts; so does the loopback test
// configuration. A connector left unconfigured takes its methods off the
// portal. Outbound URLs the policy refuses stop the start or the client
// registration.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  BUILD_DIR, Daemon, HttpAgent, REPO, SIM_CONNECTORS, freePort, limit, startStack, waitReady,
} from './lib/harness.mjs';

const T = { timeout: limit(60_000) };
const ISSUER = 'https://isso.example.gov.tw';
const TEST_KEY = '6ec249964849d00314f8dfc7d385d2f78768e2f1d249c49de5849d0e0afaadd4';
const ALL_METHODS = ['taipeipass', 'moica-mobile', 'telecom', 'moica-card', 'nhi-card'];

const tmps = [];
after(() => {
  if (process.env.ISSO_TEST_KEEP_TMP) return;
  for (const d of tmps) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir() {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-prodcfg-'));
  tmps.push(d);
  return d;
}

/** process.env without ISSO_* (a developer's shell must not leak in). */
function baseEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('ISSO_')) env[k] = v;
  return env;
}

/** A production configuration that is right: https connectors at the
 * services' (unresolved) names, their own accounts and key. */
function prodEnv(dir, port) {
  return {
    ...baseEnv(),
    ISSO_SERVER_PORT: String(port),
    ISSO_SERVER_PUBLIC_URL: ISSUER,
    ISSO_STORE_PATH: path.join(dir, 'isso.db'),
    ISSO_KEYS_MASTER_KEY_FILE: path.join(dir, 'master.key'),
    ISSO_LOG_LEVEL: 'info',
    ISSO_SMS_URL: 'https://sms.example.com.tw/api/mtk/SmSend',
    ISSO_SMS_USERNAME: 'tpe-isso',
    ISSO_SMS_PASSWORD: 'gateway-password-of-the-city',
    ISSO_TWFIDO_URL: 'https://fidoapi.example.gov.tw',
    ISSO_TWFIDO_SP_SERVICE_ID: 'TPE-ISSO',
    ISSO_TWFIDO_KEY: crypto.randomBytes(32).toString('hex'),
    ISSO_TELECOM_URL: 'https://telecom.example.com.tw/telecom',
    ISSO_TELECOM_CLIENT_ID: 'tpe-isso',
    ISSO_TELECOM_SECRET: 'telecom-secret-of-the-city',
    ISSO_MOICA_URL: 'https://moica.example.gov.tw/moica',
    ISSO_MOICA_CLIENT_ID: 'tpe-isso',
    ISSO_MOICA_SECRET: 'moica-secret-of-the-city',
    ISSO_NHI_URL: 'https://nhi.example.gov.tw/nhi',
    ISSO_NHI_CLIENT_ID: 'tpe-isso',
    ISSO_NHI_SECRET: 'nhi-secret-of-the-city',
  };
}

/** Runs issod and expects it to exit by itself; returns {code, stderr}. */
async function issodMustExit(env, dir) {
  const d = new Daemon('issod', path.join(BUILD_DIR, 'issod'), [], { env, cwd: dir });
  let timer;
  const exited = await Promise.race([
    d.exited.then(() => true),
    new Promise((resolve) => { timer = setTimeout(() => resolve(false), limit(10_000)); }),
  ]);
  clearTimeout(timer);
  if (!exited) {
    await d.stop();
    throw d.failure('started although its configuration is wrong');
  }
  return { code: d.exitCode, stderr: d.stderr };
}

function issoctl(args, env, dir) {
  return new Promise((resolve) => {
    execFile(path.join(BUILD_DIR, 'issoctl'), args, { env, cwd: dir, timeout: limit(15_000) },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, stdout, stderr }));
  });
}

// Each production misconfiguration, and the setting the refusal must name.
const MISCONFIGURED = [
  { env: { ISSO_SMS_MODE: 'sim' }, setting: 'sms.mode' },
  { env: { ISSO_TWFIDO_MODE: 'sim' }, setting: 'twfido.mode' },
  { env: { ISSO_TELECOM_MODE: 'sim' }, setting: 'telecom.mode' },
  { env: { ISSO_MOICA_MODE: 'sim' }, setting: 'moica.mode' },
  { env: { ISSO_NHI_MODE: 'sim' }, setting: 'nhi.mode' },
  { env: { ISSO_SMS_URL: 'http://sms.example.com.tw/api/mtk/SmSend' }, setting: 'sms.url' },
  { env: { ISSO_TWFIDO_URL: 'http://fidoapi.example.gov.tw' }, setting: 'twfido.url' },
  { env: { ISSO_TELECOM_URL: 'http://telecom.example.com.tw/telecom' }, setting: 'telecom.url' },
  { env: { ISSO_MOICA_URL: 'http://moica.example.gov.tw/moica' }, setting: 'moica.url' },
  { env: { ISSO_NHI_URL: 'http://nhi.example.gov.tw/nhi' }, setting: 'nhi.url' },
  { env: { ISSO_SMS_PASSWORD: 'isso-sim' }, setting: 'sms.password' },
  { env: { ISSO_TELECOM_SECRET: 'isso-sim' }, setting: 'telecom.secret' },
  { env: { ISSO_MOICA_SECRET: 'isso-sim' }, setting: 'moica.secret' },
  { env: { ISSO_NHI_SECRET: 'isso-sim' }, setting: 'nhi.secret' },
  { env: { ISSO_TWFIDO_KEY: TEST_KEY }, setting: 'twfido.key' },
  { env: { ISSO_TWFIDO_KEY: Buffer.from(TEST_KEY, 'hex').toString('base64') }, setting: 'twfido.key' },
  { env: { ISSO_MOICA_REVOCATION: 'none' }, setting: 'moica.revocation' },
  // the development and test settings as they are, behind a public issuer
  {
    env: {
      ...SIM_CONNECTORS,
      ISSO_SMS_URL: 'http://127.0.0.1:8090/api/mtk/SmSend',
      ISSO_TWFIDO_URL: 'http://127.0.0.1:8090',
    },
    setting: 'sms.mode',
  },
];

test('issod and issoctl refuse each production misconfiguration, naming the setting', T, async () => {
  const dir = tmpDir();
  const port = await freePort();
  for (const { env, setting } of MISCONFIGURED) {
    const all = { ...prodEnv(dir, port), ...env };
    const what = `${Object.keys(env).join(',')} with issuer ${ISSUER}`;
    const r = await issodMustExit(all, dir);
    assert.notEqual(r.code, 0, `issod must fail: ${what}`);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, `issod says it in one line (${what}):\n${r.stderr}`);
    assert.ok(lines[0].includes(`${setting}:`), `issod names ${setting} (${what}): ${lines[0]}`);
    const c = await issoctl(['init'], all, dir);
    assert.notEqual(c.code, 0, `issoctl must fail: ${what}`);
    assert.ok(JSON.parse(c.stdout).error.includes(`${setting}:`), `issoctl names ${setting} (${what}): ${c.stdout}${c.stderr}`);
    // nothing was written before the refusal
    assert.ok(!fs.existsSync(path.join(dir, 'isso.db')), `no store was created (${what})`);
    // secrets are never echoed
    assert.ok(!`${r.stderr}${c.stdout}${c.stderr}`.includes('of-the-city'), `a secret reached the output (${what})`);
  }
});

// Each method and shared connector parses its own section: a key none of
// them knows, or a value out of its range, stops issod and issoctl before
// anything is written, naming the line or the setting.
test('an unknown key or a bad value in a method\'s section stops the start', T, async () => {
  const dir = tmpDir();
  const port = await freePort();
  const cases = [
    ['[sms]\nusername = tpe-isso\nbogus = 1\n', {}, 'line 3: unknown key [sms] bogus'],
    ['[cardagent]\nurl = http://localhost:61161\nnhi_url = wss://localhost:7777/echo\nhint = x\n', {}, 'line 4: unknown key [cardagent] hint'],
    ['[nosuch]\nkey = 1\n', {}, 'line 2: unknown key [nosuch] key'],
    ['[telecom]\nwindow = 9\n', {}, 'telecom.window: out of range (line 2)'],
    ['', { ISSO_TWFIDO_TIME_LIMIT: '601' }, 'twfido.time_limit: out of range (ISSO_TWFIDO_TIME_LIMIT)'],
    ['[taipeipass]\napp_qr_ttl = soon\n', {}, 'taipeipass.app_qr_ttl: not an integer (line 2)'],
    ['[nhi]\nurl = ftp://nhi.example.gov.tw/nhi\n', {}, 'nhi.url: must be an http:// or https:// URL (line 2)'],
  ];
  for (const [text, extra, needle] of cases) {
    const file = path.join(dir, 'isso.conf');
    fs.writeFileSync(file, text);
    const env = { ...prodEnv(dir, port), ...extra };
    const d = new Daemon('issod', path.join(BUILD_DIR, 'issod'), ['--config', file], { env, cwd: dir });
    let timer;
    const exited = await Promise.race([
      d.exited.then(() => true),
      new Promise((resolve) => { timer = setTimeout(() => resolve(false), limit(10_000)); }),
    ]);
    clearTimeout(timer);
    if (!exited) {
      await d.stop();
      throw d.failure(`started with ${JSON.stringify(text)}`);
    }
    assert.equal(d.exitCode, 2, `issod exits 2 (${needle})`);
    assert.equal(d.stderr.trim(), `issod: configuration: ${needle}`);
    const c = await issoctl(['--config', file, 'init'], env, dir);
    assert.equal(c.code, 2, `issoctl exits 2 (${needle}): ${c.stdout}${c.stderr}`);
    assert.equal(JSON.parse(c.stdout).error, `configuration: ${needle}`);
    assert.ok(!fs.existsSync(path.join(dir, 'isso.db')), `no store was created (${needle})`);
  }
});

test('a correct production configuration starts', T, async () => {
  const dir = tmpDir();
  const port = await freePort();
  const env = prodEnv(dir, port);
  const init = await issoctl(['init'], env, dir);
  assert.equal(init.code, 0, `issoctl init: ${init.stdout}${init.stderr}`);
  const d = new Daemon('issod', path.join(BUILD_DIR, 'issod'), [], { env, cwd: dir });
  try {
    await waitReady(d, `http://127.0.0.1:${port}/.well-known/openid-configuration`);
    const meta = await (await fetch(`http://127.0.0.1:${port}/.well-known/openid-configuration`)).json();
    assert.equal(meta.issuer, ISSUER);
    assert.ok(!d.stderr.includes('methods_unavailable'), `every connector is configured:\n${d.stderr}`);
    // OCSP and CRL may be plain http (signed answers), even here
    const r = await issoctl(['init'], { ...env, ISSO_MOICA_OCSP_URL: 'http://ocsp.example.gov.tw/', ISSO_MOICA_CRL_URL: 'http://crl.example.gov.tw/moica.crl' }, dir);
    assert.equal(r.code, 0, `plain http OCSP/CRL: ${r.stdout}${r.stderr}`);
  } finally {
    const s = await d.stop();
    assert.equal(s.code, 0, d.tail());
  }
});

test('issoctl opens only what it needs: no templates, catalogues or connectors', T, async () => {
  const dir = tmpDir();
  const port = await freePort();
  // a data directory with the migrations and nothing else
  const data = path.join(dir, 'data');
  fs.mkdirSync(data);
  fs.symlinkSync(path.join(REPO, 'migrations'), path.join(data, 'migrations'));
  // and MOICA roots that cannot be read: the card method's concern, not issoctl's
  const env = {
    ...prodEnv(dir, port), ISSO_SERVER_DATADIR: data,
    ISSO_MOICA_ROOTS: path.join(dir, 'no-such-roots.pem'),
  };
  const init = await issoctl(['init'], env, dir);
  assert.equal(init.code, 0, `issoctl init: ${init.stdout}${init.stderr}`);
  assert.equal(JSON.parse(init.stdout).keys.length, 2, 'the signing keys were created');
  const add = await issoctl(['client', 'add', '--name', '臺北市測試機關', '--redirect-uri', 'https://agency.example.gov.tw/cb', '--scope', 'openid'], env, dir);
  assert.equal(add.code, 0, `issoctl client add: ${add.stdout}${add.stderr}`);
  // issod, which serves pages, refuses that directory
  const r = await issodMustExit(env, dir);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /templates/);
});

test('a connector url the outbound policy refuses stops the start, naming it', T, async () => {
  const dir = tmpDir();
  const port = await freePort();
  const cases = [
    // a public issuer: private, metadata and loopback addresses need [outbound] allow
    [{ ISSO_SMS_URL: 'https://10.20.30.40/api/mtk/SmSend' }, 'sms.url', 'private'],
    [{ ISSO_NHI_URL: 'https://169.254.169.254/nhi' }, 'nhi.url', 'metadata'],
    [{ ISSO_TELECOM_URL: 'https://[::1]:8443/telecom' }, 'telecom.url', 'loopback'],
    [{ ISSO_MOICA_OCSP_URL: 'http://192.168.1.10/ocsp' }, 'moica.ocsp_url', 'private'],
  ];
  for (const [extra, setting, why] of cases) {
    const r = await issodMustExit({ ...prodEnv(dir, port), ...extra }, dir);
    assert.notEqual(r.code, 0);
    assert.ok(r.stderr.includes(setting) && r.stderr.includes(why), `${setting} (${why}):\n${r.stderr}`);
  }
  // listed, the same address is accepted
  const ok = await issoctl(['init'], { ...prodEnv(dir, port), ISSO_SMS_URL: 'https://10.20.30.40/api/mtk/SmSend', ISSO_OUTBOUND_ALLOW: '10.20.0.0/16' }, dir);
  assert.equal(ok.code, 0, `${ok.stdout}${ok.stderr}`);
  // a malformed allow entry is named
  const bad = await issodMustExit({ ...prodEnv(dir, port), ISSO_OUTBOUND_ALLOW: '10.0.0.0/8, 10.0.0.0/33' }, dir);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /outbound\.allow: entry 2/);
});

// ---- the loopback test configuration, and unconfigured connectors

/** The method ids offered on the portal for a fresh login, and the
 * register links. */
async function portal(stack, client) {
  const agent = new HttpAgent();
  const q = new URLSearchParams({
    response_type: 'code', client_id: client.client_id, redirect_uri: client.redirect_uris[0],
    scope: 'openid', state: 'st-1', nonce: 'n-1',
    code_challenge: crypto.createHash('sha256').update('v'.repeat(43)).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const { res, url } = await agent.followUntil(stack.url(`/authorize?${q}`));
  assert.equal(res.status, 200, `the method page (${url}): ${res.status}`);
  const links = res.links().map((l) => new URL(l.href));
  const offered = links.filter((u) => u.pathname.startsWith('/login/')).map((u) => u.pathname.slice(7));
  const register = links.filter((u) => u.pathname === '/taipeipass/register').length > 0;
  const t = new URL(url).searchParams.get('t');
  return { agent, offered, register, t };
}

let full;
let bare;
before(async () => {
  full = await startStack({ label: 'prodcfg-full' });
  bare = await startStack({
    label: 'prodcfg-bare',
    env: { ISSO_SMS_URL: '', ISSO_TWFIDO_URL: '', ISSO_TELECOM_URL: '', ISSO_MOICA_URL: '', ISSO_NHI_URL: '' },
  });
}, { timeout: limit(60_000) });
after(async () => {
  if (full) await full.stop();
  if (bare) await bare.stop();
});

test('the loopback test configuration starts with every method offered', T, async () => {
  assert.ok(await full.healthy());
  assert.ok(!full.issod.stderr.includes('methods_unavailable'), full.issod.tail());
  const c = await full.registerClient();
  const p = await portal(full, c);
  assert.deepEqual(p.offered, ALL_METHODS);
  assert.ok(p.register, 'the TaipeiPass registration link is offered');
});

test('unconfigured connectors: one log line, their methods are not offered', T, async () => {
  const line = bare.issod.stderr.split('\n').find((l) => l.includes('"methods_unavailable"'));
  assert.ok(line, `no methods_unavailable line:\n${bare.issod.tail()}`);
  const ev = JSON.parse(line);
  assert.equal(ev.methods, 'taipeipass/register,moica-mobile,telecom,moica-card,nhi-card');
  assert.equal(ev.unset, 'sms.url,twfido.url,telecom.url,moica.url,nhi.url');
  assert.equal(bare.issod.stderr.split('\n').filter((l) => l.includes('"methods_unavailable"')).length, 1);

  const c = await bare.registerClient();
  const p = await portal(bare, c);
  assert.deepEqual(p.offered, ['taipeipass'], 'only the password login needs no connector');
  assert.ok(!p.register, 'no registration link without SMS');
  for (const id of ALL_METHODS.slice(1)) {
    const r = await p.agent.get(bare.url(`/login/${id}?t=${encodeURIComponent(p.t)}`));
    assert.equal(r.status, 503, `/login/${id} answers not available`);
  }
  const r = await p.agent.get(bare.url(`/login/taipeipass?t=${encodeURIComponent(p.t)}`));
  assert.equal(r.status, 200);
});

test('issoctl client add refuses a jwks_uri or backchannel_logout_uri the outbound policy refuses', T, async () => {
  const refused = [
    ['--jwks-uri', 'https://10.1.2.3/jwks', 'private'],
    ['--jwks-uri', 'https://169.254.169.254/latest/meta-data', 'metadata'],
    ['--jwks-uri', 'https://127.0.0.2:9/jwks', 'loopback'],
    ['--jwks-uri', 'http://[::1]:9/jwks', 'loopback'],
    ['--jwks-uri', 'https://[::ffff:127.0.0.2]:9/jwks', 'loopback'],
    ['--backchannel-logout-uri', 'https://192.168.0.1/logout', 'private'],
    ['--backchannel-logout-uri', 'https://100.64.0.1/logout', 'CGNAT'],
  ];
  for (const [opt, uri, why] of refused) {
    const args = ['client', 'add', '--name', 'Refused', '--redirect-uri', 'https://rp.example.gov.tw/cb', '--scope', 'openid', opt, uri];
    if (opt === '--jwks-uri') args.push('--auth-method', 'private_key_jwt');
    const r = await full.issoctl(args, { allowFailure: true });
    assert.ok(r.failed, `${opt} ${uri} was accepted`);
    assert.ok(r.json?.error?.includes(why), `${opt} ${uri}: ${r.stdout}`);
  }
  // the harness lists 127.0.0.1 (isso-sim, the tests' own agency endpoints)
  const ok = await full.registerClient({ authMethod: 'private_key_jwt', jwksUri: 'http://127.0.0.1:9/jwks', backchannelLogoutUri: 'http://127.0.0.1:9/bc' });
  assert.ok(ok.client_id);
});

test('with a public issuer, issoctl client add wants https for agency endpoints', T, async () => {
  const dir = tmpDir();
  // an agency endpoint on an internal address the operator listed
  const env = { ...prodEnv(dir, await freePort()), ISSO_OUTBOUND_ALLOW: '127.0.0.1' };
  const base = ['client', 'add', '--name', 'x', '--redirect-uri', 'https://rp.example.gov.tw/cb', '--scope', 'openid'];
  const r = await issoctl([...base, '--backchannel-logout-uri', 'http://127.0.0.1:9/bc'], env, dir);
  assert.notEqual(r.code, 0);
  assert.match(JSON.parse(r.stdout).error, /backchannel-logout-uri refused: plain http/);
  const ok = await issoctl([...base, '--backchannel-logout-uri', 'https://127.0.0.1:9/bc'], env, dir);
  assert.equal(ok.code, 0, `${ok.stdout}${ok.stderr}`);
  const other = await issoctl([...base, '--backchannel-logout-uri', 'https://127.0.0.2:9/bc'], env, dir);
  assert.match(JSON.parse(other.stdout).error, /refused: loopback/);
});
