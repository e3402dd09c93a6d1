// Spawns real sqlfleet node processes for cluster tests and talks HTTP to them.
// Every node listens on port 0 and prints one JSON "ready" line with its URL; we read it.

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Agent, fetch as undiciFetch, type Dispatcher } from 'undici';

/** The repository root (two levels above this file). */
export const REPO_ROOT = resolve(fileURLToPath(new URL('../..', import.meta.url)));
/** The sqlfleet command users run (`npm run master` etc.): `node CLI ...`. */
export const CLI = join(REPO_ROOT, 'bin', 'sqlfleet.js');
const READY_TIMEOUT_MS = 45_000;
const STOP_TIMEOUT_MS = 5_000;
const MAX_LOG_LINES = 4_000;
// Deadline timers below are unref'd: a pending 20 s race timer must not keep the test process alive.

/** Every child we spawned and have not seen exit: killed if the test process exits first. */
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

/** Kills `child` (by PID) if the test process exits while it still runs. */
export function killOnExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
}

/** How to (re)start one node: what `startNode` needs. */
export interface NodeSpec {
  readonly role: 'master' | 'slave';
  readonly id: number;
  readonly numSlaves: number;
  readonly dataDir: string;
  /** Required for slaves. */
  readonly masterUrl?: string;
  /** 0 (default) lets the OS choose. */
  readonly port?: number;
  readonly extraArgs?: readonly string[];
  /** Sent with the harness's own requests to the node (/status, /checksum, exec, query), e.g. credentials. */
  readonly headers?: Record<string, string>;
  /** undici dispatcher for those requests, e.g. an Agent trusting a test CA. */
  readonly dispatcher?: Dispatcher;
  /** Deadline for the ready line; default 45 s. */
  readonly readyTimeoutMs?: number;
  /** Per-request deadline of the harness's /status and /checksum requests; default 5 s and 15 s. */
  readonly requestTimeoutMs?: number;
  /** Extra environment variables of the node process (e.g. SQLFLEET_FAILPOINTS). */
  readonly env?: Record<string, string>;
  /** Spawns the node process somewhere else (e.g. `net.spawn(i, …)` into a network namespace); default: here. */
  readonly spawnIn?: (cmd: string, args: string[], opts: SpawnOptions) => ChildProcess;
}

/** A running (or stopped) node process; `restart` keeps the same object and URL. */
export class TestNode {
  readonly id: number;
  readonly role: 'master' | 'slave';
  /** The URL to send requests to (the printed URL, with 0.0.0.0 replaced by 127.0.0.1). */
  url = '';
  /** The URL the node printed in its ready line. */
  printedUrl = '';
  proc!: ChildProcess;
  spec: NodeSpec;
  private readonly lines: string[] = [];
  private exitPromise: Promise<void> = Promise.resolve();

  constructor(spec: NodeSpec) {
    this.spec = spec;
    this.id = spec.id;
    this.role = spec.role;
  }

  /** Everything this node printed, over all its incarnations. */
  logs(): string {
    return this.lines.join('\n');
  }

  /** How the harness reaches this node: its spec's headers and dispatcher. */
  get access(): RequestOptions {
    const { headers, dispatcher } = this.spec;
    return { ...(headers ? { headers } : {}), ...(dispatcher ? { dispatcher } : {}) };
  }

  /** True while the current process has not exited. */
  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** Sends `signal` to the process (by PID) and waits for it to exit; SIGKILL after 5 s. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.proc.kill(signal);
    const exited = await Promise.race([
      this.exitPromise.then(() => true),
      delay(STOP_TIMEOUT_MS, undefined, { ref: false }).then(() => false),
    ]);
    if (!exited) {
      this.note(`did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}; sending SIGKILL`);
      this.proc.kill('SIGKILL');
      await this.exitPromise;
    }
  }

  /** Spawns the process described by `spec` and resolves once it printed its ready line. */
  async launch(): Promise<void> {
    const { spec } = this;
    const args = [CLI];
    if (spec.role === 'master') args.push('master', String(spec.numSlaves));
    else args.push('node', String(spec.id), String(spec.numSlaves));
    args.push('--port', String(spec.port ?? 0), '--data-dir', spec.dataDir);
    if (spec.role === 'slave') {
      assert.ok(spec.masterUrl, 'a slave needs masterUrl');
      args.push('--master-url', spec.masterUrl);
    }
    args.push(...(spec.extraArgs ?? []));
    this.note(`spawn node ${args.join(' ')}`);

    const opts: SpawnOptions = { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(spec.env ? { env: { ...process.env, ...spec.env } } : {}) };
    const child = spec.spawnIn ? spec.spawnIn(process.execPath, args, opts) : spawn(process.execPath, args, opts);
    this.proc = child;
    killOnExit(child);
    this.exitPromise = new Promise((res) => {
      child.once('exit', (code, signal) => {
        this.note(`exited code=${code} signal=${signal}`);
        res();
      });
    });

    let resolveReady: (url: string) => void = () => {};
    const ready = new Promise<string>((res) => (resolveReady = res));
    this.collect(child, 'stdout', (line) => {
      const msg = parseJsonLine(line);
      if (msg && msg.msg === 'ready' && typeof msg.url === 'string') resolveReady(msg.url);
    });
    this.collect(child, 'stderr', () => {});

    const readyTimeoutMs = spec.readyTimeoutMs ?? READY_TIMEOUT_MS;
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

  /** The last `n` log lines, for failure reports. */
  tail(n: number): string {
    return this.lines.slice(-n).join('\n');
  }

  /** e.g. "node 1 (slave)". */
  label(): string {
    return `node ${this.id} (${this.role})`;
  }

  private note(text: string): void {
    this.push(`[test] ${text}`);
  }

  private push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > MAX_LOG_LINES) this.lines.splice(0, this.lines.length - MAX_LOG_LINES);
  }

  private collect(child: ChildProcess, stream: 'stdout' | 'stderr', onLine: (line: string) => void): void {
    let partial = '';
    const source = child[stream];
    if (!source) return;
    source.setEncoding('utf8');
    source.on('data', (chunk: string) => {
      partial += chunk;
      const parts = partial.split('\n');
      partial = parts.pop() ?? '';
      for (const line of parts) {
        this.push(stream === 'stderr' ? `[stderr] ${line}` : line);
        onLine(line);
      }
    });
    source.on('end', () => {
      if (partial) this.push(partial);
    });
  }
}

/** A printed line parsed as a JSON object, or undefined. */
export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return v && typeof v === 'object' ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts one node and waits for its ready line. */
export async function startNode(spec: NodeSpec): Promise<TestNode> {
  const node = new TestNode(spec);
  await node.launch();
  return node;
}

/** A master and its slaves sharing one data dir. */
export interface Cluster {
  readonly master: TestNode;
  readonly slaves: readonly TestNode[];
  /** Master first, then slaves by id. */
  readonly nodes: readonly TestNode[];
  readonly dataDir: string;
  /** The Agent trusting `ca` (closed by stop()), if one was given. */
  readonly dispatcher?: Dispatcher;
  /** Stops every node (SIGTERM, then SIGKILL), closes the dispatcher and removes the data dir if we created it. */
  stop(): Promise<void>;
  /** Stops `node` if it runs (SIGTERM) and starts it again on the same port and data dir. */
  restart(node: TestNode): Promise<void>;
}

/** Options of `startCluster`; `extraArgs` (e.g. ['--max-body', '4096']), `headers` and the deadlines apply to every node. */
export interface ClusterOptions extends Pick<NodeSpec, 'extraArgs' | 'headers' | 'readyTimeoutMs' | 'requestTimeoutMs' | 'env'> {
  readonly slaves: number;
  /** Reused as is (and left in place by stop()); default: a fresh temp dir. */
  readonly dataDir?: string;
  /** A CA certificate (PEM) the harness trusts, for a cluster serving HTTPS. */
  readonly ca?: string;
  /** Deadline for every slave to be listed `up` by the master; default 15 s. */
  readonly upTimeoutMs?: number;
}

/** What a one-shot process printed, and how it ended. */
export interface ProcessRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `cmd argv` in the repository, writes `input` to its stdin and closes it; SIGKILL and a rejection after `timeoutMs`. */
export function runProcess(cmd: string, argv: readonly string[], opts: { input?: string; env?: Record<string, string>; timeoutMs: number }): Promise<ProcessRun> {
  const child = spawn(cmd, [...argv], { cwd: REPO_ROOT, env: { ...process.env, ...opts.env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(opts.input ?? '');
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${cmd} ${argv.join(' ')}: no exit within ${opts.timeoutMs} ms\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, opts.timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** True when `port` can be bound on loopback right now. */
export function free(port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = createServer();
    s.once('error', () => res(false));
    s.listen(port, '127.0.0.1', () => s.close(() => res(true)));
  });
}

/** A base port with `count` consecutive ports free from it (for commands that take --base-port). */
export async function freeBase(count = 3): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    let all = true;
    for (let p = base; p < base + count && all; p++) all = await free(p);
    if (all) return base;
  }
  throw new Error(`no ${count} consecutive free ports`);
}

/** A fresh temporary directory for one cluster. */
export function tempDir(prefix = 'sqlfleet-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Starts a master and `slaves` slaves, then waits until the master lists every slave `up`. */
export async function startCluster(opts: ClusterOptions): Promise<Cluster> {
  const ownDir = opts.dataDir === undefined;
  const dataDir = opts.dataDir ?? tempDir();
  const dispatcher = opts.ca === undefined ? undefined : new Agent({ connect: { ca: opts.ca } });
  const common = {
    numSlaves: opts.slaves,
    dataDir,
    extraArgs: opts.extraArgs ?? [],
    env: opts.env,
    headers: opts.headers,
    dispatcher,
    readyTimeoutMs: opts.readyTimeoutMs,
    requestTimeoutMs: opts.requestTimeoutMs,
  };
  const started: TestNode[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(started.map((n) => n.kill('SIGTERM')));
    await dispatcher?.close();
    if (ownDir) rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    const master = new TestNode({ ...common, role: 'master', id: 0 });
    started.push(master);
    await master.launch();
    const slaves: TestNode[] = [];
    for (let id = 1; id <= opts.slaves; id++) {
      const slave = new TestNode({ ...common, role: 'slave', id, masterUrl: master.url });
      slaves.push(slave);
      started.push(slave);
    }
    await Promise.all(slaves.map((s) => s.launch()));
    const nodes = [master, ...slaves];
    await waitForUp(master, slaves.map((s) => s.id), opts.upTimeoutMs).catch((e: unknown) => {
      printLogs(nodes);
      throw e;
    });
    const restart = async (node: TestNode): Promise<void> => {
      await node.kill('SIGTERM');
      const port = Number(new URL(node.url).port);
      node.spec = { ...node.spec, port };
      await node.launch();
    };
    return { master, slaves, nodes, dataDir, ...(dispatcher ? { dispatcher } : {}), stop, restart };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** An HTTP answer: status, parsed JSON body (undefined if not JSON), raw text, elapsed ms. */
export interface Reply {
  readonly status: number;
  readonly body: any;
  readonly text: string;
  readonly ms: number;
  readonly headers: Headers;
}

/** Options for `post`/`get`. */
export interface RequestOptions {
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
  /** undici dispatcher, e.g. an Agent trusting a test CA (the request then goes through undici's fetch). */
  readonly dispatcher?: Dispatcher;
}

/** One request for `request`: a body is sent verbatim. */
export interface RawRequest extends RequestOptions {
  readonly method: string;
  readonly body?: string | Uint8Array | ReadableStream<Uint8Array>;
  /** Content-Type of a body; default application/json, null for none. */
  readonly contentType?: string | null;
  /** Use undici's fetch even without a dispatcher. */
  readonly undici?: boolean;
}

/** Sends one request and reads the whole answer. */
export async function request(url: string, req: RawRequest): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (req.body !== undefined && req.contentType !== null) headers['content-type'] = req.contentType ?? 'application/json';
  Object.assign(headers, req.headers);
  const init = {
    method: req.method,
    body: req.body,
    ...(req.body instanceof ReadableStream ? { duplex: 'half' as const } : {}),
    headers,
    signal: AbortSignal.timeout(req.timeoutMs ?? 15_000),
  };
  const t0 = performance.now();
  const res =
    req.undici || req.dispatcher
      ? await undiciFetch(url, { ...init, ...(req.dispatcher ? { dispatcher: req.dispatcher } : {}) } as Parameters<typeof undiciFetch>[1])
      : await fetch(url, init as RequestInit);
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, ms: performance.now() - t0, headers: res.headers as unknown as Headers };
}

/** POSTs `body` (an object is JSON-encoded; a string is sent verbatim) to `url`. */
export function post(url: string, body: unknown, opts: RequestOptions = {}): Promise<Reply> {
  return request(url, { ...opts, method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
}

/** GETs `url`. */
export function get(url: string, opts: RequestOptions = {}): Promise<Reply> {
  return request(url, { ...opts, method: 'GET' });
}

/** `POST /` with `{command:"exec", query, params, ...extra}`, with the node's `access`. */
export function exec(node: TestNode, query: string, params?: unknown, extra: Record<string, unknown> = {}): Promise<Reply> {
  return post(node.url, { command: 'exec', query, ...(params !== undefined ? { params } : {}), ...extra }, node.access);
}

/** `POST /` with `{command:"query", query, params, ...extra}`, with the node's `access`. */
export function query(node: TestNode, sql: string, params?: unknown, extra: Record<string, unknown> = {}): Promise<Reply> {
  return post(node.url, { command: 'query', query: sql, ...(params !== undefined ? { params } : {}), ...extra }, node.access);
}

/** Asserts a 200 `{ok:true}` answer and returns its body. */
export function ok(reply: Reply, what = 'request'): any {
  assert.equal(reply.status, 200, `${what}: expected 200, got ${reply.status}: ${reply.text}`);
  assert.equal(reply.body?.ok, true, `${what}: expected ok:true, got ${reply.text}`);
  return reply.body;
}

/** Rows of the first result of a successful answer. */
export function rows(reply: Reply, what = 'query'): unknown[][] {
  const body = ok(reply, what);
  assert.ok(Array.isArray(body.results), `${what}: no results array: ${reply.text}`);
  const first = body.results[0];
  assert.ok(first && Array.isArray(first.rows), `${what}: first result has no rows: ${reply.text}`);
  return first.rows as unknown[][];
}

/** Asserts the error contract: status, `{ok:false, error:{code, message}}`, no stack trace. */
export function assertError(reply: Reply, status: number, code: string, what = 'request'): void {
  assert.equal(reply.status, status, `${what}: expected ${status} ${code}, got ${reply.status}: ${reply.text}`);
  assert.ok(reply.body && typeof reply.body === 'object', `${what}: error body is not JSON: ${reply.text}`);
  assert.equal(reply.body.ok, false, `${what}: ok should be false: ${reply.text}`);
  assert.equal(reply.body.error?.code, code, `${what}: wrong code: ${reply.text}`);
  assert.equal(typeof reply.body.error.message, 'string', `${what}: no message: ${reply.text}`);
  assert.ok(reply.body.error.message.length > 0, `${what}: empty message`);
  assert.ok(!reply.text.includes('    at '), `${what}: stack trace in body: ${reply.text}`);
  assert.ok(!reply.text.includes(REPO_ROOT), `${what}: source path in body: ${reply.text}`);
}

/** Options of `waitFor`. */
export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  readonly message?: string;
}

/** Polls `fn` until it returns a truthy value (thrown errors count as "not yet"); throws at the deadline. */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions = {}): Promise<T> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
      last = value;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${opts.message ?? 'condition'}; last: ${detail}`);
    }
    await delay(opts.intervalMs ?? 50);
  }
}

/** GET /status of `node` (with its `access`). */
export async function status(node: TestNode): Promise<any> {
  const reply = await get(`${node.url}/status`, { ...node.access, timeoutMs: node.spec.requestTimeoutMs ?? 5_000 });
  assert.equal(reply.status, 200, `${node.label()} /status: ${reply.status} ${reply.text}`);
  return reply.body;
}

/** Waits until the master's /status lists each of `ids` with state `up` and a URL. */
export async function waitForUp(master: TestNode, ids: readonly number[], timeoutMs = 15_000): Promise<void> {
  await waitFor(
    async () => {
      const s = await status(master);
      const nodes: Array<{ id: number; state: string; url?: string }> = s.nodes ?? [];
      return ids.every((id) => nodes.some((n) => n.id === id && n.state === 'up' && typeof n.url === 'string' && n.url));
    },
    { timeoutMs, intervalMs: 100, message: `slaves ${ids.join(',')} up in master /status` },
  );
}

/** Waits until every node's own /status reports applied_index >= `index`. */
export async function waitForIndex(nodes: readonly TestNode[], index: number, timeoutMs = 10_000): Promise<void> {
  await waitFor(
    async () => {
      const all = await Promise.all(nodes.map(async (n) => (await status(n)).applied_index as number));
      if (!all.every((i) => i >= index)) throw new Error(`applied: ${all.join(', ')}`);
      return true;
    },
    { timeoutMs, message: `index ${index} on nodes ${nodes.map((n) => n.id).join(',')}` },
  );
}

/** GET /checksum of each node (with its `access`), in order. */
export async function checksums(nodes: readonly TestNode[]): Promise<any[]> {
  return Promise.all(
    nodes.map(async (n) => {
      const reply = await get(`${n.url}/checksum`, { ...n.access, timeoutMs: n.spec.requestTimeoutMs ?? 15_000 });
      assert.equal(reply.status, 200, `${n.label()} /checksum: ${reply.status} ${reply.text}`);
      return reply.body;
    }),
  );
}

/** Asserts every node's /checksum JSON equals the first node's; returns it. */
export async function assertSameChecksums(nodes: readonly TestNode[]): Promise<any> {
  const all = await checksums(nodes);
  for (let i = 1; i < all.length; i++) {
    assert.deepEqual(all[i], all[0], `checksum of ${nodes[i]!.label()} differs from ${nodes[0]!.label()}`);
  }
  return all[0];
}

/** Sum of metric `name` in a /metrics text over the series carrying every given label. */
export function metricSum(metricsText: string, name: string, labels: Record<string, string> = {}): number {
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  return metricsText
    .split('\n')
    .filter((l) => l.startsWith(`${name}{`) && want.every((w) => l.includes(w)))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

/** Sum of `sqlfleet_http_requests_total` in a /metrics text over the series carrying every given label. */
export function requestCount(metricsText: string, labels: Record<string, string>): number {
  return metricSum(metricsText, 'sqlfleet_http_requests_total', labels);
}

/** Prints the tail of every node's log to stderr (used when a test fails). */
export function printLogs(nodes: readonly TestNode[], lines = 150): void {
  for (const n of nodes) {
    process.stderr.write(`\n----- ${n.label()} ${n.url} (last ${lines} lines) -----\n${n.tail(lines)}\n`);
  }
}

/** Options of `clusterTest`: node:test's `timeout` and `skip`, and how many log lines to print. */
export interface ClusterTestOptions {
  readonly timeout?: number;
  readonly skip?: boolean | string;
  readonly logLines?: number;
}

/**
 * `test()` that prints the cluster's logs (and `extraReport()`) when the test fails.
 * `getCluster` is read at run time, so it can name a cluster started in `before()`.
 */
export function clusterTest(getCluster: () => Cluster | undefined, extraReport?: () => string, options: ClusterTestOptions = {}) {
  const { logLines, ...testOptions } = options;
  return (name: string, fn: () => Promise<void>): void => {
    test(name, testOptions, async () => {
      try {
        await fn();
      } catch (e) {
        const c = getCluster();
        if (c) printLogs(c.nodes, logLines);
        const extra = extraReport?.();
        if (extra) process.stderr.write(`\n${extra}\n`);
        throw e;
      }
    });
  };
}

/** What `useCluster` gives a test file. */
export interface ClusterSuite {
  /** The cluster started in before(); fails if it is not running. */
  readonly cluster: () => Cluster;
  /** The cluster, or undefined before it started (or if it failed to). */
  readonly current: () => Cluster | undefined;
  /** `clusterTest` for this cluster. */
  readonly it: (name: string, fn: () => Promise<void>) => void;
}

/**
 * The usual test-file setup: `before()` starts a cluster with `opts` (a function is called
 * then) and runs `setup` on it; `after()` stops it.
 */
export function useCluster(
  opts: ClusterOptions | (() => ClusterOptions | Promise<ClusterOptions>),
  setup?: (c: Cluster) => Promise<void>,
): ClusterSuite {
  let c: Cluster | undefined;
  before(async () => {
    c = await startCluster(typeof opts === 'function' ? await opts() : opts);
    await setup?.(c);
  });
  after(async () => {
    await c?.stop();
  });
  const current = (): Cluster | undefined => c;
  const cluster = (): Cluster => {
    assert.ok(c, 'cluster not started');
    return c;
  };
  return { cluster, current, it: clusterTest(current) };
}
