// Child processes of the benchmark: sqlfleet nodes and the baseline, each started directly
// as `node bin/sqlfleet.js …` or `node --import tsx …` (so the PID we hold is the server's own), ready when it prints
// a JSON line {"msg":"ready","url":…}. Every process is stopped by its PID at the end, on
// error and on SIGINT.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const READY_MS = 30_000;

const live = new Set<Proc>();
process.on('exit', () => {
  for (const p of live) p.signal('SIGKILL');
});

/** A spawned server process. */
export class Proc {
  url = '';
  /** The ready line, parsed. */
  ready: Record<string, unknown> = {};
  private readonly lines: string[] = [];
  private readonly exited: Promise<void>;
  private readonly child: ChildProcess;

  constructor(
    readonly label: string,
    args: readonly string[],
    env?: Record<string, string>,
  ) {
    this.child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: env ? { ...process.env, ...env } : process.env });
    live.add(this);
    this.exited = new Promise((res) =>
      this.child.once('exit', (code, sig) => {
        live.delete(this);
        this.push(`[bench] exited code=${code} signal=${sig}`);
        res();
      }),
    );
    for (const stream of [this.child.stdout!, this.child.stderr!]) {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const parts = (partial + chunk).split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) this.push(line);
      });
    }
  }

  /** The process id. */
  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** True until the process exits. */
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Resolves with the URL once the ready line appears; rejects if the process exits or is slow. */
  waitReady(): Promise<string> {
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${this.label} not ready within ${READY_MS} ms\n${this.tail(40)}`)), READY_MS);
      this.onReady = (url) => {
        clearTimeout(timer);
        res(url);
      };
      void this.exited.then(() => {
        clearTimeout(timer);
        rej(new Error(`${this.label} exited before ready\n${this.tail(40)}`));
      });
      if (this.url) this.onReady(this.url);
    });
  }

  /** Sends a signal to the PID (ignored when already gone). */
  signal(sig: NodeJS.Signals): void {
    if (!this.running) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.running) return;
    this.signal('SIGTERM');
    const t = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(t);
  }

  /** Resolves when the process has exited. */
  wait(): Promise<void> {
    return this.exited;
  }

  /** Peak and current resident set (kB) from /proc/<pid>/status, while it runs. */
  memory(): { hwmKb: number; rssKb: number } | undefined {
    try {
      const s = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? Number.NaN);
      return { hwmKb: kb('VmHWM'), rssKb: kb('VmRSS') };
    } catch {
      return undefined;
    }
  }

  /** The last `n` output lines. */
  tail(n: number): string {
    return this.lines.slice(-n).join('\n');
  }

  /** Output lines that look like warnings or errors (JSON logs at level warn/error, or stack traces); the first 50 and a count. */
  complaints(): { count: number; first: string[] } {
    return { count: this.complaintCount, first: this.complaintLines };
  }

  /** Membership state changes the node logged ("node state changed"), in order. */
  readonly stateChanges: string[] = [];

  private complaintCount = 0;
  private readonly complaintLines: string[] = [];

  private onReady: (url: string) => void = () => {};

  /** Bytes of output (log lines) the process wrote. */
  outputBytes = 0;

  private push(line: string): void {
    this.outputBytes += line.length + 1;
    if (/^\{.*"level":"(warn|error)"|^\S*Error\b|^\s+at /.test(line)) {
      this.complaintCount++;
      if (this.complaintLines.length < 50) this.complaintLines.push(line);
    }
    if (line.includes('"node state changed"') && this.stateChanges.length < 200) {
      try {
        const m = JSON.parse(line) as Record<string, unknown>;
        this.stateChanges.push(`${String(m.time ?? '').slice(11, 23)} slave ${m.slave}: ${m.from} → ${m.to} (index ${m.applied_index})`);
      } catch {
        this.stateChanges.push(line.slice(0, 200));
      }
    }
    this.lines.push(line);
    if (this.lines.length > 5_000) this.lines.splice(0, 1_000);
    if (!this.url && line.startsWith('{')) {
      try {
        const m = JSON.parse(line) as Record<string, unknown>;
        // A node says {"msg":"ready","url":…}; the references {"yardstick":url} or {"limit":url}.
        const reference = typeof m.yardstick === 'string' ? m.yardstick : typeof m.limit === 'string' ? m.limit : undefined;
        const url = m.msg === 'ready' && typeof m.url === 'string' ? m.url : reference;
        if (url !== undefined) {
          this.ready = m;
          this.url = url.replace(/\/+$/, '');
          this.onReady(this.url);
        }
      } catch {
        // not JSON
      }
    }
  }
}

/** Starts `node [nodeFlags] [--import tsx] <script> …args` (tsx for .ts scripts) and waits for its ready line. */
export async function start(label: string, script: string, args: readonly string[], nodeFlags: readonly string[] = [], env?: Record<string, string>): Promise<Proc> {
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : [];
  const p = new Proc(label, [...nodeFlags, ...loader, resolve(ROOT, script), ...args], env);
  started.push(p);
  await p.waitReady();
  return p;
}

/** Every process started (also those that exited), for failure reports. */
export const started: Proc[] = [];

/** Stops every process still running (SIGTERM, then SIGKILL), each by its PID. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
}

/** GET a JSON document from a node. */
export async function getJson<T = Record<string, unknown>>(url: string, path: string, timeoutMs = 10_000): Promise<T> {
  const res = await fetch(url + path, { signal: AbortSignal.timeout(timeoutMs) });
  return (await res.json()) as T;
}

/** POST / a JSON body; throws unless the answer is 200 {"ok":true}. */
export async function post(url: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url + '/', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const json = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200 || json.ok !== true) throw new Error(`POST ${url}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
  return json;
}

/** Polls `fn` every `everyMs` until it returns true; false on deadline. */
export async function until(fn: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 50): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return true;
    } catch {
      // not yet
    }
    if (Date.now() >= end) return false;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** CPU time of every thread of a process, ms, from the scheduler (exact, unlike the tick-sampled /proc/<pid>/stat). */
export function cpuMs(pid: number): number {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // thread ended
    }
  }
  return ns / 1e6;
}

/**
 * CPU time (ms) of this process's children that have exited and been waited for
 * (cutime + cstime of /proc/self/stat, in clock ticks of 10 ms): how wrk, a short-lived
 * child, is charged — its own /proc entry is gone by the time its figures are printed.
 */
export function exitedChildrenMs(): number {
  const f = readFileSync('/proc/self/stat', 'utf8');
  const v = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
  return (v[13] + v[14]) * 10;
}

/** A TCP port the OS says is free on 127.0.0.1 (for servers that cannot listen on port 0). */
export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}
