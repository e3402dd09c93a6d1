// The floor of a catch-up: how fast a bare slave (bench/floor.mjs, ROLE=slave) applies a
// backlog of N entries of the bench's catch-up shape (one INSERT OR REPLACE of a 100-char
// value per entry) sent as frames of `batch` entries, all encoded before the clock starts
// and pipelined over one TCP connection: the slave's apply alone, no master reading its
// log, no hashing, no HTTP. Compare with bench/catchup.ts (sqlfleet's catch-up, master
// and slave) — issue 29's goal is 100k entries/s.
//   npx tsx bench/floor-catchup.ts [entries=100000] [batch=1000] [trials=3]
import net from 'node:net';
import { cpuMs, freePort, start, stopAll } from './procs.js';
import { removeTempDirs, runScript, tempDir } from './cluster.js';

const n = Number(process.argv[2] ?? 100_000);
const batch = Number(process.argv[3] ?? 1000);
const trials = Number(process.argv[4] ?? 3);
const VALUE = 'v'.repeat(100);

function frames(): Buffer[] {
  const out: Buffer[] = [];
  for (let first = 1; first <= n; first += batch) {
    const entries: string[] = [];
    for (let i = first; i < Math.min(first + batch, n + 1); i++) entries.push(JSON.stringify([['INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)', [`c_${i}`, VALUE]]]));
    const body = Buffer.from(`[${first},[${entries.join(',')}]]`);
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32LE(body.length, 0);
    out.push(head, body);
  }
  return out;
}

runScript('floor-catchup', async () => {
  const fs = frames();
  for (let t = 0; t < trials; t++) {
    const dir = tempDir('sqlfleet-floor-cu-');
    const slave = await start('floor slave', 'bench/floor.mjs', [], [], { ROLE: 'slave', PORT: String(await freePort()), HOST: '127.0.0.1', DB: `${dir}/s.db` });
    const [host, port] = slave.url.replace('tcp://', '').split(':');
    const sock = net.connect(Number(port), host);
    await new Promise((r) => sock.once('connect', r));
    const cpu0 = cpuMs(slave.pid);
    const t0 = performance.now();
    const done = new Promise<void>((resolve) => {
      let buf = Buffer.alloc(0);
      sock.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        while (buf.length >= 4) {
          const applied = buf.readUInt32LE(0);
          buf = buf.subarray(4);
          if (applied >= n) resolve();
        }
      });
    });
    for (const f of fs) sock.write(f);
    await done;
    const s = (performance.now() - t0) / 1000;
    const cpu = cpuMs(slave.pid) - cpu0;
    console.log(`floor slave applied ${n} entries in frames of ${batch}: ${(n / s).toFixed(0)} entries/s, CPU ${((cpu * 1000) / n).toFixed(2)} µs/entry`);
    sock.destroy();
    await stopAll();
    removeTempDirs();
  }
});
