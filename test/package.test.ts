// Using sqlfleet outside the checkout (issue 32, item 16): `npm pack`, install the tarball
// into an empty folder, then `npx sqlfleet cluster 2` serves, and a plain-node ESM script
// (no tsx) imports `sqlfleet/client` and talks to that cluster.
//
// Install cost: better-sqlite3 compiles from source on install (about 2 minutes here). The
// tarball is installed with --ignore-scripts from the npm cache (--offline first, then
// --prefer-offline, which fetches only what the cache lacks), and the checkout's compiled
// better_sqlite3.node is copied in when the installed better-sqlite3 is the same version;
// otherwise it is rebuilt (`npm rebuild better-sqlite3`). What is tested is the package:
// its files, bin, exports and dependency list; the native binary is the one npm install
// built for this machine from the same source.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, test } from 'node:test';
import { REPO_ROOT, freeBase, killOnExit, tempDir, waitFor } from './helpers/cluster.js';

const run = promisify(execFile);
const dir = tempDir('sqlfleet-pack-');
after(() => rmSync(dir, { recursive: true, force: true }));

/** npm with a 10-minute deadline; resolves stdout, rejects with npm's output. */
async function npm(args: string[], cwd: string): Promise<string> {
  try {
    return (await run('npm', args, { cwd, timeout: 600_000, maxBuffer: 64 * 1024 * 1024 })).stdout;
  } catch (e) {
    const x = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`npm ${args.join(' ')} failed: ${x.message}\n${x.stdout ?? ''}\n${x.stderr ?? ''}`);
  }
}

test('npm pack -> install in an empty folder -> npx sqlfleet cluster 2 serves, and node imports sqlfleet/client', { timeout: 900_000 }, async () => {
  // 1. The tarball, as `npm pack` makes it (prepare builds dist/client).
  const packOut = await npm(['pack', '--json', '--pack-destination', dir], REPO_ROOT);
  // prepare's own output comes first; npm's JSON is the rest.
  const packed = JSON.parse(packOut.slice(packOut.search(/^\[/m))) as { filename: string; files: { path: string }[] }[];
  const files = packed[0]!.files.map((f) => f.path);
  for (const f of ['bin/sqlfleet.js', 'src/cli.ts', 'src/launcher.ts', 'dist/client/index.js', 'dist/client/index.d.ts', 'README.md']) assert.ok(files.includes(f), `the tarball lacks ${f}`);
  assert.ok(!files.some((f) => f.startsWith('test/') || f.startsWith('node_modules/')), 'tests or node_modules in the tarball');
  const tarball = join(dir, packed[0]!.filename);

  // 2. An empty folder that installs it.
  const app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'try-sqlfleet', version: '1.0.0', private: true, type: 'module' }));
  const install = ['install', '--ignore-scripts', '--no-audit', '--no-fund', tarball];
  try {
    await npm([...install, '--offline'], app);
  } catch {
    await npm([...install, '--prefer-offline'], app);
  }
  const installed = join(app, 'node_modules', 'better-sqlite3');
  const mine = join(REPO_ROOT, 'node_modules', 'better-sqlite3');
  const version = (d: string) => (JSON.parse(readFileSync(join(d, 'package.json'), 'utf8')) as { version: string }).version;
  const binary = join('build', 'Release', 'better_sqlite3.node');
  if (version(installed) === version(mine) && existsSync(join(mine, binary))) {
    mkdirSync(join(installed, 'build', 'Release'), { recursive: true });
    copyFileSync(join(mine, binary), join(installed, binary));
  } else {
    await npm(['rebuild', 'better-sqlite3'], app);
  }
  assert.deepEqual(readdirSync(app).sort(), ['node_modules', 'package-lock.json', 'package.json']);

  // 3. npx sqlfleet cluster 2, from that folder.
  const base = await freeBase();
  const data = join(dir, 'data');
  const cluster: ChildProcess = spawn('npx', ['--no', 'sqlfleet', 'cluster', '2', '--base-port', String(base), '--data-dir', data], { cwd: app, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  killOnExit(cluster);
  let out = '';
  cluster.stdout!.on('data', (d) => (out += d));
  cluster.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => cluster.once('exit', (code) => res(code)));
  try {
    await waitFor(() => out.includes('[cluster] ready:') || cluster.exitCode !== null, { timeoutMs: 120_000, message: '[cluster] ready' });
    assert.match(out, /\[cluster\] ready: 3 nodes healthy/);

    // 4. A plain ESM script in that folder: node resolves sqlfleet/client from the package's exports.
    writeFileSync(
      join(app, 'use-client.mjs'),
      `import { createClient } from 'sqlfleet/client';
const db = createClient({ urls: ${JSON.stringify([0, 1, 2].map((i) => `http://127.0.0.1:${base + i}`))}, timeoutMs: 20000 });
await db.execute('CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, name TEXT)');
const w = await db.execute('INSERT INTO users(name) VALUES (?)', ['ana']);
const r = await db.query('SELECT id, name FROM users WHERE id = ?', [w.lastInsertRowid]);
console.log(JSON.stringify(r.rows));
await db.close();
`,
    );
    const used = await run(process.execPath, ['use-client.mjs'], { cwd: app, timeout: 60_000 });
    assert.equal(used.stdout.trim(), '[[1,"ana"]]', used.stderr);
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- npx sqlfleet cluster output ---\n${out.slice(-4000)}`);
  } finally {
    if (cluster.exitCode === null) process.kill(-cluster.pid!, 'SIGINT');
    const code = await Promise.race([exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 20_000).unref())]);
    if (code === 'hung') process.kill(-cluster.pid!, 'SIGKILL');
    assert.notEqual(code, 'hung', 'the cluster did not stop on SIGINT');
  }
});
