// Where the peak RSS of `npm run bench` comes from: master + 2 slaves (bin/sqlfleet.js, as
// users run them) go through the bench's phases, shortened, and after each phase this prints
// per node the peak RSS *of that phase* (VmHWM, reset before the phase through
// /proc/<pid>/clear_refs), RSS after it, and the V8 heap (total / used, external, array
// buffers) as the node's own /metrics reports it (prom-client default metrics).
//
//   tsx bench/mem-phases.ts [seconds per run=4] [phases=idle,param,literal,read,param1,batch100,hrana,batch,catchup]
//   MEM_FLAGS='--single-threaded-gc' (node flags for every node), MEM_ARGS='--read-workers 1'
//   MEM_CATCHUP=100000 (entries written while slave 2 is down)
//   MEM_DUMP=script.py MEM_DUMP_AFTER=literal,catchup: runs `python3 script.py <pid>` for every node after those phases
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { appliedIndex, removeTempDirs, startCluster, type BenchCluster } from './cluster.js';
import { hranaTxRate, seedHranaTx } from './hrana-tx.js';
import { runLoad } from './load.js';
import { getJson, post, stopAll, until, type Proc } from './procs.js';
import { checkWrk, runWrk, type WrkMode } from './wrk.js';

const seconds = Number(process.argv[2] ?? 4);
const phases = (process.argv[3] ?? 'idle,param,literal,read,param1,batch100,hrana,batch,catchup').split(',');
const split = (s: string) => s.split(/\s+/).filter(Boolean);
const flags = split(process.env.MEM_FLAGS ?? '');
const nodeArgs = split(process.env.MEM_ARGS ?? '');
const dumpAfter = new Set((process.env.MEM_DUMP_AFTER ?? 'catchup').split(','));
const CATCHUP = Number(process.env.MEM_CATCHUP ?? 100_000);
const UPSERT = 'INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)';
const VALUE = 'v'.repeat(100);
const mb = (kb: number) => (kb / 1024).toFixed(0);

function status(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: NaN, hwm: NaN };
  }
}

/** Resets VmHWM to the current RSS (Linux: "5" to clear_refs). */
function resetPeak(pid: number): void {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // not permitted: the peak stays cumulative
  }
}

/** The main thread's V8 heap from the node's /metrics (MB). */
async function heap(p: Proc): Promise<string> {
  try {
    const res = await fetch(`${p.url}/metrics`, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    const v = (name: string) => Number(new RegExp(`^sqlfleet_process_${name}(?:\\{[^}]*\\})? (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1048576;
    const old = Number(/^sqlfleet_process_nodejs_heap_space_size_used_bytes\{[^}]*space="old"[^}]*\} (\S+)/m.exec(text)?.[1] ?? NaN) / 1048576;
    return `heap ${v('nodejs_heap_size_total_bytes').toFixed(0)}/${v('nodejs_heap_size_used_bytes').toFixed(0)} (old used ${old.toFixed(0)}), ext ${v('nodejs_external_memory_bytes').toFixed(0)} MB`;
  } catch {
    return 'heap ?';
  }
}

let seq = 0;
async function wrk(c: BenchCluster, mode: WrkMode, conc: number, target: Proc, runs = 2): Promise<string> {
  const procs = [c.master, ...c.slaves].map((p, i) => ({ name: ['master', 'slave1', 'slave2'][i], pid: p.pid }));
  let out = '';
  for (let i = 0; i < runs; i++) {
    const w = await runWrk({ url: target.url, mode, prefix: mode === 'read' ? 'r' : `w${++seq}`, keys: 1000, concurrency: conc, seconds, procs });
    out += `${w.rps.toFixed(0)}/s `;
  }
  return out;
}

async function phase(c: BenchCluster, name: string): Promise<string> {
  switch (name) {
    case 'idle':
      await new Promise((r) => setTimeout(r, seconds * 1000));
      return '';
    case 'param':
      return wrk(c, 'param', 32, c.master);
    case 'literal':
      return wrk(c, 'literal', 32, c.master);
    case 'read':
      return wrk(c, 'read', 32, c.slaves[0]);
    case 'param1':
      return wrk(c, 'param', 1, c.master);
    case 'batch100':
      return wrk(c, 'batch', 4, c.master);
    case 'hrana': {
      await seedHranaTx(c.master.url);
      const a = await hranaTxRate(c.master.url, seconds);
      const b = await hranaTxRate(c.master.url, seconds);
      return `${a.toFixed(0)}/${b.toFixed(0)} tx/s`;
    }
    case 'batch': {
      const tag = ++seq;
      const body = (s: number) => {
        const queries = new Array(1000);
        for (let i = 0; i < 1000; i++) queries[i] = { query: UPSERT, params: [`b${tag}_${s}_${i}`, VALUE] };
        return JSON.stringify({ queries, transaction: true });
      };
      const r = await runLoad({ url: c.master.url, concurrency: 4, body, durationMs: seconds * 2000 });
      return `${(r.rps * 1000).toFixed(0)} rows/s`;
    }
    case 'catchup': {
      await c.slaves[1].stop();
      await until(async () => (await getJson<{ nodes: { id: number; state: string }[] }>(c.master.url, '/status')).nodes.find((n) => n.id === 2)?.state === 'down', 10_000);
      const tag = ++seq;
      const w = await runLoad({ url: c.master.url, concurrency: 32, body: (s) => JSON.stringify({ query: UPSERT, params: [`c${tag}_${s}`, VALUE], ack: 'master' }), durationMs: 60_000, maxRequests: CATCHUP });
      const target = await appliedIndex(c.master.url);
      const t0 = performance.now();
      const p = await c.restartSlave(2);
      await until(async () => (await appliedIndex(p.url)) >= target, 120_000, 20);
      return `${w.ok} written; caught up in ${((performance.now() - t0) / 1000).toFixed(1)} s`;
    }
    default:
      throw new Error(`unknown phase ${name}`);
  }
}

try {
  await checkWrk();
  const c = await startCluster(2, flags, [flags, flags], nodeArgs);
  const nodes = () => [c.master, ...c.slaves];
  const line = async () => (await Promise.all(nodes().map(async (p, i) => `${['m', 's1', 's2'][i]} ${mb(status(p.pid).hwm)}/${mb(status(p.pid).rss)} ${await heap(p)}`))).join(' | ');
  console.log(`flags [${flags.join(' ')}] args [${nodeArgs.join(' ')}]; per node: phase peak/after RSS MB, main-thread heap total/used`);
  console.log(`start: ${await line()}`);
  await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
  const r = await post(c.master.url, { command: 'exec', queries: Array.from({ length: 1000 }, (_, i) => ({ query: UPSERT, params: [`r-${i}`, VALUE] })), transaction: true });
  await until(async () => (await appliedIndex(c.slaves[0].url)) >= Number(r.index), 20_000);
  for (const name of phases) {
    for (const p of nodes()) resetPeak(p.pid);
    const what = await phase(c, name);
    console.log(`${name.padEnd(8)} ${what.padEnd(22)} ${await line()}`);
    if (process.env.MEM_DUMP && dumpAfter.has(name)) for (const p of nodes()) console.log(execFileSync('python3', [process.env.MEM_DUMP, String(p.pid)], { encoding: 'utf8' }));
  }
} finally {
  await stopAll();
  removeTempDirs();
}
