// The seed's own scenario, many times: a fresh cluster whose every /health is 200 takes a
// CREATE TABLE on the master, and each slave reads the table at once. "healthy" must mean
// "replication works", and ack "all" must mean every expected slave (issue 11).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TestNode, get, exec, ok, printLogs, query, rows, tempDir, waitFor, status } from './helpers/cluster.js';
import { hardKill } from './helpers/load.js';
import { rmSync } from 'node:fs';

const ROUNDS = Number(process.env.STARTUP_ROUNDS ?? 6);

/**
 * Runs `fn` with a fresh data dir and a list it adds the nodes it starts to: on failure
 * their logs are printed; they are always stopped and the dir removed.
 */
async function withNodes(fn: (dir: string, nodes: TestNode[]) => Promise<void>, logLines = 60): Promise<void> {
  const dir = tempDir();
  const nodes: TestNode[] = [];
  try {
    await fn(dir, nodes);
  } catch (e) {
    printLogs(nodes, logLines);
    throw e;
  } finally {
    await Promise.all(nodes.map((n) => n.kill('SIGTERM')));
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts a master and two slaves the way `npm run cluster` does (all at once), without waiting for the master's view; adds them to `nodes`. */
async function freshCluster(dataDir: string, nodes: TestNode[]): Promise<void> {
  const master = new TestNode({ role: 'master', id: 0, numSlaves: 2, dataDir });
  nodes.push(master);
  await master.launch();
  const slaves = [1, 2].map((id) => new TestNode({ role: 'slave', id, numSlaves: 2, dataDir, masterUrl: master.url }));
  nodes.push(...slaves);
  await Promise.all(slaves.map((s) => s.launch()));
}

test(`fresh cluster, every /health 200, first CREATE TABLE on the master: each slave reads it at once (${ROUNDS} rounds)`, { timeout: 300_000 }, async () => {
  for (let round = 0; round < ROUNDS; round++) {
    await withNodes(async (dir, nodes) => {
      await freshCluster(dir, nodes);
      await waitFor(async () => (await Promise.all(nodes.map((n) => get(`${n.url}/health`)))).every((r) => r.status === 200), {
        timeoutMs: 20_000,
        message: 'every /health 200',
      });
      const w = ok(await exec(nodes[0], 'CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT)'), `round ${round}: create`);
      assert.deepEqual(w.replicated_to, [1, 2], `round ${round}: ack "all" answered before the slaves had it: ${JSON.stringify(w)}`);
      assert.equal(w.missing, undefined);
      const reads = await Promise.all(nodes.slice(1).map((s) => query(s, "SELECT name FROM sqlite_schema WHERE name = 'users'")));
      reads.forEach((r, i) => assert.deepEqual(rows(r), [['users']], `round ${round}: slave ${i + 1} does not see the table`));
    });
  }
});

test('a slave /health is 503 until it has reached its master; a down slave is named "missing" in ack "all" answers', { timeout: 120_000 }, async () => {
  await withNodes(async (dir, nodes) => {
    const master = new TestNode({ role: 'master', id: 0, numSlaves: 2, dataDir: dir });
    nodes.push(master);
    await master.launch();
    // A slave pointed at a master that does not answer is not healthy.
    const orphan = new TestNode({ role: 'slave', id: 1, numSlaves: 2, dataDir: dir, masterUrl: 'http://127.0.0.1:9' });
    nodes.push(orphan);
    await orphan.launch();
    const h = await get(`${orphan.url}/health`);
    assert.equal(h.status, 503, h.text);
    assert.equal(h.body.error.code, 'UNAVAILABLE');
    await orphan.kill('SIGTERM');
    nodes.pop();
    const s1 = new TestNode({ role: 'slave', id: 1, numSlaves: 2, dataDir: dir, masterUrl: master.url });
    const s2 = new TestNode({ role: 'slave', id: 2, numSlaves: 2, dataDir: dir, masterUrl: master.url });
    nodes.push(s1, s2);
    await Promise.all([s1.launch(), s2.launch()]);
    await waitFor(async () => (await get(`${s2.url}/health`)).status === 200, { message: 'slave 2 healthy' });
    ok(await exec(master, 'CREATE TABLE t(x)'), 'create');
    await hardKill(s2);
    await waitFor(async () => (await status(master)).nodes.some((n: { id: number; state: string }) => n.id === 2 && n.state === 'down'), { message: 'slave 2 down' });
    const w = ok(await exec(master, 'INSERT INTO t VALUES (1)'), 'write with slave 2 down');
    assert.deepEqual(w.replicated_to, [1]);
    assert.deepEqual(w.missing, [2], `the answer must name the slave that lacks the write: ${JSON.stringify(w)}`);
  });
});

test('a slave started with another --cluster-name is refused by the master: never healthy, never a member, writes do not wait for it', { timeout: 60_000 }, async () => {
  await withNodes(async (dir, nodes) => {
    const master = new TestNode({ role: 'master', id: 0, numSlaves: 1, dataDir: dir, extraArgs: ['--cluster-name', 'blue'] });
    nodes.push(master);
    await master.launch();
    const stranger = new TestNode({ role: 'slave', id: 1, numSlaves: 1, dataDir: dir, masterUrl: master.url, extraArgs: ['--cluster-name', 'green'] });
    nodes.push(stranger);
    await stranger.launch();
    await waitFor(() => stranger.logs().includes('this master belongs to cluster \\"blue\\", the node to \\"green\\"'), { timeoutMs: 10_000, message: 'the refusal in the slave log' });
    const h = await get(`${stranger.url}/health`);
    assert.equal(h.status, 503, h.text);
    const st = await status(master);
    const one = st.nodes.find((n: { id: number }) => n.id === 1);
    assert.notEqual(one?.state, 'up', `the master lists the stranger as up: ${JSON.stringify(one)}`);
    assert.equal(one?.url ?? null, null, 'the master never learned its URL');
    // After the start-up grace the unseen slave is out: ack "all" answers name it missing.
    const w = ok(await exec(master, 'CREATE TABLE t(x)'), 'a write without the stranger');
    assert.deepEqual(w.replicated_to, []);
    assert.deepEqual(w.missing, [1]);
  }, 40);
});

test('an SQLFLEET_* variable that names no option is said and ignored, not a refusal to start; a known one still applies', { timeout: 60_000 }, async () => {
  await withNodes(async (dir, nodes) => {
    const node = new TestNode({ role: 'master', id: 0, numSlaves: 0, dataDir: dir, env: { SQLFLEET_NOT_AN_OPTION: '1', SQLFLEET_MAX_ROWS: '2' } });
    nodes.push(node);
    await node.launch();
    assert.match(node.logs(), /ignoring SQLFLEET_NOT_AN_OPTION: there is no --not-an-option option/);
    ok(await exec(node, 'CREATE TABLE e (x)'));
    ok(await exec(node, 'INSERT INTO e VALUES (1), (2), (3)'));
    const r = ok(await query(node, 'SELECT x FROM e'));
    assert.equal(r.results[0].rows.length, 2, 'SQLFLEET_MAX_ROWS=2 applied');
  });
});
