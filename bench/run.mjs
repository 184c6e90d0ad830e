// `make bench`: issod and node oidc-provider side by side in one run.
// Starts both servers (bench/lib/servers.mjs), runs every scenario of
// bench/scenarios/ against each in turn (short, bounded runs), reads each
// server's own CPU time and RSS from /proc, prints a table and writes
// build/bench/results.json. Stops every process it started.
//
// Settings (environment): BENCH_SECONDS (5) per run, BENCH_CONNECTIONS
// (32, wrk), BENCH_FLOWS (16, node loops of the SSO and refresh flows),
// BENCH_PASSWORD (4, concurrent password logins), BENCH_STORM (16,
// password logins during the storm), BENCH_SESSIONS (300, password
// logins made before the memory is read), BENCH_ONLY (comma-separated
// scenario names), ISSO_BUILD_DIR (default build/).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuMs, rssKiB, runScenario } from './lib/measure.mjs';
import { passwordLogin } from './lib/oauth.mjs';
import { SCOPE, startIssod, startPeer } from './lib/servers.mjs';
import discovery from './scenarios/discovery.mjs';
import jwks from './scenarios/jwks.mjs';
import clientCredentials from './scenarios/client-credentials.mjs';
import introspection from './scenarios/introspection.mjs';
import { introspectionJwt, introspectionSealed } from './scenarios/introspection-self.mjs';
import refresh from './scenarios/refresh.mjs';
import sso from './scenarios/sso.mjs';
import password from './scenarios/password.mjs';
import { stormDiscovery, stormToken } from './scenarios/storm.mjs';
import otpTelecom from './scenarios/otp-telecom.mjs';
import manySessions from './scenarios/sessions.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const BUILD = process.env.ISSO_BUILD_DIR ? path.resolve(process.env.ISSO_BUILD_DIR) : path.join(REPO, 'build');
const OUT = path.join(REPO, 'build', 'bench', 'results.json');
const num = (name, def) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : def;
};

const SCENARIOS = [discovery, jwks, clientCredentials, introspection, introspectionSealed, introspectionJwt, refresh, sso, password, otpTelecom, stormDiscovery, stormToken, manySessions];
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : null;

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    return (err.stdout || err.stderr || '').toString().trim() || null;
  }
}

function machine() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const meminfo = fs.readFileSync('/proc/meminfo', 'utf8');
  const pkg = (name) => JSON.parse(fs.readFileSync(path.join(HERE, 'node_modules', name, 'package.json'), 'utf8')).version;
  return {
    nproc: os.availableParallelism(),
    cpu_model: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? null,
    mem_total_kib: Number(/^MemTotal:\s+(\d+)/m.exec(meminfo)?.[1]) || null,
    kernel: os.release(),
    loadavg_at_start: os.loadavg(),
    node: process.version,
    oidc_provider: pkg('oidc-provider'),
    undici: pkg('undici'),
    argon2_npm: pkg('argon2'),
    wrk: (sh('wrk', ['-v']) || '').split('\n')[0] || null,
    gcc: (sh('gcc', ['--version']) || '').split('\n')[0] || null,
    sqlite: sh('sqlite3', ['--version'])?.split(' ')[0] ?? null,
    issod_commit: sh('git', ['-C', REPO, 'rev-parse', '--short', 'HEAD']),
    issod_build: (() => {
      const m = /^CMAKE_BUILD_TYPE:STRING=(.*)$/m.exec(fs.readFileSync(path.join(BUILD, 'CMakeCache.txt'), 'utf8'));
      return `${BUILD} (${m?.[1] ?? 'unknown'})`;
    })(),
  };
}

const f = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
const rate = (x) => f(x, x !== null && x !== undefined && x < 100 ? 1 : 0);

function printTable(results, targets) {
  const issod = 'issod';
  const ours = (key) => key === issod || key === 'issodJwt';
  const peers = targets.filter((t) => !ours(t.key));
  const rows = [];
  rows.push(['scenario', 'server', 'ops/s', 'p50 ms', 'p99 ms', 'CPU ms/op', 'errors', 'ops/s ×', 'CPU/op ×']);
  for (const sc of results) {
    for (const [key, r] of Object.entries(sc.runs)) {
      // like for like: the JWT peer against issod's JWT client when both ran
      const base = sc.runs[key === 'peerJwt' && sc.runs.issodJwt ? 'issodJwt' : issod];
      const t = targets.find((x) => x.key === key);
      let ratioRps = '';
      let ratioCpu = '';
      if (sc.alone) {
        ratioRps = 'no peer';
      } else if (!ours(key) && base) {
        ratioRps = f(base.rps / r.rps, 2);
        ratioCpu = r.cpu_ms_per_op ? f(base.cpu_ms_per_op / r.cpu_ms_per_op, 2) : '—';
      }
      rows.push([sc.name, t.label, rate(r.rps), f(r.p50, 2), f(r.p99, 2), f(r.cpu_ms_per_op, 3), String(r.errors), ratioRps, ratioCpu]);
      if (r.logins) {
        rows.push([' └ logins meanwhile', t.label, f(r.logins.rps, 1), f(r.logins.p50, 0), f(r.logins.p99, 0), '', String(r.logins.errors), !ours(key) && base ? f(base.logins.rps / r.logins.rps, 2) : '', '']);
      }
    }
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => [...r[i]].length)));
  const line = (r) => r.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  console.log(`\n${line(rows[0])}\n${w.map((n) => '-'.repeat(n)).join('  ')}`);
  for (const r of rows.slice(1)) console.log(line(r));
  console.log(`\n× columns: issod / ${peers.map((p) => p.label).join(', ')}; issod (JWT AT) / oidc-provider (JWT AT) where both ran (ops/s: >1 means issod is faster; CPU/op: <1 means issod spends less of its own CPU per operation)`);
}

async function main() {
  const ctx = {
    seconds: num('BENCH_SECONDS', 5),
    connections: num('BENCH_CONNECTIONS', 32),
    flowConcurrency: num('BENCH_FLOWS', 16),
    passwordConcurrency: num('BENCH_PASSWORD', 4),
    stormLogins: num('BENCH_STORM', 16),
    sessionLogins: num('BENCH_SESSIONS', 300),
    sessions: {},
    logins: {},
  };
  ctx.countSessions = (t, n) => { ctx.logins[t.key] = (ctx.logins[t.key] ?? 0) + n; };
  // one logged-in browser per server, for the introspection token
  ctx.session = (t) => {
    if (!ctx.sessions[t.key]) ctx.countSessions(t, 1);
    ctx.sessions[t.key] ??= passwordLogin(t, t.users[0], SCOPE);
    return ctx.sessions[t.key];
  };

  const info = machine();
  console.log(`iSSO bench: ${info.nproc} × ${info.cpu_model}, ${Math.round(info.mem_total_kib / 1024)} MiB, node ${info.node}, oidc-provider ${info.oidc_provider}, ${info.wrk}`);
  console.log(`each run ${ctx.seconds} s; wrk -t1 -c${ctx.connections}; node flows ×${ctx.flowConcurrency}, password ×${ctx.passwordConcurrency}, storm ×${ctx.stormLogins}`);

  const targets = [];
  const stopAll = async () => {
    for (const t of targets.splice(0)) await t.stop().catch((err) => console.error(`stopping ${t.label}: ${err.message}`));
  };
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.once(sig, () => { stopAll().finally(() => process.exit(130)); });
  }
  const results = [];
  const memory = {};
  try {
    targets.push(...(await startIssod()));
    targets.push(await startPeer('opaque'));
    targets.push(await startPeer('jwt'));
    const byKey = Object.fromEntries(targets.map((t) => [t.key, t]));
    await new Promise((r) => setTimeout(r, 1000));
    for (const t of targets) if (!t.sameProcessAs) memory[t.key] = { label: t.label, idle_rss_kib: rssKiB(t.pid) };

    for (const sc of SCENARIOS) {
      if (only && !only.has(sc.name)) continue;
      const entry = { name: sc.name, title: sc.title, tool: sc.tool, alone: !!sc.alone, runs: {} };
      for (const key of sc.targets) {
        const t = byKey[key];
        process.stdout.write(`  ${sc.name} on ${t.label} … `);
        const run = await runScenario(sc, t, ctx);
        entry.runs[key] = run;
        console.log(`${rate(run.rps)} ops/s, p99 ${f(run.p99, 2)} ms, ${f(run.server_cpu_share, 2)} cores${run.errors ? `, ${run.errors} errors ${JSON.stringify(run.firstErrors ?? [])}` : ''}`);
      }
      results.push(entry);
    }

    for (const t of targets.filter((x) => !x.sameProcessAs)) {
      memory[t.key].after_rss_kib = rssKiB(t.pid);
      memory[t.key].password_logins = ctx.logins[t.key] ?? 0;
      memory[t.key].total_cpu_ms = cpuMs(t.pid);
    }
  } finally {
    await stopAll();
  }

  printTable(results, [
    { key: 'issod', label: 'issod' }, { key: 'issodJwt', label: 'issod (JWT AT)' },
    { key: 'peer', label: 'oidc-provider' }, { key: 'peerJwt', label: 'oidc-provider (JWT AT)' },
  ]);
  console.log('\nRSS (MiB)        idle    after the run   password logins (sessions) made');
  for (const m of Object.values(memory)) {
    console.log(`  ${m.label.padEnd(24)} ${f(m.idle_rss_kib / 1024, 1).padStart(6)}  ${f(m.after_rss_kib / 1024, 1).padStart(14)}   ${m.password_logins}`);
  }

  for (const st of results.filter((x) => x.name.startsWith('password_storm'))) {
    console.log(`\n${st.title}: against each half alone`);
    for (const [key, r] of Object.entries(st.runs)) {
      const v = r.vs_idle;
      if (v) {
        console.log(`  ${key.padEnd(8)} ${f(v.rps_fraction * 100, 1)}% of its ops/s alone; p99 ${f(v.p99_idle_ms, 2)} ms -> ${f(v.p99_storm_ms, 2)} ms; `
          + `password logins ${f(v.logins_alone_rps, 1)}/s alone -> ${f(r.logins.rps, 1)}/s (${f(v.logins_fraction * 100, 1)}%)`);
      }
    }
  }
  info.loadavg_at_end = os.loadavg();

  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${JSON.stringify({
    date: new Date().toISOString(),
    machine: info,
    settings: {
      seconds: ctx.seconds, wrk_connections: ctx.connections, wrk_threads: 1, flow_concurrency: ctx.flowConcurrency,
      password_concurrency: ctx.passwordConcurrency, storm_logins: ctx.stormLogins,
      session_logins: ctx.sessionLogins, scope: SCOPE,
    },
    access_tokens: { issod: 'a person\'s: opaque, stored in SQLite; client_credentials: sealed, not stored; revocations in SQLite', issodJwt: 'client_credentials: ES256 JWT (RFC 9068), not stored; revocations in SQLite', peer: 'opaque, in memory', peerJwt: 'ES256 JWT, not stored' },
    scenarios: results,
    memory,
  }, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), OUT)}`);
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exitCode = 1;
});
