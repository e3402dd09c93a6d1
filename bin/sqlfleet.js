#!/usr/bin/env node
// The sqlfleet command. Runs the TypeScript sources as one JavaScript bundle built by
// esbuild (a dependency): bundled once, kept in node_modules/.cache/sqlfleet/, rebuilt when
// anything that shapes it changed (stamp.json: the sources' newest time, this file, the
// project root, the resolved better-sqlite3 and its version, Node's version). The bundle
// embeds no path: a copied or moved install (cp -a, a Docker stage, a CI cache) rebuilds
// anyway, and never runs workers against another folder's SQLite (src/store/driver.ts). A node started this way carries no TypeScript loader:
// no loader thread, no transpile cache, about 40 MB less resident memory per node and a
// faster start than `tsx src/cli.ts` (which still works, and is what the tests also run).
// When the cache cannot be written, it falls back to tsx.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const src = path.join(root, 'src');
const out = path.join(root, 'node_modules', '.cache', 'sqlfleet');
const cli = path.join(out, 'cli.mjs');
const stampFile = path.join(out, 'stamp.json');

/** Newest modification time of the sources and of the files that shape the bundle. */
function newestSource(dir = src) {
  let newest = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    newest = Math.max(newest, e.isDirectory() ? newestSource(p) : fs.statSync(p).mtimeMs);
  }
  return newest;
}

/** What the cached bundle was built from; any difference means build again. */
function stamp() {
  const require = createRequire(path.join(root, 'package.json'));
  const driver = require.resolve('better-sqlite3');
  const self = fs.statSync(fileURLToPath(import.meta.url));
  return JSON.stringify({
    root,
    driver,
    driverVersion: require('better-sqlite3/package.json').version,
    parserVersion: require('sql-parser-cst/package.json').version, // bundled in (build() below)
    node: process.version,
    bin: [self.mtimeMs, self.size],
    sources: newestSource(),
  });
}

function readStamp() {
  try {
    return fs.existsSync(cli) ? fs.readFileSync(stampFile, 'utf8') : null;
  } catch {
    return null;
  }
}

/** Writes a file by rename, so nodes starting at the same time never read half a bundle. */
function writeAtomic(file, text) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}

async function build(want) {
  const require = createRequire(path.join(root, 'package.json'));
  const esbuild = require('esbuild');
  // The server: dependencies stay in node_modules (resolved from the cache directory upward),
  // except sql-parser-cst, bundled in. Its published parser is one 6.5 MB file; reprinted by
  // esbuild it is 3.5 MB, and a process that loads it that way holds ~19 MB less (52 vs 71 MB
  // resident for require() and one parse) and loads it in ~65 ms instead of 100-190 ms.
  const main = await esbuild.build({
    entryPoints: [path.join(src, 'cli.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    plugins: [
      {
        name: 'dependencies-external',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) => (/^sql-parser-cst(\/|$)/.test(a.path) ? undefined : { path: a.path, external: true }));
        },
      },
    ],
    write: false,
    logLevel: 'silent',
  });
  // Worker scripts next to it, where src/store/ looks for them (import.meta.url is the bundle's).
  const { bundleReadWorker } = await import(pathToFileURL(path.join(src, 'store', 'read-worker-bundle.js')).href);
  fs.mkdirSync(out, { recursive: true });
  writeAtomic(path.join(out, 'read-worker.cjs'), bundleReadWorker());
  writeAtomic(path.join(out, 'snapshot-worker.js'), fs.readFileSync(path.join(src, 'store', 'snapshot-worker.js')));
  writeAtomic(path.join(out, 'checkpoint-worker.js'), fs.readFileSync(path.join(src, 'store', 'checkpoint-worker.js')));
  writeAtomic(cli, main.outputFiles[0].text);
  writeAtomic(stampFile, want); // last: the stamp says the set is complete
}

// The child that builds (below): builds for the stamp it is given, then exits.
if (process.env.SQLFLEET_BUILD_STAMP) {
  try {
    await build(process.env.SQLFLEET_BUILD_STAMP);
    process.exit(0);
  } catch (e) {
    process.stderr.write(e.message);
    process.exit(1);
  }
}

let entry = cli;
try {
  const want = stamp();
  if (readStamp() !== want) {
    // Say why the first start pauses (a second or two; more on a busy machine).
    process.stderr.write(`sqlfleet: bundling src/ into ${out} (first run, or a source changed)…\n`);
    // In a child process: built here, esbuild's API and the 4 MB bundle text it hands back
    // stayed in this node's memory for good (+16-20 MB resident at start, ~14 MB external).
    const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, SQLFLEET_BUILD_STAMP: want },
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(r.error?.message || r.stderr.trim() || `build exited ${r.status ?? r.signal}`);
  }
} catch (e) {
  process.stderr.write(`sqlfleet: could not build ${cli} (${e.message}); running the sources through tsx\n`);
  const { register } = await import('tsx/esm/api');
  register();
  entry = path.join(src, 'cli.ts');
}
await import(pathToFileURL(entry).href);
