// A throwaway PostgreSQL cluster for integration tests: initdb and pg_ctl
// from Debian's postgresql package, a unix socket in a temp dir, no TCP,
// trust authentication. As root the server runs as "nobody" (PostgreSQL
// refuses root). Same layout as scripts/pg-test.sh.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

function findBindir() {
  const base = '/usr/lib/postgresql';
  let dirs = [];
  try {
    dirs = fs.readdirSync(base).map((v) => path.join(base, v, 'bin')).sort();
  } catch {
    return null;
  }
  return dirs.filter((d) => fs.existsSync(path.join(d, 'initdb'))).at(-1) ?? null;
}

export const PG_BINDIR = findBindir();

export class Postgres {
  constructor() {
    if (!PG_BINDIR) {
      throw new Error('PostgreSQL server binaries not found: install Debian\'s postgresql package (scripts/setup.sh does)');
    }
    this.asRoot = process.getuid() === 0;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'isso-pg-'));
    this.data = path.join(this.dir, 'data');
    this.log = path.join(this.dir, 'server.log');
    this.conninfo = `host=${this.dir} dbname=isso user=isso`;
    if (this.asRoot) {
      const uid = Number(execFileSync('id', ['-u', 'nobody']).toString().trim());
      fs.chownSync(this.dir, uid, -1);
      fs.chmodSync(this.dir, 0o755);
    }
  }

  run(bin, args) {
    const file = path.join(PG_BINDIR, bin);
    const [cmd, argv] = this.asRoot ? ['runuser', ['-u', 'nobody', '--', file, ...args]] : [file, args];
    try {
      return execFileSync(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 60_000 }).toString();
    } catch (err) {
      let log = '';
      try { log = fs.readFileSync(this.log, 'utf8'); } catch { /* none yet */ }
      throw new Error(`${bin} ${args.join(' ')} failed: ${err.stderr ?? err.message}\n${log}`);
    }
  }

  /** initdb, start, and the database "isso". */
  init() {
    this.run('initdb', ['-D', this.data, '-U', 'isso', '-A', 'trust', '-E', 'UTF8', '--locale=C.UTF-8', '--no-sync']);
    this.start();
    this.run('createdb', ['-h', this.dir, '-U', 'isso', 'isso']);
    return this;
  }

  start() {
    this.run('pg_ctl', ['-D', this.data, '-l', this.log, '-w', '-t', '30', '-o',
      `-c listen_addresses='' -c unix_socket_directories='${this.dir}' -c fsync=off -c synchronous_commit=off -c full_page_writes=off`,
      'start']);
  }

  /** Stops the server (fast: sessions are ended, like a restart). */
  stop() {
    this.run('pg_ctl', ['-D', this.data, '-m', 'fast', '-w', 'stop']);
  }

  /** Runs sql through psql; returns its unaligned output. */
  psql(sql) {
    return this.run('psql', ['-h', this.dir, '-U', 'isso', '-d', 'isso', '-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-c', sql]).trim();
  }

  /** Stops the server if it runs and removes the cluster. */
  destroy() {
    if (fs.existsSync(path.join(this.data, 'postmaster.pid'))) {
      try { this.run('pg_ctl', ['-D', this.data, '-m', 'immediate', '-w', 'stop']); } catch { /* already gone */ }
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
