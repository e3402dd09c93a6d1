// Catch-up of a stopped slave, repeatable: one fixture (a data dir where slave 2 stopped
// N entries behind its master, the writes of `npm run bench`'s catch-up phase) is made
// once, then each trial copies it, starts the master and slave 2 only, and measures the
// time from slave 2's ready line to its applied index reaching the master's, with the CPU
// time (schedstat, all threads) each process spent meanwhile. Running the same fixture from
// two checkouts in turn (A-B-B-A) compares a change without the cost of writing the backlog.
//
//   npx tsx bench/catchup.ts make DIR [N]      build the fixture (default 100000 entries)
//   npx tsx bench/catchup.ts run DIR [TRIALS]  trials on copies of it (default 3); DIR is left as it was
//   CATCHUP_PROFILE=1 … run DIR 1              also CPU profiles of both (.bench/catchup-profile/), summarized
//   CATCHUP_MASTER_ARGS / CATCHUP_SLAVE_ARGS      extra arguments of the master / the slave (e.g. --batch-max-entries 5000)
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { appliedIndex, runScript, startCluster, tempDir } from './cluster.js';
import { runLoad } from './load.js';
import { cpuMs, post, ROOT, start, until, type Proc } from './procs.js';
import { pickProfile, render, summarize } from './profile-top.js';

const CLI = 'bin/sqlfleet.js';
const [mode, dir, nArg] = process.argv.slice(2);
const VALUE = 'v'.repeat(100);
const PROFILE = process.env.CATCHUP_PROFILE === '1';
const profDir = join(ROOT, '.bench', 'catchup-profile');
// CATCHUP_PERF=1: Linux perf samples the slave during the catch-up (perf.data in .bench/catchup-perf/).
const PERF = process.env.CATCHUP_PERF === '1';
const perfDir = join(ROOT, '.bench', 'catchup-perf');
const flags = (n: string): string[] => {
  if (PERF) return ['--perf-basic-prof-only-functions', '--interpreted-frames-native-stack'];
  if (!PROFILE) return [];
  mkdirSync(join(profDir, n), { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${join(profDir, n)}`];
};

async function make(): Promise<void> {
  const n = Number(nArg ?? 100_000);
  const c = await startCluster(2);
  await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
  await c.slaves[1].stop();
  const w = await runLoad({
    url: c.master.url,
    concurrency: 32,
    body: (seq) => JSON.stringify({ query: 'INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)', params: [`c_${seq}`, VALUE], ack: 'master' }),
    durationMs: 600_000,
    maxRequests: n,
  });
  if (w.errors) throw new Error(`${w.errors} errors: ${w.errorSamples.join(' | ')}`);
  const target = await appliedIndex(c.master.url);
  await until(async () => (await appliedIndex(c.slaves[0].url)) >= target, 60_000);
  await c.slaves[0].stop(15_000);
  await c.master.stop(15_000);
  if (existsSync(dir)) throw new Error(`${dir} exists`);
  cpSync(c.dataDir, dir, { recursive: true });
  console.log(`fixture ${dir}: master at ${target}, ${n} entries written (${w.rps.toFixed(0)}/s)`);
}

const extra = (v: string | undefined): string[] => (v ? v.split(' ').filter(Boolean) : []);
/** Main thread of `pid`: ms on a CPU and ms runnable but waiting for one (schedstat). */
function mainThread(pid: number): { cpu: number; wait: number } {
  const [cpu, wait] = readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ').map(Number);
  return { cpu: cpu / 1e6, wait: wait / 1e6 };
}
const us = () => Number(process.hrtime.bigint() / 1000n);

interface Trial {
  rate: number;
  master: number;
  slave: number;
  wait: number;
  entries: number;
  /** Shares of the catch-up's wall time the slave's main thread ran, waited for a CPU, and slept (waited for input or I/O). */
  slaveMain: { run: number; queued: number; slept: number };
}

async function trial(): Promise<Trial> {
  const d = tempDir('sqlfleet-catchup-');
  cpSync(dir, d, { recursive: true });
  const master = await start('master', CLI, ['master', '2', '--port', '0', '--data-dir', d, ...extra(process.env.CATCHUP_MASTER_ARGS)], flags('master'));
  const target = await appliedIndex(master.url);
  const t0 = performance.now();
  const slave: Proc = await start('slave 2', CLI, ['node', '2', '2', '--port', '0', '--data-dir', d, '--master-url', master.url, ...extra(process.env.CATCHUP_SLAVE_ARGS)], flags('slave2'));
  const tReady = performance.now();
  let rec: ReturnType<typeof spawn> | null = null;
  if (PERF) {
    mkdirSync(perfDir, { recursive: true });
    rec = spawn('perf', ['record', '-q', '-e', 'cpu-clock', '-F', '1999', '-g', '-p', String(slave.pid), '-o', join(perfDir, 'slave.data')], { stdio: 'ignore' });
  }
  const from = await appliedIndex(slave.url);
  const startUs = us();
  const cm = cpuMs(master.pid);
  const cs = cpuMs(slave.pid);
  const sm = mainThread(slave.pid);
  let first = 0;
  const ok = await until(
    async () => {
      const i = await appliedIndex(slave.url);
      if (!first && i > from) first = performance.now();
      return i >= target;
    },
    300_000,
    10,
  );
  const tDone = performance.now();
  if (rec) {
    const exited = new Promise((r) => rec!.once('exit', r));
    rec.kill('SIGINT');
    await exited;
  }
  const m = cpuMs(master.pid) - cm;
  const s = cpuMs(slave.pid) - cs;
  const sm2 = mainThread(slave.pid);
  const endUs = us();
  if (!ok) throw new Error(`slave reached only ${await appliedIndex(slave.url)} of ${target}`);
  await slave.stop(15_000);
  await master.stop(15_000);
  if (PROFILE) {
    for (const n of ['master', 'slave2']) {
      console.log(`\n=== ${n} ===`);
      console.log(render(summarize(pickProfile(join(profDir, n)), 30, { startUs, endUs }), false));
    }
  }
  const entries = target - from;
  void t0;
  const wall = tDone - tReady;
  const run = (sm2.cpu - sm.cpu) / wall;
  const queued = (sm2.wait - sm.wait) / wall;
  return { rate: entries / (wall / 1000), master: (m * 1000) / entries, slave: (s * 1000) / entries, wait: first - tReady, entries, slaveMain: { run, queued, slept: 1 - run - queued } };
}

const pct = (x: number): string => `${(x * 100).toFixed(0)} %`;

async function main(): Promise<void> {
  if (mode === 'make' && dir) return make();
  if (mode !== 'run' || !dir) throw new Error('usage: catchup.ts make DIR [N] | run DIR [TRIALS]');
  const trials = Number(nArg ?? 3);
  if (PROFILE) rmSync(profDir, { recursive: true, force: true });
  for (let i = 0; i < trials; i++) {
    const r = await trial();
    console.log(
      `catch-up ${r.entries} entries: ${r.rate.toFixed(0)} entries/s; CPU µs/entry master ${r.master.toFixed(2)}, slave ${r.slave.toFixed(2)}; first entry after ${r.wait.toFixed(0)} ms; slave main thread ran ${pct(r.slaveMain.run)}, waited for a CPU ${pct(r.slaveMain.queued)}, slept ${pct(r.slaveMain.slept)}`,
    );
  }
}

await runScript('catchup', main);
