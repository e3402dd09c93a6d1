// Where an idle node's resident memory goes: starts master + 2 slaves (bin/sqlfleet.js, as
// users run them), waits, then prints per node VmRSS split into anonymous / file / shared
// (/proc/<pid>/status), thread count, and the largest contributors from /proc/<pid>/smaps
// grouped by mapping (the node binary, better_sqlite3.node, other libraries, anonymous).
//
//   tsx bench/mem-idle.ts [wait-seconds=5] [node flag…]      e.g. tsx bench/mem-idle.ts 5 --max-semi-space-size=1
//   MEM_ARGS="--read-workers 1" tsx bench/mem-idle.ts        extra sqlfleet arguments for every node
//   MEM_RUNS=3 (clusters started one after another; the last line gives each node's median RSS),
//   MEM_SMAPS=0 (no per-mapping lines), MEM_QUERY=1 (one write and one read on every node first)
import { readFileSync, readdirSync } from 'node:fs';
import { removeTempDirs, startCluster } from './cluster.js';
import { post, stopAll, type Proc } from './procs.js';

const waitS = Number(process.argv[2] ?? 5);
const flags = process.argv.slice(3);
const nodeArgs = (process.env.MEM_ARGS ?? '').split(/\s+/).filter(Boolean);

function status(pid: number): Record<string, number> {
  const s = readFileSync(`/proc/${pid}/status`, 'utf8');
  const out: Record<string, number> = {};
  for (const k of ['VmRSS', 'VmHWM', 'RssAnon', 'RssFile', 'RssShmem', 'Threads']) out[k] = Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN);
  return out;
}

/** Rss (kB) of /proc/<pid>/smaps grouped by mapping name. */
function smaps(pid: number): [string, number][] {
  const groups = new Map<string, number>();
  let name = '';
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head) {
      const n = head[1].trim();
      name = n === '' ? '[anon]' : n.replace(/^.*\/node_modules\//, 'node_modules/').replace(/^\/(usr\/)?lib\S*\//, '');
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss) groups.set(name, (groups.get(name) ?? 0) + Number(rss[1]));
  }
  return [...groups].sort((a, b) => b[1] - a[1]);
}

function threads(pid: number): string {
  const names = new Map<string, number>();
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      const n = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      names.set(n, (names.get(n) ?? 0) + 1);
    } catch {
      // ended
    }
  }
  return [...names].map(([n, c]) => (c > 1 ? `${n}×${c}` : n)).join(' ');
}

const mb = (kb: number) => (kb / 1024).toFixed(1);

const runs = Number(process.env.MEM_RUNS ?? 1);
const seen: Record<string, number[]> = { master: [], 'slave 1': [], 'slave 2': [] };
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (let run = 0; run < runs; run++) {
    const c = await startCluster(2, flags, [flags, flags], nodeArgs);
    const nodes: [string, Proc][] = [['master', c.master], ['slave 1', c.slaves[0]], ['slave 2', c.slaves[1]]];
    if (process.env.MEM_QUERY === '1') {
      await post(c.master.url, { query: 'CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT)' });
      await post(c.master.url, { query: 'INSERT INTO t(v) VALUES (?)', params: ['x'] });
      for (const [, p] of nodes) await post(p.url, { query: 'SELECT count(*) FROM t', min_index: 0 });
    }
    await new Promise((r) => setTimeout(r, waitS * 1000));
    console.log(`flags [${flags.join(' ')}] args [${nodeArgs.join(' ')}] after ${waitS} s idle${process.env.MEM_QUERY === '1' ? ' (after one write and reads)' : ''}`);
    for (const [label, p] of nodes) {
      const s = status(p.pid);
      seen[label].push(s.VmRSS);
      console.log(`${label}: RSS ${mb(s.VmRSS)} MB (anon ${mb(s.RssAnon)}, file ${mb(s.RssFile)}, shmem ${mb(s.RssShmem)}), peak ${mb(s.VmHWM)} MB, ${s.Threads} threads: ${threads(p.pid)}`);
      if (process.env.MEM_SMAPS !== '0') for (const [n, kb] of smaps(p.pid).slice(0, 10)) console.log(`    ${mb(kb).padStart(6)} MB  ${n}`);
    }
    await stopAll();
    removeTempDirs();
  }
  if (runs > 1) console.log(`median RSS of ${runs} runs: ${Object.entries(seen).map(([l, xs]) => `${l} ${mb(median(xs))} MB`).join(', ')}`);
} finally {
  await stopAll();
  removeTempDirs();
}
