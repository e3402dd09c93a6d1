// Issue 3 membership and snapshots end to end: a slave that joins at runtime after the
// master trimmed its log starts from a snapshot, then tails the log; a restarted master
// remembers it; DELETE /nodes/:id (cluster token only) forgets it for good.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before } from 'node:test';
import {
  assertError,
  assertSameChecksums,
  clusterTest,
  exec,
  ok,
  rows,
  query,
  startCluster,
  status,
  waitFor,
  waitForUp,
  type Cluster,
  type TestNode,
} from './helpers/cluster.js';
import { authHeader, del, freeze, joiningSlave, logEvents, memberState, readFile, thaw, waitConverged } from './helpers/load.js';

const LOG_RETAIN = 5;
const EXTRA_ARGS = ['--log-retain', String(LOG_RETAIN)];
const JOIN_ID = 5;

let c: Cluster | undefined;
let joiner: TestNode | undefined;
const it = clusterTest(() => c && { ...c, nodes: joiner ? [...c.nodes, joiner] : c.nodes });
const cluster = (): Cluster => {
  assert.ok(c, 'cluster not started');
  return c;
};
const slave = (): TestNode => {
  assert.ok(joiner, 'joined slave not started');
  return joiner;
};

before(async () => {
  c = await startCluster({ slaves: 0, extraArgs: EXTRA_ARGS });
});

after(async () => {
  if (joiner) {
    thaw(joiner);
    await joiner.kill('SIGTERM');
  }
  await c?.stop();
});

/** Row count of `users` on `node`. */
async function userCount(node: TestNode): Promise<number> {
  return Number(rows(await query(node, 'SELECT count(*) FROM users'))[0]![0]);
}

it('a slave joining after the log was trimmed gets a snapshot, then tails the log', async () => {
  const { master, dataDir } = cluster();
  ok(await exec(master, 'CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, created_at TEXT DEFAULT CURRENT_TIMESTAMP)'));
  for (let i = 0; i < 50; i++) ok(await exec(master, 'INSERT INTO users(username) VALUES (?)', [`user${i}`]), `insert ${i}`);
  // The master trims every 5 s, keeping LOG_RETAIN entries: entry 1 disappears.
  const masterDb = join(dataDir, 'node-0.db');
  const first = await waitFor(
    () => {
      const v = readFile<number | null>(masterDb, 'SELECT min(idx) FROM _sqlfleet_log') ?? 0;
      return v > 1 ? v : 0;
    },
    { timeoutMs: 15_000, intervalMs: 200, message: 'master log trimmed' },
  );
  const last = (await status(master)).applied_index as number;
  const kept = last - first + 1;
  assert.ok(kept >= LOG_RETAIN && kept <= LOG_RETAIN + 1, `log kept ${first}..${last} (${kept} entries) with --log-retain ${LOG_RETAIN}`);

  joiner = joiningSlave(master, JOIN_ID, dataDir, EXTRA_ARGS);
  await joiner.launch();
  await waitForUp(master, [JOIN_ID], 30_000);
  await waitConverged(master, [master, joiner]);
  await assertSameChecksums([master, joiner]);
  assert.equal(await userCount(joiner), 50);
  const sent = logEvents(master, 'sending snapshot').filter((e) => e.slave === JOIN_ID);
  assert.ok(sent.length >= 1, 'the master did not send a snapshot to the new slave');
  assert.equal(sent[0].slave_index, 0);
  assert.ok(logEvents(joiner, 'snapshot installed').length >= 1, 'the slave did not install a snapshot');

  // From the snapshot's index on it follows the log: ack "all" now waits for it.
  for (let i = 50; i < 60; i++) {
    const w = ok(await exec(master, 'INSERT INTO users(username) VALUES (?)', [`user${i}`]), `insert ${i}`);
    assert.deepEqual(w.replicated_to, [JOIN_ID], `insert ${i}`);
  }
  assert.equal(await userCount(joiner), 60);
  await assertSameChecksums([master, joiner]);
});

it('a restarted master remembers the joined slave, which reconnects on its own', async () => {
  const { master } = cluster();
  const s = slave();
  // Frozen, the slave cannot re-register itself: the master must know it from its database.
  freeze(s);
  try {
    await cluster().restart(master);
    const m = await memberState(master, JOIN_ID);
    assert.ok(m, `restarted master forgot node ${JOIN_ID}: ${JSON.stringify((await status(master)).nodes)}`);
    assert.equal(m.url, s.url, 'remembered URL');
    assert.notEqual(m.state, 'up', 'it cannot be up while frozen');
  } finally {
    thaw(s);
  }
  await waitForUp(master, [JOIN_ID], 15_000);
  const w = ok(await exec(master, "INSERT INTO users(username) VALUES ('after-restart')"), 'write after master restart');
  assert.deepEqual(w.replicated_to, [JOIN_ID]);
  assert.ok(w.index > 60, `index sequence continued: ${w.index}`);
  const ss = await status(s);
  assert.equal(ss.master_reachable, true, JSON.stringify(ss));
  await assertSameChecksums([master, s]);
});

it('DELETE /nodes/:id without the cluster token is 401 UNAUTHORIZED and removes nothing', async () => {
  const { master } = cluster();
  assertError(await del(`${master.url}/nodes/${JOIN_ID}`), 401, 'UNAUTHORIZED', 'DELETE without token');
  assertError(await del(`${master.url}/nodes/${JOIN_ID}`, { authorization: 'Bearer wrong' }), 401, 'UNAUTHORIZED', 'DELETE with a wrong token');
  assert.ok(await memberState(master, JOIN_ID), 'a refused DELETE removed the node');
});

it('DELETE /nodes/:id with the token removes a stopped node from /status, also after a master restart', async () => {
  const { master, dataDir } = cluster();
  const s = slave();
  // A running --join slave registers again on its next heartbeat, whatever happened before.
  await waitFor(() => memberState(master, JOIN_ID), { timeoutMs: 10_000, message: `node ${JOIN_ID} listed` });
  // Decommission: stop the node first (or it would register again), then remove it.
  await s.kill('SIGTERM');
  assert.ok(await memberState(master, JOIN_ID), `node ${JOIN_ID} should still be listed before the DELETE`);
  ok(await del(`${master.url}/nodes/${JOIN_ID}`, authHeader(dataDir)), `DELETE /nodes/${JOIN_ID}`);
  assert.equal(await memberState(master, JOIN_ID), undefined, 'still listed after DELETE');
  assertError(await del(`${master.url}/nodes/${JOIN_ID}`, authHeader(dataDir)), 404, 'NOT_FOUND', 'second DELETE');

  await cluster().restart(master);
  assert.equal(await memberState(master, JOIN_ID), undefined, 'the restarted master remembers a removed node');
  // Writes no longer wait for it.
  const w = ok(await exec(master, "INSERT INTO users(username) VALUES ('after-delete')"), 'write after delete');
  assert.deepEqual(w.replicated_to, []);
  assert.equal(w.lagging, undefined);
});
