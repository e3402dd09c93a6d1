// Issue 3 fault tests: six concurrent writers through the master and both slaves while the
// test SIGKILLs and restarts (a) a slave, (b) the master, (c) a slave in the middle of a
// 5000-row batch, (d) a new --join slave in the middle of its snapshot transfer. After each
// round, once the cluster converged: every acknowledged write is on every node, a failed
// write is on all nodes or none (none when it certainly never reached the master), no id is
// applied twice, no two acknowledged writes share a log index, /checksum agrees everywhere.
//
// Default: one round of each kind. FAULT_ROUNDS=N runs N rounds of each.

import assert from 'node:assert/strict';
import { existsSync, statSync, watch } from 'node:fs';
import { basename, join } from 'node:path';
import { after, before } from 'node:test';
import {
  assertSameChecksums,
  clusterTest,
  exec,
  ok,
  post,
  query,
  rows,
  startCluster,
  status,
  waitFor,
  waitForUp,
  type Cluster,
  type TestNode,
} from './helpers/cluster.js';
import {
  WriteLoad,
  acknowledged,
  assertAuditClean,
  auditWrites,
  authHeader,
  bytesRead,
  del,
  hardKill,
  idCounts,
  joiningSlave,
  logEvents,
  outcomeOf,
  outcomeSummary,
  readFile,
  relaunch,
  waitConverged,
  type Audit,
  type WriteRecord,
} from './helpers/load.js';

const ROUNDS = Math.max(1, Math.floor(Number(process.env.FAULT_ROUNDS ?? 1)) || 1);
const ACK_TIMEOUT_MS = 2000;
const FORWARD_TIMEOUT_MS = 8000;
/** No request may take longer: a slave forwards (≤ forward timeout) then waits to apply (≤ ack timeout). */
const REQUEST_BOUND_MS = FORWARD_TIMEOUT_MS + ACK_TIMEOUT_MS + 2000;
/** While the master is down, a write sent to a slave must be refused this fast (well below the forward timeout). */
const OUTAGE_BOUND_MS = 3000;
const BATCH_ROWS = 5000;
/** Rows of 1000 random bytes: a database of several MB for the snapshot round. */
const BIG_ROWS = 8000;
/** A snapshot is killed once the slave has written this much of it. */
const SNAPSHOT_KILL_AT_BYTES = 256 * 1024;
const EXTRA_ARGS = [
  '--ack-timeout', String(ACK_TIMEOUT_MS),
  '--forward-timeout', String(FORWARD_TIMEOUT_MS),
  '--max-statements', String(BATCH_ROWS + 10),
  '--log-retain', '20',
];

let c: Cluster | undefined;
/** Runtime-joined slaves that are currently members (checked with the others). */
const joined: TestNode[] = [];
const loads: WriteLoad[] = [];
/** The big batches of round (c): what the client was told. */
const batches: { id: string; status?: number; index?: number; err?: string }[] = [];
const stats = {
  rounds: { slave: 0, master: 0, batch: 0, snapshot: 0 },
  kills: 0,
  batchKillsBeforeCommit: 0,
  snapshotKills: [] as string[],
  audit: undefined as Audit | undefined,
};

const cluster = (): Cluster => {
  assert.ok(c, 'cluster not started');
  return c;
};
const everyNode = (): TestNode[] => [...cluster().nodes, ...joined];
const records = (): WriteRecord[] => loads.flatMap((l) => l.records);
const it = clusterTest(
  () => c && { ...c, nodes: everyNode() },
  () => `load outcomes: ${outcomeSummary(records())}\nbatches: ${JSON.stringify(batches)}\n${summary()}`,
);

before(async () => {
  c = await startCluster({ slaves: 2, extraArgs: EXTRA_ARGS });
  ok(await exec(c.master, 'CREATE TABLE w (rid INTEGER PRIMARY KEY, id TEXT NOT NULL, client INTEGER, tag TEXT)'));
  ok(await exec(c.master, 'CREATE INDEX w_id ON w(id)')); // not UNIQUE: an entry applied twice shows as a duplicate id
  ok(await exec(c.master, 'CREATE TABLE bulk (batch TEXT NOT NULL, n INTEGER NOT NULL, pad BLOB, PRIMARY KEY (batch, n))'));
});

after(async () => {
  console.log(summary());
  console.log(`fault outcomes: ${outcomeSummary(records())}`);
  await Promise.all(joined.map((n) => n.kill('SIGTERM')));
  await c?.stop();
});

function summary(): string {
  const a = stats.audit;
  const r = stats.rounds;
  return (
    `fault summary: rounds=${r.slave + r.master + r.batch + r.snapshot} (slave=${r.slave} master=${r.master} batch=${r.batch} snapshot=${r.snapshot})` +
    ` writes_sent=${a?.sent ?? 0} acknowledged=${a?.acknowledged ?? 0} failed=${a?.failed ?? 0} failed_but_committed=${a?.failedButCommitted ?? 0}` +
    ` kills=${stats.kills} lost=${a ? a.lost.length : 'n/a'} duplicates=${a ? a.duplicates.length : 'n/a'}` +
    ` batch_kills_before_commit=${stats.batchKillsBeforeCommit}/${r.batch} snapshot_kills=[${stats.snapshotKills.join(' ')}]`
  );
}

/** Six writers: two through each of master, slave 1, slave 2, with mixed ack levels. */
function startLoad(tag: string): WriteLoad {
  const [s1, s2] = cluster().slaves as [TestNode, TestNode];
  const m = cluster().master;
  const load = new WriteLoad({
    table: 'w',
    tag,
    timeoutMs: REQUEST_BOUND_MS + 10_000,
    pauseMs: 10,
    clients: [
      { node: m, ack: 'all' },
      { node: m, ack: 'master' },
      { node: s1, ack: 'all' },
      { node: s1, ack: 'one' },
      { node: s2, ack: 'all' },
      { node: s2, ack: 'master' },
    ],
  });
  loads.push(load);
  load.start();
  return load;
}

/** The applied_index a node printed in its latest ready line. */
function readyIndex(node: TestNode): number {
  const ready = logEvents(node, 'ready');
  assert.ok(ready.length > 0, `${node.label()} printed no ready line`);
  return ready[ready.length - 1].applied_index as number;
}

/** Waits for convergence, then checks every write of every round so far against every node. */
async function checkConverged(what: string): Promise<void> {
  const { master } = cluster();
  const nodes = everyNode();
  await waitConverged(master, nodes, 45_000);
  const all = records();
  const present = await Promise.all(nodes.map((n) => idCounts(n, 'w')));
  const audit = auditWrites(all, present);
  stats.audit = audit;
  assertAuditClean(audit, `${what} (nodes ${nodes.map((n) => n.id).join(',')})`);

  const slow = all.filter((r) => r.ms > REQUEST_BOUND_MS || r.netErr === 'TimeoutError');
  assert.deepEqual(
    slow.map((r) => `${r.id} via ${r.via}: ${outcomeOf(r)} in ${Math.round(r.ms)} ms`),
    [],
    `${what}: requests must finish within ${REQUEST_BOUND_MS} ms`,
  );
  const odd = all.filter((r) => r.status !== undefined && r.status !== 200 && !(r.status === 503 && r.code === 'MASTER_UNAVAILABLE'));
  assert.deepEqual(odd.map((r) => `${r.id} via ${r.via}: ${outcomeOf(r)}`), [], `${what}: only 503 MASTER_UNAVAILABLE may fail a write`);

  // Each big batch is on every node entirely or nowhere; acknowledged ones entirely.
  const perNode = await Promise.all(
    nodes.map(async (n) => new Map(rows(await query(n, 'SELECT batch, count(*) FROM bulk GROUP BY batch'), `${n.label()} bulk`).map(([b, k]) => [String(b), Number(k)]))),
  );
  for (const b of batches) {
    const counts = perNode.map((m) => m.get(b.id) ?? 0);
    assert.ok(counts.every((k) => k === counts[0]), `${what}: batch ${b.id} differs between nodes: ${counts.join(', ')}`);
    assert.ok(counts[0] === 0 || counts[0] === BATCH_ROWS, `${what}: batch ${b.id} partially applied: ${counts[0]} rows`);
    if (b.status === 200) assert.equal(counts[0], BATCH_ROWS, `${what}: acknowledged batch ${b.id} lost`);
  }
  await assertSameChecksums(nodes);
}

for (let r = 1; r <= ROUNDS; r++) {
  const slaveIdx = (r - 1) % 2;

  it(`round ${r}/${ROUNDS} (slave): SIGKILL slave ${slaveIdx + 1} under load, restart it; nothing acknowledged is lost`, async () => {
    const { master } = cluster();
    const s = cluster().slaves[slaveIdx]!;
    const load = startLoad(`r${r}a`);
    let killedAt = 0;
    try {
      await load.waitForMore(60);
      killedAt = Date.now();
      await hardKill(s);
      stats.kills++;
      await load.waitForMore(40); // writes keep flowing through the other nodes
      await relaunch(s);
      // It catches up from the log while the load goes on, then serves writes again.
      await waitFor(async () => ['up', 'catching_up'].includes((await status(master)).nodes.find((n: { id: number }) => n.id === s.id)?.state), {
        timeoutMs: 20_000,
        message: `${s.label()} back in master /status`,
      });
      await load.waitForAcked(s.id, 20);
    } finally {
      await load.stop();
    }
    await checkConverged(`round ${r} (slave)`);
    stats.rounds.slave++;
    // The master saw it go down and come back up.
    const changes = logEvents(master, 'node state changed').filter((e) => e.slave === s.id && Date.parse(e.time) >= killedAt - 100);
    const path = changes.map((e) => e.to as string);
    assert.ok(path.includes('down') && path[path.length - 1] === 'up', `state changes of ${s.label()} since the kill: ${path.join(' -> ')}`);
  });

  it(`round ${r}/${ROUNDS} (master): SIGKILL the master under load; slaves answer 503 fast, reconnect on their own`, async () => {
    const { master, slaves } = cluster();
    const load = startLoad(`r${r}b`);
    let downAt = 0;
    let relaunchAt = 0;
    let lastIndexBefore = 0;
    try {
      await load.waitForMore(60);
      await hardKill(master);
      stats.kills++;
      downAt = Date.now();
      lastIndexBefore = Math.max(0, ...load.records.filter(acknowledged).map((x) => x.index ?? 0));
      await load.waitForMore(40);
      relaunchAt = Date.now();
      await relaunch(master);
      await waitForUp(master, slaves.map((s) => s.id), 20_000);
      for (const s of slaves) await load.waitForAcked(s.id, 10);
      await load.waitForAcked(master.id, 10);
    } finally {
      await load.stop();
    }
    const outage = load.records.filter((x) => x.startedAt >= downAt && x.startedAt + x.ms < relaunchAt);
    const viaSlaves = outage.filter((x) => x.via !== master.id);
    assert.ok(viaSlaves.length >= 10, `expected writes through slaves during the outage, got ${viaSlaves.length}`);
    for (const x of viaSlaves) {
      assert.ok(x.status === 503 && x.code === 'MASTER_UNAVAILABLE', `${x.id} via ${x.via} during the outage: ${outcomeOf(x)}`);
      assert.ok(x.ms < OUTAGE_BOUND_MS, `${x.id} via ${x.via} during the outage took ${Math.round(x.ms)} ms`);
    }
    for (const x of outage.filter((y) => y.via === master.id)) {
      assert.equal(x.netErr, 'ECONNREFUSED', `${x.id} to the dead master: ${outcomeOf(x)}`);
    }
    // The restarted master continues the index sequence from its database.
    const after = load.records.filter((x) => acknowledged(x) && x.startedAt >= relaunchAt);
    assert.ok(after.length > 0, 'no write acknowledged after the master restarted');
    assert.ok(Math.min(...after.map((x) => x.index ?? 0)) > lastIndexBefore, `index sequence restarted: ${lastIndexBefore} before, ${Math.min(...after.map((x) => x.index ?? 0))} after`);
    await checkConverged(`round ${r} (master)`);
    stats.rounds.master++;
  });

  it(`round ${r}/${ROUNDS} (batch): SIGKILL slave ${2 - slaveIdx} while it applies a ${BATCH_ROWS}-row transaction`, async () => {
    const { master } = cluster();
    const s = cluster().slaves[1 - slaveIdx]!;
    const load = startLoad(`r${r}c`);
    const batch: (typeof batches)[number] = { id: `r${r}-batch` };
    batches.push(batch);
    let beforeCommit = false;
    try {
      await load.waitForMore(60);
      const queries = Array.from({ length: BATCH_ROWS }, (_, n) => ({
        query: 'INSERT INTO bulk(batch, n, pad) VALUES (?, ?, randomblob(300))',
        params: [batch.id, n],
      }));
      const body = JSON.stringify({ command: 'exec', queries, transaction: true, ack: 'master' });
      const pid = s.proc.pid!;
      const base = bytesRead(pid);
      const sent = post(master.url, body, { timeoutMs: 60_000 });
      // The master is busy with the batch for a while; the slave then receives it as one
      // append of about the same size, and spends a few hundred ms applying it.
      await waitFor(() => bytesRead(pid) - base >= body.length * 0.8, { timeoutMs: 30_000, intervalMs: 2, message: `${s.label()} receiving the batch` });
      await new Promise((res) => setTimeout(res, 40));
      await hardKill(s);
      stats.kills++;
      try {
        const reply = await sent;
        batch.status = reply.status;
        batch.index = reply.body?.index;
        ok(reply, 'big batch');
      } catch (e) {
        batch.err = String(e);
        throw e;
      }
      await relaunch(s);
      beforeCommit = readyIndex(s) < batch.index!;
      if (beforeCommit) stats.batchKillsBeforeCommit++;
      await load.waitForAcked(s.id, 20, 30_000);
    } finally {
      await load.stop();
    }
    await checkConverged(`round ${r} (batch)`);
    stats.rounds.batch++;
    assert.ok(beforeCommit, `${s.label()} had already committed batch ${batch.index} when it was killed (restarted at ${readyIndex(s)}): the kill came too late`);
  });

  it(`round ${r}/${ROUNDS} (snapshot): SIGKILL a new --join slave while its snapshot streams; it ends identical`, async () => {
    const { master, dataDir } = cluster();
    const masterDb = join(dataDir, 'node-0.db');
    // A database of several MB (made once), so the snapshot takes a while to stream.
    const big = rows(await query(master, "SELECT count(*) FROM sqlite_schema WHERE name = 'big'"))[0]![0];
    if (big === 0) {
      ok(await exec(master, 'CREATE TABLE big (id INTEGER PRIMARY KEY, pad BLOB)'));
      ok(
        await post(
          master.url,
          { command: 'exec', query: `WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < ${BIG_ROWS}) INSERT INTO big SELECT n, randomblob(1000) FROM s` },
          { timeoutMs: 60_000 },
        ),
        'big table',
      );
      await waitConverged(master, everyNode(), 60_000);
    }
    const load = startLoad(`r${r}d`);
    const id = 10 + r;
    const s = joiningSlave(master, id, dataDir, EXTRA_ARGS);
    const incoming = join(dataDir, `node-${id}.db.incoming`);
    let killedAtSize = -1;
    const tryKill = (): void => {
      if (killedAtSize >= 0 || !s.running) return;
      let size: number;
      try {
        size = statSync(incoming).size;
      } catch {
        return;
      }
      if (size >= SNAPSHOT_KILL_AT_BYTES) {
        s.proc.kill('SIGKILL');
        killedAtSize = size;
      }
    };
    try {
      await load.waitForMore(40);
      // A new slave needs a snapshot only once the master trimmed its log (every 5 s).
      await waitFor(() => (readFile<number | null>(masterDb, 'SELECT min(idx) FROM _sqlfleet_log') ?? 0) > 1, {
        timeoutMs: 15_000,
        intervalMs: 200,
        message: 'master log trimmed',
      });
      const watcher = watch(dataDir, (_event, name) => name === basename(incoming) && tryKill());
      const poller = setInterval(tryKill, 2);
      try {
        joined.push(s);
        await s.launch();
        await waitFor(() => killedAtSize >= 0 || !s.running, { timeoutMs: 30_000, intervalMs: 5, message: 'snapshot transfer started' });
      } finally {
        watcher.close();
        clearInterval(poller);
      }
      await s.kill('SIGKILL'); // waits for the exit
      stats.kills++;
      const left = existsSync(incoming) ? statSync(incoming).size : -1;
      const taken = logEvents(master, 'snapshot taken').filter((e) => e.slave === id);
      assert.ok(taken.length > 0, `master took no snapshot for node ${id}`);
      const total = taken[taken.length - 1].bytes as number;
      stats.snapshotKills.push(`${left}/${total}B`);
      assert.ok(killedAtSize >= 0 && left >= 0 && left < total, `node ${id} was not killed mid-transfer: killed at ${killedAtSize}, .incoming ${left} of ${total} bytes`);
      assert.equal(logEvents(s, 'snapshot installed').length, 0, 'the killed slave had installed the snapshot');

      await relaunch(s);
      await waitFor(() => logEvents(s, 'snapshot installed').length > 0, { timeoutMs: 30_000, message: `node ${id} installs a snapshot after its restart` });
      await load.waitForMore(40);
    } finally {
      await load.stop();
    }
    await checkConverged(`round ${r} (snapshot)`);
    stats.rounds.snapshot++;
    // Decommission it so later rounds neither wait for it nor keep log for it.
    await s.kill('SIGTERM');
    joined.splice(joined.indexOf(s), 1);
    ok(await del(`${master.url}/nodes/${id}`, authHeader(dataDir)), `DELETE /nodes/${id}`);
  });
}
