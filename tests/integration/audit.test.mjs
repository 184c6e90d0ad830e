// The anchored audit log (src/auth/anchor.c, issoctl audit): issod writes
// signed checkpoints of the chain's head on its own; `issoctl audit verify`
// finds an edited row, a tail cut off below a checkpoint and a chain
// rewritten whole with consistent hashes, in the store and against the
// checkpoints exported earlier. The tampering is done as someone with write
// access to the store but without the signing keys would: on a copy of the
// SQLite store, with the append-only triggers dropped.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import * as jose from 'jose';
import { startStack, sleep, limit } from './lib/harness.mjs';

const T = { timeout: limit(30_000) };
const GENESIS = '0'.repeat(64);

let stack;
let exported; // checkpoints file copied off the server
let copies = 0;

before(async () => {
  stack = await startStack({ label: 'audit', env: { ISSO_AUDIT_CHECKPOINT_INTERVAL: '1' } });
}, { timeout: limit(30_000) });

after(async () => {
  if (stack) await stack.stop({ check: false });
});

const dbPath = () => path.join(stack.tmp, 'isso.db');

function sql(db, text) {
  return execFileSync('sqlite3', ['-bail', db], { input: text, encoding: 'utf8' });
}

function rows(db) {
  const out = execFileSync('sqlite3', ['-json', db, 'SELECT seq, ts, event, data, prev_hash, hash FROM audit ORDER BY seq'], { encoding: 'utf8' });
  return out.trim() ? JSON.parse(out) : [];
}

/** A consistent copy of the live store (SQLite's online backup). */
function copyStore() {
  const file = path.join(stack.tmp, `tampered-${++copies}.db`);
  execFileSync('sqlite3', [dbPath(), `.backup '${file}'`]);
  sql(file, 'DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;');
  return file;
}

/** issoctl audit … against store db; {code, json}. */
async function audit(db, args) {
  const r = await stack.issoctl(['audit', ...args], { env: { ISSO_STORE_PATH: db }, allowFailure: true });
  if (r.failed) return { code: r.code, json: r.json };
  return { code: 0, json: r };
}

const hashOf = (prev, r) => crypto.createHash('sha256').update(`${prev}\n${r.seq}\n${r.ts}\n${r.event}\n${r.data}`).digest('hex');
const q = (s) => `'${String(s).replaceAll("'", "''")}'`;

/** Replaces the audit table by list, recomputing every hash so the chain
 * is consistent again (what an attacker with write access can do). */
function rewrite(db, list) {
  let prev = GENESIS;
  const stmts = ['BEGIN;', 'DELETE FROM audit;'];
  list.forEach((r, i) => {
    const row = { ...r, seq: i + 1 };
    const hash = hashOf(prev, row);
    stmts.push(`INSERT INTO audit (seq, ts, event, data, prev_hash, hash) VALUES (${row.seq}, ${row.ts}, ${q(row.event)}, ${q(row.data)}, ${q(prev)}, ${q(hash)});`);
    prev = hash;
  });
  stmts.push('COMMIT;');
  sql(db, stmts.join('\n'));
}

const problems = (j) => (j.problems ?? []).map((p) => p.problem).join('\n');

test('issod writes signed checkpoints of the chain head by itself; a clean chain verifies, with and without the export', T, async () => {
  await stack.registerClient({ name: '稽核測試機關', redirectUris: ['http://127.0.0.1:9/cb'], scope: 'openid' });
  await stack.addUser({ account: 'audit.one', password: 'Audit-Correct-42', phone: '0911000111', name: '稽核一' });
  // within a few intervals the chain ends in a checkpoint of its own
  const headIsCheckpoint = () => rows(dbPath()).at(-1)?.event === 'audit_checkpoint';
  for (let i = 0; i < 50 && !headIsCheckpoint(); i++) await sleep(200);
  assert.ok(headIsCheckpoint(), 'issod wrote a checkpoint of the newest rows by itself');
  const list = await stack.issoctl(['audit', 'checkpoints', 'export']);
  assert.ok(list.length >= 1);
  const cp = list.at(-1);
  const header = jose.decodeProtectedHeader(cp.jws);
  assert.equal(header.alg, 'ES256');
  assert.equal(header.typ, 'audit-checkpoint+jwt');
  const keys = (await stack.issoctl(['keys', 'list'])).filter((k) => k.alg === 'ES256' && k.active);
  assert.equal(header.kid, keys[0].kid, 'signed with the issuer\'s active ES256 key');
  const jwks = jose.createLocalJWKSet(await (await fetch(stack.url('/jwks'))).json());
  const { payload } = await jose.jwtVerify(cp.jws, jwks, { issuer: stack.issuer });
  const chain = rows(dbPath());
  const signed = chain.find((r) => r.seq === payload.seq);
  assert.ok(signed, 'the signed seq is on the chain');
  assert.equal(signed.hash, payload.hash, 'the signed hash is that row\'s');
  assert.ok(payload.seq < cp.seq, 'a checkpoint vouches for rows before its own');

  // nothing new: no new checkpoint (the head is a checkpoint already)
  await sleep(2500);
  const again = await stack.issoctl(['audit', 'checkpoints', 'export']);
  assert.equal(again.length, list.length, 'no checkpoint without new rows');

  // more events, then an explicit checkpoint, and the export goes off-box
  await stack.addUser({ account: 'audit.two', password: 'Audit-Correct-43', phone: '0911000222', name: '稽核二' });
  const written = await stack.issoctl(['audit', 'checkpoint']);
  assert.equal(typeof written.written, 'boolean');
  exported = path.join(stack.tmp, 'checkpoints.json');
  fs.writeFileSync(exported, JSON.stringify(await stack.issoctl(['audit', 'checkpoints', 'export'])));
  const db = copyStore();
  const plain = await audit(db, ['verify']);
  assert.equal(plain.code, 0, JSON.stringify(plain.json));
  assert.equal(plain.json.ok, true);
  assert.ok(plain.json.checkpoints >= 2);
  assert.ok(plain.json.newest_checkpoint.seq > payload.seq);
  const withFile = await audit(db, ['verify', '--checkpoints', exported]);
  assert.equal(withFile.code, 0, JSON.stringify(withFile.json));
  assert.equal(withFile.json.ok, true);
  assert.ok(withFile.json.exported_checkpoints >= 2);
});

test('checkpoints signed by a retired key still verify after a key rotation', T, async () => {
  const db = copyStore();
  const before = (await stack.issoctl(['keys', 'list'], { env: { ISSO_STORE_PATH: db } })).filter((k) => k.active).map((k) => k.kid);
  await stack.issoctl(['keys', 'rotate'], { env: { ISSO_STORE_PATH: db } });
  const after = (await stack.issoctl(['keys', 'list'], { env: { ISSO_STORE_PATH: db } })).filter((k) => k.active).map((k) => k.kid);
  assert.ok(!after.some((k) => before.includes(k)), 'new active keys');
  const written = await audit(db, ['checkpoint']);
  assert.equal(written.json.written, true, 'keys_rotated is a new row to anchor');
  const r = await audit(db, ['verify', '--checkpoints', exported]);
  assert.equal(r.code, 0, JSON.stringify(r.json));
  assert.equal(r.json.ok, true);
  const kids = rows(db).filter((x) => x.event === 'audit_checkpoint').map((x) => jose.decodeProtectedHeader(JSON.parse(x.data).jws).kid);
  assert.ok(kids.some((k) => before.includes(k)) && kids.some((k) => after.includes(k)), 'checkpoints by the old and the new key');
});

test('an edited row is found by the chain', T, async () => {
  const db = copyStore();
  const target = rows(db).find((r) => r.event === 'member_added');
  sql(db, `UPDATE audit SET data = ${q(JSON.stringify({ uuid: 'someone-else' }))} WHERE seq = ${target.seq};`);
  const r = await audit(db, ['verify']);
  assert.equal(r.code, 1, JSON.stringify(r.json));
  assert.equal(r.json.ok, false);
  assert.equal(r.json.first_bad_seq, target.seq);
});

test('a tail cut off below the newest checkpoint is found with the exported checkpoints', T, async () => {
  const db = copyStore();
  const list = JSON.parse(fs.readFileSync(exported, 'utf8'));
  const newest = jose.decodeJwt(list.at(-1).jws);
  // cut everything from the newest signed row on: the chain is still
  // consistent, and the checkpoints in the store went with the tail
  sql(db, `DELETE FROM audit WHERE seq >= ${newest.seq};`);
  const plain = await audit(db, ['verify']);
  assert.equal(plain.json.first_bad_seq, undefined, 'the shortened chain is consistent in itself');
  const r = await audit(db, ['verify', '--checkpoints', exported]);
  assert.equal(r.code, 1, JSON.stringify(r.json));
  assert.equal(r.json.ok, false);
  assert.match(problems(r.json), /cut off/);
});

test('a chain rewritten whole with consistent hashes is found by the stored checkpoints', T, async () => {
  const db = copyStore();
  const chain = rows(db);
  const target = chain.find((r) => r.event === 'member_added');
  // change one row and recompute every hash; the checkpoints are kept as
  // they were (without the key they cannot be signed again)
  rewrite(db, chain.map((r) => (r.seq === target.seq ? { ...r, data: JSON.stringify({ uuid: 'someone-else' }) } : r)));
  const r = await audit(db, ['verify']);
  assert.equal(r.code, 1, JSON.stringify(r.json));
  assert.equal(r.json.first_bad_seq, undefined, 'the hash chain itself is consistent');
  assert.match(problems(r.json), /changed or the chain rewritten/);
});

test('a rewritten chain with forged checkpoints (another key) is refused', T, async () => {
  const db = copyStore();
  const chain = rows(db);
  const kid = jose.decodeProtectedHeader(chain.find((r) => r.event === 'audit_checkpoint').data.match(/"jws":"([^"]+)"/)[1]).kid;
  const { privateKey } = await jose.generateKeyPair('ES256');
  // change a row, then re-sign every checkpoint over the new hashes with
  // a key of the attacker's (same kid), recomputing the chain as it goes
  const out = [];
  let prev = GENESIS;
  for (const r of chain) {
    let row = { ...r };
    if (r.event === 'member_added' && !out.some((o) => o.event === 'member_added')) row.data = JSON.stringify({ uuid: 'someone-else' });
    if (r.event === 'audit_checkpoint') {
      const head = out.at(-1);
      const jws = await new jose.SignJWT({ iss: stack.issuer, seq: head.seq, hash: head.hash, ts: r.ts })
        .setProtectedHeader({ alg: 'ES256', kid, typ: 'audit-checkpoint+jwt' }).sign(privateKey);
      row.data = JSON.stringify({ hash: head.hash, jws, seq: head.seq });
    }
    row.hash = hashOf(prev, row);
    prev = row.hash;
    out.push(row);
  }
  rewrite(db, out);
  const r = await audit(db, ['verify']);
  assert.equal(r.code, 1, JSON.stringify(r.json));
  assert.match(problems(r.json), /signature does not verify/);
});

test('a chain rewritten whole without its checkpoints is found with the exported checkpoints', T, async () => {
  const db = copyStore();
  const chain = rows(db).filter((r) => r.event !== 'audit_checkpoint');
  const target = chain.find((r) => r.event === 'member_added');
  rewrite(db, chain.map((r) => (r.seq === target.seq ? { ...r, data: JSON.stringify({ uuid: 'someone-else' }) } : r)));
  const plain = await audit(db, ['verify']);
  assert.equal(plain.json.checkpoints, 0, 'no checkpoints left in the store');
  const r = await audit(db, ['verify', '--checkpoints', exported]);
  assert.equal(r.code, 1, JSON.stringify(r.json));
  assert.equal(r.json.ok, false);
  assert.match(problems(r.json), /missing from the store/);
  assert.match(problems(r.json), /changed or the chain rewritten|cut off/);
});

test('a checkpoints file that is not one is refused plainly', T, async () => {
  const bad = path.join(stack.tmp, 'not-checkpoints.json');
  fs.writeFileSync(bad, '{"checkpoints": 1}');
  const r = await audit(dbPath(), ['verify', '--checkpoints', bad]);
  assert.equal(r.code, 2);
  assert.match(r.json.error, /not a JSON array/);
});

test('issod is still healthy and stops cleanly', T, async () => {
  assert.ok(await stack.healthy());
  const s = stack;
  stack = null;
  await s.stop();
});
