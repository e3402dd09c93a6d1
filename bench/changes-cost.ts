// What change capture (DESIGN §9) costs a write, in the store alone (no HTTP, no
// replication): CPU per single-row INSERT and per UPDATE on a 4-column table with
// --capture none, with capture of another table only, and with the table captured.
// Rounds alternate between the modes so machine noise hits them alike; medians are printed.
// Run: npx tsx bench/changes-cost.ts [writes per round, default 4000] [rounds, default 5]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';
import type { CaptureSpec } from '../src/store/changes.js';

const N = Number(process.argv[2] ?? 4000);
const ROUNDS = Number(process.argv[3] ?? 5);
const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-cdc-bench-'));
const hooks = { check: () => {}, onCommit: () => {} };
const modes: [string, CaptureSpec][] = [
  ['none', 'none'],
  ['other table', ['other']],
  ['captured', 'all'],
];

async function round(capture: CaptureSpec, r: number): Promise<{ insert: number; update: number }> {
  const s = new Store({ path: join(dir, `${String(capture)}-${r}.db`), durability: 'normal', readWorkers: 1, queryTimeoutMs: 5000, maxRows: 1000, capture, checkpointIntervalMs: 0 });
  try {
    await s.write([{ sql: 'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, note TEXT)' }, { sql: 'CREATE TABLE other (x)' }], 1, undefined, hooks);
    const cpu = async (sql: string, params: (i: number) => unknown[]) => {
      const c0 = process.cpuUsage();
      for (let i = 0; i < N; i++) await s.write([{ sql, params: params(i) as never }], 1, undefined, hooks);
      const c = process.cpuUsage(c0);
      return (c.user + c.system) / N;
    };
    const insert = await cpu('INSERT INTO t (name, n, note) VALUES (?, ?, ?)', (i) => [`user-${i}`, i, 'some text of a note']);
    const update = await cpu('UPDATE t SET n = n + 1 WHERE id = ?', (i) => [i + 1]);
    return { insert, update };
  } finally {
    await s.close();
  }
}

const results = new Map<string, { insert: number[]; update: number[] }>(modes.map(([m]) => [m, { insert: [], update: [] }]));
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, capture] of modes) {
    const x = await round(capture, r);
    results.get(name)!.insert.push(x.insert);
    results.get(name)!.update.push(x.update);
  }
}
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = results.get('none')!;
for (const [name, v] of results) {
  const i = median(v.insert);
  const u = median(v.update);
  console.log(
    `${name.padEnd(12)} insert ${i.toFixed(1).padStart(6)} µs CPU (${(i / median(base.insert)).toFixed(2)}x)   update ${u.toFixed(1).padStart(6)} µs CPU (${(u / median(base.update)).toFixed(2)}x)`,
  );
}
rmSync(dir, { recursive: true, force: true });
