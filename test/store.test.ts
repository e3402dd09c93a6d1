// The store's applied point (index and chain hash) lives in the log's last row; the meta row
// is written only when the log is trimmed. What a restart relies on: a reopened file knows
// the index and hash it had, with the log intact, trimmed, or trimmed to nothing, and a
// snapshot of it says the same.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import type { Store } from '../src/store/store.js';
import { inspectSnapshot, takeSnapshot } from '../src/store/snapshot.js';
import { tempStores } from './helpers/stores.js';

const { dir, path: newPath, open } = tempStores('sqlfleet-store-');

const hooks = { check: () => {}, onCommit: () => {} };

async function writeN(s: Store, n: number): Promise<void> {
  if (s.appliedIndex === 0) await s.write([{ sql: 'CREATE TABLE t (x)' }], 1, undefined, hooks);
  for (let i = 0; i < n; i++) await s.write([{ sql: 'INSERT INTO t VALUES (?)', params: [i] }], 1, undefined, hooks);
}

async function reopened(path: string): Promise<{ index: number; hash: string; rows: number }> {
  const s = open(path);
  await s.ready();
  try {
    const r = await s.read([{ sql: 'SELECT count(*) FROM t' }]);
    return { index: s.appliedIndex, hash: s.lastHash, rows: Number((r.results[0] as { rows: unknown[][] }).rows[0]![0]) };
  } finally {
    await s.close();
  }
}

for (const [name, trimTo] of [
  ['the whole log kept', (_: number) => 0],
  ['the log trimmed to its last entry', (i: number) => i - 1],
  ['the log trimmed to nothing', (i: number) => i],
] as const) {
  test(`a reopened store has the index and hash it had, ${name}`, async () => {
    const path = newPath();
    const s = open(path);
    await s.ready();
    await writeN(s, 20);
    const before = { index: s.appliedIndex, hash: s.lastHash };
    assert.equal(before.index, 21);
    assert.match(before.hash, /^[0-9a-f]{64}$/);
    const upTo = trimTo(before.index);
    if (upTo > 0) assert.equal(s.trimLog(upTo), upTo, 'entries trimmed');
    assert.deepEqual({ index: s.appliedIndex, hash: s.lastHash }, before, 'a trim moves nothing');
    await s.close();
    assert.deepEqual(await reopened(path), { ...before, rows: 20 });

    // Writing on after the reopen continues the chain from there.
    const again = open(path);
    await again.ready();
    await writeN(again, 1);
    assert.equal(again.appliedIndex, before.index + 1);
    const afterWrite = again.lastHash;
    await again.close();
    assert.deepEqual(await reopened(path), { index: before.index + 1, hash: afterWrite, rows: 21 });
  });
}

test('a snapshot of a store whose log was trimmed to nothing reports its index and hash', async () => {
  const path = newPath();
  const s = open(path);
  await s.ready();
  await writeN(s, 5);
  s.trimLog(s.appliedIndex);
  await writeN(s, 3); // log holds 7..9 only
  const snap = await takeSnapshot(path, join(dir, 'snap.db'));
  assert.deepEqual(inspectSnapshot(snap.file), { index: 9, hash: s.lastHash, epoch: 0 });
  assert.equal(snap.index, 9);
  await s.close();
});

test('no commit rewrites the meta row: the applied index there moves only with a trim', async () => {
  const path = newPath();
  const s = open(path);
  await s.ready();
  await writeN(s, 10);
  const meta = () => {
    const db = new Database(path, { readonly: true });
    try {
      return Number(db.prepare("SELECT value FROM _sqlfleet_meta WHERE key = 'applied_index'").pluck().get());
    } finally {
      db.close();
    }
  };
  assert.equal(meta(), 0, 'commits wrote the meta row');
  s.trimLog(5);
  assert.equal(meta(), 11, 'the trim did not record the applied index');
  await s.close();
});

test('changes and last_insert_rowid are what SQLite gives the client alone, whatever the log inserts between writes', async () => {
  const s = open(newPath());
  const w = async (sql: string, params?: unknown[]) => {
    const r = await s.write([{ sql, ...(params ? { params: params as never } : {}) }], 1, undefined, hooks);
    return r.results[0] as { changes: number; last_insert_rowid: number };
  };
  await w('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  await w('CREATE TABLE audit (id INTEGER PRIMARY KEY, what TEXT)');
  await w("CREATE TRIGGER t_upd AFTER UPDATE ON t BEGIN INSERT INTO audit(id, what) VALUES (NULL, 'u'); END");
  await w('CREATE TABLE nr (k TEXT PRIMARY KEY, v) WITHOUT ROWID');
  assert.deepEqual(await w('INSERT INTO t VALUES (41, ?)', ['a']), { changes: 1, last_insert_rowid: 41 });
  // The log's own insert came in between: still the client's 41, not the log row's rowid.
  assert.deepEqual(await w("UPDATE t SET v = 'b' WHERE id = 41"), { changes: 1, last_insert_rowid: 41 });
  // An insert made by a trigger does not leave last_insert_rowid behind.
  assert.equal((await w("UPDATE t SET v = 'c' WHERE id = 41")).last_insert_rowid, 41);
  assert.deepEqual(await w('/* leading comment */ INSERT INTO t VALUES (77, ?)', ['d']), { changes: 1, last_insert_rowid: 77 });
  assert.deepEqual(await w("-- a line comment\nINSERT INTO t(v) VALUES ('e')"), { changes: 1, last_insert_rowid: 78 });
  assert.deepEqual(await w("WITH x(v) AS (SELECT 'f') INSERT INTO t(v) SELECT v FROM x"), { changes: 1, last_insert_rowid: 79 });
  // Nothing inserted (OR IGNORE on a taken key): changes 0, the rowid of the last insert stays.
  assert.deepEqual(await w("INSERT OR IGNORE INTO t VALUES (77, 'x')"), { changes: 0, last_insert_rowid: 79 });
  assert.deepEqual(await w('DELETE FROM t WHERE id = 12345'), { changes: 0, last_insert_rowid: 79 });
  // DDL leaves sqlite3_changes() as the last INSERT/UPDATE/DELETE set it.
  await w("INSERT INTO t(v) VALUES ('g')");
  assert.deepEqual(await w('CREATE TABLE other (x)'), { changes: 1, last_insert_rowid: 80 });
});
