// The commands users type: `npm run cluster -- 2` serves a working cluster from the
// bundle bin/sqlfleet.js builds, and stops on SIGINT (Ctrl-C); misuse is refused.

import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { etcdSkip } from './helpers/etcd.js';
import { CLI, REPO_ROOT, free, freeBase, killOnExit, post, rows, tempDir, waitFor } from './helpers/cluster.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res(child.exitCode);
    else child.once('exit', (code) => res(code));
  });
}

/**
 * Runs `npm run cluster -- <args> --base-port <base> --data-dir <tmp>` in its own process
 * group (npm, sh and node signalled by one PID), calls `fn` with the URL of node `id` and
 * the output so far, then stops it with SIGINT and returns everything it printed. A
 * failure carries the cluster's output; a cluster still running 15 s after SIGINT fails.
 */
async function runCluster(args: string[], base: number, fn: (url: (id: number) => string, out: () => string) => Promise<void>): Promise<string> {
  const dataDir = tempDir('sqlfleet-cli-');
  dirs.push(dataDir);
  const child = spawn('npm', ['run', 'cluster', '--', ...args, '--base-port', String(base), '--data-dir', dataDir], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  killOnExit(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  try {
    await fn((id) => `http://127.0.0.1:${base + id}`, () => out);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- cluster output ---\n${out.slice(-4000)}`);
  } finally {
    process.kill(-child.pid!, 'SIGINT');
    const code = await Promise.race([exited(child), new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000).unref())]);
    if (code === 'hung') process.kill(-child.pid!, 'SIGKILL');
    assert.notEqual(code, 'hung', `cluster did not stop within 15 s of SIGINT:\n${out}`);
  }
  return out;
}

test('npm run cluster -- 2 serves master and slaves; a write through a slave reaches every node; SIGINT stops all', async () => {
  const base = await freeBase();
  const out = await runCluster(['2'], base, async (url, output) => {
    await waitFor(
      async () => {
        const s = await fetch(`${url(0)}/status`).then((r) => r.json() as Promise<{ nodes: { state: string }[] }>);
        return s.nodes.length === 3 && s.nodes.every((n) => n.state === 'up');
      },
      { timeoutMs: 45_000, message: 'all three nodes up' },
    );
    assert.equal((await post(url(0), { command: 'exec', query: 'CREATE TABLE t (x INTEGER)' })).status, 200);
    const w = await post(url(1), { query: 'INSERT INTO t VALUES (?)', params: [42] });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    assert.deepEqual(w.body.replicated_to, [1, 2]);
    assert.deepEqual(rows(await post(url(2), { query: 'SELECT x FROM t' })), [[42]]);
    for (const id of [0, 1, 2]) assert.match(output(), new RegExp(`\\[node ${id}\\] .*"msg":"ready"`), `node ${id} logged ready with its prefix`);
  });
  for (const id of [0, 1, 2]) assert.match(out, new RegExp(`\\[node ${id}\\] exited`), `node ${id} exited`);
  assert.equal(await free(base), true, 'the master port is released');
});

test('npm run cluster -- 2 --with-etcd: a local etcd, one master (node 0 unless it starts a lease late), "ready" once every node is in sync, writes via a slave, SIGINT stops etcd too', { skip: etcdSkip() }, async () => {
  const base = await freeBase(5); // three nodes, then etcd's client and peer ports
  const out = await runCluster(['2', '--with-etcd'], base, async (url, output) => {
    const etcdUrl = await waitFor(() => /\[cluster\] etcd on (\S+)/.exec(output())?.[1], { timeoutMs: 30_000, message: 'etcd line' });
    assert.match(String(etcdUrl), new RegExp(`:${base + 3}`));
    await waitFor(() => output().includes('[cluster] ready:'), { timeoutMs: 60_000, message: '[cluster] ready' });
    // etcd's own log (deprecation warnings, raft INFO lines) goes to <data-dir>/etcd.log, not the terminal.
    assert.doesNotMatch(output(), /^\[etcd\] (?!exited)/m, "etcd's log lines in the cluster's output");
    assert.match(output(), /log in \S+etcd\.log/);
    assert.doesNotMatch(output(), /master unreachable|ECONNREFUSED/, 'slaves starting before their master do not warn');
    // Node 0 is the initial master unless it appears a lease TTL after the others (a slow
    // start on a loaded machine): then a slave takes the key, as designed. Exactly one master.
    const all = await Promise.all([0, 1, 2].map((i) => fetch(`${url(i)}/status`).then((r) => r.json() as Promise<Record<string, any>>)));
    const masters = [0, 1, 2].filter((i) => all[i]!.role === 'master');
    assert.equal(masters.length, 1, `exactly one master: ${JSON.stringify(all.map((x) => x.role))}`);
    const m = masters[0]!;
    const [a, b] = [0, 1, 2].filter((i) => i !== m) as [number, number];
    if (m !== 0) assert.match(output(), /giving the initial master \(node 0\) one lease TTL to appear/, 'a slave took the key only after waiting for node 0');
    const s = all[m]!;
    assert.equal(s.etcd.connected, true);
    assert.equal(s.lease.valid, true);
    assert.deepEqual(s.sync_set, [a, b], 'ready means every slave is in the sync set');
    assert.equal((await post(url(b), { command: 'exec', query: 'CREATE TABLE t (x INTEGER)' })).status, 403, 'a slave refuses schema changes');
    assert.equal((await post(url(m), { command: 'exec', query: 'CREATE TABLE t (x INTEGER)' })).status, 200);
    const w = await post(url(a), { query: 'INSERT INTO t VALUES (?)', params: [7] });
    assert.equal(w.status, 200, JSON.stringify(w.body));
    assert.deepEqual(w.body.replicated_to, [a, b]);
    assert.deepEqual(rows(await post(url(b), { query: 'SELECT x FROM t' })), [[7]]);
  });
  assert.match(out, /\[etcd\] exited/);
  assert.equal(await free(base + 3), true, "etcd's port is released");
});

test('the bundle bin/sqlfleet.js runs is Latin-1 text, so V8 holds its source at one byte a character', () => {
  // One character above U+00FF (a kept comment's →, the console's …) made V8 store all of the
  // ~4 MB bundle at two bytes a character: ~4 MB more resident memory in every node.
  const bundle = readFileSync(join(REPO_ROOT, 'node_modules', '.cache', 'sqlfleet', 'cli.mjs'), 'utf8');
  const wide = [...bundle.matchAll(/[^\u0000-\u00ff]/g)].slice(0, 5).map((m) => `${JSON.stringify(m[0])} in ${JSON.stringify(bundle.slice(Math.max(0, m.index! - 60), m.index! + 20))}`);
  assert.deepEqual(wide, [], 'characters above U+00FF in the bundle (write them as \\u escapes or ASCII)');
});

test('cluster refuses --port (each node needs its own: --base-port)', () => {
  const r = spawnSync(process.execPath, [CLI, 'cluster', '2', '--port', '9'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /use --base-port/);
});

test('the launcher answers --version with package.json\'s version', () => {
  const r = spawnSync(process.execPath, [CLI, '--version'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version);
});
