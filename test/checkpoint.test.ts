// The checkpoint worker runs while the database is written: it starts when the WAL changes,
// copies the WAL's pages into the database file, and ends after a time without writes.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { Checkpointer } from '../src/store/checkpoint.js';

const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-checkpoint-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) assert.fail(`not within ${ms} ms: ${what}`);
    await sleep(20);
  }
}

test('checkpointer: no worker while nothing is written, one while the WAL changes, none again when idle', async () => {
  const path = join(dir, 'c.db');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0'); // only the worker checkpoints
  db.exec('CREATE TABLE t (x)');
  db.pragma('wal_checkpoint(TRUNCATE)'); // an empty WAL: nothing to do
  const c = new Checkpointer({ path, intervalMs: 20, idleStopMs: 1500 });
  try {
    await sleep(200);
    assert.equal(c.running, false, 'nothing written: no worker');
    const before = statSync(path).size;
    const insert = db.prepare('INSERT INTO t VALUES (?)');
    db.transaction(() => {
      for (let i = 0; i < 2000; i++) insert.run('x'.repeat(100));
    })();
    await until('a worker starts', () => c.running);
    await until('the WAL is copied into the database file', () => statSync(path).size > before + 100_000);
    await until('the idle worker ends', () => !c.running);
    insert.run('again');
    await until('a write starts it again', () => c.running);
  } finally {
    await c.stop();
    assert.equal(c.running, false);
    db.close();
  }
});
