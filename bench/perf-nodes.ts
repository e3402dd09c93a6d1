// On-CPU profile of every node under wrk load, from Linux `perf` (cpu-clock samples of
// each process, JIT frames named through node's --perf-basic-prof map files). V8's own
// profiler (bench/profile.ts) samples wall-clock time: on a machine shared with other
// work it charges a thread's waits for a CPU to whatever it was doing — socket writes that
// woke another process looked like 15 % of the master. perf counts only time on a CPU.
//
//   npx tsx bench/perf-nodes.ts [seconds=6] [param|literal|read|batch] [connections=32] [top=30]
//     → /tmp/sqlfleet-perf/{m,s1,s2}.data, and for the node under load (the master for
//       writes, slave 1 for reads) its main thread's samples by innermost JS function
//       (natives and the kernel charged to the JS that called them) and inclusive;
//       PERF_NODE=m|s1|s2 summarizes that node instead.
// Needs `perf` (Debian `linux-perf`) and permission to profile other processes (root).
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { runScript, startCluster } from './cluster.js';
import { post } from './procs.js';
import { checkWrk, runWrk, type WrkMode } from './wrk.js';

const seconds = Number(process.argv[2] ?? 6);
const mode = (process.argv[3] ?? 'param') as WrkMode;
const conns = Number(process.argv[4] ?? 32);
const top = Number(process.argv[5] ?? 30);
const dir = '/tmp/sqlfleet-perf';

/** Main-thread samples of `pid` in a `perf script` text: by innermost JS frame and inclusive. */
function summarize(text: string, pid: number): string {
  const inner = new Map<string, number>();
  const incl = new Map<string, number>();
  let total = 0;
  const add = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
  const short = (f: string) => f.replace(/^\S+\s+/, '').replace(/file:\/\/\/\S*?node_modules\/\.cache\/sqlfleet\//, '');
  for (const sample of text.split('\n\n')) {
    const lines = sample.split('\n').filter((l) => l.trim() !== '');
    if (lines.length === 0 || Number(lines[0].trim().split(/\s+/)[0]) !== pid) continue;
    total++;
    const frames = lines.slice(1).map((l) => short(l.trim()));
    const js = frames.filter((f) => f.startsWith('JS:'));
    add(inner, js[0] ?? `native: ${frames[0] ?? '?'}`);
    for (const f of new Set(js)) add(incl, f);
  }
  const table = (m: Map<string, number>) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => `  ${((100 * v) / total).toFixed(2).padStart(6)}%  ${k.slice(0, 140)}`)
      .join('\n');
  return `main thread: ${total} samples\n-- by innermost JS frame\n${table(inner)}\n-- inclusive\n${table(incl)}`;
}

runScript('perf-nodes', async () => {
  await checkWrk();
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const flags = ['--perf-basic-prof-only-functions', '--interpreted-frames-native-stack'];
  const c = await startCluster(2, flags, [flags, flags]);
  await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
  await post(c.master.url, { queries: Array.from({ length: 1000 }, (_, i) => ({ query: 'INSERT INTO kv VALUES (?,?)', params: [`r-${i}`, 'v'.repeat(100)] })), transaction: true });
  const procs = [{ name: 'm', pid: c.master.pid }, { name: 's1', pid: c.slaves[0].pid }, { name: 's2', pid: c.slaves[1].pid }];
  // PERF_NODE=m|s1|s2 summarizes that node instead of the one under load.
  const node = procs.find((p) => p.name === process.env.PERF_NODE) ?? (mode === 'read' ? procs[1] : procs[0]);
  const url = mode === 'read' ? c.slaves[0].url : c.master.url;
  await runWrk({ url, mode, prefix: 'warm', concurrency: conns, seconds: 2, procs }); // warm-up, not recorded
  const recs = procs.map((p) =>
    spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-g', '-p', String(p.pid), '-o', join(dir, `${p.name}.data`), '--', 'sleep', String(seconds)], { stdio: 'ignore' }),
  );
  const r = await runWrk({ url, mode, prefix: 'p', concurrency: conns, seconds, procs });
  await Promise.all(recs.map((p) => new Promise((res) => p.once('exit', res))));
  const us = (ms: number) => ((ms * 1000) / r.requests).toFixed(0);
  console.log(`${mode} c=${conns}: ${r.rps.toFixed(0)} req/s; CPU µs/op master ${us(r.cpu.m)}, slave 1 ${us(r.cpu.s1)}, slave 2 ${us(r.cpu.s2)}`);
  const text = execFileSync('perf', ['script', '-i', join(dir, `${node.name}.data`), '-F', 'tid,ip,sym'], { encoding: 'utf8', maxBuffer: 1 << 30, stdio: ['ignore', 'pipe', 'ignore'] });
  console.log(`${{ m: 'master', s1: 'slave 1', s2: 'slave 2' }[node.name]} (${join(dir, `${node.name}.data`)}), ${summarize(text, node.pid)}`);
});
