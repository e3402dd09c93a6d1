// Helpers for fault and consistency tests: a concurrent write load whose every outcome is
// recorded, hard kills and restarts on the same port, runtime-joined slaves, convergence
// waits and the audit that says which acknowledged writes were lost.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { post, query, rows, status, TestNode, waitFor, type Reply } from './cluster.js';

/** Write acknowledgement level of DESIGN §2. */
export type AckLevel = 'all' | 'one' | 'master';

/** What happened to one write the load sent. */
export interface WriteRecord {
  /** The unique id the write inserts. */
  readonly id: string;
  readonly client: number;
  /** Node id the request was sent to. */
  readonly via: number;
  readonly ack: AckLevel;
  /** Date.now() when the request was sent, and how long it took. */
  readonly startedAt: number;
  ms: number;
  /** HTTP status; undefined when no answer came (connection refused/reset, client timeout). */
  status?: number;
  /** error.code and error.outcome of an error answer. */
  code?: string;
  outcome?: string;
  /** Network error code when there was no answer (ECONNREFUSED, ECONNRESET, TimeoutError, …). */
  netErr?: string;
  /** Log index of a 200 answer. */
  index?: number;
}

/** One writer of a load: which node it talks to and with which ack level. */
export interface LoadClient {
  readonly node: TestNode;
  readonly ack: AckLevel;
}

/** Options of `WriteLoad`. */
export interface WriteLoadOptions {
  /** Table with columns (id TEXT, client INTEGER, tag TEXT). */
  readonly table: string;
  /** Prefix of every id of this load (unique per load). */
  readonly tag: string;
  readonly clients: readonly LoadClient[];
  /** Client-side deadline of one request; reaching it counts as a hang. */
  readonly timeoutMs: number;
  /** Pause between two writes of one client (leave CPU for the nodes). */
  readonly pauseMs?: number;
  /** Bounds: the load stops by itself after this long (default 180 s) or this many writes (default 200 000). */
  readonly maxMs?: number;
  readonly maxWrites?: number;
}

/** True when a record certainly got a 200 answer. */
export const acknowledged = (r: WriteRecord): boolean => r.status === 200;

/**
 * True when the write certainly never reached the master: refused connection to the node
 * we sent it to, or a slave's 503 MASTER_UNAVAILABLE with outcome "not_applied".
 */
export const certainlyNotApplied = (r: WriteRecord): boolean =>
  r.netErr === 'ECONNREFUSED' || (r.code === 'MASTER_UNAVAILABLE' && r.outcome === 'not_applied');

/** Concurrent writers, each sending one INSERT of a unique id at a time, recording every outcome. */
export class WriteLoad {
  readonly records: WriteRecord[] = [];
  private running = false;
  private loops: Promise<void>[] = [];
  private seq = 0;

  private endAt = 0;
  /** Every load started and not stopped, so a failed test's cleanup can stop them all. */
  private static readonly live = new Set<WriteLoad>();

  constructor(private readonly opts: WriteLoadOptions) {}

  /** Stops every running load (a test's `finally`: a failed assertion must not leave writers running). */
  static async stopAll(): Promise<void> {
    await Promise.all([...WriteLoad.live].map((l) => l.stop()));
  }

  /** Starts every client. */
  start(): void {
    assert.ok(!this.running, 'load already running');
    this.running = true;
    this.endAt = Date.now() + (this.opts.maxMs ?? 180_000);
    WriteLoad.live.add(this);
    this.loops = this.opts.clients.map((c, i) => this.loop(i, c));
  }

  /** Stops every client and waits for their last request to finish. */
  async stop(): Promise<void> {
    this.running = false;
    WriteLoad.live.delete(this);
    await Promise.all(this.loops);
  }

  /** Waits until at least `n` more answers (of any kind) were recorded than when called. */
  async waitForMore(n: number, timeoutMs = 15_000): Promise<void> {
    const target = this.records.filter((r) => r.ms >= 0).length + n;
    await waitFor(() => this.records.filter((r) => r.ms >= 0).length >= target, { timeoutMs, message: `${n} more load answers` });
  }

  /** Waits until `n` more writes were acknowledged by clients talking to `via` (node id). */
  async waitForAcked(via: number, n: number, timeoutMs = 15_000): Promise<void> {
    const count = () => this.records.filter((r) => r.via === via && acknowledged(r)).length;
    const target = count() + n;
    await waitFor(() => count() >= target, { timeoutMs, message: `${n} acknowledged writes via node ${via}` });
  }

  private async loop(client: number, c: LoadClient): Promise<void> {
    const { table, tag, timeoutMs } = this.opts;
    while (this.running && Date.now() < this.endAt && this.seq < (this.opts.maxWrites ?? 200_000)) {
      const id = `${tag}-c${client}-${this.seq++}`;
      const rec: WriteRecord = { id, client, via: c.node.id, ack: c.ack, startedAt: Date.now(), ms: -1 };
      this.records.push(rec);
      const t0 = performance.now();
      try {
        const reply = await post(
          c.node.url,
          { command: 'exec', query: `INSERT INTO ${table}(id, client, tag) VALUES (?, ?, ?)`, params: [id, client, tag], ack: c.ack },
          { timeoutMs },
        );
        rec.status = reply.status;
        if (reply.status === 200) rec.index = reply.body?.index;
        else {
          rec.code = reply.body?.error?.code ?? `HTTP_${reply.status}`;
          rec.outcome = reply.body?.error?.outcome;
        }
      } catch (e) {
        rec.netErr = networkCode(e);
      }
      rec.ms = performance.now() - t0;
      // A node that is down refuses at once: do not spin on it.
      await delay(rec.status === 200 ? (this.opts.pauseMs ?? 0) : 25);
    }
  }
}

/** The code of a fetch failure: the cause's errno code, or the error name (TimeoutError). */
export function networkCode(e: unknown): string {
  const err = e as { cause?: { code?: string; cause?: { code?: string } }; name?: string; code?: string };
  return err?.cause?.code ?? err?.cause?.cause?.code ?? err?.code ?? err?.name ?? String(e);
}

/** SIGKILLs `node` (by PID, through the harness) and waits for it to exit. */
export async function hardKill(node: TestNode): Promise<void> {
  assert.ok(node.running, `${node.label()} is not running`);
  await node.kill('SIGKILL');
}

/** Starts a stopped node again with the same data dir on the same port as before. */
export async function relaunch(node: TestNode): Promise<void> {
  assert.ok(!node.running, `${node.label()} is still running`);
  const port = Number(new URL(node.url).port);
  node.spec = { ...node.spec, port };
  await node.launch();
}

/** The cluster token the master created in `dataDir`. */
export function clusterToken(dataDir: string): string {
  return readFileSync(join(dataDir, 'cluster.token'), 'utf8').trim();
}

/** `{authorization: Bearer <token>}` for internal endpoints. */
export function authHeader(dataDir: string): Record<string, string> {
  return { authorization: `Bearer ${clusterToken(dataDir)}` };
}

/** A slave that registers itself at runtime with `--join <master>` (not started yet). */
export function joiningSlave(master: TestNode, id: number, dataDir: string, extraArgs: readonly string[] = []): TestNode {
  return new TestNode({ role: 'slave', id, numSlaves: 0, dataDir, masterUrl: master.url, extraArgs: [...extraArgs, '--join', master.url] });
}

/** The master's /status entry of slave `id`, or undefined. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function memberState(master: TestNode, id: number): Promise<any> {
  const s = await status(master);
  return (s.nodes ?? []).find((n: { id: number }) => n.id === id);
}

/** Waits until the master's /status shows slave `id` in `state`; returns that entry. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function waitForState(master: TestNode, id: number, state: string, timeoutMs = 15_000): Promise<any> {
  return waitFor(
    async () => {
      const m = await memberState(master, id);
      if (m?.state !== state) throw new Error(`node ${id} is ${JSON.stringify(m)}`);
      return m;
    },
    { timeoutMs, intervalMs: 100, message: `node ${id} ${state} in master /status` },
  );
}

/**
 * Waits until the cluster converged: the master lists every slave of `nodes` `up` at its own
 * applied index, and every node's own /status reports that index. Returns the index.
 * Only meaningful once writes stopped.
 */
export async function waitConverged(master: TestNode, nodes: readonly TestNode[], timeoutMs = 30_000): Promise<number> {
  const slaves = nodes.filter((n) => n !== master);
  return waitFor(
    async () => {
      const ms = await status(master);
      const index = ms.applied_index as number;
      for (const s of slaves) {
        const m = (ms.nodes ?? []).find((n: { id: number }) => n.id === s.id);
        if (m?.state !== 'up' || m.applied_index !== index) throw new Error(`master at ${index} sees ${JSON.stringify(m)}`);
      }
      const own = await Promise.all(slaves.map(async (s) => (await status(s)).applied_index as number));
      if (!own.every((i) => i === index)) throw new Error(`master at ${index}, slaves ${own.join(', ')}`);
      return index;
    },
    { timeoutMs, intervalMs: 100, message: `convergence of nodes ${nodes.map((n) => n.id).join(',')}` },
  );
}

/** `id -> number of rows with that id` in `table` on `node` (through the public API). */
export async function idCounts(node: TestNode, table: string): Promise<Map<string, number>> {
  const r = rows(await query(node, `SELECT id, count(*) FROM ${table} GROUP BY id`, undefined), `${node.label()} ids of ${table}`);
  return new Map(r.map(([id, n]) => [String(id), Number(n)]));
}

/** What `auditWrites` found. */
export interface Audit {
  sent: number;
  acknowledged: number;
  failed: number;
  /** Failed or unanswered writes that are on every node (committed though the client saw an error). */
  failedButCommitted: number;
  /** Acknowledged writes missing on some node. */
  lost: string[];
  /** Writes on some nodes but not on all. */
  partial: string[];
  /** Writes that certainly never reached the master but are on some node. */
  phantom: string[];
  /** Ids present more than once on a node (an entry applied twice). */
  duplicates: string[];
  /** Rows of the load's tag on some node that no record explains. */
  unknown: string[];
  /** Acknowledged writes that share a log index with another acknowledged write. */
  sharedIndex: string[];
}

/**
 * Compares what the clients were told with what every node holds (`present[i]` is the
 * `idCounts` of node i, for the ids of `records`' loads).
 */
export function auditWrites(records: readonly WriteRecord[], present: readonly Map<string, number>[]): Audit {
  const a: Audit = {
    sent: records.length,
    acknowledged: 0,
    failed: 0,
    failedButCommitted: 0,
    lost: [],
    partial: [],
    phantom: [],
    duplicates: [],
    unknown: [],
    sharedIndex: [],
  };
  const known = new Set(records.map((r) => r.id));
  const byIndex = new Map<number, string>();
  for (const r of records) {
    const on = present.filter((p) => (p.get(r.id) ?? 0) > 0).length;
    if (acknowledged(r)) {
      a.acknowledged++;
      if (on < present.length) a.lost.push(r.id);
      if (typeof r.index === 'number') {
        const other = byIndex.get(r.index);
        if (other !== undefined) a.sharedIndex.push(`${other} and ${r.id} at ${r.index}`);
        byIndex.set(r.index, r.id);
      }
    } else {
      a.failed++;
      if (on === present.length) a.failedButCommitted++;
      if (on > 0 && certainlyNotApplied(r)) a.phantom.push(`${r.id} (${outcomeOf(r)})`);
    }
    if (on > 0 && on < present.length) a.partial.push(`${r.id} (${outcomeOf(r)}) on #${present.flatMap((p, i) => ((p.get(r.id) ?? 0) > 0 ? [i] : [])).join(',#')}`);
  }
  present.forEach((p, i) => {
    for (const [id, n] of p) {
      if (n > 1) a.duplicates.push(`${id} x${n} on node #${i}`);
      if (!known.has(id)) a.unknown.push(`${id} on node #${i}`);
    }
  });
  return a;
}

/** Fails with a readable report when the audit found anything wrong. */
export function assertAuditClean(a: Audit, what: string): void {
  const problems = (['lost', 'partial', 'phantom', 'duplicates', 'unknown', 'sharedIndex'] as const)
    .filter((k) => a[k].length > 0)
    .map((k) => `${k} (${a[k].length}): ${a[k].slice(0, 10).join(', ')}`);
  assert.equal(problems.length, 0, `${what}: ${problems.join('; ')}`);
}

/** One line per outcome kind, e.g. "200 x812, 503 MASTER_UNAVAILABLE/not_applied x40, ECONNREFUSED x31". */
export function outcomeSummary(records: readonly WriteRecord[]): string {
  const counts = new Map<string, number>();
  for (const r of records) counts.set(outcomeOf(r), (counts.get(outcomeOf(r)) ?? 0) + 1);
  return [...counts].map(([k, n]) => `${k} x${n}`).join(', ');
}

/** Short description of a record's outcome. */
export function outcomeOf(r: WriteRecord): string {
  if (r.status === 200) return '200';
  if (r.status !== undefined) return `${r.status} ${r.code}${r.outcome ? `/${r.outcome}` : ''}`;
  return r.netErr ?? 'pending';
}

/** Runs `sql` on a node's SQLite file with a separate read-only connection (tests only). */
export function readFile<T>(dbPath: string, sql: string): T {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    db.pragma('busy_timeout = 2000');
    return db.prepare(sql).pluck().get() as T;
  } finally {
    db.close();
  }
}

/** Bytes a process has read through read()/recv() so far (Linux /proc/<pid>/io `rchar`). */
export function bytesRead(pid: number): number {
  const m = /rchar:\s*(\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'));
  assert.ok(m, `no rchar in /proc/${pid}/io`);
  return Number(m[1]);
}

/** The JSON log lines of a node whose `msg` equals `msg`. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function logEvents(node: TestNode, msg: string): any[] {
  const out: unknown[] = [];
  for (const line of node.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as { msg?: string };
      if (v.msg === msg) out.push(v);
    } catch {
      // not a log object
    }
  }
  return out;
}

/** Re-exported so tests import reply types from one place. */
export type { Reply };

/** Sends `DELETE url` and returns the answer like the harness's `get`/`post`. */
export async function del(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  const t0 = performance.now();
  const res = await fetch(url, { method: 'DELETE', headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  return { status: res.status, body, text, ms: performance.now() - t0, headers: res.headers };
}

/** Freezes a node's process (SIGSTOP): it keeps its sockets but answers nothing. */
export function freeze(node: TestNode): void {
  assert.ok(node.running && node.proc.pid !== undefined, `${node.label()} is not running`);
  process.kill(node.proc.pid, 'SIGSTOP');
}

/** Resumes a frozen node (SIGCONT); harmless when it was not frozen or has exited. */
export function thaw(node: TestNode): void {
  if (node.running && node.proc.pid !== undefined) process.kill(node.proc.pid, 'SIGCONT');
}
