// Measuring: a server's own CPU time and memory from /proc, wrk for plain
// requests, and a keep-alive node loop for flows of several requests.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const WRK_SCRIPT = path.join(HERE, '..', 'wrk', 'request.lua');
export const CLK_TCK = 100; // USER_HZ on Linux (getconf CLK_TCK)

/** utime + stime of pid and its threads, in milliseconds. */
export function cpuMs(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after the command name, which may contain spaces and ')'
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK; // fields 14, 15
}

/** Resident set size of pid in KiB (VmRSS). */
export function rssKiB(pid) {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : null;
}

/** Runs fn while counting the CPU time of each pid in pids; returns
 * {result, cpuMs: [per pid]}. */
export async function withCpu(pids, fn) {
  const before = pids.map(cpuMs);
  const result = await fn();
  const cpu = pids.map((p, i) => cpuMs(p) - before[i]);
  return { result, cpuMs: cpu };
}

/** Percentile (0–100) of a sorted array. */
function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/**
 * wrk against url for seconds with connections; req: {method, body,
 * headers}. Every answer other than 2xx/3xx counts as an error. Returns
 * {ops, seconds, rps, p50, p99, errors} (latencies in ms).
 */
export function wrk(url, { seconds, connections = 32, threads = 1, method = 'GET', body = '', headers = {} }) {
  const env = {
    ...process.env,
    BENCH_METHOD: method,
    BENCH_BODY: body,
    BENCH_HEADERS: Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\n'),
  };
  const args = [`-t${threads}`, `-c${connections}`, `-d${seconds}s`, '--timeout', '5s', '-s', WRK_SCRIPT, url];
  return new Promise((resolve, reject) => {
    execFile('wrk', args, { env, timeout: (seconds + 30) * 1000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`wrk ${args.join(' ')} failed: ${err.message}\n${stderr}`));
      const line = stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (!line) return reject(new Error(`wrk printed no result:\n${stdout}\n${stderr}`));
      const r = JSON.parse(line.slice('BENCH_JSON '.length));
      const s = r.duration_us / 1e6;
      resolve({
        ops: r.requests - r.errors,
        seconds: s,
        rps: (r.requests - r.errors) / s,
        p50: r.p50_us / 1000,
        p99: r.p99_us / 1000,
        errors: r.errors,
      });
    });
  });
}

/**
 * Runs op(state, worker, i) in `concurrency` loops for `seconds` (or
 * until `count` ops have started, when given), state being states[worker]
 * (made beforehand, outside the measurement); an op that throws counts as
 * an error (the first few messages are kept).
 * Returns {ops, seconds, rps, p50, p99, errors, firstErrors}.
 */
export async function loop({ seconds, count = Infinity, concurrency, op, states = [] }) {
  const lat = [];
  let errors = 0;
  const firstErrors = [];
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let started = 0;
  const worker = async (w) => {
    const state = states[w];
    for (let i = 0; process.hrtime.bigint() < end && started < count; i++) {
      started++;
      const t0 = process.hrtime.bigint();
      try {
        await op(state, w, i);
        lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
      } catch (err) {
        errors++;
        if (firstErrors.length < 3) firstErrors.push(String(err?.message ?? err).slice(0, 400));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  lat.sort((a, b) => a - b);
  return { ops: lat.length, seconds: s, rps: lat.length / s, p50: pct(lat, 50), p99: pct(lat, 99), errors, firstErrors };
}

/**
 * Runs scenario sc against target t (its prepare outside the
 * measurement) and returns the run with the server's own CPU time: the
 * sum over t.pids (every node of a cluster). A wrk scenario gets a
 * second of warm-up first.
 */
export async function runScenario(sc, t, ctx) {
  if (sc.tool === 'wrk') {
    await wrk(`${t.issuer}/.well-known/openid-configuration`, { seconds: 1, connections: ctx.connections });
  }
  const state = sc.prepare ? await sc.prepare(t, ctx) : undefined;
  const { result: r, cpuMs: cpus } = await withCpu(t.pids ?? [t.pid], () => sc.run(t, ctx, state));
  const cpu = cpus.reduce((a, b) => a + b, 0);
  const ops = r.logins ? r.ops + r.logins.ops : r.ops;
  return {
    ...r,
    server_cpu_ms: cpu,
    server_cpu_share: cpu / (r.seconds * 1000), // 1.0 = one core busy all the time
    cpu_ms_per_op: r.logins ? null : cpu / Math.max(1, ops),
  };
}
