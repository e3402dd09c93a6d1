// What each slave adds to one write: wrk c=1 (bench/sql.lua's `param` bodies, ack "all")
// against a master with 0, 1 and 2 slaves, in the order 0 1 2 2 1 0 so a drifting machine
// shows, then the yardstick. Prints p50 and CPU per write of every process. With 0 slaves
// the master alone is at the yardstick's p50; the difference per slave is the replication
// hop's price (bench/README.md, "What a slave costs at one client").
//
//   tsx bench/per-slave.ts [seconds=6]
import { runScript, startCluster, startYardstick } from './cluster.js';
import { post } from './procs.js';
import { checkWrk, cpuPerRequest, runWrk } from './wrk.js';

const seconds = Number(process.argv[2] ?? 6);

async function main(): Promise<void> {
  await checkWrk();
  for (const n of [0, 1, 2, 2, 1, 0]) {
    const c = await startCluster(n);
    await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
    const procs = [{ name: 'master', pid: c.master.pid }, ...c.slaves.map((s, i) => ({ name: `slave${i + 1}`, pid: s.pid }))];
    await runWrk({ url: c.master.url, mode: 'param', prefix: 'w', concurrency: 32, seconds: 3, procs }); // warm-up
    const r = await runWrk({ url: c.master.url, mode: 'param', prefix: 'm', concurrency: 1, seconds, procs });
    const perOp = cpuPerRequest(r);
    console.log(`${n} slave(s), c=1: ${r.rps.toFixed(0)} req/s, p50 ${r.p50_ms.toFixed(3)} ms, ${r.errors} errors; CPU µs/write ${perOp}`);
    for (const p of [c.master, ...c.slaves]) await p.stop(15_000);
  }
  const y = await startYardstick();
  const procs = [{ name: 'yardstick', pid: y.pid }];
  await runWrk({ url: y.url, mode: 'param', prefix: 'w', concurrency: 32, seconds: 3, procs });
  const r = await runWrk({ url: y.url, mode: 'param', prefix: 'm', concurrency: 1, seconds, procs });
  console.log(`yardstick, c=1: ${r.rps.toFixed(0)} req/s, p50 ${r.p50_ms.toFixed(3)} ms; CPU µs/write ${((r.cpu.yardstick * 1000) / r.requests).toFixed(0)}`);
}

await runScript('per-slave', main);
