// show-all against a real cluster: identical replicas, a stopped node, and a replica
// whose SQLite file was edited behind sqlfleet's back while its node was stopped.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import Database from 'better-sqlite3';
import {
  REPO_ROOT,
  clusterTest,
  exec,
  get,
  ok,
  post,
  status,
  startCluster,
  waitFor,
  waitForIndex,
  type Cluster,
} from './helpers/cluster.js';

const SHOW_ALL = join(REPO_ROOT, 'scripts', 'show-all.ts');

let c: Cluster | undefined;
/** Output of the show-all runs of the current test, printed if it fails. */
let runs: string[] = [];
const it = (name: string, fn: () => Promise<void>): void =>
  clusterTest(
    () => c,
    () => runs.join('\n'),
  )(name, async () => {
    runs = [];
    await fn();
  });
const cluster = (): Cluster => {
  assert.ok(c, 'cluster not started');
  return c;
};

before(async () => {
  c = await startCluster({ slaves: 2, extraArgs: ['--verify-ms', '500'] });
  const { master, slaves, nodes } = c;
  ok(
    await post(
      master.url,
      '{"command":"exec","query":"CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)","is_master":false}',
    ),
  );
  ok(await exec(master, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, user_id INTEGER, body TEXT, tag BLOB)'));
  ok(await exec(master, 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT) WITHOUT ROWID'));
  ok(await exec(master, "INSERT INTO users(username, email) VALUES ('ana', 'ana@example.com')"));
  ok(await exec(slaves[0]!, "INSERT INTO users(username, email) VALUES ('bo', 'bo@example.com')"));
  ok(await exec(slaves[1]!, "INSERT INTO users(username, email) VALUES ('cy', 'cy@example.com')"));
  ok(await exec(slaves[0]!, "INSERT INTO notes(user_id, body, tag) VALUES (1, 'hello\nworld', randomblob(4)), (2, NULL, NULL)"));
  ok(await exec(master, "INSERT INTO notes(user_id, body) VALUES (9007199254740993, 'beyond 2^53')"));
  const w = ok(await exec(slaves[1]!, "INSERT INTO kv VALUES ('b', 'two'), ('a', 'one')"));
  await waitForIndex(nodes, w.index);
});

after(async () => {
  await c?.stop();
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly lastLine: string;
}

/** Runs scripts/show-all.ts with `args` (30 s deadline) and collects its output. */
async function showAll(...args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', SHOW_ALL, ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  const code = await new Promise<number | null>((res) => child.once('close', (c) => res(c)));
  clearTimeout(timer);
  const lines = stdout.trimEnd().split('\n');
  const run = { code, stdout, stderr, lastLine: lines[lines.length - 1] ?? '' };
  runs.push(`[show-all ${args.join(' ')}] exit ${code}\n${stdout}${stderr ? `[stderr]\n${stderr}` : ''}`);
  return run;
}

it('identical replicas: exit 0, every table shown, verdict names the node count and index', async () => {
  const { master } = cluster();
  const index = (await status(master)).applied_index as number;
  const run = await showAll('--master-url', master.url);
  assert.equal(run.code, 0, run.stderr);
  assert.equal(run.lastLine, `identical: 3 nodes at index ${index}`);
  for (const text of ['table users', 'table notes', 'table kv', 'ana@example.com', 'cy@example.com', 'two', '9007199254740993']) {
    assert.ok(run.stdout.includes(text), `output lacks ${text}`);
  }
  assert.ok(!run.stdout.includes('_sqlfleet_'), 'internal tables shown');
  assert.ok(!run.stdout.includes('DOWN'));
  assert.equal(run.stdout.match(/^(identical|DIFFERENT)/gm)?.length, 1, 'exactly one verdict line');

  // --base-port finds the master on this machine too.
  const byPort = await showAll('--base-port', new URL(master.url).port);
  assert.equal(byPort.code, 0);
  assert.equal(byPort.lastLine, `identical: 3 nodes at index ${index}`);
});

it('--verify prints the master\'s own checksum comparisons; equal replicas pass', async () => {
  const { master } = cluster();
  await waitFor(
    async () => {
      const v = ((await status(master)).verified ?? []) as { id: number; equal: boolean | null }[];
      return v.length === 2 && v.every((x) => x.equal === true);
    },
    { timeoutMs: 20_000, message: 'master never compared both slaves as equal' },
  );
  const run = await showAll('--master-url', master.url, '--verify');
  assert.equal(run.code, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /master checksum comparisons \(--verify\):/);
  assert.match(run.stdout, /node 1: (equal at index \d+|not compared)/);
  const json = JSON.parse((await showAll('--master-url', master.url, '--verify', '--json')).stdout);
  assert.ok(Array.isArray(json.verified) && json.verified.length === 2, 'verified missing from --json');
});

it('--json prints one JSON document with the same data', async () => {
  const { master } = cluster();
  const run = await showAll('--master-url', master.url, '--json');
  assert.equal(run.code, 0, run.stderr);
  const doc = JSON.parse(run.stdout);
  assert.equal(doc.identical, true);
  assert.match(run.stdout, /\b9007199254740993\b/, 'an integer beyond 2^53 printed exactly');
  assert.equal(doc.verdict, `identical: 3 nodes at index ${doc.index}`);
  assert.deepEqual(doc.differences, []);
  assert.deepEqual(doc.down, []);
  assert.deepEqual(doc.nodes.map((n: { id: number }) => n.id), [0, 1, 2]);
  assert.deepEqual(Object.keys(doc.tables).sort(), ['kv', 'notes', 'users']);
  for (const id of ['0', '1', '2']) {
    assert.equal(doc.tables.users.nodes[id].rows.length, 3);
    assert.deepEqual(doc.tables.kv.nodes[id].rows, [['a', 'one'], ['b', 'two']]);
  }
});

it('a stopped node is shown as DOWN and the verdict is not identical (exit 1)', async () => {
  const { master, slaves } = cluster();
  await slaves[1]!.kill('SIGTERM');
  const run = await showAll('--master-url', master.url);
  assert.equal(run.code, 1);
  assert.match(run.stdout, /node 2\b.*DOWN/);
  assert.match(run.lastLine, /^DIFFERENT: /);
  assert.match(run.lastLine, /node 2 is DOWN/);
  assert.ok(!/table \w+ differs/.test(run.lastLine), `a table difference reported: ${run.lastLine}`);
});

it('a replica edited directly while stopped is reported: table users differs on node 2 (exit 1)', async () => {
  const { master, slaves, dataDir } = cluster();
  const s2 = slaves[1]!;
  assert.ok(!s2.running, 'node 2 should still be stopped by the previous test');
  const file = join(dataDir, 'node-2.db');
  assert.ok(existsSync(file), `${file} missing`);
  const db = new Database(file);
  try {
    const internal = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE '\\_sqlfleet\\_%' ESCAPE '\\'").all();
    assert.ok(internal.length > 0, 'expected internal _sqlfleet_ tables in the node file');
    const info = db.prepare("UPDATE users SET email = 'tampered@example.com' WHERE username = 'bo'").run();
    assert.equal(info.changes, 1);
  } finally {
    db.close();
  }
  await cluster().restart(s2);
  await waitFor(async () => (await get(`${s2.url}/health`)).status === 200, { message: 'node 2 healthy after restart' });
  const masterIndex = (await status(master)).applied_index as number;
  await waitFor(async () => (await status(s2)).applied_index === masterIndex, { message: 'node 2 back at the master index' });

  const run = await showAll('--master-url', master.url);
  assert.equal(run.code, 1);
  assert.match(run.lastLine, /^DIFFERENT: /);
  assert.match(run.lastLine, /table users differs on node 2\b/);
  assert.ok(!run.lastLine.includes('notes') && !run.lastLine.includes('kv'), `only users differs: ${run.lastLine}`);
  assert.ok(!/node 1\b/.test(run.lastLine), `node 1 blamed: ${run.lastLine}`);
  assert.ok(!run.lastLine.includes('DOWN'));
  assert.ok(run.stdout.includes('tampered@example.com'), 'the differing row is shown');
  assert.ok(run.stdout.includes('bo@example.com'), 'the reference row is shown');

  const json = await showAll('--master-url', master.url, '--json');
  assert.equal(json.code, 1);
  const doc = JSON.parse(json.stdout);
  assert.equal(doc.identical, false);
  assert.equal(doc.verdict, run.lastLine);
  assert.deepEqual(doc.differences.map((d: { table: string; nodes: number[] }) => [d.table, d.nodes]), [['users', [2]]]);
  assert.deepEqual(doc.down, []);
  assert.equal(doc.tables.users.nodes['2'].rows.find((r: unknown[]) => r[1] === 'bo')[2], 'tampered@example.com');
  assert.notEqual(doc.tables.users.nodes['2'].digest, doc.tables.users.nodes['0'].digest);
});

it('an unreachable master gives one verdict line and exit 1', async () => {
  const run = await showAll('--master-url', 'http://127.0.0.1:1', '--timeout', '1000');
  assert.equal(run.code, 1);
  assert.match(run.lastLine, /cannot reach the master at http:\/\/127\.0\.0\.1:1/);
  assert.equal(run.stdout.trim().split('\n').length, 1);
});
