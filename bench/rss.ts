// Master RSS after many replicated writes (ack all, c=32, master + 2 slaves), optionally with
// extra node flags for the master, to try memory settings without the whole bench:
//
//   tsx bench/rss.ts [writes=200000] [node flag…]     e.g. tsx bench/rss.ts 200000 --max-semi-space-size=2
import { removeTempDirs, startCluster } from './cluster.js';
import { runLoad } from './load.js';
import { post, stopAll } from './procs.js';

const writes = Number(process.argv[2] ?? 200_000);
const flags = process.argv.slice(3);
const PAD = 'x'.repeat(24);

try {
  const c = await startCluster(2, flags);
  await post(c.master.url, { command: 'exec', query: 'CREATE TABLE kv (id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER)' });
  const mb = (kb: number | undefined) => ((kb ?? Number.NaN) / 1024).toFixed(0);
  const idle = c.master.memory();
  const w = await runLoad({
    url: c.master.url,
    concurrency: 32,
    body: (seq) => JSON.stringify({ query: 'INSERT INTO kv(k,v,n) VALUES (?,?,?)', params: [`k${seq}`, `v${seq}${PAD}`, seq] }),
    durationMs: 3_600_000,
    maxRequests: writes,
  });
  const m = c.master.memory();
  console.log(
    `flags [${flags.join(' ')}] MALLOC_ARENA_MAX=${process.env.MALLOC_ARENA_MAX ?? '-'}: ${w.ok} writes in ${w.seconds.toFixed(0)} s (${w.rps.toFixed(0)}/s, p99 ${w.p99.toFixed(1)} ms); ` +
      `master RSS idle ${mb(idle?.rssKb)} MB, after ${mb(m?.rssKb)} MB, peak ${mb(m?.hwmKb)} MB`,
  );
} finally {
  await stopAll();
  removeTempDirs();
}
