// Issue 24: no error kills a node. Each place that used to let an error escape (a timer, a
// discarded promise, a reply written outside a try) is made to fail on purpose through a
// failpoint (SQLFLEET_FAILPOINTS, src/failpoints.ts) in real node processes; the nodes must
// log it and go on serving, and the cluster must still converge to equal replicas.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { assertSameChecksums, exec, ok, post, query, rows, startCluster, status, waitFor, type Cluster, type TestNode } from './helpers/cluster.js';
import { authHeader, waitConverged } from './helpers/load.js';

// verify and trim fail every time; the others a few times, then work again.
const FAILPOINTS = 'verify,trim,shipper.build:3,lane.reply:1,stream.write:2,swap:1';

let c: Cluster | undefined;
before(async () => {
  c = await startCluster({ slaves: 1, env: { SQLFLEET_FAILPOINTS: FAILPOINTS }, extraArgs: ['--verify-ms', '300', '--log-retain', '1'] });
});
after(async () => {
  await c?.stop();
});

const cluster = (): Cluster => {
  assert.ok(c, 'cluster not started');
  return c;
};

let keys = 0;
/** A POST that may meet the armed lane.reply failpoint once (the connection is dropped): tried again with the same idempotency key. */
async function execRetry(node: TestNode, sql: string): Promise<void> {
  const key = `no-crash-${process.pid}-${++keys}`;
  for (let i = 0; ; i++) {
    try {
      ok(await exec(node, sql, undefined, { idempotency_key: key }));
      return;
    } catch (e) {
      if (i >= 2) throw e;
    }
  }
}

function alive(nodes: readonly TestNode[]): void {
  for (const n of nodes) assert.ok(n.running, `${n.label()} exited:\n${n.tail(60)}`);
}

test('with verification, log trims, batch building, replies and the stream failing, every node keeps serving and replicas converge', { timeout: 120_000 }, async () => {
  const { master, slave, nodes } = { ...cluster(), slave: cluster().slaves[0]! };
  await execRetry(master, 'CREATE TABLE IF NOT EXISTS kv (k INTEGER PRIMARY KEY, v TEXT)');
  for (let i = 0; i < 40; i++) await execRetry(i % 2 ? slave : master, `INSERT INTO kv(v) VALUES ('v${i}')`);
  // Trims run every 5 s, verification every 300 ms: let each fail a few times.
  await new Promise((r) => setTimeout(r, 6_000));
  alive(nodes);
  const logs = nodes.map((n) => n.logs()).join('\n');
  for (const expected of [
    'could not checksum the master for verification',
    'could not trim the log',
    'shipping failed',
    'could not send an answer',
    'could not answer on the replication stream',
  ]) {
    assert.ok(logs.includes(expected), `the failure "${expected}" was logged (the failpoint was reached):\n${master.tail(40)}\n${slave.tail(40)}`);
  }
  assert.ok(!/unhandled rejection|uncaught exception/.test(logs), 'no error reached the process-wide backstop');
  await waitConverged(master, nodes);
  assert.deepEqual(rows(await query(slave, 'SELECT count(*) FROM kv')), [[40]]);
  await assertSameChecksums(nodes);
});

test('a role change that fails once is retried: a switchover still completes, and both nodes serve', { timeout: 120_000 }, async () => {
  const { master, slaves, nodes, dataDir } = cluster();
  const slave = slaves[0]!;
  const res = await post(`${master.url}/nodes/${slave.id}/promote`, {}, { headers: authHeader(dataDir), timeoutMs: 30_000 });
  // The promotion itself may report the failed first attempt; what matters is where it ends.
  await waitFor(
    async () => {
      const [a, b] = await Promise.all([status(slave), status(master)]);
      if (a.role !== 'master' || b.role !== 'slave') throw new Error(`node 1 is ${a.role}, node 0 is ${b.role} (promote answered ${res.status} ${res.text})`);
      return true;
    },
    { timeoutMs: 20_000, intervalMs: 200, message: 'node 1 master and node 0 its slave' },
  );
  const logs = nodes.map((n) => n.logs()).join('\n');
  assert.ok(logs.includes('role change failed; retrying in 1 s'), 'the swap failpoint was reached');
  await execRetry(slave, "INSERT INTO kv(v) VALUES ('after switchover')");
  await waitFor(
    async () => {
      assert.deepEqual(rows(await query(master, 'SELECT count(*) FROM kv')), [[41]]);
      return true;
    },
    { timeoutMs: 10_000, intervalMs: 100, message: 'the write reached the old master' },
  );
  alive(nodes);
  await assertSameChecksums(nodes);
});
