#!/usr/bin/env node
// Builds sqlfleet/client for consumers: dist/client/index.js (one ESM file by esbuild,
// undici left as a dependency) and its .d.ts declarations (tsc). Run by `npm run
// build:client` and by `prepare`, so an install from git has it; package.json "exports"
// points "./client" here.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist', 'client');
const require = createRequire(path.join(root, 'package.json'));

fs.rmSync(out, { recursive: true, force: true });
require('esbuild').buildSync({
  entryPoints: [path.join(root, 'src', 'client', 'index.ts')],
  outfile: path.join(out, 'index.js'),
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
});
// Declarations need typescript (a dev dependency): an install without it gets the JS only.
let tsc = null;
try {
  tsc = require.resolve('typescript/bin/tsc');
} catch {
  process.stderr.write('build-client: typescript is not installed; dist/client has no .d.ts\n');
}
if (tsc) execFileSync(
  process.execPath,
  [
    tsc,
    ...['--declaration', '--emitDeclarationOnly', '--outDir', out, '--rootDir', path.join(root, 'src', 'client')],
    ...['--module', 'NodeNext', '--moduleResolution', 'NodeNext', '--target', 'ES2022', '--strict', '--skipLibCheck', '--types', 'node'],
    path.join(root, 'src', 'client', 'index.ts'),
  ],
  { stdio: 'inherit', cwd: root },
);
process.stdout.write(`built ${path.relative(root, out)}/index.js${tsc ? ' and index.d.ts' : ''}\n`);
