// Helpers for the hardening tests (bad input, auth, TLS). They complement helpers/cluster.ts
// where that harness cannot reach: nodes whose /status needs credentials (--auth) or a CA
// (--tls-*), raw byte bodies, custom headers, generous startup deadlines on a loaded
// machine, and one-shot CLI runs (hash-password, new-token, refused starts).

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { fetch as undiciFetch, type Dispatcher } from 'undici';
import { REPO_ROOT } from './cluster.js';

const CLI = join(REPO_ROOT, 'src', 'cli.ts');
/** The machine running the tests may be loaded: nodes get this long to print their ready line. */
export const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
const MAX_LOG_LINES = 4_000;

/** Children we spawned and have not seen exit: killed by PID if the test process exits first. */
const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of live) {
    if (child.pid !== undefined) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});

/** A fresh temporary directory. */
export function tempDir(prefix = 'sqlfleet-hardening-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** An HTTP answer: status, parsed JSON body (undefined if not JSON), raw text, elapsed ms, headers. */
export interface HReply {
  readonly status: number;
  readonly body: any;
  readonly text: string;
  readonly ms: number;
  readonly headers: Headers;
}

/** One HTTP request. A string or byte body is sent verbatim; any other value is JSON-encoded. */
export interface SendOptions {
  readonly method?: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
  /** undici dispatcher, e.g. an Agent trusting a test CA. */
  readonly dispatcher?: Dispatcher;
  /** Content-Type of a body; default application/json. */
  readonly contentType?: string | null;
  /** Send the body as a stream (chunked transfer encoding, no Content-Length). */
  readonly chunked?: boolean;
}

/** Sends one request with undici's fetch (so `dispatcher` works) and reads the whole answer. */
export async function send(url: string, opts: SendOptions = {}): Promise<HReply> {
  const method = opts.method ?? (opts.body === undefined ? 'GET' : 'POST');
  let body: string | Uint8Array | undefined;
  if (opts.body === undefined) body = undefined;
  else if (typeof opts.body === 'string' || opts.body instanceof Uint8Array) body = opts.body;
  else body = JSON.stringify(opts.body);
  const headers: Record<string, string> = {};
  if (body !== undefined && opts.contentType !== null) headers['content-type'] = opts.contentType ?? 'application/json';
  Object.assign(headers, opts.headers);
  const t0 = performance.now();
  const payload = opts.chunked && body !== undefined ? chunks(typeof body === 'string' ? Buffer.from(body) : body) : body;
  const res = await undiciFetch(url, {
    method,
    body: payload,
    ...(opts.chunked ? { duplex: 'half' as const } : {}),
    headers,
    signal: AbortSignal.timeout(opts.timeoutMs ?? 20_000),
    ...(opts.dispatcher ? { dispatcher: opts.dispatcher } : {}),
  });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, ms: performance.now() - t0, headers: res.headers as unknown as Headers };
}

/** A byte body as a stream of 16 KiB chunks (so it goes out chunked, without Content-Length). */
function chunks(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (at >= bytes.length) return ctrl.close();
      ctrl.enqueue(bytes.subarray(at, at + 16 * 1024));
      at += 16 * 1024;
    },
  });
}

/** `Authorization: Basic ...` for a user and password. */
export function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}

/** `Authorization: Bearer ...`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** How to reach a node's HTTP API: extra headers (credentials) and a dispatcher (TLS CA). */
export interface Access {
  readonly headers?: Record<string, string>;
  readonly dispatcher?: Dispatcher;
}

/** Arguments for `cli.ts` running one node. */
export interface HNodeSpec {
  readonly role: 'master' | 'slave';
  readonly id: number;
  readonly numSlaves: number;
  readonly dataDir: string;
  readonly masterUrl?: string;
  readonly port?: number;
  readonly extraArgs?: readonly string[];
}

/** A node process, like TestNode of helpers/cluster.ts but with a 30 s ready deadline. */
export class HNode {
  readonly id: number;
  readonly role: 'master' | 'slave';
  /** The URL to send requests to (the printed URL, with 0.0.0.0 replaced by 127.0.0.1). */
  url = '';
  /** The URL the node printed in its ready line. */
  printedUrl = '';
  proc!: ChildProcess;
  private readonly lines: string[] = [];
  private exitPromise: Promise<void> = Promise.resolve();

  constructor(readonly spec: HNodeSpec) {
    this.id = spec.id;
    this.role = spec.role;
  }

  /** Command-line arguments after `node --import tsx src/cli.ts`. */
  cliArgs(): string[] {
    const { spec } = this;
    const args = spec.role === 'master' ? ['master', String(spec.numSlaves)] : ['node', String(spec.id), String(spec.numSlaves)];
    args.push('--port', String(spec.port ?? 0), '--data-dir', spec.dataDir);
    if (spec.role === 'slave') {
      assert.ok(spec.masterUrl, 'a slave needs masterUrl');
      args.push('--master-url', spec.masterUrl);
    }
    args.push(...(spec.extraArgs ?? []));
    return args;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Spawns the process and resolves once it printed its ready line. */
  async launch(readyTimeoutMs = READY_TIMEOUT_MS): Promise<void> {
    const args = ['--import', 'tsx', CLI, ...this.cliArgs()];
    this.push(`[test] spawn node ${args.join(' ')}`);
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    this.proc = child;
    live.add(child);
    this.exitPromise = new Promise((res) => {
      child.once('exit', (code, signal) => {
        live.delete(child);
        this.push(`[test] exited code=${code} signal=${signal}`);
        res();
      });
    });
    let resolveReady: (url: string) => void = () => {};
    const ready = new Promise<string>((res) => (resolveReady = res));
    collectLines(child, 'stdout', (l) => this.push(l), (line) => {
      const msg = parseJsonLine(line);
      if (msg && msg.msg === 'ready' && typeof msg.url === 'string') resolveReady(msg.url);
    });
    collectLines(child, 'stderr', (l) => this.push(`[stderr] ${l}`));
    const outcome = await Promise.race([
      ready.then((url) => ({ url })),
      this.exitPromise.then(() => ({ exited: true as const })),
      delay(readyTimeoutMs, undefined, { ref: false }).then(() => ({ timeout: true as const })),
    ]);
    if ('url' in outcome) {
      this.printedUrl = outcome.url.replace(/\/+$/, '');
      this.url = this.printedUrl.replace('://0.0.0.0:', '://127.0.0.1:');
      return;
    }
    if ('timeout' in outcome) await this.kill('SIGKILL');
    const why = 'timeout' in outcome ? `printed no ready line within ${readyTimeoutMs} ms` : 'exited before ready';
    throw new Error(`${this.label()} ${why}\n--- logs ---\n${this.tail(200)}`);
  }

  /** SIGTERM (or `signal`), then SIGKILL after 5 s. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    const exited = await Promise.race([
      this.exitPromise.then(() => true),
      delay(STOP_TIMEOUT_MS, undefined, { ref: false }).then(() => false),
    ]);
    if (!exited) {
      this.push(`[test] did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}; sending SIGKILL`);
      this.proc.kill('SIGKILL');
      await this.exitPromise;
    }
  }

  logs(): string {
    return this.lines.join('\n');
  }

  tail(n: number): string {
    return this.lines.slice(-n).join('\n');
  }

  label(): string {
    return `node ${this.id} (${this.role})`;
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > MAX_LOG_LINES) this.lines.splice(0, this.lines.length - MAX_LOG_LINES);
  }
}

function collectLines(child: ChildProcess, stream: 'stdout' | 'stderr', push: (l: string) => void, onLine?: (l: string) => void): void {
  const source = child[stream];
  if (!source) return;
  let partial = '';
  source.setEncoding('utf8');
  source.on('data', (chunk: string) => {
    partial += chunk;
    const parts = partial.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      push(line);
      onLine?.(line);
    }
  });
  source.on('end', () => {
    if (partial) push(partial);
  });
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A master and its slaves, reached with `access` (credentials / CA). */
export interface HCluster {
  readonly master: HNode;
  readonly slaves: readonly HNode[];
  readonly nodes: readonly HNode[];
  readonly dataDir: string;
  readonly access: Access;
  stop(): Promise<void>;
}

/** Options of `startHCluster`. */
export interface HClusterOptions {
  readonly slaves: number;
  readonly dataDir?: string;
  /** Flags for every node. */
  readonly extraArgs?: readonly string[];
  /** How the test reaches the nodes' /status while waiting for the slaves. */
  readonly access?: Access;
  /** Master URL given to slaves; default the URL the master printed. */
  readonly masterUrlForSlaves?: (masterUrl: string) => string;
  readonly readyTimeoutMs?: number;
}

/** Starts a master and slaves and waits (30 s) until the master lists every slave `up`. */
export async function startHCluster(opts: HClusterOptions): Promise<HCluster> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? tempDir();
  const extraArgs = opts.extraArgs ?? [];
  const access = opts.access ?? {};
  const started: HNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((n) => n.kill('SIGTERM')));
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const master = new HNode({ role: 'master', id: 0, numSlaves: opts.slaves, dataDir, extraArgs });
    started.push(master);
    await master.launch(opts.readyTimeoutMs);
    const masterUrl = opts.masterUrlForSlaves ? opts.masterUrlForSlaves(master.url) : master.url;
    const slaves: HNode[] = [];
    for (let id = 1; id <= opts.slaves; id++) {
      const s = new HNode({ role: 'slave', id, numSlaves: opts.slaves, dataDir, masterUrl, extraArgs });
      slaves.push(s);
      started.push(s);
    }
    await Promise.all(slaves.map((s) => s.launch(opts.readyTimeoutMs)));
    const nodes = [master, ...slaves];
    try {
      await waitForSlavesUp(master, slaves.map((s) => s.id), access);
    } catch (e) {
      printHLogs(nodes);
      throw e;
    }
    return { master, slaves, nodes, dataDir, access, stop };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** Polls `fn` until it returns a truthy value (thrown errors count as "not yet"). */
export async function poll<T>(fn: () => T | Promise<T>, timeoutMs: number, what: string, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    }
    await delay(intervalMs);
  }
}

/** GET /status with `access`; asserts 200. */
export async function hstatus(node: HNode, access: Access = {}): Promise<any> {
  const r = await send(`${node.url}/status`, { ...access, timeoutMs: 10_000 });
  assert.equal(r.status, 200, `${node.label()} /status: ${r.status} ${r.text}`);
  return r.body;
}

/** Waits until the master's /status lists each of `ids` as `up`. */
export async function waitForSlavesUp(master: HNode, ids: readonly number[], access: Access = {}, timeoutMs = 30_000): Promise<void> {
  await poll(
    async () => {
      const s = await hstatus(master, access);
      const nodes: Array<{ id: number; state: string; url?: string }> = s.nodes ?? [];
      return ids.every((id) => nodes.some((n) => n.id === id && n.state === 'up' && !!n.url));
    },
    timeoutMs,
    `slaves ${ids.join(',')} up in master /status`,
  );
}

/** Waits until every node's /status reports applied_index >= `index`. */
export async function waitForApplied(nodes: readonly HNode[], index: number, access: Access = {}, timeoutMs = 20_000): Promise<void> {
  await poll(
    async () => {
      const all = await Promise.all(nodes.map(async (n) => (await hstatus(n, access)).applied_index as number));
      if (!all.every((i) => i >= index)) throw new Error(`applied: ${all.join(', ')}`);
      return true;
    },
    timeoutMs,
    `index ${index} on nodes ${nodes.map((n) => n.id).join(',')}`,
  );
}

/** GET /checksum of each node. */
export async function hchecksums(nodes: readonly HNode[], access: Access = {}): Promise<any[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const r = await send(`${n.url}/checksum`, { ...access, timeoutMs: 20_000 });
      assert.equal(r.status, 200, `${n.label()} /checksum: ${r.status} ${r.text}`);
      return r.body;
    }),
  );
}

/** Prints the tail of every node's log to stderr. */
export function printHLogs(nodes: readonly HNode[], lines = 150): void {
  for (const n of nodes) process.stderr.write(`\n----- ${n.label()} ${n.url} (last ${lines} lines) -----\n${n.tail(lines)}\n`);
}

/** Outcome of a one-shot CLI run. */
export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the process printed a ready line (it was then stopped by us). */
  readonly started: boolean;
  /** True when the deadline passed before it exited or became ready (it was then killed). */
  readonly timedOut: boolean;
}

/**
 * Runs `node --import tsx src/cli.ts ...args`, feeding `stdin`, until it exits; a process
 * that prints a ready line is stopped (SIGTERM) and reported `started`.
 */
export async function runCli(args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  live.add(child);
  let stdout = '';
  let stderr = '';
  let started = false;
  let timedOut = false;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    stdout += d;
    if (!started && stdout.split('\n').some((l) => parseJsonLine(l)?.msg === 'ready')) {
      started = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => {});
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? READY_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('close', (c, s) => res([c, s])));
  clearTimeout(timer);
  live.delete(child);
  return { code, signal, stdout, stderr, started, timedOut };
}
