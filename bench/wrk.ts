// One wrk run (wrk is C: it takes far less of a 2-core machine than a JavaScript load
// generator) with the bodies of bench/sql.lua, and the CPU time every
// server process spent meanwhile, for CPU per operation.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cpuMs, exitedChildrenMs } from './procs.js';
import { SQL_LUA } from './references.js';

/** wrk's binary ($BENCH_WRK, default wrk on PATH); the request script is references.ts's SQL_LUA. */
export const WRK = process.env.BENCH_WRK ?? 'wrk';
export { SQL_LUA };

/** The bodies sql.lua sends: distinct parameterized writes, unique literal writes, point reads of N keys, 100-row transactional batches. */
export type WrkMode = 'param' | 'literal' | 'read' | 'batch';

/** What sql.lua prints, plus the CPU spent by the measured processes and by wrk. */
export interface WrkResult {
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p99_ms: number;
  seconds: number;
  /** CPU ms of each measured process during the run, by name. */
  cpu: Record<string, number>;
  /** CPU ms of wrk itself (tick-sampled, 10 ms resolution). */
  wrkCpuMs: number;
  /** wrk's own complaints (socket errors, timeouts), if any. */
  socketErrors: string;
}

/** "name µs, …": each measured process's CPU per request of a run. */
export function cpuPerRequest(r: WrkResult): string {
  return Object.entries(r.cpu)
    .map(([k, ms]) => `${k} ${((ms * 1000) / r.requests).toFixed(0)}`)
    .join(', ');
}

/** Fails early, with what to install, when wrk or the request script is missing. */
export async function checkWrk(): Promise<void> {
  if (!existsSync(SQL_LUA)) throw new Error(`the wrk script ${SQL_LUA} is missing (set BENCH_SQL_LUA)`);
  const ok = await new Promise<boolean>((res) => {
    const p = spawn(WRK, ['-v'], { stdio: 'ignore' });
    p.once('error', () => res(false));
    p.once('exit', () => res(true));
  });
  if (!ok) throw new Error(`wrk not found (${WRK}): install it, e.g. \`apt-get install wrk\`, or set BENCH_WRK`);
}

/** Runs wrk for `seconds` at `concurrency` connections against `url`; `procs` are charged their CPU time. */
export async function runWrk(o: {
  url: string;
  mode: WrkMode;
  prefix: string;
  keys?: number;
  concurrency: number;
  seconds: number;
  procs: readonly { name: string; pid: number }[];
}): Promise<WrkResult> {
  const threads = Math.min(2, o.concurrency);
  const args = [`-t${threads}`, `-c${o.concurrency}`, `-d${o.seconds}s`, '--timeout', '10s', '--latency', '-s', SQL_LUA, o.url, '--', o.mode, o.prefix, String(o.keys ?? 1000)];
  const before = o.procs.map((p) => cpuMs(p.pid));
  const children0 = exitedChildrenMs();
  const t0 = performance.now();
  const out = await new Promise<string>((res, rej) => {
    const p = spawn(WRK, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.setEncoding('utf8').on('data', (d: string) => (text += d));
    p.stderr.setEncoding('utf8').on('data', (d: string) => (text += d));
    p.once('error', rej);
    p.once('exit', (code) => (code === 0 ? res(text) : rej(new Error(`wrk exited ${code}: ${text.slice(-500)}`))));
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu: Record<string, number> = {};
  o.procs.forEach((p, i) => (cpu[p.name] = cpuMs(p.pid) - before[i]));
  const line = /^RESULT (\{.*\})$/m.exec(out);
  if (!line) throw new Error(`wrk printed no RESULT line:\n${out.slice(-1000)}`);
  const r = JSON.parse(line[1]) as Pick<WrkResult, 'requests' | 'errors' | 'rps' | 'p50_ms' | 'p99_ms'>;
  return { ...r, seconds, cpu, wrkCpuMs: exitedChildrenMs() - children0, socketErrors: /^\s*(Socket errors:.*)$/m.exec(out)?.[1] ?? '' };
}
