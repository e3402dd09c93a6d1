// `npx tsx bench/snapshot-pause.ts [MB]`: how long writes stall while the master takes
// and streams a snapshot of a large database (issue 3). Builds a database of about MB
// megabytes (default 200) on a master with a short log, then starts a --join slave that
// needs a snapshot while one client keeps writing (ack "master") and records the
// slowest write during the transfer. Loopback only; every process stopped by PID.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { post, start, stopAll, until, getJson } from './procs.js';

const mb = Number(process.argv[2] ?? 200);
const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-snap-'));
try {
  const master = await start('master', 'src/cli.ts', ['master', '0', '--port', '0', '--data-dir', dir, '--log-retain', '100', '--max-body', String(8 << 20), '--max-statements', '5000']);
  await post(master.url, { query: 'CREATE TABLE blob_rows (id INTEGER PRIMARY KEY, pad TEXT)' });
  const row = 'x'.repeat(1000);
  const perBatch = 2000;
  const batches = Math.ceil((mb * 1024 * 1024) / (perBatch * 1030));
  const t0 = Date.now();
  for (let b = 0; b < batches; b++) {
    await post(master.url, { queries: Array.from({ length: perBatch }, () => ({ query: 'INSERT INTO blob_rows(pad) VALUES (?)', params: [row] })), ack: 'master' });
  }
  console.log(`built ~${mb} MB in ${((Date.now() - t0) / 1000).toFixed(1)} s (${batches} batches of ${perBatch} rows)`);
  // Let the master trim its log so the new slave needs a snapshot.
  await new Promise((r) => setTimeout(r, 6_000));

  let writing = true;
  const lat: { at: number; ms: number }[] = [];
  const writer = (async () => {
    for (let i = 0; writing && i < 1_000_000; i++) {
      const s = performance.now();
      await post(master.url, { query: 'INSERT INTO blob_rows(pad) VALUES (?)', params: ['w'], ack: 'master' });
      lat.push({ at: Date.now(), ms: performance.now() - s });
    }
  })();
  await new Promise((r) => setTimeout(r, 1_000));
  const joinedAt = Date.now();
  const slave = await start('slave', 'src/cli.ts', ['node', '9', '0', '--port', '0', '--data-dir', dir, '--join', master.url]);
  const up = await until(async () => {
    const st = await getJson<{ nodes: { id: number; state: string }[] }>(master.url, '/status');
    return st.nodes.some((n) => n.id === 9 && n.state === 'up');
  }, 300_000, 200);
  const doneAt = Date.now();
  writing = false;
  await writer;
  const during = lat.filter((l) => l.at >= joinedAt && l.at <= doneAt).map((l) => l.ms).sort((a, b) => a - b);
  const before = lat.filter((l) => l.at < joinedAt).map((l) => l.ms).sort((a, b) => a - b);
  const pct = (a: number[], p: number) => (a.length ? a[Math.min(a.length - 1, Math.floor(a.length * p))]!.toFixed(2) : '—');
  const taken = master.tail(400).split('\n').find((l) => l.includes('"snapshot taken"')) ?? '';
  console.log(`slave up: ${up} after ${((doneAt - joinedAt) / 1000).toFixed(1)} s; master log: ${taken}`);
  console.log(`writes before: ${before.length}, p50 ${pct(before, 0.5)} ms, max ${pct(before, 1)} ms`);
  console.log(`writes during snapshot: ${during.length}, p50 ${pct(during, 0.5)} ms, p99 ${pct(during, 0.99)} ms, max ${pct(during, 1)} ms`);
  void slave;
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}
