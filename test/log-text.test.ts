// The log as the master ships it (Store.entriesJson, each entry's text built by SQLite in
// internal.ts LOG_JSON_SQL): the same text as store.ts entryJson() of the row, keys and
// all, and the same limits.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { Store, entryJson } from '../src/store/store.js';

const hooks = { check: () => {}, onCommit: () => {} };

test('entriesJson gives entryJson of every row, with keys, and keeps to max and maxBytes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-logtext-'));
  const path = join(dir, 'n.db');
  const s = new Store({ path, durability: 'normal', readWorkers: 1, queryTimeoutMs: 5000, maxRows: 1000 });
  try {
    await s.ready();
    await s.write([{ sql: 'CREATE TABLE t (x)' }], 1, undefined, hooks);
    for (let i = 0; i < 40; i++) {
      const key = i % 3 === 0 ? `k"${i}\\ é ✓ 𝄞` : undefined;
      await s.write([{ sql: 'INSERT INTO t VALUES (?)', params: [i % 2 ? `v${i} "q" \\ ü` : i] }], 2, key, hooks);
    }
    const db = new Database(path, { readonly: true });
    const rows = db.prepare('SELECT idx, epoch, ts, seed, hash, stmts, ikey FROM _sqlfleet_log ORDER BY idx').raw(true).all() as [number, number, number, string, string, string, string | null][];
    db.close();
    const want = rows.map(([index, epoch, ts, seed, hash, stmts, key]) => entryJson({ index, epoch, ts, seed, hash, ...(key === null ? {} : { key }) }, stmts));
    const got = s.entriesJson(1, 1000);
    assert.deepEqual(got.map((e) => e.index), rows.map((r) => r[0]));
    assert.deepEqual(got.map((e) => e.json), want);
    assert.equal(s.entriesJson(5, 7).length, 7);
    assert.equal(s.entriesJson(40, 7).length, 2);
    assert.equal(s.entriesJson(42, 7).length, 0);
    assert.equal(s.entriesJson(2, 100, want[1].length).length, 1); // stops once the bytes reach maxBytes
    assert.equal(s.entriesJson(2, 100, want[1].length + 1).length, 2);
  } finally {
    await s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
