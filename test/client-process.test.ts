// sqlfleet/client in a process of its own (issue 32, items 1 and 2): the test runner keeps
// its process alive, so these calls run in a child with nothing else alive, as a user's
// script would. A failing call must be reported (caught, with its code) and the script go
// on, never end silently with exit code 13 while the client waits between retries; wrong
// credentials are UNAUTHORIZED at once, without MaxListenersExceededWarning.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import { REPO_ROOT, exec, killOnExit, ok, printLogs, startCluster, tempDir, waitFor, type Cluster } from './helpers/cluster.js';
import { basic, runCli } from './helpers/hardening.js';

const CLIENT = pathToFileURL(join(REPO_ROOT, 'src', 'client', 'index.ts')).href;
const dir = tempDir('sqlfleet-client-process-');

interface Child {
  code: number | null;
  out: string;
  err: string;
  ms: number;
}

/** Runs `body` as an ES module (through tsx) with `createClient` imported; resolves when it exits. */
function runScript(name: string, body: string, onLine?: (line: string) => void): { done: Promise<Child>; pid: () => number | undefined } {
  const file = join(dir, `${name}.mts`);
  writeFileSync(file, `import { createClient } from ${JSON.stringify(CLIENT)};\nconst print = (o) => console.log(JSON.stringify(o));\n${body}\n`);
  const t0 = performance.now();
  const child = spawn(process.execPath, ['--import', 'tsx', file], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  killOnExit(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    const before = out.length;
    out += d;
    if (onLine) for (const line of out.slice(out.lastIndexOf('\n', before - 1) + 1).split('\n').slice(0, -1)) onLine(line);
  });
  child.stderr.on('data', (d: Buffer) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<Child>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, out, err, ms: performance.now() - t0 });
    }),
  );
  return { done, pid: () => child.pid };
}

const lines = (out: string): Record<string, unknown>[] =>
  out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** A port nothing listens on (the OS gave it, then it was closed). */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

test('nothing listens: query and execute reject with a code after their deadline; the script goes on and exits 0', { timeout: 60_000 }, async () => {
  const url = `http://127.0.0.1:${await deadPort()}`;
  const r = await runScript(
    'nothing-listens',
    `const db = createClient({ urls: [${JSON.stringify(url)}], timeoutMs: 1500 });
     for (const call of [() => db.query('SELECT 1'), () => db.execute('CREATE TABLE t(x)')]) {
       const t0 = Date.now();
       try { await call(); print({ resolved: true }); } catch (e) { print({ caught: e.code, outcome: e.outcome ?? null, ms: Date.now() - t0 }); }
     }
     await db.close();
     print({ end: true });`,
  ).done;
  assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
  const got = lines(r.out);
  assert.equal(got.length, 3, r.out);
  for (const g of got.slice(0, 2)) {
    assert.ok(['NETWORK', 'NO_MASTER', 'DEADLINE'].includes(String(g.caught)), JSON.stringify(g));
    assert.ok(Number(g.ms) >= 1000, `rejected after its deadline (1.5 s), not before: ${JSON.stringify(g)}`);
  }
  assert.equal(got[1]!.outcome, 'not_applied');
  assert.deepEqual(got[2], { end: true });
});

// ---- one node with --auth ---------------------------------------------------------------

const PASSWORD = 'right-pass';
let cluster: Cluster | undefined;

async function authCluster(): Promise<Cluster> {
  if (cluster) return cluster;
  const hash = await runCli(['hash-password'], { stdin: `${PASSWORD}\n` });
  assert.equal(hash.code, 0, hash.stderr);
  const users = join(dir, 'users.json');
  writeFileSync(users, JSON.stringify({ users: [{ username: 'app', password: hash.stdout.trim(), role: 'admin' }] }));
  cluster = await startCluster({ slaves: 0, extraArgs: ['--auth', users], headers: basic('app', PASSWORD), readyTimeoutMs: 30_000 });
  ok(await exec(cluster.master, 'CREATE TABLE t(x INTEGER)'), 'create t');
  return cluster;
}

after(async () => {
  await cluster?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('wrong credentials: UNAUTHORIZED at once (not NO_MASTER at the deadline), no MaxListenersExceededWarning', { timeout: 90_000 }, async () => {
  const c = await authCluster();
  try {
    const r = await runScript(
      'wrong-credentials',
      `const db = createClient({ urls: [${JSON.stringify(c.master.url)}], timeoutMs: 8000, auth: { username: 'app', password: 'wrong' } });
       const calls = { execute: () => db.execute('INSERT INTO t VALUES (1)'), query: () => db.query('SELECT 1'), strong: () => db.query('SELECT 1', undefined, { consistency: 'strong' }), status: () => db.status() };
       for (const [name, call] of Object.entries(calls)) {
         const t0 = Date.now();
         try { await call(); print({ name, resolved: true }); } catch (e) { print({ name, caught: e.code, status: e.status ?? null, outcome: e.outcome ?? null, ms: Date.now() - t0 }); }
       }
       await db.close();`,
    ).done;
    assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
    assert.doesNotMatch(r.err, /MaxListenersExceededWarning/);
    const got = lines(r.out);
    assert.deepEqual(got.map((g) => [g.name, g.caught, g.status]), [
      ['execute', 'UNAUTHORIZED', 401],
      ['query', 'UNAUTHORIZED', 401],
      ['strong', 'UNAUTHORIZED', 401],
      ['status', 'UNAUTHORIZED', 401],
    ], r.out);
    assert.equal(got[0]!.outcome, 'not_applied');
    for (const g of got) assert.ok(Number(g.ms) < 4000, `answered at once, not at the 8 s deadline: ${JSON.stringify(g)}`);
  } catch (e) {
    printLogs(c.nodes);
    throw e;
  }
});

test('the master SIGKILLed while a script writes: the pending write is reported (caught, with its code), the script exits 0', { timeout: 90_000 }, async () => {
  const c = await authCluster();
  let writing = false;
  const child = runScript(
    'master-killed',
    `const db = createClient({ urls: [${JSON.stringify(c.master.url)}], timeoutMs: 3000, auth: { username: 'app', password: ${JSON.stringify(PASSWORD)} } });
     let n = 0;
     for (;;) {
       try { await db.execute('INSERT INTO t VALUES (?)', [n]); } catch (e) { print({ caught: e.code, outcome: e.outcome ?? null, writes: n }); break; }
       if (++n === 20) print({ writing: true });
     }
     await db.close();
     print({ end: true });`,
    (line) => {
      if (line.includes('"writing"')) writing = true;
    },
  );
  await waitFor(() => writing, { timeoutMs: 30_000, message: 'the script writing' });
  await c.master.kill('SIGKILL');
  const r = await child.done;
  assert.equal(r.code, 0, `exit ${r.code}\n${r.out}\n${r.err}`);
  const got = lines(r.out);
  const caught = got.find((g) => 'caught' in g);
  assert.ok(caught, `the failed write was reported: ${r.out}`);
  assert.ok(['NETWORK', 'NO_MASTER', 'DEADLINE', 'MASTER_UNAVAILABLE'].includes(String(caught.caught)), JSON.stringify(caught));
  assert.deepEqual(got[got.length - 1], { end: true });
});
