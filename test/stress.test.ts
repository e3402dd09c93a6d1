// Issue 24 (b): everything at once — 100-row transactional batches, single writes, long
// scans on every node, /db/backup, and a slave joining after the log was trimmed (so it is
// seeded with a snapshot) — then every node is alive, every read answered cleanly, the
// files pass integrity_check and the replicas' checksums agree. STRESS_SECONDS (default
// 20) sets how long the load runs; the hand run is STRESS_SECONDS=600.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { assertSameChecksums, exec, ok, post, startCluster, waitFor, type Cluster, type TestNode } from './helpers/cluster.js';
import { joiningSlave, waitConverged } from './helpers/load.js';

const SECONDS = Number(process.env.STRESS_SECONDS ?? 20);
const JOIN_ID = 7;

let c: Cluster | undefined;
let joiner: TestNode | undefined;
/** Set once the joiner listens: the readers start on it then. */
let joined: TestNode | undefined;
const scratch = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'sqlfleet-stress-'));
before(async () => {
  // Checksums of a long run's tables (500k+ rows) take longer than the harness's default 15 s on a busy machine.
  c = await startCluster({ slaves: 2, extraArgs: ['--log-retain', '200'], requestTimeoutMs: 180_000 });
});
after(async () => {
  await joiner?.kill('SIGTERM');
  await c?.stop();
  fs.rmSync(scratch, { recursive: true, force: true });
});

interface Counts {
  batches: number;
  writes: number;
  reads: number;
  backups: number;
  errors: string[];
}

test(`batches, writes, scans on every node, backups and a snapshot-seeded joiner for ${SECONDS} s: no error, every node alive, identical and intact files`, { timeout: (SECONDS + 600) * 1000 }, async () => {
  assert.ok(c);
  const { master, slaves, dataDir } = c;
  ok(await exec(master, 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT, n INTEGER)'));
  const n: Counts = { batches: 0, writes: 0, reads: 0, backups: 0, errors: [] };
  const deadline = Date.now() + SECONDS * 1000;
  const running = () => Date.now() < deadline && n.errors.length < 20;
  const fail = (what: string, detail: string) => n.errors.push(`${what}: ${detail.slice(0, 300)}`);
  /** A network failure with its cause (undici's "fetch failed" says nothing by itself). */
  const netErr = (e: Error) => ({ status: 0, text: `${e.message} (${String((e.cause as { code?: string; message?: string } | undefined)?.code ?? (e.cause as Error | undefined)?.message ?? 'no cause')})` });
  let seq = 0;

  const batcher = async (w: number) => {
    while (running()) {
      const rows = Array.from({ length: 100 }, () => ({ query: 'INSERT INTO kv(k, v, n) VALUES (?, ?, ?)', params: [`b${w}-${++seq}`, 'x'.repeat(200), seq] }));
      const r = await post(master.url, { queries: rows, transaction: true }, { timeoutMs: 30_000 }).catch(netErr);
      if (r.status === 200) n.batches++;
      else fail('batch', `${r.status} ${r.text}`);
    }
  };
  const writer = async (node: TestNode) => {
    while (running()) {
      const r = await post(node.url, { query: 'INSERT INTO kv(k, v, n) VALUES (?, ?, ?)', params: [`w${node.id}-${++seq}`, 'y', seq] }, { timeoutMs: 30_000 }).catch(netErr);
      if (r.status === 200) n.writes++;
      else fail(`write via node ${node.id}`, `${r.status} ${r.text}`);
    }
  };
  const reader = async (node: () => TestNode | undefined) => {
    while (running()) {
      const target = node();
      if (!target) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      // A long scan (the window in which a checkpoint could pull pages from under a reader),
      // over at most the newest 50,000 rows so a long run's growing table stays under --query-timeout.
      const r = await post(target.url, { command: 'query', query: 'SELECT count(*), max(k), sum(length(v)), sum(n) FROM (SELECT * FROM kv ORDER BY rowid DESC LIMIT 50000)' }, { timeoutMs: 30_000 }).catch(netErr);
      if (r.status === 200) n.reads++;
      else fail(`read on node ${target.id}`, `${r.status} ${r.text}`);
    }
  };
  const backups = async () => {
    while (running()) {
      await new Promise((r) => setTimeout(r, 1500));
      const res = await fetch(`${master.url}/db/backup`).catch((e: Error) => e);
      if (res instanceof Error || res.status !== 200) {
        fail('backup', res instanceof Error ? res.message : String(res.status));
        continue;
      }
      const file = path.join(scratch, `backup-${n.backups}.db`);
      fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
      const db = new Database(file, { readonly: true });
      const check = db.pragma('integrity_check', { simple: true });
      db.close();
      fs.rmSync(file);
      if (check !== 'ok') fail('backup integrity', String(check));
      n.backups++;
    }
  };
  const join = async () => {
    // After the log has moved past --log-retain: the joiner can only start from a snapshot.
    await new Promise((r) => setTimeout(r, Math.min(8000, (SECONDS * 1000) / 3)));
    joiner = joiningSlave(master, JOIN_ID, dataDir);
    joiner.spec = { ...joiner.spec, requestTimeoutMs: 180_000 };
    await joiner.launch();
    // Reads on it from the moment it holds the snapshot (before that it has no table).
    const j = joiner;
    await waitFor(() => j.logs().includes('snapshot installed') || Promise.reject(new Error('no snapshot yet')), { timeoutMs: 60_000, intervalMs: 100, message: 'the joiner installs a snapshot' });
    joined = joiner;
  };

  await Promise.all([
    batcher(1),
    batcher(2),
    writer(master),
    writer(slaves[0]!),
    ...[master, ...slaves].map((s) => reader(() => s)),
    reader(() => joined),
    backups(),
    join(),
  ]);
  for (const node of [master, ...slaves, ...(joiner ? [joiner] : [])]) if (!node.running) n.errors.push(`${node.label()} exited:\n${node.tail(30)}`);
  process.stderr.write(`[stress] ${SECONDS} s: batches ${n.batches} (${n.batches * 100} rows), writes ${n.writes}, reads ${n.reads}, backups ${n.backups}, errors ${n.errors.length}\n`);
  assert.deepEqual(n.errors, [], 'every request answered 200');
  assert.ok(n.batches > 0 && n.writes > 0 && n.reads > 0 && n.backups > 0, JSON.stringify(n));
  assert.ok(joiner, 'the joiner started');
  const nodes = [master, ...slaves, joiner];
  for (const node of nodes) assert.ok(node.running, `${node.label()} is alive:\n${node.tail(40)}`);
  assert.ok(joiner.logs().includes('snapshot installed'), 'the joiner was seeded with a snapshot');
  await waitConverged(master, nodes, 180_000);
  await assertSameChecksums(nodes);
  for (const node of nodes) {
    const db = new Database(path.join(dataDir, `node-${node.id}.db`), { readonly: true });
    try {
      assert.equal(db.pragma('integrity_check', { simple: true }), 'ok', `integrity_check of node ${node.id}`);
    } finally {
      db.close();
    }
  }
});
