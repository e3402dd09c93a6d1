// The floor of a replicated write's latency on this machine: the same wrk c=1 run (the
// bench/sql.lua's `param` bodies) against the yardstick (one exchange, with SQLite) and
// against do-nothing node:http servers wired as one replicated write is — client → relay,
// relay → two echoes at once, answers back (three exchanges, no SQL, no parsing, no disk).
// Its p50 over the yardstick's is the lowest "write p50 at c=1" ratio any design with
// these hops can reach here; A-B-B-A rounds as in bench/run.ts.
//
//   tsx bench/hops.ts [rounds=3] [seconds=5]
import { startYardstick, removeTempDirs } from './cluster.js';
import { start, stopAll } from './procs.js';
import { checkWrk, runWrk } from './wrk.js';

const rounds = Number(process.argv[2] ?? 3);
const seconds = Number(process.argv[3] ?? 5);

async function main(): Promise<void> {
  await checkWrk();
  const yard = await startYardstick();
  const e1 = await start('echo1', 'bench/hops-server.mjs', ['echo']);
  const e2 = await start('echo2', 'bench/hops-server.mjs', ['echo']);
  const relay = await start('relay', 'bench/hops-server.mjs', ['relay', e1.url, e2.url]);
  const procsOf = (p: typeof yard) => [{ name: p.label, pid: p.pid }];
  const all = [relay, e1, e2].map((p) => ({ name: p.label, pid: p.pid }));
  await runWrk({ url: yard.url, mode: 'param', prefix: 'warm', concurrency: 1, seconds: 1, procs: procsOf(yard) });
  await runWrk({ url: relay.url, mode: 'param', prefix: 'warm', concurrency: 1, seconds: 1, procs: all });
  const ratios: number[] = [];
  for (let r = 1; r <= rounds; r++) {
    const a1 = await runWrk({ url: yard.url, mode: 'param', prefix: `y${r}a`, concurrency: 1, seconds, procs: procsOf(yard) });
    const b1 = await runWrk({ url: relay.url, mode: 'param', prefix: `h${r}a`, concurrency: 1, seconds, procs: all });
    const b2 = await runWrk({ url: relay.url, mode: 'param', prefix: `h${r}b`, concurrency: 1, seconds, procs: all });
    const a2 = await runWrk({ url: yard.url, mode: 'param', prefix: `y${r}b`, concurrency: 1, seconds, procs: procsOf(yard) });
    const y = (a1.p50_ms + a2.p50_ms) / 2;
    const h = (b1.p50_ms + b2.p50_ms) / 2;
    const cpu = (w: typeof a1) => (Object.values(w.cpu).reduce((s, v) => s + v, 0) * 1000) / w.requests;
    ratios.push(h / y);
    console.log(
      `round ${r}: yardstick p50 ${y.toFixed(3)} ms (${cpu(a1).toFixed(0)} µs CPU/op) | three empty exchanges p50 ${h.toFixed(3)} ms (${cpu(b1).toFixed(0)} µs CPU/op) | ratio ${(h / y).toFixed(2)}`,
    );
  }
  ratios.sort((a, b) => a - b);
  console.log(`median ratio of the empty three-exchange write to the yardstick at c=1: ${ratios[Math.floor(ratios.length / 2)].toFixed(2)}x`);
}

try {
  await main();
} catch (e) {
  console.error(`hops failed: ${(e as Error).stack ?? e}`);
  process.exitCode = 1;
} finally {
  await stopAll();
  removeTempDirs();
}
