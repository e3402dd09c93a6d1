// Memory settings under load, A/B: for each variant (node flags given to every node, and/or
// extra sqlfleet arguments), a fresh master + 2 slaves runs wrk's param and literal writes
// (c=32, ack "all", on the master) and point reads (c=32, on slave 1), and this prints per
// variant: req/s, CPU µs per request summed over the three nodes (schedstat, all threads: the
// figure a shared machine moves least), and each node's peak RSS and RSS after the load.
// Variants run in A-B-B-A order over rounds; the summary gives medians.
//
//   MEM_VARIANTS='|--max-semi-space-size=1|--max-semi-space-size=4' tsx bench/mem-load.ts [seconds=6] [rounds=2]
//   a variant is "node flags" or "node flags // sqlfleet args", e.g. '// --read-workers 1'
import { execFileSync } from 'node:child_process';
import { appliedIndex, removeTempDirs, startCluster } from './cluster.js';
import { post, stopAll, until } from './procs.js';
import { checkWrk, runWrk, type WrkMode } from './wrk.js';

const seconds = Number(process.argv[2] ?? 6);
const rounds = Number(process.argv[3] ?? 2);
const variants = (process.env.MEM_VARIANTS ?? '|--max-semi-space-size=4').split('|');
const split = (s: string) => s.split(/\s+/).filter(Boolean);
const VALUE = 'v'.repeat(32);

interface Sample {
  rps: Record<string, number>;
  cpuUs: Record<string, number>;
  peak: number[];
  after: number[];
}
const samples = new Map<string, Sample[]>();
let prefixSeq = 0;

async function one(variant: string): Promise<Sample> {
  const [flagText, argText = ''] = variant.split('//');
  const flags = split(flagText);
  const c = await startCluster(2, flags, [flags, flags], split(argText));
  const nodes = [c.master, ...c.slaves];
  try {
    await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
    const queries = Array.from({ length: 1000 }, (_, i) => ({ query: 'INSERT INTO kv(k, v) VALUES (?, ?)', params: [`r-${i}`, VALUE] }));
    const r = await post(c.master.url, { command: 'exec', queries, transaction: true });
    await until(async () => (await appliedIndex(c.slaves[0].url)) >= Number(r.index), 20_000);
    const procs = nodes.map((p, i) => ({ name: ['master', 'slave1', 'slave2'][i], pid: p.pid }));
    const s: Sample = { rps: {}, cpuUs: {}, peak: [], after: [] };
    for (const mode of ['param', 'literal', 'read'] as WrkMode[]) {
      const url = mode === 'read' ? c.slaves[0].url : c.master.url;
      await runWrk({ url, mode, prefix: mode === 'read' ? 'r' : `w${++prefixSeq}`, keys: 1000, concurrency: 8, seconds: 1, procs }); // warm-up
      const w = await runWrk({ url, mode, prefix: mode === 'read' ? 'r' : `w${++prefixSeq}`, keys: 1000, concurrency: 32, seconds, procs });
      s.rps[mode] = w.rps;
      s.cpuUs[mode] = (Object.values(w.cpu).reduce((a, b) => a + b, 0) * 1000) / Math.max(1, w.requests);
    }
    await new Promise((res) => setTimeout(res, 3000));
    if (process.env.MEM_DUMP) for (const p of nodes) console.log(execFileSync('python3', [process.env.MEM_DUMP, String(p.pid)], { encoding: 'utf8' }));
    for (const p of nodes) {
      const m = p.memory();
      s.peak.push((m?.hwmKb ?? NaN) / 1024);
      s.after.push((m?.rssKb ?? NaN) / 1024);
    }
    return s;
  } finally {
    await stopAll();
    removeTempDirs();
  }
}

const f0 = (x: number) => x.toFixed(0);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  await checkWrk();
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? variants : [...variants].reverse();
    for (const v of order) {
      const s = await one(v);
      samples.set(v, [...(samples.get(v) ?? []), s]);
      console.log(
        `round ${round + 1} [${v}]: ` +
          Object.keys(s.rps).map((m) => `${m} ${f0(s.rps[m])}/s ${f0(s.cpuUs[m])} µs`).join(', ') +
          `; peak ${s.peak.map(f0).join('/')} MB, after ${s.after.map(f0).join('/')} MB`,
      );
    }
  }
  console.log('medians:');
  for (const v of variants) {
    const ss = samples.get(v)!;
    const modes = Object.keys(ss[0].rps);
    console.log(
      `  [${v}]: ` +
        modes.map((m) => `${m} ${f0(median(ss.map((s) => s.rps[m])))}/s ${f0(median(ss.map((s) => s.cpuUs[m])))} µs`).join(', ') +
        `; peak ${[0, 1, 2].map((i) => f0(median(ss.map((s) => s.peak[i])))).join('/')} MB, after ${[0, 1, 2].map((i) => f0(median(ss.map((s) => s.after[i])))).join('/')} MB`,
    );
  }
} finally {
  await stopAll();
  removeTempDirs();
}
