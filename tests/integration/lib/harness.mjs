// Integration harness: starts the real isso-sim and issod on free loopback
// ports with a fresh temporary directory each, runs issoctl, and drives the
// login pages over plain HTTP (HttpAgent) the way a browser would.
//
// Nothing here stands in for the daemon: every request goes to the binaries
// in ISSO_BUILD_DIR (default <repo>/build).

import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const BUILD_DIR = process.env.ISSO_BUILD_DIR
  ? path.resolve(process.env.ISSO_BUILD_DIR)
  : path.join(REPO, 'build');
export const TESTS_DIR = path.join(REPO, 'tests');
export const NODE_MODULES = path.join(TESTS_DIR, 'node_modules');

const READY_TIMEOUT_MS = 10_000 * Math.max(1, Number(process.env.ISSO_TEST_TIMEOUT_SCALE) || 1);
const STOP_TIMEOUT_MS = 10_000;
const ISSOCTL_TIMEOUT_MS = 15_000;
const VERBOSE = !!process.env.ISSO_TEST_VERBOSE;

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Multiplies test time limits on a slow or loaded machine
 * (ISSO_TEST_TIMEOUT_SCALE=3); never the waits that tests depend on. */
export const TIMEOUT_SCALE = Math.max(1, Number(process.env.ISSO_TEST_TIMEOUT_SCALE) || 1);
export const limit = (ms) => Math.round(ms * TIMEOUT_SCALE);

// ---------------------------------------------------------------- ports

/** A port that was free a moment ago (bind 0 on 127.0.0.1, then close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// ---------------------------------------------------------------- issoctl

/** The issoctl commands that write a client (issoctl [--config FILE] CMD
 * SUB …): issod, another process, takes their changes up within its
 * store.client_cache_ms. `client add` is not one: issod never keeps an
 * unknown client id. */
const CLIENT_WRITES = {
  client: new Set(['approve', 'suspend', 'update', 'rotate-secret', 'delete', 'legacy-api', 'set-optional-scopes']),
  application: new Set(['approve', 'refuse']),
};

export function issoctlWritesClient(args) {
  const a = args[0] === '--config' ? args.slice(2) : args;
  return CLIENT_WRITES[a[0]]?.has(a[1]) ?? false;
}

/** How long issod may keep a client row it read: its store.client_cache_ms
 * (ISSO_STORE_CLIENT_CACHE_MS in env, else the production default). */
export function clientCacheMs(env) {
  const v = env?.ISSO_STORE_CLIENT_CACHE_MS;
  return v === undefined || v === '' ? 1000 : Number(v);
}

/** The lifetime tests start issod with unless they set their own: short,
 * so that waiting out an issoctl change costs little. */
export const TEST_CLIENT_CACHE_MS = 250;

/** The answers of issoctl runs that failed (allowFailure): nothing to wait
 * out after those. */
const issoctlFailures = new WeakSet();

// ---------------------------------------------------------------- daemons

const live = new Set(); // children to kill if the test process exits abruptly
process.once('exit', () => {
  for (const d of live) {
    try { d.child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

const MAX_LOG = 4 * 1024 * 1024;

/** One child process with its stderr/stdout kept in memory. */
export class Daemon {
  constructor(name, file, args, { env, cwd }) {
    this.name = name;
    this.file = file;
    this.args = args;
    this.stderr = '';
    this.stdout = '';
    this.exitCode = null;
    this.signal = null;
    this.child = spawn(file, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(this);
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err) => {
        this.stderr += `\n[harness] spawn failed: ${err.message}\n`;
        this.exitCode = -1;
        live.delete(this);
        resolve();
      });
      this.child.once('exit', (code, signal) => {
        this.exitCode = code;
        this.signal = signal;
        live.delete(this);
        resolve();
      });
    });
    const keep = (which) => (chunk) => {
      const s = chunk.toString('utf8');
      this[which] += s;
      if (this[which].length > MAX_LOG) this[which] = this[which].slice(-MAX_LOG / 2);
      if (VERBOSE) process.stderr.write(s.replace(/^(?=.)/gm, `[${this.name}] `));
    };
    this.child.stdout.on('data', keep('stdout'));
    this.child.stderr.on('data', keep('stderr'));
  }

  get running() {
    return this.exitCode === null && this.signal === null;
  }

  /** The last n characters of stderr, for failure messages. */
  tail(n = 6000) {
    const s = this.stderr || '(no stderr output)';
    return s.length > n ? `…${s.slice(-n)}` : s;
  }

  failure(message) {
    const how = this.signal ? `signal ${this.signal}` : `code ${this.exitCode}`;
    const state = this.running ? 'still running' : `exited with ${how}`;
    return new Error(`${this.name} ${message} (${state})\n--- ${this.name} stderr ---\n${this.tail()}\n--- end ---`);
  }

  /** Sends SIGTERM and waits for the exit; SIGKILL after the cap. */
  async stop(timeoutMs = STOP_TIMEOUT_MS) {
    if (!this.running) return { code: this.exitCode, signal: this.signal, killed: false };
    this.child.kill('SIGTERM');
    let timer;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise((resolve) => { timer = setTimeout(() => resolve(true), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      this.child.kill('SIGKILL');
      await this.exited;
      return { code: this.exitCode, signal: this.signal, killed: true };
    }
    return { code: this.exitCode, signal: this.signal, killed: false };
  }
}

/** Polls url until it answers 200; fails early if the daemon dies. */
export async function waitReady(daemon, url, timeoutMs = READY_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (!daemon.running) throw daemon.failure(`exited before ${url} answered`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.arrayBuffer();
      if (res.status === 200) return;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.cause?.code || err.message;
    }
    await sleep(50);
  }
  throw daemon.failure(`not ready after ${timeoutMs} ms: GET ${url} gave ${last}`);
}

const SANITIZER = /(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|ThreadSanitizer|runtime error:)/;
const ADDR_IN_USE = /(EADDRINUSE|address already in use|address in use)/i;

/** Starts a daemon on a free port; retries with another port if the port
 * was taken between the probe and the bind. make(port) -> Daemon. */
async function startOnFreePort(make, readyUrl, { tries = 4, firstPort = null } = {}) {
  for (let attempt = 1; ; attempt++) {
    const port = attempt === 1 && firstPort ? firstPort : await freePort();
    const d = make(port);
    try {
      await waitReady(d, readyUrl(port));
      // another process may hold the port and have answered for ours
      await sleep(100);
      if (!d.running || ADDR_IN_USE.test(d.stderr)) throw d.failure(`lost port ${port}`);
      return { daemon: d, port };
    } catch (err) {
      if (d.running) await d.stop(2000);
      if (attempt < tries && ADDR_IN_USE.test(d.stderr)) continue;
      throw err;
    }
  }
}

function requireBinary(name) {
  const file = path.join(BUILD_DIR, name);
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new Error(`${file} not found or not executable: build first (cmake -B build && cmake --build build) or set ISSO_BUILD_DIR`);
  }
  return file;
}

/** process.env without ISSO_* (a developer's shell must not leak into the
 * daemons under test), apart from the log level. */
function cleanEnv() {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith('ISSO_') && k !== 'ISSO_LOG_LEVEL') continue;
    env[k] = v;
  }
  return env;
}

// ---------------------------------------------------------------- the stack

/** isso-sim's side of every connector (src/sim/main.c): mode sim, the
 * simulator's accounts and TW FidO SP id and key. The test and `make run`
 * configuration only; issod refuses them for an issuer off loopback. */
export const SIM_CONNECTORS = Object.freeze({
  ISSO_SMS_MODE: 'sim',
  ISSO_SMS_USERNAME: 'isso',
  ISSO_SMS_PASSWORD: 'isso-sim',
  ISSO_TWFIDO_MODE: 'sim',
  ISSO_TWFIDO_SP_SERVICE_ID: 'TPE-ISSO-SIM',
  ISSO_TWFIDO_KEY: '6ec249964849d00314f8dfc7d385d2f78768e2f1d249c49de5849d0e0afaadd4',
  ISSO_TELECOM_MODE: 'sim',
  ISSO_TELECOM_CLIENT_ID: 'isso',
  ISSO_TELECOM_SECRET: 'isso-sim',
  ISSO_MOICA_MODE: 'sim',
  ISSO_MOICA_CLIENT_ID: 'isso',
  ISSO_MOICA_SECRET: 'isso-sim',
  ISSO_NHI_MODE: 'sim',
  ISSO_NHI_CLIENT_ID: 'isso',
  ISSO_NHI_SECRET: 'isso-sim',
});

// ---------------------------------------------------------------- cards

const SOFTHSM_MODULE = process.env.ISSO_SOFTHSM_MODULE || '/usr/lib/softhsm/libsofthsm2.so';
let pkiPromise = null;

/**
 * The test PKI and its SoftHSM2 tokens (scripts/test-pki.sh), made once per
 * test process in a temp dir removed at exit. Tokens are only read by the
 * tests; what a test changes (PIN counters, removed cards) lives in each
 * stack's own testcard state dir. Returns {dir, cards} (cards.json).
 */
export function testPki() {
  if (!pkiPromise) {
    pkiPromise = new Promise((resolve, reject) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-pki-'));
      process.once('exit', () => {
        if (!process.env.ISSO_TEST_KEEP_TMP) fs.rmSync(dir, { recursive: true, force: true });
      });
      execFile(path.join(REPO, 'scripts', 'test-pki.sh'), ['--out', dir], {
        timeout: 120_000,
        maxBuffer: 16 * 1024 * 1024,
      }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`scripts/test-pki.sh failed: ${err.message}\n${stderr}`));
        resolve({ dir, cards: JSON.parse(fs.readFileSync(path.join(dir, 'cards.json'), 'utf8')) });
      });
    });
  }
  return pkiPromise;
}

/**
 * Starts isso-sim and issod (after `issoctl init`) in a fresh temp dir.
 * opts.env: extra ISSO_* settings for issod/issoctl (e.g. ISSO_OIDC_CODE_TTL).
 * opts.label: used in the temp dir's name.
 * opts.cards: also the test PKI (isso-sim --pki), and isso-cardagent over
 *   the testcard PKCS#11 layer on SoftHSM2, trusted for issod's origin;
 *   issod's moica.* / nhi.* / cardagent.* point at them. Then stack.pki,
 *   stack.cards, stack.agentUrl, stack.nhiUrl, stack.cardState are set, and
 *   removeCard / insertCard / unlockCard / stopAgent / startAgent work.
 * opts.pki: the test PKI only (isso-sim --pki, issod's moica.roots and
 *   moica.intermediates), for the mobile certificate (moica-mobile), whose
 *   result certificate issod checks against it; stack.pki is set.
 * Returns a Stack; call stack.stop() at the end (it checks issod exited 0).
 */
export async function startStack(opts = {}) {
  const stack = new Stack(opts);
  try {
    await stack.start();
  } catch (err) {
    await stack.stop({ check: false }).catch(() => {});
    throw err;
  }
  return stack;
}

export class Stack {
  constructor({ env = {}, label = 'isso', keepTmp = !!process.env.ISSO_TEST_KEEP_TMP, cards = false, pki = false } = {}) {
    this.extraEnv = env;
    this.withCards = cards;
    this.withPki = cards || pki;
    this.agent = null;
    this.pki = null;
    this.cards = null;
    this.agentUrl = null;
    this.nhiUrl = null;
    this.cardState = null;
    this.label = label;
    this.keepTmp = keepTmp;
    this.tmp = null;
    this.sim = null;
    this.issod = null;
    this.simUrl = null;
    this.issuer = null;
    this.port = null;
    this.env = null;
    this._metadata = null;
  }

  async start() {
    const issodBin = requireBinary('issod');
    requireBinary('issoctl');
    const simBin = requireBinary('isso-sim');
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `isso-${this.label}-`));
    const base = cleanEnv();

    const simArgs = [];
    let cardEnv = {};
    if (this.withPki) {
      const pki = await testPki();
      this.pki = pki.dir;
      this.cards = pki.cards;
      simArgs.push('--pki', this.pki);
      cardEnv = {
        ISSO_MOICA_ROOTS: path.join(this.pki, 'roots.pem'),
        ISSO_MOICA_INTERMEDIATES: path.join(this.pki, 'chain.pem'),
      };
    }
    if (this.withCards) {
      requireBinary('isso-cardagent');
      requireBinary('libisso-testcard.so');
      this.cardState = path.join(this.tmp, 'testcard');
      fs.mkdirSync(this.cardState);
      this.agentPort = await freePort();
      this.nhiPort = await freePort();
      this.agentUrl = `http://127.0.0.1:${this.agentPort}`;
      this.nhiUrl = `ws://127.0.0.1:${this.nhiPort}/echo`;
      cardEnv = {
        ...cardEnv,
        ISSO_CARDAGENT_URL: this.agentUrl,
        ISSO_CARDAGENT_NHI_URL: this.nhiUrl,
      };
    }

    const sim = await startOnFreePort(
      (port) => new Daemon('isso-sim', simBin, ['serve', '--port', String(port), ...simArgs], { env: base, cwd: this.tmp }),
      (port) => `http://127.0.0.1:${port}/health`,
    );
    this.sim = sim.daemon;
    this.simUrl = `http://127.0.0.1:${sim.port}`;

    const envFor = (port) => ({
      ...base,
      ISSO_SERVER_PORT: String(port),
      ISSO_SERVER_PUBLIC_URL: `http://127.0.0.1:${port}`,
      ISSO_STORE_PATH: path.join(this.tmp, 'isso.db'),
      ISSO_KEYS_MASTER_KEY_FILE: path.join(this.tmp, 'master.key'),
      // Every connector talks to isso-sim (mode sim, its accounts and the
      // published TW FidO test key): issod has no such defaults. The
      // issuer is on loopback, so plain http is fine; 127.0.0.1 (isso-sim,
      // the tests' own agency endpoints) must be listed to be reachable.
      ...SIM_CONNECTORS,
      ISSO_OUTBOUND_ALLOW: '127.0.0.1',
      ISSO_SMS_URL: `${this.simUrl}/api/mtk/SmSend`,
      ISSO_TWFIDO_URL: this.simUrl,
      ISSO_TELECOM_URL: `${this.simUrl}/telecom`,
      ISSO_MOICA_URL: `${this.simUrl}/moica`,
      ISSO_NHI_URL: `${this.simUrl}/nhi`,
      ...cardEnv,
      ISSO_LOG_LEVEL: process.env.ISSO_LOG_LEVEL || 'info',
      // Every test logs in from 127.0.0.1: the per-address limit would
      // otherwise trip half-way through a file. Tests of the limit itself
      // start their own stack with a low value.
      ISSO_SECURITY_IP_RATE_PER_MIN: '100000',
      // Likewise the per-address delays of password guessing (the
      // per-account ones stay as they are).
      ISSO_SECURITY_ADDRESS_FREE_FAILURES: '100000',
      // issod keeps client rows this long (store.client_cache_ms); issoctl()
      // waits it out after a command that writes a client.
      ISSO_STORE_CLIENT_CACHE_MS: String(TEST_CLIENT_CACHE_MS),
      ...this.extraEnv,
    });

    // init before the daemon starts (store, keys), with the port issod will get.
    const firstPort = await freePort();
    this.env = envFor(firstPort);
    this.initResult = await this.issoctl(['init']);

    const od = await startOnFreePort(
      (port) => {
        this.env = envFor(port);
        return new Daemon('issod', issodBin, [], { env: this.env, cwd: this.tmp });
      },
      (port) => `http://127.0.0.1:${port}/.well-known/openid-configuration`,
      { firstPort },
    );
    this.issod = od.daemon;
    this.port = od.port;
    this.issuer = `http://127.0.0.1:${od.port}`;
    if (this.withCards) await this.startAgent();
  }

  /** Starts isso-cardagent (again) on the stack's agent ports, trusting
   * issod's origin (plus opts.trust, an array of origins). */
  async startAgent({ trust = [] } = {}) {
    if (this.agent?.running) throw new Error('isso-cardagent already runs');
    const env = {
      ...cleanEnv(),
      SOFTHSM2_CONF: path.join(this.pki, 'softhsm2.conf'),
      ISSO_TESTCARD_MODULE: SOFTHSM_MODULE,
      ISSO_TESTCARD_STATE: this.cardState,
    };
    const args = ['--listen', '127.0.0.1', '--port', String(this.agentPort),
      '--nhi-port', String(this.nhiPort),
      '--module', path.join(BUILD_DIR, 'libisso-testcard.so'),
      '--nhi-service-cert', path.join(this.pki, 'nhi-service.crt'),
      '--trust', this.issuer];
    for (const t of trust) args.push('--trust', t);
    this.agent = new Daemon('isso-cardagent', path.join(BUILD_DIR, 'isso-cardagent'), args, { env, cwd: this.tmp });
    await waitReady(this.agent, `${this.agentUrl}/selfTest.htm`);
  }

  /** Stops isso-cardagent (a citizen without the component); throws if
   * it did not exit 0 or a sanitizer spoke. */
  async stopAgent() {
    if (!this.agent) return;
    const r = await this.agent.stop();
    const agent = this.agent;
    this.agent = null;
    if (r.killed || r.code !== 0) throw agent.failure('did not exit 0 after SIGTERM');
    if (SANITIZER.test(agent.stderr)) throw agent.failure('reported a sanitizer error');
  }

  /** The testcard module's state file of a card (card_sn or NHI card_no). */
  cardFile(card, what) {
    if (!/^[A-Z0-9]{12,16}$/.test(card)) throw new Error(`not a card number: ${card}`);
    return path.join(this.cardState, `${card}.${what}`);
  }

  /** Takes a card out of its reader / puts it back / unlocks its PIN. */
  removeCard(card) { fs.writeFileSync(this.cardFile(card, 'removed'), ''); }
  insertCard(card) { fs.rmSync(this.cardFile(card, 'removed'), { force: true }); }
  unlockCard(card) { fs.rmSync(this.cardFile(card, 'pin-failures'), { force: true }); }

  /** Absolute URL on issod. */
  url(p = '/') {
    return new URL(p, this.issuer + '/').href;
  }

  /** The discovery document (fetched once). */
  async metadata() {
    if (!this._metadata) {
      const res = await fetch(this.url('/.well-known/openid-configuration'));
      if (res.status !== 200) throw new Error(`discovery answered ${res.status}`);
      this._metadata = await res.json();
    }
    return this._metadata;
  }

  /** True when issod still runs and its discovery answers 200. */
  async healthy() {
    if (!this.issod?.running) return false;
    try {
      const res = await fetch(this.url('/.well-known/openid-configuration'), { signal: AbortSignal.timeout(3000) });
      await res.arrayBuffer();
      return res.status === 200;
    } catch {
      return false;
    }
  }

  /** Runs issoctl with this stack's environment; returns its JSON output.
   * Throws with stdout/stderr when it exits non-zero or prints non-JSON.
   * After a command that wrote a client (issoctlWritesClient) it returns
   * only once issod's client cache lifetime has passed (plus 50 ms), so
   * issod answers with the change, as the test expects; settle: false
   * skips that wait (a client issod cannot have looked up yet). */
  async issoctl(args, { env = {}, allowFailure = false, settle = true } = {}) {
    const out = await this.runIssoctl(args, { env, allowFailure });
    if (settle && !issoctlFailures.has(out) && issoctlWritesClient(args)) {
      await sleep(clientCacheMs({ ...this.env, ...env }) + 50);
    }
    return out;
  }

  /** issoctl() without the wait after a client write: for tests of that
   * wait itself. */
  runIssoctl(args, { env = {}, allowFailure = false } = {}) {
    const file = path.join(BUILD_DIR, 'issoctl');
    return new Promise((resolve, reject) => {
      execFile(file, args, {
        env: { ...this.env, ...env },
        cwd: this.tmp,
        timeout: ISSOCTL_TIMEOUT_MS,
        maxBuffer: 16 * 1024 * 1024,
      }, (err, stdout, stderr) => {
        const shown = `issoctl ${args.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(' ')}`;
        let json;
        try {
          json = stdout.trim() ? JSON.parse(stdout) : undefined;
        } catch {
          json = undefined;
        }
        if (err) {
          if (allowFailure) {
            const failure = { failed: true, code: err.code, stdout, stderr, json };
            issoctlFailures.add(failure);
            return resolve(failure);
          }
          return reject(new Error(`${shown} failed (${err.killed ? 'timed out' : `exit ${err.code}`})\nstderr:\n${stderr}\nstdout:\n${stdout}`));
        }
        if (json === undefined) return reject(new Error(`${shown}: stdout is not JSON:\n${stdout}\nstderr:\n${stderr}`));
        resolve(json);
      });
    });
  }

  /**
   * issoctl client add + approve. Options: name, redirectUris (array),
   * scope, purpose, postLogoutRedirectUri, backchannelLogoutUri, eventsUri, public,
   * idTokenAlg, authMethod, jwksUri, jwks (object or JSON text),
   * grantTypes, requirePar, requireDpop (the per-client PAR / DPoP flags).
   * Returns the add output ({client_id, client_secret?, …}) plus .approved.
   */
  async registerClient(o = {}) {
    const redirectUris = o.redirectUris ?? (o.redirectUri ? [o.redirectUri] : ['http://127.0.0.1:9/cb']);
    const args = ['client', 'add', '--name', o.name ?? 'Test agency service'];
    for (const u of redirectUris) args.push('--redirect-uri', u);
    args.push('--scope', o.scope ?? 'openid');
    if (o.purpose) args.push('--purpose', o.purpose);
    if (o.postLogoutRedirectUri) args.push('--post-logout-redirect-uri', o.postLogoutRedirectUri);
    if (o.backchannelLogoutUri) args.push('--backchannel-logout-uri', o.backchannelLogoutUri);
    if (o.eventsUri) args.push('--events-uri', o.eventsUri);
    if (o.public) args.push('--public');
    if (o.idTokenAlg) args.push('--id-token-alg', o.idTokenAlg);
    if (o.authMethod) args.push('--auth-method', o.authMethod);
    if (o.jwksUri) args.push('--jwks-uri', o.jwksUri);
    if (o.jwks) args.push('--jwks', typeof o.jwks === 'string' ? o.jwks : JSON.stringify(o.jwks));
    for (const g of o.grantTypes ?? []) args.push('--grant-type', g);
    if (o.requirePar) args.push('--require-par');
    if (o.requireDpop) args.push('--require-dpop');
    if (o.accessTokenFormat) args.push('--access-token-format', o.accessTokenFormat);
    if (o.accessTokenAudience) args.push('--access-token-audience', o.accessTokenAudience);
    const added = await this.issoctl(args);
    if (!added || typeof added.client_id !== 'string') {
      throw new Error(`issoctl client add printed no client_id: ${JSON.stringify(added)}`);
    }
    if (!o.public && typeof added.client_secret !== 'string' && o.authMethod !== 'private_key_jwt') {
      throw new Error(`issoctl client add printed no client_secret for a confidential client: ${JSON.stringify(added)}`);
    }
    let approved = null;
    // issod never looked this new client id up: nothing to wait out.
    if (o.approve !== false) approved = await this.issoctl(['client', 'approve', added.client_id], { settle: false });
    return { ...added, redirect_uris: redirectUris, approved };
  }

  /** issoctl user add. Options: account, password, phone, email, name,
   * idNumber, birthdate, gold, phoneVerified. Returns {uuid, …} plus the
   * inputs. */
  async addUser(o = {}) {
    const u = {
      account: o.account ?? `citizen${Math.floor(Math.random() * 1e9)}`,
      password: o.password ?? 'Tp-Correct-Horse-42',
      phone: o.phone ?? '0912345678',
      ...o,
    };
    const args = ['user', 'add', '--account', u.account, '--password', u.password, '--phone', u.phone];
    if (u.email) args.push('--email', u.email);
    if (u.name) args.push('--name', u.name);
    if (u.idNumber) args.push('--id-number', u.idNumber);
    if (u.birthdate) args.push('--birthdate', u.birthdate);
    if (u.gold) args.push('--gold');
    if (u.phoneVerified) args.push('--phone-verified');
    const out = await this.issoctl(args);
    if (!out || typeof out.uuid !== 'string') throw new Error(`issoctl user add printed no uuid: ${JSON.stringify(out)}`);
    return { ...u, ...out };
  }

  /** The last SMS isso-sim's "phone" got: {to, body, code, sent_at}, or null. */
  async readLastSms(phone) {
    const res = await fetch(`${this.simUrl}/phone/${encodeURIComponent(phone)}/sms/last`, { signal: AbortSignal.timeout(3000) });
    if (res.status === 404) {
      await res.arrayBuffer();
      return null;
    }
    if (res.status !== 200) throw new Error(`isso-sim sms/last answered ${res.status}: ${await res.text()}`);
    return res.json();
  }

  /**
   * Stops issod then isso-sim with SIGTERM. With check (default) throws if
   * issod did not exit 0 in time, or if a sanitizer reported anything.
   * Removes the temp dir unless something failed or keepTmp is set.
   */
  /** Stops issod with SIGTERM (it must exit 0, without a sanitizer
   * report) and starts it again on the same port and store: for what
   * must survive a restart. */
  async restartIssod() {
    const r = await this.issod.stop();
    if (r.killed || r.code !== 0) throw this.issod.failure('did not exit 0 on SIGTERM before a restart');
    if (SANITIZER.test(this.issod.stderr)) throw this.issod.failure('reported a sanitizer error');
    this.previousIssodStderr = (this.previousIssodStderr ?? '') + this.issod.stderr;
    this.issod = new Daemon('issod', requireBinary('issod'), [], { env: this.env, cwd: this.tmp });
    await waitReady(this.issod, `${this.issuer}/.well-known/openid-configuration`);
  }

  async stop({ check = true } = {}) {
    const problems = [];
    if (this.issod) {
      const wasRunning = this.issod.running;
      const r = await this.issod.stop();
      if (!wasRunning) problems.push(this.issod.failure('had already exited before the end of the tests'));
      else if (r.killed) problems.push(this.issod.failure(`did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`));
      else if (r.code !== 0) problems.push(this.issod.failure('did not exit 0 after SIGTERM'));
      if (SANITIZER.test(this.issod.stderr)) problems.push(this.issod.failure('reported a sanitizer error'));
    }
    if (this.agent) {
      const r = await this.agent.stop();
      if (r.killed || r.code !== 0) problems.push(this.agent.failure('did not exit 0 after SIGTERM'));
      if (SANITIZER.test(this.agent.stderr)) problems.push(this.agent.failure('reported a sanitizer error'));
    }
    if (this.sim) {
      const r = await this.sim.stop();
      if (r.killed) problems.push(this.sim.failure(`did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM`));
      if (SANITIZER.test(this.sim.stderr)) problems.push(this.sim.failure('reported a sanitizer error'));
    }
    if (this.tmp) {
      if (problems.length || this.keepTmp) {
        process.stderr.write(`[harness] kept ${this.tmp}\n`);
      } else {
        fs.rmSync(this.tmp, { recursive: true, force: true });
      }
    }
    if (check && problems.length) {
      throw new Error(problems.map((p) => p.message).join('\n\n'));
    }
  }
}

// ---------------------------------------------------------------- HTML

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0', '#39': "'" };

/** Decodes the HTML character references that matter for attribute
 * values and text (named basics, decimal and hex). */
export function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+[0-9]*);/gi, (m, ref) => {
    if (ref[0] === '#') {
      const cp = ref[1] === 'x' || ref[1] === 'X' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      return Number.isFinite(cp) && cp >= 0 && cp <= 0x10ffff ? String.fromCodePoint(cp) : m;
    }
    const v = ENTITIES[ref.toLowerCase()];
    return v === undefined ? m : v;
  });
}

const ATTR = /([^\s"'>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;

/** Attributes of a start tag's attribute text, names lower-cased; the
 * first of duplicate attributes wins (as in browsers). */
export function parseAttributes(text) {
  const attrs = {};
  for (const m of text.matchAll(ATTR)) {
    const name = m[1].toLowerCase();
    if (name in attrs) continue;
    const raw = m[2] ?? m[3] ?? m[4];
    attrs[name] = raw === undefined ? '' : decodeEntities(raw);
  }
  return attrs;
}

const TAG = /<(\/?)([a-zA-Z][a-zA-Z0-9:-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g;

/** Splits html into start/end tag tokens and text, without comments,
 * scripts and styles. */
export function tokenize(html) {
  const src = html
    .replace(/<!--[\s\S]*?-->/g, '')
    .replace(/<(script|style)\b(?:[^>"']|"[^"]*"|'[^']*')*>[\s\S]*?<\/\1\s*>/gi, '');
  const tokens = [];
  let last = 0;
  for (const m of src.matchAll(TAG)) {
    if (m.index > last) tokens.push({ type: 'text', text: src.slice(last, m.index) });
    const name = m[2].toLowerCase();
    if (m[1]) {
      tokens.push({ type: 'end', name });
    } else {
      const attrText = m[3].replace(/\/\s*$/, '');
      tokens.push({ type: 'start', name, attrs: parseAttributes(attrText) });
    }
    last = m.index + m[0].length;
  }
  if (last < src.length) tokens.push({ type: 'text', text: src.slice(last) });
  return tokens;
}

const squash = (s) => decodeEntities(s).replace(/\s+/g, ' ').trim();

/** Visible-ish text of an HTML fragment. */
export function textContent(html) {
  return squash(tokenize(html).filter((t) => t.type === 'text').map((t) => t.text).join(' '));
}

function resolveUrl(href, base) {
  try {
    return new URL(href, base).href;
  } catch {
    return null;
  }
}

const VOID_TEXT_INPUTS = new Set(['text', 'hidden', 'password', 'email', 'tel', 'number', 'search', 'url', 'date', '']);

/**
 * Every <form> with its controls. Each form: {action, method, id, attrs,
 * controls: [{tag, type, name, value, checked, disabled, text, attrs}],
 * buttons (submit buttons), fields(): the name/value pairs a browser would
 * send without a button, has(name), value(name)}. Controls outside a form
 * that name it with form="id" belong to it. action is resolved against
 * baseUrl (an empty or absent action is the page's own URL).
 */
export function parseForms(html, baseUrl) {
  const tokens = tokenize(html);
  const forms = [];
  const orphans = [];
  let form = null;
  let select = null;
  let capture = null; // text collected for a button, textarea or option
  const endCapture = () => {
    if (!capture) return;
    const text = capture.parts.join('');
    if (capture.kind === 'textarea') capture.ctl.value = decodeEntities(text).replace(/^\r?\n/, '');
    capture.ctl.text = squash(text);
    if (capture.kind === 'option' && capture.ctl.value === undefined) capture.ctl.value = capture.ctl.text;
    capture = null;
  };
  const endSelect = () => {
    if (!select) return;
    const chosen = select.options.find((o) => o.selected) ?? select.options[0];
    select.value = chosen ? chosen.value : null;
    select = null;
  };
  for (const t of tokens) {
    if (t.type === 'text') {
      if (capture) capture.parts.push(t.text);
      continue;
    }
    if (t.type === 'start') {
      const a = t.attrs;
      if (capture?.kind === 'textarea') {
        capture.parts.push(''); // markup inside a textarea is text; rare in our pages
        continue;
      }
      if (t.name === 'form') {
        if (form) continue; // nested forms are ignored by browsers
        form = {
          attrs: a,
          id: a.id ?? null,
          method: (a.method || 'GET').toUpperCase(),
          action: a.action ? resolveUrl(a.action, baseUrl) : baseUrl,
          enctype: a.enctype || 'application/x-www-form-urlencoded',
          controls: [],
        };
        forms.push(form);
        continue;
      }
      const own = (ctl) => {
        if (a.form) orphans.push({ formId: a.form, ctl });
        else if (form) form.controls.push(ctl);
      };
      if (t.name === 'input') {
        const type = (a.type || 'text').toLowerCase();
        own({
          tag: 'input', type, name: a.name ?? null,
          value: a.value ?? (type === 'checkbox' || type === 'radio' ? 'on' : ''),
          checked: 'checked' in a, disabled: 'disabled' in a, attrs: a, text: '',
        });
      } else if (t.name === 'button') {
        endCapture();
        const ctl = {
          tag: 'button', type: (a.type || 'submit').toLowerCase(), name: a.name ?? null,
          value: a.value ?? '', disabled: 'disabled' in a, attrs: a, text: '',
        };
        own(ctl);
        capture = { kind: 'button', ctl, parts: [] };
      } else if (t.name === 'textarea') {
        endCapture();
        const ctl = { tag: 'textarea', type: 'textarea', name: a.name ?? null, value: '', disabled: 'disabled' in a, attrs: a, text: '' };
        own(ctl);
        capture = { kind: 'textarea', ctl, parts: [] };
      } else if (t.name === 'select') {
        endCapture();
        endSelect();
        select = { tag: 'select', type: 'select', name: a.name ?? null, value: null, options: [], disabled: 'disabled' in a, attrs: a, text: '' };
        own(select);
      } else if (t.name === 'option' && select) {
        endCapture(); // </option> is optional
        const opt = { value: a.value, selected: 'selected' in a, text: '' };
        select.options.push(opt);
        capture = { kind: 'option', ctl: opt, parts: [] };
      }
      continue;
    }
    // end tags
    if (capture && (t.name === capture.kind || (capture.kind === 'option' && t.name === 'select'))) endCapture();
    if (capture?.kind === 'textarea') continue;
    if (t.name === 'select') endSelect();
    else if (t.name === 'form') form = null;
  }
  endCapture();
  endSelect();
  for (const { formId, ctl } of orphans) {
    const f = formId ? forms.find((x) => x.id === formId) : null;
    if (f) f.controls.push(ctl);
  }
  for (const f of forms) decorateForm(f);
  return forms;
}

function decorateForm(f) {
  f.buttons = f.controls.filter((c) => (c.tag === 'button' && c.type === 'submit')
    || (c.tag === 'input' && (c.type === 'submit' || c.type === 'image')));
  f.fields = () => {
    const pairs = [];
    for (const c of f.controls) {
      if (!c.name || c.disabled) continue;
      if (c.tag === 'input') {
        if (c.type === 'checkbox' || c.type === 'radio') {
          if (c.checked) pairs.push([c.name, c.value]);
        } else if (VOID_TEXT_INPUTS.has(c.type) || !['submit', 'image', 'button', 'reset', 'file'].includes(c.type)) {
          pairs.push([c.name, c.value]);
        }
      } else if (c.tag === 'textarea' || (c.tag === 'select' && c.value !== null)) {
        pairs.push([c.name, c.value]);
      }
    }
    return pairs;
  };
  f.has = (name) => f.controls.some((c) => c.name === name);
  f.value = (name) => f.controls.find((c) => c.name === name)?.value;
}

/** Every <a href> with its resolved URL and text: [{href, text, attrs}]. */
export function parseLinks(html, baseUrl) {
  const links = [];
  let cur = null;
  for (const t of tokenize(html)) {
    if (t.type === 'start' && t.name === 'a') {
      cur = t.attrs.href !== undefined ? { href: resolveUrl(t.attrs.href, baseUrl), attrs: t.attrs, parts: [] } : null;
      if (cur) links.push(cur);
    } else if (t.type === 'end' && t.name === 'a') {
      cur = null;
    } else if (t.type === 'text' && cur) {
      cur.parts.push(t.text);
    } else if (t.type === 'start' && t.name === 'img' && cur && t.attrs.alt) {
      cur.parts.push(t.attrs.alt);
    }
  }
  return links.map(({ href, attrs, parts }) => ({ href, attrs, text: squash(parts.join(' ')) }));
}

/** Text of the elements with role="alert" (error messages). */
export function parseAlerts(html) {
  const out = [];
  let cur = null;
  for (const t of tokenize(html)) {
    if (cur) {
      if (t.type === 'text') {
        cur.parts.push(t.text);
      } else if (t.type === 'start' && t.name === cur.name) {
        cur.depth++;
      } else if (t.type === 'end' && t.name === cur.name && --cur.depth === 0) {
        out.push(squash(cur.parts.join(' ')));
        cur = null;
      }
    } else if (t.type === 'start' && (t.attrs.role || '').toLowerCase() === 'alert') {
      cur = { name: t.name, depth: 1, parts: [] };
    }
  }
  if (cur) out.push(squash(cur.parts.join(' ')));
  return out;
}

/** The document's <title> text. */
export function parseTitle(html) {
  const m = /<title\b[^>]*>([\s\S]*?)<\/title\s*>/i.exec(html);
  return m ? squash(m[1]) : null;
}

// ---------------------------------------------------------------- cookies

/** A small RFC 6265 cookie jar (host-only and Domain cookies, Path,
 * Max-Age / Expires, Secure). Like browsers it ignores ports. */
export class CookieJar {
  constructor() {
    this.cookies = [];
  }

  store(url, setCookieHeaders) {
    const u = new URL(url);
    for (const header of setCookieHeaders) {
      const [pair, ...attrParts] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const c = { name, value, domain: u.hostname, hostOnly: true, path: null, expires: null, secure: false, httpOnly: false, sameSite: null };
      let maxAge = null;
      for (const part of attrParts) {
        const i = part.indexOf('=');
        const k = (i < 0 ? part : part.slice(0, i)).trim().toLowerCase();
        const v = i < 0 ? '' : part.slice(i + 1).trim();
        if (k === 'domain' && v) {
          const d = v.replace(/^\./, '').toLowerCase();
          if (u.hostname !== d && !u.hostname.endsWith(`.${d}`)) { c.reject = true; }
          c.domain = d;
          c.hostOnly = false;
        } else if (k === 'path' && v.startsWith('/')) {
          c.path = v;
        } else if (k === 'max-age' && /^-?\d+$/.test(v)) {
          maxAge = parseInt(v, 10);
        } else if (k === 'expires') {
          const t = Date.parse(v);
          if (!Number.isNaN(t)) c.expires = t;
        } else if (k === 'secure') {
          c.secure = true;
        } else if (k === 'httponly') {
          c.httpOnly = true;
        } else if (k === 'samesite') {
          c.sameSite = v;
        }
      }
      if (c.reject) continue;
      if (maxAge !== null) c.expires = maxAge <= 0 ? 0 : Date.now() + maxAge * 1000;
      if (!c.path) {
        const p = u.pathname;
        c.path = p.lastIndexOf('/') > 0 ? p.slice(0, p.lastIndexOf('/')) : '/';
      }
      // a replaced cookie keeps its place (its creation time, RFC 6265 §5.3)
      const i = this.cookies.findIndex((x) => x.name === c.name && x.domain === c.domain && x.path === c.path);
      const alive = c.expires === null || c.expires > Date.now();
      if (i >= 0) {
        if (alive) this.cookies[i] = c;
        else this.cookies.splice(i, 1);
      } else if (alive) {
        this.cookies.push(c);
      }
    }
  }

  matching(url) {
    const u = new URL(url);
    const now = Date.now();
    this.cookies = this.cookies.filter((c) => c.expires === null || c.expires > now);
    return this.cookies
      .filter((c) => (c.hostOnly ? u.hostname === c.domain : u.hostname === c.domain || u.hostname.endsWith(`.${c.domain}`)))
      .filter((c) => u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`))
      .filter((c) => !c.secure || u.protocol === 'https:')
      .sort((a, b) => b.path.length - a.path.length);
  }

  header(url) {
    return this.matching(url).map((c) => `${c.name}=${c.value}`).join('; ');
  }

  get(name) {
    return this.cookies.find((c) => c.name === name)?.value;
  }

  clear() {
    this.cookies = [];
  }
}

// ---------------------------------------------------------------- agent

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export class FlowError extends Error {
  constructor(message, res, agent) {
    const page = res ? `\n--- ${res.status} ${res.url} ---\n${textContent(res.text).slice(0, 1500)}` : '';
    const trace = agent ? `\n--- trace ---\n${agent.trace.slice(-12).map((t) => `${t.method} ${t.url} -> ${t.status}${t.location ? ` ${t.location}` : ''}`).join('\n')}` : '';
    super(`${message}${page}${trace}`);
    this.name = 'FlowError';
    this.res = res;
  }
}

/** Same origin and path (query and fragment ignored). */
export function sameEndpoint(a, b) {
  try {
    const x = new URL(a);
    const y = new URL(b);
    return x.origin === y.origin && x.pathname === y.pathname;
  } catch {
    return false;
  }
}

/**
 * One plain-http request from the local address localAddress (loopback
 * has the whole 127/8, so tests can be several clients): a small fetch
 * look-alike over node:http, which can bind the source address.
 */
function fetchFrom(localAddress, url, { method, headers, body, signal }) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method, localAddress, signal, headers: Object.fromEntries(headers.entries()),
    }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const h = new Headers();
        for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) h.append(res.rawHeaders[i], res.rawHeaders[i + 1]);
        const buf = Buffer.concat(chunks);
        resolve({ status: res.statusCode, headers: h, arrayBuffer: async () => buf });
      });
    });
    req.on('error', reject);
    req.end(body === undefined ? undefined : String(body));
  });
}

/**
 * A browser-less user agent: a cookie jar over fetch with redirect:'manual',
 * and helpers to read and submit the server-rendered forms. localAddress
 * (optional): the loopback address its requests come from.
 */
export class HttpAgent {
  constructor({ lang = 'zh-TW,zh;q=0.9', timeoutMs = 8000, userAgent = 'isso-integration-tests', localAddress = null } = {}) {
    this.localAddress = localAddress;
    this.jar = new CookieJar();
    this.lang = lang;
    this.timeoutMs = timeoutMs;
    this.userAgent = userAgent;
    this.trace = [];
    this.lastFlow = [];
  }

  /**
   * One request, never following redirects. opts: method, headers, body
   * (string/Buffer/URLSearchParams), form (object or [[k,v]…], sent as
   * application/x-www-form-urlencoded). The result has status, headers,
   * text, body (Buffer), location (resolved) and helpers forms(), links(),
   * alerts(), title(), json().
   */
  async request(url, { method = 'GET', headers = {}, body, form } = {}) {
    url = String(url);
    const u = new URL(url);
    const h = new Headers(headers);
    const cookie = this.jar.header(url);
    if (cookie && !h.has('cookie')) h.set('cookie', cookie);
    if (this.lang && !h.has('accept-language')) h.set('accept-language', this.lang);
    if (!h.has('user-agent')) h.set('user-agent', this.userAgent);
    if (form !== undefined) {
      body = new URLSearchParams(form).toString();
      h.set('content-type', 'application/x-www-form-urlencoded');
    }
    if (method !== 'GET' && method !== 'HEAD' && !h.has('origin')) h.set('origin', u.origin);
    const res = this.localAddress
      ? await fetchFrom(this.localAddress, url, { method, headers: h, body, signal: AbortSignal.timeout(this.timeoutMs) })
      : await fetch(url, {
        method, headers: h, body, redirect: 'manual', signal: AbortSignal.timeout(this.timeoutMs),
      });
    this.jar.store(url, res.headers.getSetCookie());
    const buf = Buffer.from(await res.arrayBuffer());
    const loc = res.headers.get('location');
    const out = new HttpResult({
      url, method, status: res.status, headers: res.headers, body: buf,
      location: loc !== null ? resolveUrl(loc, url) : null,
    });
    this.trace.push({ method, url, status: res.status, location: out.location });
    if (this.trace.length > 500) this.trace.splice(0, 250);
    return out;
  }

  get(url, opts = {}) {
    return this.request(url, { ...opts, method: 'GET' });
  }

  postForm(url, form, opts = {}) {
    return this.request(url, { ...opts, method: 'POST', form });
  }

  /**
   * Requests url and follows redirects until stop(nextUrl, res) is true for
   * the next Location (which is then NOT requested) or a non-redirect
   * response arrives. Returns {stopped, url, res}: when stopped, url is the
   * Location we stopped at and res the redirect response; otherwise url and
   * res are the final page's.
   */
  async followUntil(url, stop = () => false, { method = 'GET', headers, body, form, maxHops = 15 } = {}) {
    let req = { method, headers, body, form };
    for (let hop = 0; hop <= maxHops; hop++) {
      const res = await this.request(url, req);
      if (!REDIRECT_STATUSES.has(res.status) || !res.location) return { stopped: false, url, res };
      const next = res.location;
      if (stop(next, res)) return { stopped: true, url: next, res };
      const keep = res.status === 307 || res.status === 308;
      req = keep ? req : { method: 'GET' };
      url = next;
    }
    throw new FlowError(`more than ${maxHops} redirects`, null, this);
  }

  /** The request a browser makes when submitting form (after overrides
   * replace or add fields, and with the clicked submit button's name/value).
   * Returns {url, method, form?}. */
  formRequest(form, overrides = {}, button = null) {
    const pairs = form.fields();
    for (const [k, v] of Object.entries(overrides)) {
      const i = pairs.findIndex(([n]) => n === k);
      if (v === undefined || v === null) {
        if (i >= 0) pairs.splice(i, 1);
      } else if (i >= 0) {
        pairs[i] = [k, String(v)];
      } else {
        pairs.push([k, String(v)]);
      }
    }
    if (button && button.name) pairs.push([button.name, button.value]);
    const action = button?.attrs?.formaction ? resolveUrl(button.attrs.formaction, form.action) : form.action;
    const method = (button?.attrs?.formmethod || form.method).toUpperCase();
    if (method === 'GET') {
      const u = new URL(action);
      u.search = new URLSearchParams(pairs).toString();
      return { url: u.href, method: 'GET' };
    }
    return { url: action, method: 'POST', form: pairs };
  }

  /** Submits form and follows redirects like followUntil. */
  submit(form, overrides = {}, button = null, stop = () => false) {
    const r = this.formRequest(form, overrides, button);
    return this.followUntil(r.url, stop, r);
  }

  /**
   * Walks the portal from an authorization URL to the client's redirect:
   * method choice -> 台北通 -> account/password -> consent (allow or deny).
   * Pages are recognised by content (a form with a password field, a form
   * with decision buttons, a link to /login/taipeipass). Without
   * account/password a login form is an error (used to prove SSO). Returns
   * the URL the OP redirected to (the redirect_uri with code or error),
   * which is never requested. this.lastFlow lists the steps taken.
   */
  async loginViaPages({ authorizeUrl, account, password, consent = true, maxSteps = 10 }) {
    authorizeUrl = String(authorizeUrl);
    const au = new URL(authorizeUrl);
    const redirectUri = au.searchParams.get('redirect_uri');
    const isClient = (next) => (redirectUri ? sameEndpoint(next, redirectUri) : new URL(next).origin !== au.origin);
    const steps = [];
    this.lastFlow = steps;
    let req = { url: authorizeUrl, method: 'GET' };
    let loginSubmitted = false;
    for (let i = 0; i < maxSteps; i++) {
      const r = await this.followUntil(req.url, isClient, req);
      if (r.stopped) {
        steps.push({ step: 'redirect', url: r.url });
        return r.url;
      }
      const res = r.res;
      const forms = res.forms();
      const loginForm = forms.find((f) => f.controls.some((c) => c.name === 'password'));
      const consentForm = forms.find((f) => f.controls.some((c) => c.name === 'decision'));
      if (loginForm) {
        if (loginSubmitted) {
          throw new FlowError(`login was refused (${res.status}): ${res.alerts().join(' | ') || 'no role=alert message'}`, res, this);
        }
        if (account === undefined || password === undefined) {
          throw new FlowError('the login form was shown but no credentials were given', res, this);
        }
        steps.push({ step: 'login', url: res.url, status: res.status });
        req = this.formRequest(loginForm, { account, password });
        loginSubmitted = true;
        continue;
      }
      if (res.status >= 400) {
        // say whose page it is (issod's, or a proxy's) and why
        throw new FlowError(`error page ${res.status} from ${res.url}: ${res.pageText().replace(/\s+/g, ' ').slice(0, 200)}`, res, this);
      }
      if (consentForm) {
        const want = consent ? 'allow' : 'deny';
        const button = consentForm.buttons.find((b) => b.name === 'decision' && b.value === want);
        if (!button) throw new FlowError(`consent form has no decision=${want} button`, res, this);
        steps.push({ step: 'consent', url: res.url, status: res.status });
        req = this.formRequest(consentForm, {}, button);
        continue;
      }
      const pick = res.links().find((l) => l.href && new URL(l.href).pathname === '/login/taipeipass');
      if (pick) {
        steps.push({ step: 'choose', url: res.url, status: res.status });
        req = { url: pick.href, method: 'GET' };
        continue;
      }
      throw new FlowError('page is neither the method choice, the login form nor the consent form', res, this);
    }
    throw new FlowError(`no redirect to the client after ${maxSteps} pages`, null, this);
  }

  /**
   * Follows an end-session URL; if the OP shows a confirmation form, submits
   * it (choosing a button that says yes/logout/confirm, else the first).
   * Returns {redirect: the post-logout URL or null, res: last response}.
   */
  async logoutViaPages(url, { postLogoutRedirectUri = null, maxSteps = 4 } = {}) {
    const isTarget = (next) => (postLogoutRedirectUri ? sameEndpoint(next, postLogoutRedirectUri) : false);
    let req = { url: String(url), method: 'GET' };
    for (let i = 0; i < maxSteps; i++) {
      const r = await this.followUntil(req.url, isTarget, req);
      if (r.stopped) return { redirect: r.url, res: r.res };
      const form = r.res.status < 400 ? r.res.forms().find((f) => f.method === 'POST') : null;
      if (!form) return { redirect: null, res: r.res };
      const button = form.buttons.find((b) => /yes|logout|confirm|ok|sign.?out/i.test(`${b.name} ${b.value}`)) ?? form.buttons[0] ?? null;
      req = this.formRequest(form, {}, button);
    }
    throw new FlowError('logout did not finish', null, this);
  }
}

/** One HTTP answer, with lazy page helpers. */
export class HttpResult {
  constructor({ url, method, status, headers, body, location }) {
    this.url = url;
    this.method = method;
    this.status = status;
    this.headers = headers;
    this.body = body;
    this.location = location;
    this.text = body.toString('utf8');
    this.memo = {};
  }

  get redirected() {
    return REDIRECT_STATUSES.has(this.status) && !!this.location;
  }

  contentType() {
    return (this.headers.get('content-type') || '').toLowerCase();
  }

  isHtml() {
    return this.contentType().startsWith('text/html');
  }

  json() {
    return JSON.parse(this.text);
  }

  forms() {
    this.memo.forms ??= parseForms(this.text, this.url);
    return this.memo.forms;
  }

  links() {
    this.memo.links ??= parseLinks(this.text, this.url);
    return this.memo.links;
  }

  alerts() {
    return parseAlerts(this.text);
  }

  title() {
    return parseTitle(this.text);
  }

  pageText() {
    return textContent(this.text);
  }
}

// ---------------------------------------------------------------- misc

/** Reads the parameters of a redirect URL (query, or fragment when asked). */
export function redirectParams(url, { fragment = false } = {}) {
  const u = new URL(url);
  return fragment ? new URLSearchParams(u.hash.slice(1)) : u.searchParams;
}

/** Decodes a JWT's header and payload without verifying it. */
export function decodeJwt(jwt) {
  const [h, p] = jwt.split('.');
  const dec = (s) => JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
  return { header: dec(h), payload: dec(p) };
}

/** A small HTTP server for a test (e.g. a back-channel logout endpoint).
 * handler(req, bodyBuffer, res). Returns {url, port, close()}. */
export async function startTestServer(handler) {
  const http = await import('node:http');
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      Promise.resolve(handler(req, Buffer.concat(chunks), res)).catch((err) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections?.();
      server.close(() => resolve());
    }),
  };
}
