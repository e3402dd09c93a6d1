// CPU cost per operation of every process (from /proc/<pid>/stat user+system time), for
// the same work on sqlfleet (master + 2 slaves, ack all) and the baseline. Throughput on
// a shared 2-core machine swings with other load; CPU time per operation hardly does, so
// this is the figure to watch (from /proc/<pid>/task/*/schedstat) while optimizing a path.
//
//   tsx bench/cost.ts [scenario…]   scenarios: param literal batch read catchup (default: all)
//   tsx bench/cost.ts batch --profile   also writes CPU profiles of every node to .bench/cost-profile/
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { appliedIndex, runScript, startBaseline, startCluster, type BenchCluster } from './cluster.js';
import { runLoad, type BodyFn } from './load.js';
import { cpuMs, post, ROOT, until, type Proc } from './procs.js';
import { pickProfile, render, summarize } from './profile-top.js';

const INSERT = 'INSERT INTO kv(k,v,n) VALUES (?,?,?)';
const PAD = 'x'.repeat(24);
const BATCH_ROWS = 1000;
const args = process.argv.slice(2);
const profile = args.includes('--profile');
const wanted = args.filter((a) => !a.startsWith('--'));
const all = ['param', 'literal', 'batch', 'read', 'catchup'];
const scenarios = wanted.length ? wanted : all;

let tag = 0;
const bodies: Record<string, () => BodyFn> = {
  param: () => {
    const t = ++tag;
    return (seq) => JSON.stringify({ query: INSERT, params: [`k${t}_${seq}`, `v${seq}${PAD}`, seq] });
  },
  literal: () => {
    const t = ++tag;
    return (seq) => JSON.stringify({ query: `INSERT INTO kv(k,v,n) VALUES ('k${t}_${seq}','v${seq}${PAD}',${seq})` });
  },
  batch: () => {
    const t = ++tag;
    return (seq) => {
      const queries = new Array(BATCH_ROWS);
      for (let i = 0; i < BATCH_ROWS; i++) queries[i] = { query: INSERT, params: [`b${t}_${seq}_${i}`, `v${i}${PAD}`, i] };
      return JSON.stringify({ queries, transaction: true });
    };
  },
  read: () => () => JSON.stringify({ query: 'SELECT * FROM kv WHERE id = ?', params: [1 + Math.floor(Math.random() * 1000)] }),
};
const plan: Record<string, { concurrency: number; requests: number; unit: number; target: (c: BenchCluster) => string }> = {
  param: { concurrency: 1, requests: 3000, unit: 1, target: (c) => c.master.url },
  literal: { concurrency: 1, requests: 3000, unit: 1, target: (c) => c.master.url },
  batch: { concurrency: 2, requests: 60, unit: BATCH_ROWS, target: (c) => c.master.url },
  read: { concurrency: 8, requests: 5000, unit: 1, target: (c) => c.slaves[0].url },
};

function line(label: string, procs: { name: string; ms: number }[], ops: number, wallMs: number, p50?: number): string {
  const per = procs.map((p) => `${p.name} ${((p.ms * 1000) / ops).toFixed(1)}`).join(', ');
  const total = procs.reduce((a, p) => a + p.ms, 0);
  return `  ${label.padEnd(9)} ${((total * 1000) / ops).toFixed(1).padStart(7)} µs CPU/op (${per})  ${((ops / wallMs) * 1000).toFixed(0)} ops/s${p50 === undefined ? '' : `, p50 ${p50.toFixed(2)} ms`}`;
}

/** Monotonic µs, the clock of --cpu-prof timestamps: the profiles are cut to the measured windows. */
const us = () => Number(process.hrtime.bigint() / 1000n);
const windows: { startUs: number; endUs: number }[] = [];

async function measure(procs: { name: string; pid: number }[], fn: () => Promise<{ ops: number; p50?: number }>) {
  const startUs = us();
  const before = procs.map((p) => cpuMs(p.pid));
  const t0 = performance.now();
  const r = await fn();
  const wall = performance.now() - t0;
  const used = procs.map((p, i) => ({ name: p.name, ms: cpuMs(p.pid) - before[i] }));
  windows.push({ startUs, endUs: us() });
  return { ...r, wall, used };
}

/** Like measure, but outside the profiled windows (the cluster idles meanwhile). */
async function measureBaseline(procs: { name: string; pid: number }[], fn: () => Promise<{ ops: number; p50?: number }>) {
  const r = await measure(procs, fn);
  windows.pop();
  return r;
}

async function main(): Promise<void> {
  const profDir = join(ROOT, '.bench', 'cost-profile');
  if (profile) rmSync(profDir, { recursive: true, force: true });
  const flags = (name: string) => (profile ? ['--cpu-prof', `--cpu-prof-dir=${join(profDir, name)}`] : []);
  if (profile) for (const n of ['master', 'slave1', 'slave2']) mkdirSync(join(profDir, n), { recursive: true });
  const c = await startCluster(2, flags('master'), [flags('slave1'), flags('slave2')]);
  const base = await startBaseline();
  const DDL = 'CREATE TABLE kv (id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER)';
  await post(c.master.url, { command: 'exec', query: DDL });
  await post(base.url, { command: 'exec', query: DDL });
  const nodes = (): { name: string; pid: number }[] => [
    { name: 'master', pid: c.master.pid },
    { name: 'slave1', pid: c.slaves[0].pid },
    { name: 'slave2', pid: c.slaves[1].pid },
  ];
  console.log('CPU time per operation (µs), all processes; lower is better');
  for (const s of scenarios) {
    if (s === 'catchup') {
      await catchup(c, nodes);
      continue;
    }
    const p = plan[s];
    if (!p) throw new Error(`unknown scenario ${s}; one of ${all.join(' ')}`);
    const run = (url: string) => async () => {
      const r = await runLoad({ url, concurrency: p.concurrency, body: bodies[s](), durationMs: 60_000, maxRequests: p.requests });
      if (r.errors) throw new Error(`${s}: ${r.errors} errors: ${r.errorSamples.join(' | ')}`);
      return { ops: r.ok * p.unit, p50: r.p50 };
    };
    // warm-up of both, then measure
    await runLoad({ url: p.target(c), concurrency: p.concurrency, body: bodies[s](), durationMs: 500, maxRequests: Math.ceil(p.requests / 10) });
    await runLoad({ url: base.url, concurrency: p.concurrency, body: bodies[s](), durationMs: 500, maxRequests: Math.ceil(p.requests / 10) });
    const f = await measure([...nodes(), { name: 'loadgen', pid: process.pid }], run(p.target(c)));
    const b = await measureBaseline([{ name: 'baseline', pid: base.pid }, { name: 'loadgen', pid: process.pid }], run(base.url));
    console.log(`${s} (c=${p.concurrency}, ${p.requests} requests of ${p.unit} op)`);
    console.log(line('sqlfleet', f.used, f.ops, f.wall, f.p50 === undefined ? undefined : f.p50));
    console.log(line('baseline', b.used, b.ops, b.wall, b.p50));
  }
  if (profile) {
    for (const p of [c.master, ...c.slaves]) await p.stop(15_000);
    for (const n of ['master', 'slave1', 'slave2']) {
      console.log(`\n=== ${n} ===`);
      // the measured windows only (one profile sample window: first start to last end)
      const w = { startUs: Math.min(...windows.map((x) => x.startUs)), endUs: Math.max(...windows.map((x) => x.endUs)) };
      console.log(render(summarize(pickProfile(join(profDir, n)), 25, w), false));
    }
  }
}

async function catchup(c: BenchCluster, nodes: () => { name: string; pid: number }[]): Promise<void> {
  const N = 50_000;
  await c.slaves[1].stop();
  await runLoad({ url: c.master.url, concurrency: 16, body: (seq) => JSON.stringify({ query: INSERT, params: [`c${seq}`, `v${PAD}`, seq], ack: 'master' }), durationMs: 120_000, maxRequests: N });
  const target = await appliedIndex(c.master.url);
  const s2: Proc = await c.restartSlave(2);
  const from = await appliedIndex(s2.url);
  const m = await measure(nodes(), async () => {
    await until(async () => (await appliedIndex(s2.url)) >= target, 120_000, 10);
    return { ops: target - from };
  });
  console.log(`catchup (${target - from} entries)`);
  console.log(line('sqlfleet', m.used.filter((u) => u.name !== 'slave1'), m.ops, m.wall));
}

await runScript('cost', main);
