// Automatic failover with a real etcd (DESIGN §6): SIGKILL of the master under ack "all"
// writers, etcd down and back, steady load without a fault (no lease lost), and the bad
// moments (promote in etcd mode, etcd unreachable at start). Each test has its own etcd.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { assertError, exec, get, ok, post, printLogs, query, rows, startCluster, status, TestNode, waitFor, type Cluster } from './helpers/cluster.js';
import { etcdSkip, startEtcd, type TestEtcd } from './helpers/etcd.js';
import { WriteLoad, assertAuditClean, auditWrites, authHeader, hardKill, idCounts, outcomeSummary, relaunch } from './helpers/load.js';

const skip = etcdSkip();
const TABLE = 'e';

interface Rig {
  etcd: TestEtcd;
  c: Cluster;
}

async function rig(extra: string[] = []): Promise<Rig> {
  const etcd = await startEtcd();
  try {
    const c = await startCluster({ slaves: 2, extraArgs: ['--etcd', etcd.url, ...extra], upTimeoutMs: 30_000 });
    ok(await exec(c.master, `CREATE TABLE ${TABLE}(id TEXT PRIMARY KEY, client INTEGER, tag TEXT)`), 'create');
    // Both slaves join the sync set once they hold the table.
    await waitFor(async () => ((await status(c.master)).sync_set ?? []).length === 2, { timeoutMs: 15_000, message: 'sync set [1,2]' });
    return { etcd, c };
  } catch (e) {
    await etcd.destroy();
    throw e;
  }
}

async function withRig(fn: (r: Rig) => Promise<void>, extra: string[] = []): Promise<void> {
  const r = await rig(extra);
  try {
    await fn(r);
  } catch (e) {
    printLogs(r.c.nodes, 80);
    process.stderr.write(`--- etcd ---\n${r.etcd.logs().slice(-2000)}\n`);
    throw e;
  } finally {
    await WriteLoad.stopAll();
    await r.c.stop();
    await r.etcd.destroy();
  }
}

/** The node every node names as master, once they agree (and it calls itself master). */
async function agreedMaster(c: Cluster, among: readonly TestNode[] = c.nodes, timeoutMs = 15_000): Promise<TestNode> {
  return waitFor<TestNode | undefined>(
    async () => {
      const s = await Promise.all(among.map((n) => status(n)));
      const m = among.find((n, i) => s[i].role === 'master');
      return m && s.every((x) => x.master === m.url) ? m : undefined;
    },
    { timeoutMs, message: 'one master every node follows' },
  ) as Promise<TestNode>;
}

async function audit(load: WriteLoad, c: Cluster): Promise<void> {
  await load.stop();
  await waitFor(
    async () => {
      const s = await Promise.all(c.nodes.map((n) => status(n)));
      return s.every((x) => x.applied_index === s[0].applied_index && x.master === s[0].master && x.master);
    },
    { timeoutMs: 30_000, message: 'every node at one index under one master' },
  );
  const present = await Promise.all(c.nodes.map((n) => idCounts(n, TABLE)));
  const a = auditWrites(load.records, present);
  assertAuditClean(a, outcomeSummary(load.records));
  process.stdout.write(`# ${a.acknowledged} acknowledged, ${a.lost.length} lost, ${a.duplicates.length} duplicates (${outcomeSummary(load.records)})\n`);
  const sums = await Promise.all(c.nodes.map(async (n) => JSON.stringify((await get(`${n.url}/checksum`)).body.tables)));
  assert.ok(sums.every((x) => x === sums[0]), 'checksums equal');
}

/** ms from `t` to the end of the first acknowledged write that started after it. */
function rto(load: WriteLoad, t: number): number {
  const first = load.records.filter((r) => r.status === 200 && r.startedAt >= t).map((r) => r.startedAt + r.ms)[0];
  const ends = load.records.filter((r) => r.status === 200 && r.startedAt >= t).map((r) => r.startedAt + r.ms);
  return Math.round(Math.min(first ?? Infinity, ...ends) - t);
}

test('etcd: SIGKILL of the master under ack "all" writers: a sync-set slave takes over within the lease, nothing acknowledged is lost, the old master returns as follower', { skip, timeout: 180_000 }, async () => {
  await withRig(async ({ c }) => {
    const [s1, s2] = c.slaves;
    const load = new WriteLoad({ table: TABLE, tag: 'k', timeoutMs: 15_000, clients: [s1, s2, s1, s2].map((node) => ({ node, ack: 'all' as const })) });
    load.start();
    await load.waitForMore(60);
    const epoch0 = (await status(c.master)).epoch;
    await hardKill(c.master);
    const killed = Date.now();
    const m = await agreedMaster(c, c.slaves, 15_000);
    await load.waitForAcked(s1.id, 10, 15_000);
    await load.waitForAcked(s2.id, 10, 15_000);
    const took = rto(load, killed);
    process.stdout.write(`# etcd failover after SIGKILL: first acknowledged write ${took} ms after the kill; new master node ${m.id}\n`);
    assert.ok(took <= 5000, `RTO ${took} ms > 5 s`);
    assert.ok((await status(m)).epoch > epoch0, 'a higher epoch');
    await relaunch(c.master);
    await agreedMaster(c, c.nodes, 20_000);
    await waitFor(async () => ((await status(m)).sync_set ?? []).length === 2, { timeoutMs: 20_000, message: 'the old master rejoins the sync set' });
    await audit(load, c);
  });
});

test('etcd: etcd down: the master stops acknowledging within the lease TTL, reads go on; etcd back: writes resume, nothing lost', { skip, timeout: 180_000 }, async () => {
  await withRig(async ({ c, etcd }) => {
    const load = new WriteLoad({ table: TABLE, tag: 'd', timeoutMs: 15_000, clients: [c.master, c.slaves[0]].map((node) => ({ node, ack: 'all' as const })) });
    load.start();
    await load.waitForMore(40);
    await etcd.kill();
    const down = Date.now();
    // Within the TTL (3 s) plus one renewal period, no write is acknowledged any more.
    await delay(4000);
    const late = load.records.filter((r) => r.status === 200 && r.startedAt >= down + 3000);
    assert.deepEqual(late.map((r) => r.id), [], 'writes acknowledged after the lease ran out with etcd down');
    const r = ok(await query(c.slaves[1], `SELECT count(*) FROM ${TABLE}`), 'a read while etcd is down');
    assert.ok(r.results[0].rows[0][0] > 0);
    const st = await status(c.slaves[1]);
    assert.equal(st.etcd.connected, false);
    await etcd.start();
    const back = Date.now();
    await agreedMaster(c, c.nodes, 20_000);
    await load.waitForAcked(c.slaves[0].id, 10, 20_000);
    process.stdout.write(`# writes resumed ${rto(load, back)} ms after etcd came back\n`);
    await audit(load, c);
  });
});

test('etcd: steady ack "all" load at default settings for 20 s: the master never loses its lease, no failover', { skip, timeout: 180_000 }, async () => {
  await withRig(async ({ c }) => {
    const epoch = (await status(c.master)).epoch;
    const load = new WriteLoad({ table: TABLE, tag: 's', timeoutMs: 15_000, clients: [c.master, c.master, c.slaves[0], c.slaves[1]].map((node) => ({ node, ack: 'all' as const })) });
    load.start();
    let minLeft = Infinity;
    const end = Date.now() + 20_000;
    while (Date.now() < end) {
      const s = await status(c.master);
      assert.equal(s.role, 'master');
      assert.equal(s.epoch, epoch, 'no new epoch without a fault');
      minLeft = Math.min(minLeft, s.lease.ms_left);
      await delay(200);
    }
    await load.stop();
    const errors = load.records.filter((r) => r.ms >= 0 && r.status !== 200);
    const leases = await Promise.all(c.nodes.map(async (n) => (await status(n)).lease));
    process.stdout.write(`# steady load: ${load.records.filter((r) => r.status === 200).length} writes acknowledged, ${errors.length} errors, lowest lease time left ${minLeft} ms of 3000, slowest renewal per node ${leases.map((l) => l.renew_max_ms).join('/')} ms, leases lost as master ${leases.map((l) => l.lost_as_master).join('/')}\n`);
    assert.deepEqual(leases.map((l) => l.lost_as_master), [0, 0, 0], 'no lease lost');
    assert.deepEqual(errors.map((r) => `${r.id}: ${r.status} ${r.code}`), []);
    assert.ok(!c.master.logs().includes('stepping down'), 'the master stepped down under steady load');
  });
});

test('etcd: promoting a node outside the sync set is refused (switchovers: test/etcd-ops.test.ts); a node whose etcd is unreachable at start serves reads and says so', { skip, timeout: 120_000 }, async () => {
  await withRig(async ({ c }) => {
    const p = await post(`${c.master.url}/nodes/5/promote`, {}, { headers: authHeader(c.dataDir) });
    assertError(p, 409, 'PROMOTION_REFUSED');
    assert.match(p.body.error.message, /not in the sync set/);
    // A fourth node pointed at an etcd that does not answer: it starts, serves reads of its own file, and reports etcd.
    const lone = new TestNode({ role: 'slave', id: 7, numSlaves: 2, dataDir: c.dataDir, masterUrl: c.master.url, extraArgs: ['--etcd', 'http://127.0.0.1:9'] });
    try {
      await lone.launch();
      await waitFor(async () => (await status(lone)).etcd?.connected === false && !!(await status(lone)).etcd?.error, { message: 'etcd error in /status' });
      assert.deepEqual(rows(await query(lone, 'SELECT 1')), [[1]]);
      const w = await exec(lone, 'INSERT INTO x VALUES (1)');
      assert.equal(w.status, 503, w.text);
      assert.equal(w.body.error.outcome, 'not_applied');
      // A schema change too: refused as "no master yet, retry", not SCHEMA_ON_SLAVE naming no master.
      const ddl = await exec(lone, 'CREATE TABLE lone_t(x)');
      assertError(ddl, 503, 'MASTER_UNAVAILABLE');
      assert.equal(ddl.body.error.outcome, 'not_applied');
      assert.equal((await get(`${lone.url}/health`)).status, 503);
      assert.match(lone.logs(), /etcd unreachable/);
    } finally {
      await lone.kill('SIGKILL');
    }
  });
});
