// What the architecture allows: the limit (one node), the replicated floor (bench/floor.mjs:
// the limit plus a log row, one TCP frame per group to each of two slaves and ack "all",
// nothing else) and sqlfleet (master + 2 slaves, ack "all"), driven by wrk in rounds of
// limit, floor, sqlfleet, sqlfleet, floor, limit; per figure the median ratios to the limit
// and CPU µs per operation of every process. Issue 29's write goals divide sqlfleet by the
// limit; the floor says how much of that gap any master + 2 slaves on this machine pays.
//   npx tsx bench/floor.ts [seconds=5] [rounds=2] [figures=param32,param1,batch4,literal32]
import { runScript, startCluster, startFloor, startLimit } from './cluster.js';
import { post } from './procs.js';
import { checkWrk, runWrk, type WrkMode, type WrkResult } from './wrk.js';

const seconds = Number(process.argv[2] ?? 5);
const rounds = Number(process.argv[3] ?? 2);
const figures = (process.argv[4] ?? 'param32,param1,batch4,literal32').split(',');
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

runScript('floor', async () => {
  await checkWrk();
  const limit = await startLimit();
  const floor = await startFloor();
  const c = await startCluster(2);
  await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
  const sys = {
    limit: { url: limit.url, procs: [{ name: 'limit', pid: limit.pid }] },
    floor: { url: floor.master.url, procs: [{ name: 'm', pid: floor.master.pid }, ...floor.slaves.map((s, i) => ({ name: `s${i + 1}`, pid: s.pid }))] },
    sqlfleet: { url: c.master.url, procs: [{ name: 'm', pid: c.master.pid }, ...c.slaves.map((s, i) => ({ name: `s${i + 1}`, pid: s.pid }))] },
  };
  let tag = 0;
  for (const f of figures) {
    const mode = f.replace(/\d+$/, '') as WrkMode;
    const conns = Number(/\d+$/.exec(f)?.[0] ?? 32);
    const got: Record<string, WrkResult[]> = { limit: [], floor: [], sqlfleet: [] };
    for (let r = 0; r < rounds; r++) {
      const order = (['limit', 'floor', 'sqlfleet'] as const).slice();
      for (const name of [...order, ...order.reverse()]) {
        const s = sys[name];
        got[name].push(await runWrk({ url: s.url, mode, prefix: `f${tag++}`, concurrency: conns, seconds, procs: s.procs }));
      }
    }
    const fig = (name: string) => {
      const rs = got[name];
      const rate = median(rs.map((x) => (mode === 'batch' ? x.rps * 100 : x.rps)));
      const p50 = median(rs.map((x) => x.p50_ms));
      const cpu = median(rs.map((x) => (Object.values(x.cpu).reduce((a, b) => a + b, 0) * 1000) / x.requests));
      const per = Object.keys(rs[0].cpu)
        .map((k) => `${k} ${median(rs.map((x) => (x.cpu[k] * 1000) / x.requests)).toFixed(0)}`)
        .join(' / ');
      return { rate, p50, cpu, per };
    };
    const L = fig('limit');
    const line = (name: string) => {
      const x = fig(name);
      const ratio = conns === 1 ? `p50 ${(x.p50 / L.p50).toFixed(2)}x` : `${(x.rate / L.rate).toFixed(2)}x`;
      return `  ${name.padEnd(8)} ${x.rate.toFixed(0).padStart(7)}${mode === 'batch' ? ' rows' : ''}/s  p50 ${x.p50.toFixed(2)} ms  ${ratio.padEnd(10)} CPU µs/op ${x.cpu.toFixed(0)} (${x.per})`;
    };
    console.log(`${f} (median of ${rounds * 2} runs each):\n${line('limit')}\n${line('floor')}\n${line('sqlfleet')}`);
  }
});
