// What failover mode costs a write: the same cluster (master + 2 slaves, ack "all") static
// and with --etcd <a throw-away etcd>, in the order static, etcd, etcd, static, each warmed
// up with wrk c=32 and then measured with wrk c=1 and c=32 (bench/sql.lua's `param`
// bodies). Prints CPU per write of every node and p50, and each node's idle CPU per second
// before the load. The bound: etcd mode within 10 % of static.
//
//   tsx bench/etcd-cost.ts [seconds=6]
import { runScript, startCluster } from './cluster.js';
import { startEtcd } from './etcd.js';
import { cpuMs, post } from './procs.js';
import { checkWrk, runWrk } from './wrk.js';

const seconds = Number(process.argv[2] ?? 6);
const IDLE_MS = 5_000;

async function main(): Promise<void> {
  await checkWrk();
  const totals: Record<string, { cpu: number; requests: number }> = {};
  for (const mode of ['static', 'etcd', 'etcd', 'static'] as const) {
    const etcd = mode === 'etcd' ? await startEtcd() : null;
    try {
      const c = await startCluster(2, [], [], etcd ? ['--etcd', etcd.url] : []);
      await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
      const procs = [{ name: 'master', pid: c.master.pid }, ...c.slaves.map((s, i) => ({ name: `slave${i + 1}`, pid: s.pid }))];
      const before = procs.map((p) => cpuMs(p.pid));
      await new Promise((r) => setTimeout(r, IDLE_MS));
      const idle = procs.map((p, i) => `${p.name} ${(((cpuMs(p.pid) - before[i]) * 1000) / IDLE_MS).toFixed(0)}`).join(', ');
      console.log(`${mode.padEnd(6)} idle CPU ms/s: ${idle}`);
      await runWrk({ url: c.master.url, mode: 'param', prefix: 'w', concurrency: 32, seconds: 3, procs });
      for (const conns of [1, 32]) {
        const r = await runWrk({ url: c.master.url, mode: 'param', prefix: `m${conns}`, concurrency: conns, seconds, procs });
        const sum = Object.values(r.cpu).reduce((a, b) => a + b, 0);
        const key = `${mode} c=${conns}`;
        totals[key] ??= { cpu: 0, requests: 0 };
        totals[key].cpu += sum;
        totals[key].requests += r.requests;
        const per = Object.entries(r.cpu).map(([k, v]) => `${k} ${((v * 1000) / r.requests).toFixed(0)}`).join(', ');
        console.log(`${mode.padEnd(6)} c=${String(conns).padEnd(2)} ${r.rps.toFixed(0)} req/s, p50 ${r.p50_ms.toFixed(3)} ms, ${r.errors} errors; CPU µs/write ${((sum * 1000) / r.requests).toFixed(0)} (${per})`);
      }
      for (const p of [c.master, ...c.slaves]) await p.stop(15_000);
    } finally {
      await etcd?.stop();
    }
  }
  for (const conns of [1, 32]) {
    const per = (mode: string) => (totals[`${mode} c=${conns}`].cpu * 1000) / totals[`${mode} c=${conns}`].requests;
    const s = per('static');
    const e = per('etcd');
    console.log(`c=${conns}: CPU per write static ${s.toFixed(0)} µs, --etcd ${e.toFixed(0)} µs: ${((e / s - 1) * 100).toFixed(1)} %`);
  }
}

await runScript('etcd-cost', main);
