// The catching-up master's log reads in one process, on a copy of a catch-up fixture's
// master file (bench/catchup.ts make): Store.entriesJson of 1000-entry batches joined as
// the shipper joins them. CPU µs per entry, best and median of the rounds; run it from two
// checkouts in turn to compare.
//
//   npx tsx bench/log-read-cost.ts FIXTURE [rounds=7]
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Store } from '../src/store/store.js';

const [fixture, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 7);
const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-logread-'));
try {
  copyFileSync(join(fixture, 'node-0.db'), join(dir, 'm.db'));
  const store = new Store({ path: join(dir, 'm.db'), durability: 'normal', readWorkers: 1, queryTimeoutMs: 5000, maxRows: 1000 });
  await store.ready();
  const last = store.appliedIndex;
  const got: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const c0 = process.cpuUsage();
    let n = 0;
    for (let from = 2; from <= last; from += 1000) {
      const b = store.entriesJson(from, 1000, 4 * 1024 * 1024);
      if (`[${b.map((e) => e.json).join(',')}]`.length > 0) n += b.length;
    }
    const c = process.cpuUsage(c0);
    got.push((c.user + c.system) / n);
  }
  got.sort((a, b) => a - b);
  console.log(`entriesJson + join: best ${got[0].toFixed(2)}, median ${got[got.length >> 1].toFixed(2)} µs CPU/entry`);
  await store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
