// What change capture costs a write through the whole node (HTTP, parsing, log, commit):
// the node process's CPU (utime + stime from /proc) per single-row INSERT sent to a lone
// master over POST /, 8 clients at a time, with --capture none and --capture all.
// Rounds alternate the modes; medians are printed. Linux only (/proc).
// Run: npx tsx bench/changes-http.ts [writes per round, default 3000] [rounds, default 3]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 3000);
const ROUNDS = Number(process.argv[3] ?? 3);
const CLI = resolve(fileURLToPath(new URL('..', import.meta.url)), 'bin', 'sqlfleet.js');
const TICK_US = 1e6 / 100; // USER_HZ

function cpuUs(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_US;
}

async function start(capture: string, dir: string): Promise<{ proc: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [CLI, 'master', '0', '--port', '0', '--data-dir', dir, '--capture', capture], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((res, rej) => {
    let buf = '';
    proc.stdout!.on('data', (d) => {
      buf += d;
      for (const line of buf.split('\n')) {
        try {
          const m = JSON.parse(line) as { msg?: string; url?: string };
          if (m.msg === 'ready' && m.url) res(m.url);
        } catch {
          // not JSON yet
        }
      }
    });
    proc.once('exit', () => rej(new Error('node exited')));
  });
  return { proc, url };
}

async function post(url: string, body: unknown): Promise<void> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (r.status !== 200) throw new Error(`${r.status} ${await r.text()}`);
  await r.arrayBuffer();
}

async function round(capture: string): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-cdc-http-'));
  const { proc, url } = await start(capture, dir);
  try {
    await post(url, { query: 'CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, note TEXT)' });
    for (let i = 0; i < 300; i++) await post(url, { query: 'INSERT INTO t (name, n, note) VALUES (?, ?, ?)', params: [`warm${i}`, i, 'x'] });
    const c0 = cpuUs(proc.pid!);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < N) {
          const i = next++;
          await post(url, { query: 'INSERT INTO t (name, n, note) VALUES (?, ?, ?)', params: [`user-${i}`, i, 'some text of a note'], ack: 'master' });
        }
      }),
    );
    return (cpuUs(proc.pid!) - c0) / N;
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

const res: Record<string, number[]> = { none: [], all: [] };
for (let r = 0; r < ROUNDS; r++) for (const m of ['none', 'all']) res[m].push(await round(m));
const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const m of ['none', 'all']) console.log(`--capture ${m.padEnd(5)} ${med(res[m]).toFixed(0).padStart(5)} µs node CPU per write (${(med(res[m]) / med(res.none)).toFixed(2)}x)  rounds: ${res[m].map((x) => x.toFixed(0)).join(', ')}`);
