// Runs every test/*.test.ts through tsx with node:test, and fails when no test ran:
// Node 20 neither expands globs for --test nor fails on an empty run.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const only = process.argv.slice(2);
const files = (only.length ? only : fs.readdirSync(path.join(root, 'test')).filter((f) => f.endsWith('.test.ts')).map((f) => path.join('test', f))).sort();
if (files.length === 0) {
  console.error('run-tests: no test files found');
  process.exit(1);
}
const args = ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${process.env.TEST_CONCURRENCY ?? 2}`, ...files];
const child = spawn(process.execPath, args, { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
let out = '';
child.stdout.on('data', (d) => {
  out += d;
  process.stdout.write(d);
});
child.on('exit', (code, signal) => {
  const m = /ℹ tests (\d+)/.exec(out);
  const count = m ? Number(m[1]) : 0;
  if (count === 0) {
    console.error('run-tests: zero tests ran — failing');
    process.exit(1);
  }
  process.exit(code ?? (signal ? 1 : 0));
});
