// Quick A/B of the write and read paths: a cluster (master + 2 slaves, ack all) and the limit,
// wrk runs alternating limit / sqlfleet, CPU µs per operation of each node (schedstat).
//   npx tsx bench/ab.ts [seconds=4] [rounds=2] [figures=param32,param1,read32,batch4]
import { runScript, startCluster, startLimit } from './cluster.js';
import { post } from './procs.js';
import { checkWrk, runWrk, type WrkMode } from './wrk.js';

const seconds = Number(process.argv[2] ?? 4);
const rounds = Number(process.argv[3] ?? 2);
const figures = (process.argv[4] ?? 'param32,param1,read32,batch4').split(',');

runScript('ab', async () => {
  await checkWrk();
  const limit = await startLimit();
  const c = await startCluster(2);
  const schema = { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' };
  await post(limit.url, schema).catch(() => undefined); // the limit may create kv itself
  await post(c.master.url, schema);
  const rows = { queries: Array.from({ length: 1000 }, (_, i) => ({ query: 'INSERT INTO kv VALUES (?,?)', params: [`r${i}`, 'v'.repeat(100)] })), transaction: true };
  await post(limit.url, rows);
  await post(c.master.url, rows);
  await new Promise((r) => setTimeout(r, 1000));
  const procs = [{ name: 'm', pid: c.master.pid }, { name: 's1', pid: c.slaves[0].pid }, { name: 's2', pid: c.slaves[1].pid }];
  let tag = 0;
  for (const f of figures) {
    const mode = f.replace(/\d+$/, '') as WrkMode;
    const conns = Number(/\d+$/.exec(f)?.[0] ?? 32);
    for (let r = 0; r < rounds; r++) {
      const l = await runWrk({ url: limit.url, mode, prefix: `l${tag++}`, concurrency: conns, seconds, procs: [{ name: 'limit', pid: limit.pid }] });
      const url = mode === 'read' ? c.slaves[0].url : c.master.url;
      const s = await runWrk({ url, mode, prefix: `s${tag++}`, concurrency: conns, seconds, procs });
      const us = (ms: number, n: number) => ((ms * 1000) / n).toFixed(0);
      const tot = Object.values(s.cpu).reduce((a, b) => a + b, 0);
      const ratio = conns === 1 ? `p50 ${(s.p50_ms / l.p50_ms).toFixed(2)}x` : `${(s.rps / l.rps).toFixed(2)}x`;
      console.log(
        `${f.padEnd(8)} r${r}: sqlfleet ${s.rps.toFixed(0)}/s p50 ${s.p50_ms.toFixed(2)} | limit ${l.rps.toFixed(0)}/s p50 ${l.p50_ms.toFixed(2)} | ${ratio} | CPU µs/op total ${us(tot, s.requests)} (m ${us(s.cpu.m, s.requests)} s1 ${us(s.cpu.s1, s.requests)} s2 ${us(s.cpu.s2, s.requests)}) limit ${us(l.cpu.limit, l.requests)}${s.errors ? ` ERRORS ${s.errors}` : ''}`,
      );
    }
  }
});
