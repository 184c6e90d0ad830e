// `make bench-scale`: what changes with size, side by side in one run.
// Three parts (BENCH_PARTS, default all of them):
//
//  sessions  RSS idle and with BENCH_SCALE_SESSIONS (100,000) live
//            single-sign-on sessions, and the SSO code flow's latency
//            before and after: issod (SQLite; the sessions are rows made
//            by copying a real session row) against oidc-provider (its
//            in-memory store, started with as many sessions and grants);
//  persons   the password and SSO code flows with 1,000 and with
//            BENCH_SCALE_PERSONS (1,000,000) persons and members in the
//            store (copies of a bench citizen's rows with their own keys:
//            every index holds them), against oidc-provider with as many
//            accounts in its map;
//  nodes     one issod against two on one PostgreSQL, each behind haproxy
//            (keep-alive, round robin): client_credentials, the SSO and
//            the password code flows. CPU is issod's own, summed over the
//            nodes (PostgreSQL's and haproxy's are not counted).
//
// Prints tables and writes build/bench/scale.json. Like bench/run.mjs it
// asserts nothing; docs/PERFORMANCE.md reports the results.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { rssKiB, runScenario } from './lib/measure.mjs';
import { SCOPE, startIssod, startPeer } from './lib/servers.mjs';
import { passwordLogin } from './lib/oauth.mjs';
import { Postgres } from '../tests/integration/lib/pgsql.mjs';
import sso from './scenarios/sso.mjs';
import password from './scenarios/password.mjs';
import clientCredentials from './scenarios/client-credentials.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..');
const OUT = path.join(REPO, 'build', 'bench', 'scale.json');
const num = (name, def) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : def;
};
const PARTS = new Set((process.env.BENCH_PARTS || 'sessions,persons,nodes').split(','));
const N_SESSIONS = num('BENCH_SCALE_SESSIONS', 100_000);
const N_PERSONS = num('BENCH_SCALE_PERSONS', 1_000_000);
const N_FEW_PERSONS = 1000;

const ctx = {
  seconds: num('BENCH_SECONDS', 5),
  connections: num('BENCH_CONNECTIONS', 32),
  flowConcurrency: num('BENCH_FLOWS', 16),
  passwordConcurrency: num('BENCH_PASSWORD', 4),
  sessions: {},
  logins: {},
  countSessions() {},
};

const f = (x, d = 0) => (x === null || x === undefined || Number.isNaN(x) ? '—' : x.toFixed(d));
const mib = (kib) => f(kib / 1024, 1);

/** Runs SQL on issod's SQLite store while issod runs (WAL; a busy
 * timeout while issod writes). */
function sqlite(t, sql) {
  const db = t.stack.env.ISSO_STORE_PATH;
  return execFileSync('sqlite3', ['-cmd', '.timeout 30000', db, sql], { encoding: 'utf8', maxBuffer: 1 << 26 }).trim();
}

const SEQ = (n) => `WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ${n})`;

/** n more live sessions: copies of a real session row under new ids. */
function seedSessions(t, n) {
  const t0 = Date.now();
  sqlite(t, `${SEQ(n)} INSERT INTO eph (kind, id, data, counter, expires_at)
    SELECT 'session', lower(hex(randomblob(32))), s.data, 0, s.expires_at
    FROM seq, (SELECT data, expires_at FROM eph WHERE kind = 'session' LIMIT 1) s;`);
  const count = Number(sqlite(t, "SELECT count(*) FROM eph WHERE kind = 'session'"));
  return { count, seconds: (Date.now() - t0) / 1000 };
}

/** Persons and members up to n in all: copies of bench.citizen00's rows,
 * each with its own uuid, account, ID hash and phone hash. */
function seedPersons(t, n) {
  const t0 = Date.now();
  const have = Number(sqlite(t, 'SELECT count(*) FROM members'));
  const add = n - have;
  if (add > 0) {
    const tag = Date.now().toString(36);
    sqlite(t, `BEGIN;
      CREATE TEMP TABLE seq AS ${SEQ(add)} SELECT i FROM seq;
      INSERT INTO persons (uuid, id_hash, pii, created_at, updated_at)
        SELECT 'seed-${tag}-' || i, lower(hex(randomblob(32))), p.pii, p.created_at, p.updated_at
        FROM seq, (SELECT * FROM persons WHERE uuid = (SELECT uuid FROM members WHERE account = 'bench.citizen00')) p;
      INSERT INTO members (uuid, account, email_hash, phone_hash, password_hash, level, created_at)
        SELECT 'seed-${tag}-' || i, 'seed.${tag}.' || i, NULL, lower(hex(randomblob(32))), m.password_hash, m.level, m.created_at
        FROM seq, (SELECT * FROM members WHERE account = 'bench.citizen00') m;
      COMMIT;`);
  }
  const count = Number(sqlite(t, 'SELECT count(*) FROM members'));
  return { count, seconds: (Date.now() - t0) / 1000 };
}

async function measure(label, sc, t) {
  process.stdout.write(`  ${sc.name} on ${t.label} (${label}) … `);
  const r = await runScenario(sc, t, ctx);
  console.log(`${f(r.rps, r.rps < 100 ? 1 : 0)} ops/s, p99 ${f(r.p99, 2)} ms, ${f(r.cpu_ms_per_op, 3)} CPU ms/op${r.errors ? `, ${r.errors} errors ${JSON.stringify(r.firstErrors ?? [])}` : ''}`);
  return { label, scenario: sc.name, server: t.label, ...r };
}

function table(title, rows) {
  console.log(`\n${title}`);
  const head = ['scenario', 'server', 'state', 'ops/s', 'p50 ms', 'p99 ms', 'CPU ms/op', 'errors'];
  const body = rows.map((r) => [r.scenario, r.server, r.label, f(r.rps, r.rps < 100 ? 1 : 0), f(r.p50, 2), f(r.p99, 2), f(r.cpu_ms_per_op, 3), String(r.errors)]);
  const w = head.map((_, i) => Math.max(...[head, ...body].map((r) => [...r[i]].length)));
  const line = (r) => r.map((c, i) => (i < 3 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  console.log(line(head));
  console.log(w.map((n) => '-'.repeat(n)).join('  '));
  for (const r of body) console.log(line(r));
}

async function withTargets(starts, fn) {
  const targets = [];
  try {
    for (const s of starts) targets.push(await s());
    return await fn(targets);
  } finally {
    for (const t of targets) await t.stop().catch((err) => console.error(`stopping ${t.label}: ${err.message}`));
  }
}

async function partSessions(out) {
  console.log(`\nsessions: RSS and the SSO code flow, few sessions and ${N_SESSIONS}`);
  const rows = [];
  const memory = {};
  // issod: the same process before and after its store grows
  await withTargets([async () => (await startIssod({ label: 'bench-scale' }))[0]], async ([t]) => {
    await passwordLogin(t, t.users[0], SCOPE); // one real session row to copy
    memory.issod = { idle_rss_kib: rssKiB(t.pid) };
    rows.push(await measure('few sessions', sso, t));
    const seeded = seedSessions(t, N_SESSIONS);
    console.log(`  issod: ${seeded.count} live sessions in the store (seeded in ${f(seeded.seconds, 1)} s)`);
    rows.push(await measure(`${seeded.count} sessions`, sso, t));
    memory.issod.sessions_rss_kib = rssKiB(t.pid);
    memory.issod.sessions = seeded.count;
  });
  // the peer keeps sessions in memory: one started empty, one with them
  for (const n of [0, N_SESSIONS]) {
    await withTargets([() => startPeer('opaque', { seedSessions: n })], async ([t]) => {
      await new Promise((r) => setTimeout(r, 1000));
      const rss = rssKiB(t.pid);
      if (n === 0) memory.peer = { idle_rss_kib: rss };
      else Object.assign(memory.peer, { sessions_rss_kib: rss, sessions: n });
      rows.push(await measure(n ? `${n} sessions` : 'few sessions', sso, t));
    });
  }
  table('sessions', rows);
  console.log('\nRSS (MiB)            idle   with the sessions');
  for (const [k, m] of Object.entries(memory)) console.log(`  ${k.padEnd(16)} ${mib(m.idle_rss_kib).padStart(6)}  ${mib(m.sessions_rss_kib).padStart(8)}  (${m.sessions})`);
  out.sessions = { rows, memory };
}

async function partPersons(out) {
  console.log(`\npersons: the password and SSO code flows with ${N_FEW_PERSONS} and ${N_PERSONS} persons`);
  const rows = [];
  await withTargets([async () => (await startIssod({ label: 'bench-scale' }))[0]], async ([t]) => {
    for (const n of [N_FEW_PERSONS, N_PERSONS]) {
      const seeded = seedPersons(t, n);
      console.log(`  issod: ${seeded.count} members (seeded in ${f(seeded.seconds, 1)} s)`);
      rows.push(await measure(`${seeded.count} persons`, password, t));
      rows.push(await measure(`${seeded.count} persons`, sso, t));
    }
    out.persons_store_bytes = fs.statSync(t.stack.env.ISSO_STORE_PATH).size;
  });
  for (const n of [N_FEW_PERSONS, N_PERSONS]) {
    await withTargets([() => startPeer('opaque', { seedUsers: n })], async ([t]) => {
      rows.push(await measure(`${n} accounts`, password, t));
      rows.push(await measure(`${n} accounts`, sso, t));
    });
  }
  table('persons', rows);
  out.persons = { rows };
}

async function partNodes(out) {
  console.log('\nnodes: one issod against two, on one PostgreSQL, behind haproxy');
  const rows = [];
  for (const nodes of [1, 2]) {
    const pg = new Postgres().init();
    try {
      await withTargets([async () => (await startIssod({
        label: `bench-nodes${nodes}`, pg, nodes, key: `nodes${nodes}`, title: `issod ×${nodes}`,
      }))[0]], async ([t]) => {
        for (const sc of [clientCredentials, sso, password]) rows.push(await measure('PostgreSQL', sc, t));
      });
    } finally {
      pg.destroy();
    }
  }
  table('nodes', rows);
  console.log('\ntwo nodes / one node (ops/s; CPU ms/op)');
  for (const sc of [clientCredentials, sso, password]) {
    const [a, b] = [1, 2].map((n) => rows.find((r) => r.scenario === sc.name && r.server === `issod ×${n}`));
    console.log(`  ${sc.name.padEnd(20)} ${f(b.rps / a.rps, 2)}  ${f(b.cpu_ms_per_op / a.cpu_ms_per_op, 2)}`);
  }
  out.nodes = { rows };
}

async function main() {
  const out = {
    date: new Date().toISOString(),
    machine: { nproc: os.availableParallelism(), loadavg_at_start: os.loadavg(), node: process.version },
    settings: { seconds: ctx.seconds, connections: ctx.connections, flows: ctx.flowConcurrency, password: ctx.passwordConcurrency, sessions: N_SESSIONS, persons: N_PERSONS },
  };
  console.log(`iSSO bench-scale: ${out.machine.nproc} cores, each run ${ctx.seconds} s, parts ${[...PARTS].join(', ')}`);
  if (PARTS.has('sessions')) await partSessions(out);
  if (PARTS.has('persons')) await partPersons(out);
  if (PARTS.has('nodes')) await partNodes(out);
  out.machine.loadavg_at_end = os.loadavg();
  fs.mkdirSync(path.dirname(OUT), { recursive: true });
  fs.writeFileSync(OUT, `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwrote ${path.relative(process.cwd(), OUT)}`);
}

main().catch((err) => {
  console.error(err.stack || String(err));
  process.exitCode = 1;
});
