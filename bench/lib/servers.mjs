// The two servers under test, started the same way each run:
//  - issod: the gcc RelWithDebInfo build in build/ (or ISSO_BUILD_DIR), on
//    SQLite in a fresh temp dir, with isso-sim for the connectors, through
//    the integration harness (tests/integration/lib/harness.mjs: the same
//    settings as the tests, SIM_CONNECTORS included);
//  - the peer: node oidc-provider (bench/peer/provider.mjs), opaque access
//    tokens, and optionally a second one with JWT access tokens.
// Each target: {key, label, issuer, pid, md, client, users, chooseLink,
// basic, stop()}. startIssod gives two targets of one process: its
// opaque-token client and its JWT-access-token client (sameProcessAs).

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  BUILD_DIR, Daemon, startStack, freePort, waitReady,
} from '../../tests/integration/lib/harness.mjs';
import { startHaproxy } from '../../tests/integration/lib/haproxy.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const RP = 'http://127.0.0.1:9/cb'; // never contacted: the driver stops at it
export const SCOPE = 'openid profile phone email';
const USERS = 16;

function basicAuth(id, secret) {
  const enc = (s) => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString('base64')}`;
}

function benchUsers() {
  return Array.from({ length: USERS }, (_, i) => ({
    account: `bench.citizen${String(i).padStart(2, '0')}`,
    password: `Bench-Pass-${crypto.randomBytes(6).toString('hex')}`,
    name: `測試市民${i}`,
    phone: `09120000${String(i).padStart(2, '0')}`,
    email: `citizen${i}@bench.example`,
  }));
}

async function discovery(issuer) {
  const res = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (res.status !== 200) throw new Error(`${issuer} discovery answered ${res.status}`);
  return res.json();
}

/** Settings a person running the benchmark gives issod: BENCH_ISSOD_ENV,
 * space-separated ISSO_NAME=value pairs (e.g. ISSO_SERVER_HASH_WORKERS=1);
 * the test harness passes no other ISSO_* variable of the shell on. */
function issodSettings() {
  const out = {};
  for (const pair of (process.env.BENCH_ISSOD_ENV || '').split(/\s+/).filter(Boolean)) {
    const m = /^(ISSO_[A-Z0-9_]+)=(.*)$/.exec(pair);
    if (!m) throw new Error(`BENCH_ISSOD_ENV: not ISSO_NAME=value: ${pair}`);
    out[m[1]] = m[2];
  }
  return out;
}

/**
 * Starts issod with isso-sim, registers the bench client and users.
 * opts: label; env (extra ISSO_* settings); key and title (the target's
 * name in the tables); pg (a Postgres from tests/integration/lib/pgsql.mjs:
 * the store) and nodes (1 or 2 issod on it, behind haproxy with
 * keep-alive; the target's issuer is then the proxy and pids every node).
 */
export async function startIssod(opts = {}) {
  const { label = 'bench', key = 'issod', title = 'issod', pg = null, nodes = 0 } = opts;
  // the client cache at its production lifetime (the test harness
  // shortens it to keep the suite fast)
  const env = { ISSO_STORE_CLIENT_CACHE_MS: '1000', ...issodSettings(), ...(opts.env ?? {}) };
  const lbPort = nodes > 0 ? await freePort() : null;
  const lbUrl = lbPort ? `http://127.0.0.1:${lbPort}` : null;
  const stack = await startStack({
    label,
    // info logs one JSON line per request; warn is what a loaded node
    // would run with, and keeps the harness's in-memory log small
    env: {
      ISSO_LOG_LEVEL: process.env.ISSO_LOG_LEVEL || 'warn',
      ...(pg ? { ISSO_STORE_DRIVER: 'postgresql', ISSO_STORE_CONNINFO: pg.conninfo } : {}),
      ...(lbUrl ? { ISSO_SERVER_PUBLIC_URL: lbUrl, ISSO_SERVER_TRUST_PROXY: '1', ISSO_SERVER_TRUSTED_PROXIES: '127.0.0.1' } : {}),
      ...env,
    },
  });
  const extra = [];
  let lb = null;
  const stopAll = async () => {
    if (lb) await lb.stop();
    for (const d of extra) await d.stop();
    await stack.stop({ check: false });
  };
  try {
    const servers = [{ name: 'n1', port: stack.port }];
    for (let i = 1; i < nodes; i++) {
      const port = await freePort();
      const d = new Daemon(`issod-${i + 1}`, path.join(BUILD_DIR, 'issod'), [],
        { env: { ...stack.env, ISSO_SERVER_PORT: String(port) }, cwd: stack.tmp });
      extra.push(d);
      await waitReady(d, `http://127.0.0.1:${port}/.well-known/openid-configuration`);
      servers.push({ name: `n${i + 1}`, port });
    }
    if (lbPort) lb = await startHaproxy({ dir: stack.tmp, port: lbPort, servers, keepAlive: true });
    const issuer = lbUrl ?? stack.issuer;
    const c = await stack.registerClient({
      name: 'Bench agency service',
      redirectUris: [RP],
      scope: SCOPE,
      grantTypes: ['authorization_code', 'refresh_token', 'client_credentials'],
      idTokenAlg: 'ES256',
    });
    // the same service registered for RFC 9068 JWT access tokens
    // (client_credentials only: a person's tokens stay opaque rows)
    const cj = await stack.registerClient({
      name: 'Bench agency service (JWT access tokens)',
      redirectUris: [RP],
      scope: SCOPE,
      grantTypes: ['authorization_code', 'client_credentials'],
      idTokenAlg: 'ES256',
      accessTokenFormat: 'jwt',
    });
    const users = benchUsers();
    for (const u of users) {
      await stack.addUser({ account: u.account, password: u.password, phone: u.phone, name: u.name, email: u.email, phoneVerified: true });
    }
    const pids = [stack.issod.child.pid, ...extra.map((d) => d.child.pid)];
    const main = {
      key,
      label: title,
      issuer,
      pid: pids[0],
      pids,
      lbPid: lb?.child.pid ?? null,
      md: await discovery(issuer),
      client: { client_id: c.client_id, client_secret: c.client_secret, redirect_uri: RP },
      basic: basicAuth(c.client_id, c.client_secret),
      users,
      chooseLink: (href) => new URL(href).pathname === '/login/taipeipass',
      accessTokens: `a person's opaque, one row in ${pg ? 'PostgreSQL' : 'SQLite'}; client_credentials sealed, none stored`,
      stack, // isso-sim's phone (readLastSms, simUrl) for the OTP flow; the store's path
      simPid: stack.sim.child.pid,
      stop: stopAll,
    };
    const jwt = {
      ...main,
      key: `${key}Jwt`,
      label: `${title} (JWT AT)`,
      client: { client_id: cj.client_id, client_secret: cj.client_secret, redirect_uri: RP },
      basic: basicAuth(cj.client_id, cj.client_secret),
      accessTokens: 'ES256 JWT (RFC 9068, none stored)',
      sameProcessAs: key,
      stop: async () => {},
    };
    return [main, jwt];
  } catch (err) {
    await stopAll().catch(() => {});
    throw err;
  }
}

/** Starts node oidc-provider; atFormat 'opaque' or 'jwt'. */
export async function startPeer(atFormat = 'opaque', { seedSessions = 0, seedUsers = 0, key = null, title = null } = {}) {
  const port = await freePort();
  const client = { client_id: `bench-${atFormat}`, client_secret: crypto.randomBytes(24).toString('base64url'), redirect_uri: RP, scope: SCOPE };
  const users = benchUsers();
  const child = spawn(process.execPath, [path.join(HERE, '..', 'peer', 'provider.mjs')], {
    env: {
      ...process.env,
      NODE_ENV: 'production',
      PEER_PORT: String(port),
      PEER_CLIENT: JSON.stringify(client),
      PEER_USERS: JSON.stringify(users),
      PEER_AT_FORMAT: atFormat,
      PEER_SEED_SESSIONS: String(seedSessions),
      PEER_SEED_USERS: String(seedUsers),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const killAtExit = () => child.kill('SIGKILL');
  process.once('exit', killAtExit); // a crashed run leaves no peer behind
  let stderr = '';
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-20000); });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`oidc-provider did not start:\n${stderr}`)), 30_000);
    child.stdout.on('data', (c) => {
      out += c;
      if (out.includes('ready ')) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`oidc-provider exited ${code}:\n${stderr}`));
    });
  });
  const issuer = `http://127.0.0.1:${port}`;
  return {
    key: key ?? (atFormat === 'jwt' ? 'peerJwt' : 'peer'),
    label: title ?? (atFormat === 'jwt' ? 'oidc-provider (JWT AT)' : 'oidc-provider'),
    issuer,
    pid: child.pid,
    pids: [child.pid],
    md: await discovery(issuer),
    client,
    basic: basicAuth(client.client_id, client.client_secret),
    users,
    chooseLink: (href) => /^\/interaction\/[^/]+\/password$/.test(new URL(href).pathname),
    accessTokens: atFormat === 'jwt' ? 'ES256 JWT (in memory: none stored)' : 'opaque (in memory)',
    stderr: () => stderr,
    async stop() {
      process.removeListener('exit', killAtExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}
