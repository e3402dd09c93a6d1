// The shared references (../shared/bench/) against bench/'s own copies, side by side on the
// same machine: each of limit.mjs and yardstick.mjs from both folders, driven by wrk with
// the shared sql.lua, in alternating runs (shared, own, own, shared per round), reporting
// req/s, p50 and CPU µs per request of the server. Run it when the machine is quiet:
//   npx tsx bench/refs-compare.ts [seconds] [rounds] [modes]   # default 3 3 param,literal,read,batch
import { join, resolve } from 'node:path';
import { runScript, tempDir } from './cluster.js';
import { freePort, post, ROOT, start, type Proc } from './procs.js';
import { runWrk, type WrkMode, type WrkResult } from './wrk.js';

const SECONDS = Number(process.argv[2] ?? 3);
const ROUNDS = Number(process.argv[3] ?? 3);
const MODES = (process.argv[4] ?? 'param,literal,read,batch').split(',') as WrkMode[];
const DIRS = { shared: resolve(ROOT, '../shared/bench'), own: resolve(ROOT, 'bench') };

async function startRef(label: string, script: string): Promise<Proc> {
  return start(label, script, [], [], { PORT: String(await freePort()), HOST: '127.0.0.1', DB: join(tempDir(`sqlfleet-${label}-`), 'ref.db') });
}

const med = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

await runScript('refs-compare', async () => {
  const out: Record<string, unknown> = {};
  for (const ref of ['limit', 'yardstick'] as const) {
    const procs = { shared: await startRef(`${ref}-shared`, join(DIRS.shared, `${ref}.mjs`)), own: await startRef(`${ref}-own`, join(DIRS.own, `${ref}.mjs`)) };
    const keys = Array.from({ length: 1000 }, (_, i) => ({ query: 'INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)', params: [`r-${i}`, 'v'.repeat(100)] }));
    for (const p of Object.values(procs)) await post(p.url, { queries: keys, transaction: true });
    for (const mode of MODES) {
      const c = mode === 'batch' ? 4 : 32;
      const res: Record<'shared' | 'own', WrkResult[]> = { shared: [], own: [] };
      const run = async (who: 'shared' | 'own', prefix: string) => {
        const p = procs[who];
        const r = await runWrk({ url: p.url, mode, prefix, concurrency: c, seconds: SECONDS, procs: [{ name: who, pid: p.pid }] });
        res[who].push(r);
      };
      let n = 0;
      await run('shared', `warm${n++}`);
      await run('own', `warm${n++}`);
      res.shared.length = 0;
      res.own.length = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const order = i % 2 ? (['own', 'shared', 'shared', 'own'] as const) : (['shared', 'own', 'own', 'shared'] as const);
        for (const who of order) await run(who, mode === 'read' ? 'r' : `${mode}${n++}`);
      }
      const line = (who: 'shared' | 'own') => {
        const rs = res[who];
        const cpu = med(rs.map((r) => (r.cpu[who]! * 1000) / r.requests));
        return { rps: Math.round(med(rs.map((r) => r.rps))), p50_ms: +med(rs.map((r) => r.p50_ms)).toFixed(3), cpu_us: Math.round(cpu), errors: rs.reduce((a, r) => a + r.errors, 0) };
      };
      const row = { shared: line('shared'), own: line('own') };
      out[`${ref} ${mode} c=${c}`] = row;
      console.log(`${ref.padEnd(9)} ${mode.padEnd(7)} c=${String(c).padEnd(2)} shared ${JSON.stringify(row.shared)} | own ${JSON.stringify(row.own)} | own/shared rps ${(row.own.rps / row.shared.rps).toFixed(2)}, CPU ${(row.own.cpu_us / row.shared.cpu_us).toFixed(2)}`);
    }
    for (const p of Object.values(procs)) await p.stop();
  }
  console.log(JSON.stringify(out));
});
