// The read pool starts one worker, adds workers (up to its size) when every worker is busy,
// and ends an extra worker that stayed idle: reads are answered all along.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { DRIVER_PATH } from '../src/store/driver.js';
import { ReadPool } from '../src/store/read-pool.js';
import { Store } from '../src/store/store.js';

const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-read-pool-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SLOW = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) AS n FROM c';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('read pool: one worker at start, more while every worker is busy, idle extra workers end', async () => {
  assert.ok(DRIVER_PATH);
  const path = join(dir, 'n.db');
  const store = new Store({ path, durability: 'normal', readWorkers: 1, queryTimeoutMs: 5000, maxRows: 1000 });
  await store.write([{ sql: 'CREATE TABLE t (x)' }], 1, undefined, { check: () => {}, onCommit: () => {} });
  const pool = new ReadPool({ path, size: 3, timeoutMs: 10_000, maxRows: 1000, retireMs: 300 });
  try {
    await pool.ready();
    assert.equal(pool.workers, 1);
    assert.deepEqual((await pool.read([{ sql: 'SELECT 1 AS one' }])).results[0], (await pool.read([{ sql: 'SELECT 1 AS one' }])).results[0]);
    assert.equal(pool.workers, 1, 'reads one at a time need one worker');
    // Three slow reads at once: the pool grows to its size, and all are answered.
    const answers = await Promise.all([pool.read([{ sql: SLOW }]), pool.read([{ sql: SLOW }]), pool.read([{ sql: SLOW }])]);
    for (const a of answers) assert.match(JSON.stringify(a.results[0], (_k, v) => (typeof v === 'bigint' ? String(v) : v)), /2000000/);
    assert.ok(pool.workers >= 2 && pool.workers <= 3, `grew to ${pool.workers} workers`);
    // Idle: the extra workers end, the first stays and still answers.
    const deadline = Date.now() + 5000;
    while (pool.workers > 1 && Date.now() < deadline) await sleep(50);
    assert.equal(pool.workers, 1);
    assert.ok((await pool.read([{ sql: SLOW }])).results[0]);
  } finally {
    await pool.close();
    await store.close();
  }
});
