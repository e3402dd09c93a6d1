// The slave's side of catch-up without the network: CPU per entry of parsing append bodies
// and applying them (Applier.append → Store.apply), in this process, on a copy of a catch-up
// fixture (bench/catchup.ts make): slave 2's file, the master's log shipped as the shipper
// builds it (1000 entries per body). Steadier than a whole catch-up on a shared machine.
//
//   npx tsx bench/apply-cost.ts FIXTURE [rounds=3]
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Applier } from '../src/replication/applier.js';
import { Store } from '../src/store/store.js';

const [fixture, roundsArg] = process.argv.slice(2);
const rounds = Number(roundsArg ?? 3);
type Parse = (body: string) => { req: unknown; texts?: string[] };
let parse: Parse = (b) => ({ req: JSON.parse(b) });
try {
  const f = await import('../src/replication/frame.js' as string);
  parse = (b) => {
    const req = f.parseAppend(b);
    return { req, texts: f.shippedStmts(req) };
  };
} catch {
  // a checkout without frame.ts: JSON.parse and re-serialization
}

const master = new Database(join(fixture, 'node-0.db'), { readonly: true });
const rows = master.prepare('SELECT idx, epoch, ts, seed, hash, stmts, ikey FROM _sqlfleet_log WHERE idx > 1 ORDER BY idx').raw(true).all() as [number, number, number, string, string, string, string | null][];
master.close();
const bodies: string[] = [];
for (let i = 0; i < rows.length; i += 1000) {
  const parts = rows.slice(i, i + 1000).map(([index, epoch, ts, seed, hash, stmts, key]) => `{"index":${index},"epoch":${epoch},"ts":${ts},"seed":"${seed}","hash":"${hash}","stmts":${stmts}${key === null ? '' : `,"key":${JSON.stringify(key)}`}}`);
  bodies.push(`{"epoch":${rows[0][1]},"master":"http://127.0.0.1:1","master_index":${rows[rows.length - 1][0]},"entries":[${parts.join(',')}]}`);
}
for (let r = 0; r < rounds; r++) {
  const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-apply-'));
  try {
    copyFileSync(join(fixture, 'node-2.db'), join(dir, 'node-2.db'));
    const store = new Store({ path: join(dir, 'node-2.db'), durability: 'normal', readWorkers: 1, queryTimeoutMs: 5000, maxRows: 1000 });
    await store.ready();
    const applier = new Applier(store, () => {}, () => {});
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    let n = 0;
    for (const b of bodies) {
      const { req, texts } = parse(b);
      const a = (applier.append as (q: unknown, t?: string[]) => { ok: boolean; error?: unknown })(req, texts);
      if (!a.ok) throw new Error(`append refused: ${JSON.stringify(a)}`);
      n += (req as { entries: unknown[] }).entries.length;
    }
    const c = process.cpuUsage(c0);
    const wall = performance.now() - t0;
    console.log(`${n} entries: ${((c.user + c.system) / n).toFixed(2)} µs CPU/entry (main thread + workers), ${((wall * 1000) / n).toFixed(2)} µs wall/entry`);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
