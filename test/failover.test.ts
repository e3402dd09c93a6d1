// Static-mode promotion (DESIGN §6) on real processes: switchover by `npm run promote`
// under ack "all" writers, failover after SIGKILL, a forked old master that sets its
// extra entries aside, and the refusals. Each test runs its own cluster.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import {
  REPO_ROOT,
  assertError,
  assertSameChecksums,
  exec,
  ok,
  post,
  printLogs,
  query,
  rows,
  startCluster,
  status,
  waitFor,
  type Cluster,
  type TestNode,
} from './helpers/cluster.js';
import { WriteLoad, assertAuditClean, auditWrites, authHeader, freeze, hardKill, idCounts, outcomeSummary, relaunch, thaw } from './helpers/load.js';

const TABLE = 'f';

async function cluster(): Promise<Cluster> {
  const c = await startCluster({ slaves: 2, extraArgs: ['--ack-timeout', '3000'] });
  ok(await exec(c.master, `CREATE TABLE ${TABLE}(id TEXT PRIMARY KEY, client INTEGER, tag TEXT)`), 'create');
  return c;
}

/** Runs `fn` on a fresh cluster; prints every log on failure; stops the cluster (thawing frozen nodes first). */
async function withCluster(fn: (c: Cluster) => Promise<void>): Promise<void> {
  const c = await cluster();
  try {
    await fn(c);
  } catch (e) {
    printLogs(c.nodes, 120);
    throw e;
  } finally {
    await WriteLoad.stopAll();
    for (const n of c.nodes) thaw(n);
    await c.stop();
  }
}

/** `npm run promote -- <args>`: exit code and stdout. */
function promoteCli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return npmRun('promote', args);
}

function npmRun(script: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script, '--', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out, err });
    });
  });
}

/** Waits until every node in `nodes` names `master` as master (and it calls itself master). */
async function waitMaster(nodes: readonly TestNode[], master: TestNode, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    async () => {
      const all = await Promise.all(nodes.map((n) => status(n)));
      return all.every((s, i) => s.master === master.url && (nodes[i] === master ? s.role === 'master' : s.role === 'slave'));
    },
    { timeoutMs, message: `every node following ${master.url}` },
  );
}

/** Stops the load, waits until every node has the same index, audits, checks checksums. */
async function settle(load: WriteLoad, c: Cluster, newMaster: TestNode, exclude: Set<string> = new Set()): Promise<void> {
  await load.stop();
  await waitFor(
    async () => {
      const s = await Promise.all(c.nodes.map((n) => status(n)));
      const idx = s.map((x) => x.applied_index);
      return idx.every((i) => i === idx[0]) && s.every((x) => x.master === newMaster.url);
    },
    { timeoutMs: 20_000, message: 'every node at one index, following the new master' },
  );
  const present = await Promise.all(c.nodes.map((n) => idCounts(n, TABLE)));
  const audit = auditWrites(
    load.records.filter((r) => !exclude.has(r.id)),
    present.map((p) => new Map([...p].filter(([id]) => !exclude.has(id)))),
  );
  assertAuditClean(audit, `after failover (${outcomeSummary(load.records)})`);
  await assertSameChecksums(c.nodes);
}

test('switchover by npm run promote under ack "all" writers: no acknowledged write lost, only not_applied refusals, pause under 1 s', { timeout: 120_000 }, async () => {
  await withCluster(async (c) => {
    const [s1, s2] = c.slaves;
    const load = new WriteLoad({ table: TABLE, tag: 'sw', timeoutMs: 15_000, clients: [c.master, s1, s2, c.master].map((node) => ({ node, ack: 'all' as const })) });
    load.start();
    await load.waitForMore(40);
    const r = await promoteCli(['1', '--master-url', c.master.url, '--data-dir', c.dataDir]);
    assert.equal(r.code, 0, `promote: ${r.out} ${r.err}`);
    const answer = JSON.parse(r.out);
    assert.equal(answer.mode, 'switchover');
    assert.equal(answer.master, s1.url);
    assert.equal(answer.epoch, 2);
    assert.ok(answer.paused_ms <= 1000, `writes paused ${answer.paused_ms} ms`);
    await waitMaster(c.nodes, s1);
    await load.waitForAcked(c.master.id, 20); // the old master forwards to the new one
    await load.waitForAcked(s2.id, 20);
    const bad = load.records.filter((x) => x.ms >= 0 && x.status !== 200 && !(x.code === 'MASTER_UNAVAILABLE' && x.outcome === 'not_applied'));
    assert.deepEqual(bad, [], `errors other than not_applied: ${outcomeSummary(load.records)}`);
    await settle(load, c, s1);
    const st = await status(s1);
    assert.equal(st.epoch, 2);
    assert.ok(
      (await Promise.all(c.nodes.map((n) => status(n)))).every((x) => x.epoch === 2),
      'every node knows epoch 2',
    );
    // /primary and /replica follow the role.
    assert.equal((await fetch(`${s1.url}/primary`)).status, 200);
    assert.equal((await fetch(`${c.master.url}/primary`)).status, 503);
    assert.equal((await fetch(`${c.master.url}/replica`)).status, 200);
  });
});

test('failover after SIGKILL of the master: npm run promote through the slave, writes resume, the restarted old master follows', { timeout: 120_000 }, async () => {
  await withCluster(async (c) => {
    const [s1, s2] = c.slaves;
    const load = new WriteLoad({ table: TABLE, tag: 'fo', timeoutMs: 15_000, clients: [s1, s2, s2].map((node) => ({ node, ack: 'all' as const })) });
    load.start();
    await load.waitForMore(40);
    await hardKill(c.master);
    const killedAt = Date.now();
    const r = await promoteCli(['1', '--master-url', c.master.url, '--node-url', s1.url, '--data-dir', c.dataDir]);
    assert.equal(r.code, 0, `promote: ${r.out} ${r.err}`);
    const answer = JSON.parse(r.out);
    assert.equal(answer.mode, 'failover');
    assert.equal(answer.master, s1.url);
    assert.equal(answer.epoch, 2);
    await load.waitForAcked(s2.id, 20);
    const firstAck = load.records.filter((x) => x.status === 200 && x.startedAt > killedAt).sort((a, b) => a.startedAt + a.ms - (b.startedAt + b.ms))[0];
    process.stdout.write(`# failover: first acknowledged write ${firstAck.startedAt + Math.round(firstAck.ms) - killedAt} ms after the kill (promote by CLI included)\n`);
    await relaunch(c.master);
    await waitMaster(c.nodes, s1, 15_000);
    await load.waitForAcked(s2.id, 10);
    await settle(load, c, s1);
    // The old master, now a follower, forwards writes to the new master.
    const w = ok(await exec(c.master, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('via-old', 0, 'x')`), 'write via the old master');
    assert.equal(w.forwarded_to, s1.url);
    // show-all pointed at the old master's URL (the default, :8080 on one machine) finds the new one.
    const sa = await npmRun('show-all', ['--master-url', c.master.url]);
    assert.equal(sa.code, 0, `show-all: ${sa.out} ${sa.err}`);
    assert.ok(sa.out.includes(`master ${s1.url}, epoch 2 (asked ${c.master.url}, which follows it)`), sa.out);
    assert.match(sa.out, /identical: 3 nodes/);
  });
});

function readRoleFile(dir: string, id: number): { peers?: { id: number; url?: string }[] } {
  try {
    return JSON.parse(readFileSync(join(dir, `node-${id}.role.json`), 'utf8'));
  } catch {
    return {};
  }
}

test('an old master that kept a write the new master never had sets it aside in diverged-<epoch>-<index>.jsonl and converges', { timeout: 120_000 }, async () => {
  await withCluster(async (c) => {
    const [s1, s2] = c.slaves;
    ok(await exec(s1, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('before', 0, 'x')`), 'before');
    // Slaves learn each other's URL from the master's heartbeat answers and keep it in their
    // role file: the failover below asks the other slave what it has.
    for (const [a, b] of [[s1, s2], [s2, s1]]) {
      await waitFor(() => readRoleFile(c.dataDir, a.id).peers?.some((p: { id: number; url?: string }) => p.id === b.id && p.url === b.url), {
        timeoutMs: 10_000,
        message: `${a.label()} knows ${b.label()}`,
      });
    }
    // Only the master gets W: both slaves killed (a frozen one would still find W in its
    // socket buffer when thawed), ack "master"; then the master freezes and they return.
    await hardKill(s1);
    await hardKill(s2);
    const w = ok(await post(c.master.url, { query: `INSERT INTO ${TABLE}(id, client, tag) VALUES ('lonely', 0, 'x')`, ack: 'master' }), 'W on the master alone');
    freeze(c.master);
    await Promise.all([relaunch(s1), relaunch(s2)]);
    const p = await post(`${s1.url}/nodes/1/promote`, {}, { headers: authHeader(c.dataDir), timeoutMs: 30_000 });
    const answer = ok(p, 'failover');
    assert.equal(answer.mode, 'failover');
    assert.equal(answer.index, w.index - 1, 'the new master lacks W');
    ok(await exec(s2, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('after', 0, 'x')`), 'a write in epoch 2 takes W\'s index');
    thaw(c.master);
    await waitMaster(c.nodes, s1, 15_000);
    const file = join(c.dataDir, `diverged-1-${w.index}.jsonl`);
    await waitFor(() => existsSync(file), { timeoutMs: 10_000, message: `${file} (dir: ${readdirSync(c.dataDir).join(', ')})` });
    const kept = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(kept.length, 1);
    assert.equal(kept[0].index, w.index);
    assert.match(JSON.stringify(kept[0].stmts), /lonely/);
    await waitFor(
      async () => {
        const s = await Promise.all(c.nodes.map((n) => status(n)));
        return s.every((x) => x.applied_index === s[0].applied_index && !x.diverged);
      },
      { timeoutMs: 20_000, message: 'the old master re-seeded to the new master index' },
    );
    for (const n of c.nodes) {
      assert.deepEqual(rows(await query(n, `SELECT id FROM ${TABLE} ORDER BY id`)), [['after'], ['before']], `${n.label()}`);
    }
    await assertSameChecksums(c.nodes);
  });
});

test('promotion refusals: the master itself, an unknown node, a down node, a bad body, no token, two at once', { timeout: 120_000 }, async () => {
  await withCluster(async (c) => {
    const auth = { headers: authHeader(c.dataDir), timeoutMs: 20_000 };
    const [s1, s2] = c.slaves;
    assertError(await post(`${c.master.url}/nodes/0/promote`, {}, auth), 409, 'PROMOTION_REFUSED');
    assertError(await post(`${c.master.url}/nodes/9/promote`, {}, auth), 404, 'NOT_FOUND');
    assertError(await post(`${c.master.url}/nodes/x/promote`, {}, auth), 400, 'BAD_REQUEST');
    assertError(await post(`${c.master.url}/nodes/1/promote`, { force: 'yes' }, auth), 400, 'BAD_REQUEST');
    assertError(await post(`${c.master.url}/nodes/1/promote`, {}), 401, 'UNAUTHORIZED');
    // Two promotions at once: one wins, the other is refused; never two masters.
    const [a, b] = await Promise.all([post(`${c.master.url}/nodes/1/promote`, {}, auth), post(`${c.master.url}/nodes/2/promote`, {}, auth)]);
    const codes = [a, b].map((r) => r.status).sort();
    assert.deepEqual(codes, [200, 409], `answers: ${a.text} | ${b.text}`);
    const winner = a.status === 200 ? s1 : s2;
    await waitMaster(c.nodes, winner);
    const masters = (await Promise.all(c.nodes.map((n) => status(n)))).filter((s) => s.role === 'master');
    assert.equal(masters.length, 1);
    // A node that is down cannot be promoted by the new master.
    const loser = winner === s1 ? s2 : s1;
    await hardKill(loser);
    await waitFor(async () => (await status(winner)).nodes.some((n: { id: number; state: string }) => n.id === loser.id && n.state === 'down'), {
      timeoutMs: 10_000,
      message: 'loser down',
    });
    const down = await post(`${winner.url}/nodes/${loser.id}/promote`, {}, auth);
    assertError(down, 409, 'PROMOTION_REFUSED');
    assert.match(down.body.error.message, /down/);
    // Writes still work after all the refusals.
    ok(await exec(c.master, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('still', 0, 'x')`), 'write after refusals');
    await delay(10);
  });
});

test('a switchover asked of the node being promoted (a slave passes it to the master) works, and back again', { timeout: 120_000 }, async () => {
  await withCluster(async (c) => {
    const [s1] = c.slaves as [TestNode, TestNode];
    const headers = authHeader(c.dataDir);
    // README: curl -X POST localhost:8081/nodes/1/promote — sent to node 1 itself.
    const there = await post(`${s1.url}/nodes/1/promote`, {}, { headers, timeoutMs: 30_000 });
    assert.equal(there.status, 200, there.text);
    await waitFor(async () => (await status(s1)).role === 'master' && (await status(c.master)).role === 'slave', { timeoutMs: 15_000, message: 'node 1 master, node 0 slave' });
    // And back, asked of node 0 (now a slave), as `npm run promote -- 0` does (it asks the base port).
    const back = await post(`${c.master.url}/nodes/0/promote`, {}, { headers, timeoutMs: 30_000 });
    assert.equal(back.status, 200, back.text);
    await waitFor(async () => (await status(c.master)).role === 'master' && (await status(s1)).role === 'slave', { timeoutMs: 15_000, message: 'node 0 master again' });
    ok(await exec(c.slaves[1]!, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('after', 0, 'x')`), 'a write after both switchovers');
  });
});
