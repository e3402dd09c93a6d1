// CPU profile of one node under wrk load (bench/sql.lua's bodies, c=32 unless told): starts a
// cluster whose master and slaves run with `node --cpu-prof`, a warm-up and one measured
// run (only its samples are summarized), stops the nodes with SIGTERM (they exit cleanly
// and write their profiles) and prints the top self-time functions (bench/profile-top.ts).
//
//   tsx bench/profile.ts [seconds=10] [param|literal|read|batch] [connections=32]   (PROFILE_NODE=slave1 summarizes that node instead)
//     → .bench/profile/{master,slave1,slave2}/*.cpuprofile; summary of the node under load
//       (the master for writes, slave 1 for reads) on stdout and in .bench/profile-top.json
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { appliedIndex, runScript, startCluster } from './cluster.js';
import { post, ROOT, until } from './procs.js';
import { pickProfile, render, summarize } from './profile-top.js';
import { checkWrk, cpuPerRequest, runWrk, type WrkMode } from './wrk.js';

const seconds = Number(process.argv[2] ?? process.env.BENCH_SECONDS ?? 10);
const mode = (process.argv[3] ?? 'param') as WrkMode;
const concurrency = Number(process.argv[4] ?? 32);
const dir = join(ROOT, '.bench', 'profile');

async function main(): Promise<void> {
  if (!['param', 'literal', 'read', 'batch'].includes(mode)) throw new Error(`mode must be param, literal, read or batch, not ${mode}`);
  await checkWrk();
  rmSync(dir, { recursive: true, force: true });
  const flags = (n: string) => {
    mkdirSync(join(dir, n), { recursive: true });
    return ['--cpu-prof', `--cpu-prof-dir=${join(dir, n)}`];
  };
  const c = await startCluster(2, flags('master'), [flags('slave1'), flags('slave2')]);
  await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)' });
  const r0 = await post(c.master.url, { queries: Array.from({ length: 1000 }, (_, i) => ({ query: 'INSERT INTO kv VALUES (?,?)', params: [`r-${i}`, 'v'.repeat(100)] })), transaction: true });
  await until(async () => (await appliedIndex(c.slaves[0].url)) >= Number(r0.index), 20_000);
  const node = mode === 'read' ? c.slaves[0] : c.master;
  const procs = [{ name: 'master', pid: c.master.pid }, ...c.slaves.map((s, i) => ({ name: `slave${i + 1}`, pid: s.pid }))];
  await runWrk({ url: node.url, mode, prefix: 'warm', concurrency: 32, seconds: 2, procs }); // warm-up, not in the summary
  const us = () => Number(process.hrtime.bigint() / 1000n);
  const window = { startUs: us(), endUs: 0 };
  const r = await runWrk({ url: node.url, mode, prefix: mode === 'read' ? 'r' : 'm', concurrency, seconds, procs });
  window.endUs = us();
  const perOp = cpuPerRequest(r);
  console.log(`${node.label} under c=${concurrency} ${mode}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50_ms.toFixed(2)} ms, p99 ${r.p99_ms.toFixed(2)} ms, ${r.errors} errors; CPU µs/op ${perOp}`);
  for (const p of [c.master, ...c.slaves]) await p.stop(15_000);
  const name = process.env.PROFILE_NODE ?? (mode === 'read' ? 'slave1' : 'master');
  const s = summarize(pickProfile(join(dir, name)), 25, window);
  console.log(render(s));
  writeFileSync(join(ROOT, '.bench', 'profile-top.json'), JSON.stringify({ load: r, window, ...s }, null, 2) + '\n');
}

await runScript('profile', main);
