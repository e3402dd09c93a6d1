// Issue 24: one SQLite library per process. A node started from a copied installation
// (cp -a of an installed checkout: a Docker stage, a deploy tarball, a CI cache) must load
// that copy's better-sqlite3 in every thread; a process that has two refuses to start.
// Two copies of SQLite in one process do not see each other's WAL read locks, and readers
// then see "database disk image is malformed".

import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { REPO_ROOT, TestNode, exec, ok, query, rows, tempDir } from './helpers/cluster.js';

const dirs: string[] = [];
const nodes: TestNode[] = [];
after(async () => {
  await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

/** Distinct better_sqlite3.node files mapped by process `pid`. */
function sqliteLibraries(pid: number): string[] {
  const maps = fs.readFileSync(`/proc/${pid}/maps`, 'utf8');
  return [...new Set(maps.split('\n').filter((l) => l.endsWith('better_sqlite3.node')).map((l) => l.slice(l.indexOf('/'))))];
}

test('a node started from a cp -a copy of an installed checkout loads only the copy\'s SQLite, in every thread', { timeout: 120_000, skip: process.platform !== 'linux' && 'reads /proc/<pid>/maps' }, async () => {
  // The original has run once, so its bundle cache exists (and is newer than every source).
  const built = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'sqlfleet.js'), '--help'], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 60_000 });
  assert.equal(built.status, 0, `sqlfleet --help in the original: ${built.stderr}`);
  assert.ok(fs.existsSync(path.join(REPO_ROOT, 'node_modules', '.cache', 'sqlfleet', 'cli.mjs')), 'the original has a bundle cache');

  const tmp = tempDir('sqlfleet-copy-');
  dirs.push(tmp);
  const copy = path.join(tmp, 'sqlfleet');
  const cp = spawnSync('cp', ['-a', REPO_ROOT, copy], { encoding: 'utf8' });
  assert.equal(cp.status, 0, `cp -a: ${cp.stderr}`);
  fs.rmSync(path.join(copy, 'data'), { recursive: true, force: true });

  // TestNode runs the original's bin: spawn the copy's by hand, the way a user would.
  const dataDir = path.join(tmp, 'data');
  const child = spawn(process.execPath, [path.join(copy, 'bin', 'sqlfleet.js'), 'master', '0', '--port', '0', '--data-dir', dataDir], {
    cwd: copy,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d: string) => (out += d));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line in 60 s:\n${out}`)), 60_000);
    child.stdout.on('data', (d: string) => {
      out += d;
      const m = /"msg":"ready"/.test(d) ? /"url":"([^"]+)"/.exec(d) : null;
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!.replace('://0.0.0.0:', '://127.0.0.1:'));
      }
    });
    child.once('exit', (code) => reject(new Error(`the node exited (${code}) before ready:\n${out}`)));
  });
  try {
    const node = { url } as TestNode;
    ok(await exec(node, 'CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)'));
    ok(await exec(node, "INSERT INTO kv(v) VALUES ('a'), ('b'), ('c')"));
    // Not a point read: answered by a read worker, whose driver is the one that matters.
    for (let i = 0; i < 4; i++) assert.deepEqual(rows(await query(node, 'SELECT count(*), max(v) FROM kv')), [[3, 'c']]);
    const libs = sqliteLibraries(child.pid!);
    assert.equal(libs.length, 1, `exactly one better_sqlite3.node mapped, found: ${libs.join(', ')}`);
    assert.ok(libs[0]!.startsWith(fs.realpathSync(copy) + path.sep), `the copy's own driver is loaded, not ${libs[0]}`);
  } finally {
    child.kill('SIGKILL');
  }
});

test('a process that has loaded a second SQLite library refuses to start, and says why', { timeout: 90_000, skip: process.platform !== 'linux' && 'reads /proc/self/maps' }, async () => {
  const tmp = tempDir('sqlfleet-twolibs-');
  dirs.push(tmp);
  // A second copy of the same native library, loaded first by a preloaded module, as a
  // stale bundle or a plugin with its own node_modules would.
  const second = path.join(tmp, 'better_sqlite3.node');
  fs.copyFileSync(path.join(REPO_ROOT, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node'), second);
  const preload = path.join(tmp, 'preload.cjs');
  fs.writeFileSync(
    preload,
    `const D = require(${JSON.stringify(path.join(REPO_ROOT, 'node_modules', 'better-sqlite3'))});\nnew D(':memory:', { nativeBinding: ${JSON.stringify(second)} }).close();\n`,
  );
  const node = new TestNode({
    role: 'master',
    id: 0,
    numSlaves: 0,
    dataDir: path.join(tmp, 'data'),
    env: { NODE_OPTIONS: `--require ${preload}` },
    readyTimeoutMs: 60_000,
  });
  nodes.push(node);
  await assert.rejects(node.launch(), /exited before ready/);
  assert.match(node.logs(), /cannot start node 0: .*2 SQLite libraries|two SQLite libraries/, node.logs());
  assert.equal(node.proc.exitCode, 1);
});
