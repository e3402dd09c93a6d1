// Interactive Hrana transactions, A/B: several node builds (and client shapes) against the
// single-node limit in alternating rounds, with the CPU each process spent per transaction
// (schedstat) — the figure that moves least on a shared machine — and where a
// transaction's time goes (client-side latency of each pipeline request).
//
//   npx tsx bench/hrana-ab.ts [seconds] [rounds] [variant ...]
//   HRANA_AB_MASTER_FLAGS='--trace-deopt' …   (node flags for every master; its output stays in the process's lines)
//
// A variant is `name=<bundle dir>[:shape[:slave]]`: a copy of node_modules/.cache/sqlfleet/ (the
// bundle bin/sqlfleet.js builds; copy it under node_modules/.cache/ so its packages
// resolve), or `name=current[:shape]` for bin/sqlfleet.js as it is. `shape` is `client`
// (default: what @libsql/client sends, bench/hrana-tx.ts) or `four` (BEGIN, SELECT,
// UPDATE, COMMIT as four requests); `slave`: the clients talk to slave 1, which relays
// to the master. Each round runs limit, the variants, the variants
// reversed, limit. `--profile` adds --cpu-prof to every master (profiles in .bench/hrana-ab/).
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cpuMs, getJson, ROOT, start, until, type Proc } from './procs.js';
import { runScript, startLimit, tempDir } from './cluster.js';
import { referenceLine } from './references.js';
import { hranaTxLoad, limitTxLoad, seedHranaTx, type Shape } from './hrana-tx.js';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const PROFILE = process.argv.includes('--profile');
// --perf: perf record (cycles, call graphs) of every master during its runs; JS frames named through --perf-basic-prof.
const PERF = process.argv.includes('--perf');
const seconds = Number(args[0] ?? 4);
const rounds = Number(args[1] ?? 2);
const specs = (args.length > 2 ? args.slice(2) : ['current=current']).map((s) => {
  const [name, rest] = s.split('=');
  const [where, shape, via] = rest.split(':');
  return { name, where, shape: (shape || 'client') as Shape, viaSlave: via === 'slave' };
});

interface Variant {
  name: string;
  shape: Shape;
  /** The clients talk to slave 1 (which relays to the master), not to the master. */
  viaSlave: boolean;
  master: Proc;
  slaves: Proc[];
}

async function startVariant(name: string, where: string, shape: Shape, viaSlave: boolean): Promise<Variant> {
  const cli = where === 'current' ? 'bin/sqlfleet.js' : join(resolve(ROOT, where), 'cli.mjs');
  const dataDir = tempDir('sqlfleet-hrana-ab-');
  const profDir = resolve(ROOT, '.bench/hrana-ab', name);
  if (PROFILE) mkdirSync(profDir, { recursive: true });
  const mflags = [
    ...(PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : PERF ? ['--perf-basic-prof', '--no-logfile-per-isolate', '--logfile=/dev/null'] : []),
    ...(process.env.HRANA_AB_MASTER_FLAGS ?? '').split(' ').filter(Boolean), // e.g. --trace-deopt
  ];
  if (PERF) mkdirSync(profDir, { recursive: true });
  const master = await start(`${name} master`, cli, ['master', '2', '--port', '0', '--data-dir', dataDir], mflags);
  const slaves = await Promise.all(
    [1, 2].map((id) => start(`${name} slave ${id}`, cli, ['node', String(id), '2', '--port', '0', '--data-dir', dataDir, '--master-url', master.url])),
  );
  const up = await until(async () => {
    const s = await getJson<{ nodes: { state: string }[] }>(master.url, '/status');
    return s.nodes.length === 3 && s.nodes.every((x) => x.state === 'up');
  }, 20_000);
  if (!up) throw new Error(`${name}: cluster not up`);
  await seedHranaTx(master.url);
  return { name, shape, viaSlave, master, slaves };
}

interface Sample {
  tps: number;
  cpu: number[]; // µs per tx: each server process
  client: number; // µs per tx: this process (the load generator)
  lat: number[]; // ms, mean client-side latency of each request of a transaction
  errors: number;
}

async function measure(procs: Proc[], run: () => Promise<{ tps: number; n: number; lat: number[]; errors: number }>): Promise<Sample> {
  const before = procs.map((p) => cpuMs(p.pid));
  const c0 = process.cpuUsage();
  const r = await run();
  const c = process.cpuUsage(c0);
  const cpu = procs.map((p, i) => ((cpuMs(p.pid) - before[i]) * 1000) / Math.max(1, r.n));
  return { tps: r.tps, cpu, client: (c.user + c.system) / Math.max(1, r.n), lat: r.lat, errors: r.errors };
}

const fmt = (x: number, d = 0) => x.toFixed(d);
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

await runScript('hrana-ab', async () => {
  console.log(referenceLine());
  const limit = await startLimit();
  await seedHranaTx(limit.url);
  const variants: Variant[] = [];
  for (const s of specs) variants.push(await startVariant(s.name, s.where, s.shape, s.viaSlave));
  const target = (v: Variant) => (v.viaSlave ? v.slaves[0].url : v.master.url);
  // warm-up
  await limitTxLoad(limit.url, 1);
  for (const v of variants) await hranaTxLoad(target(v), 1, v.shape);
  const out = new Map<string, Sample[]>([['limit', []], ...variants.map((v) => [v.name, []] as [string, Sample[]])]);
  const runLimit = async () => out.get('limit')!.push(await measure([limit], () => limitTxLoad(limit.url, seconds)));
  const runVariant = async (v: Variant) => {
    const perf = PERF ? spawn('perf', ['record', '-F', '1999', '-g', '-p', String(v.master.pid), '-o', resolve(ROOT, '.bench/hrana-ab', v.name, `perf.${Date.now()}.data`)], { stdio: 'ignore' }) : null;
    if (perf) await new Promise((r) => setTimeout(r, 300));
    out.get(v.name)!.push(await measure([v.master, ...v.slaves], () => hranaTxLoad(target(v), seconds, v.shape)));
    if (perf) {
      perf.kill('SIGINT');
      await new Promise((r) => perf.once('exit', r));
    }
  };
  for (let r = 0; r < rounds; r++) {
    const load = (await import('node:os')).loadavg()[0];
    await runLimit();
    for (const v of variants) await runVariant(v);
    for (const v of [...variants].reverse()) await runVariant(v);
    await runLimit();
    const lim = out.get('limit')!.slice(-2);
    const limTps = (lim[0].tps + lim[1].tps) / 2;
    const line = variants.map((v) => {
      const s = out.get(v.name)!.slice(-2);
      const tps = (s[0].tps + s[1].tps) / 2;
      return `${v.name} ${fmt(s[0].tps)}/${fmt(s[1].tps)} tx/s (${fmt(tps / limTps, 2)}x)`;
    });
    console.log(`round ${r + 1} (load ${load.toFixed(1)}): limit ${fmt(lim[0].tps)}/${fmt(lim[1].tps)} tx/s | ${line.join(' | ')}`);
  }
  if (process.env.HRANA_AB_MASTER_FLAGS?.includes('--trace-deopt')) {
    for (const v of variants) {
      const counts = new Map<string, number>();
      for (const l of v.master.tail(5000).split('\n')) {
        const m = /bailout \(kind: ([^,]+), reason: ([^)]*)\): begin\. deoptimizing.*?<JSFunction (\S+)/.exec(l);
        if (m) counts.set(`${m[3]} (${m[1]}: ${m[2]})`, (counts.get(`${m[3]} (${m[1]}: ${m[2]})`) ?? 0) + 1);
      }
      console.log(`${v.name} master, deopts among its last 5000 output lines:`);
      for (const [k, n] of [...counts].sort((a, b) => b[1] - a[1]).slice(0, 20)) console.log(`  ${n} ${k}`);
    }
  }
  console.log('\nmedians over all runs:');
  const lim = out.get('limit')!;
  const limTps = median(lim.map((s) => s.tps));
  console.log(`  limit: ${fmt(limTps)} tx/s, CPU ${fmt(median(lim.map((s) => s.cpu[0])))} µs/tx (client ${fmt(median(lim.map((s) => s.client)))} µs/tx)`);
  for (const v of variants) {
    const ss = out.get(v.name)!;
    const tps = median(ss.map((s) => s.tps));
    const cpu = [0, 1, 2].map((i) => median(ss.map((s) => s.cpu[i])));
    const lat = ss[0].lat.map((_, i) => median(ss.map((s) => s.lat[i])));
    const errors = ss.reduce((a, s) => a + s.errors, 0);
    console.log(
      `  ${v.name} (${v.shape}): ${fmt(tps)} tx/s, ratio ${fmt(tps / limTps, 3)}x (per round: ${ss.map((s, i) => (i % 2 === 0 ? '' : fmt((ss[i - 1].tps + s.tps) / 2 / ((lim[2 * Math.floor(i / 2)].tps + lim[2 * Math.floor(i / 2) + 1].tps) / 2), 2))).filter(Boolean).join(' / ')}); ` +
        `CPU µs/tx master ${fmt(cpu[0])} slaves ${fmt(cpu[1])}/${fmt(cpu[2])} sum ${fmt(cpu[0] + cpu[1] + cpu[2])}; client ${fmt(median(ss.map((s) => s.client)))}; ` +
        `latency per request ms ${lat.map((x) => fmt(x, 2)).join(' / ')}; errors ${errors}`,
    );
  }
});
