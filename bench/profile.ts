// CPU profile of the master under the bench's c=32 parameterized replicated writes:
// starts a cluster whose master runs with `node --cpu-prof`, runs a warm-up and one
// measured phase (only its samples are summarized), stops the master with SIGTERM (it
// exits cleanly and writes the profile) and prints the top self-time functions
// (bench/profile-top.ts).
//
//   tsx bench/profile.ts [seconds=10]     → profile in .bench/profile/, summary on stdout
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { removeTempDirs, startCluster } from './cluster.js';
import { runLoad } from './load.js';
import { post, ROOT, stopAll } from './procs.js';
import { pickProfile, render, summarize } from './profile-top.js';

const seconds = Number(process.argv[2] ?? process.env.BENCH_SECONDS ?? 10);
const dir = join(ROOT, '.bench', 'profile');

async function main(): Promise<void> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const c = await startCluster(2, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER)' });
  const body = (seq: number) =>
    JSON.stringify({ query: 'INSERT INTO kv(k,v,n) VALUES (?,?,?)', params: [`k${seq}`, `v${seq}${'x'.repeat(24)}`, seq] });
  await runLoad({ url: c.master.url, concurrency: 32, body, durationMs: 1000 }); // warm-up, not in the summary
  const us = () => Number(process.hrtime.bigint() / 1000n);
  const window = { startUs: us(), endUs: 0 };
  const r = await runLoad({ url: c.master.url, concurrency: 32, body: (seq) => body(seq + 1e7), durationMs: seconds * 1000 });
  window.endUs = us();
  console.log(`master under c=32 parameterized writes (ack all): ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.errors} errors`);
  await c.master.stop(15_000);
  await stopAll();
  const file = pickProfile(dir);
  const s = summarize(file, 20, window);
  console.log(render(s));
  writeFileSync(join(ROOT, '.bench', 'profile-top.json'), JSON.stringify({ load: r, window, ...s }, null, 2) + '\n');
}

process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
try {
  await main();
} catch (e) {
  console.error(`profile failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  removeTempDirs();
}
