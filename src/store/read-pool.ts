// A small pool of read workers fed from one queue: each worker runs one job at a time,
// so a read never waits behind a slow one while another worker is free. A job that
// overruns --query-timeout is answered 504 and its worker replaced, so the node keeps
// serving. better-sqlite3 cannot interrupt SQLite: a worker stuck inside a single native
// call (an aggregate over an endless CTE) is abandoned and ends when the query does.
//
// One worker starts with the pool; the others (up to --read-workers) when a job finds every
// worker busy, and an extra worker idle for RETIRE_MS ends: each worker is an isolate, a
// connection and a thread (~10 MB resident, bench/mem-idle.ts), which an idle node or one
// serving a read at a time does not need.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { DRIVER_PATH } from './driver.js';
import { bundleReadWorker } from './read-worker-bundle.js';
import { SqlfleetError, type ErrorCode } from '../errors.js';
import type { Checksum } from './checksum.js';
import type { StatementResult, Stmt } from './types.js';

/** A job for a read worker. */
export type ReadJob =
  | {
      id: number;
      kind: 'read';
      stmts: readonly Stmt[];
      maxRows: number;
      timeoutMs: number;
      /** The schema cookie the writer last committed: the worker re-reads its schema when it moved. */
      schema?: number;
      /** Also judge whether the statement is a point read (point-read.ts). */
      judge?: boolean;
    }
  | { id: number; kind: 'checksum' };

/** A worker's answer to a read: the results, and the verdict when asked to judge. */
export interface ReadAnswer {
  results: StatementResult[];
  point?: boolean;
}

/** A worker's answer. */
export type ReadReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: ErrorCode; message: string; details: Record<string, unknown> } };

interface Job {
  msg: ReadJob;
  /** null: no limit (checksums). */
  timeoutMs: number | null;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  job: Job | null;
  timer: NodeJS.Timeout | null;
  /** When the worker last finished a job (or became ready). */
  idleSince: number;
}

/** An extra worker (beyond the first) that ran no job for this long ends. */
export const RETIRE_MS = 60_000;

/** Options of the pool. */
export interface ReadPoolOptions {
  path: string;
  size: number;
  timeoutMs: number;
  maxRows: number;
  onAbandon?: (abandoned: number) => void;
  /** How long an extra worker may stay idle before it ends; default RETIRE_MS. */
  retireMs?: number;
}

/** Runs reads and checksums off the main thread. */
export class ReadPool {
  private slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private readonly firstReady: Promise<void>;
  private markFirstReady: () => void = () => {};
  private failFirstReady: (e: Error) => void = () => {};
  /** Set when a worker found the process unfit to read (two SQLite libraries): no read is answered, no worker respawned. */
  private fatal: SqlfleetError | null = null;
  /** Workers given up on because a query overran and could not be stopped. */
  abandoned = 0;
  /** Abandoned workers whose thread has not ended yet (their query still runs in SQLite). */
  stuck = 0;
  private readonly retireTimer: NodeJS.Timeout;

  constructor(private readonly o: ReadPoolOptions) {
    this.firstReady = new Promise((resolve, reject) => {
      this.markFirstReady = resolve;
      this.failFirstReady = reject;
    });
    this.firstReady.catch(() => {}); // also reported through every job; ready() callers see it
    if (o.size > 0) this.slots.push(this.spawn());
    const retireMs = o.retireMs ?? RETIRE_MS;
    this.retireTimer = setInterval(() => this.retire(retireMs), Math.max(10, Math.min(retireMs, 10_000)));
    this.retireTimer.unref();
  }

  /** Workers running now (started, not yet ended or given up on). */
  get workers(): number {
    return this.slots.length;
  }

  /** Resolves once a worker can take jobs. */
  ready(): Promise<void> {
    return this.firstReady;
  }

  /**
   * Runs read statements (in one read transaction when several). `schema`: the writer's
   * schema cookie at submission, so a worker never answers from a schema older than that.
   * `judge`: the worker also says whether the single statement is a point read.
   */
  read(stmts: readonly Stmt[], schema?: number, judge = false): Promise<ReadAnswer> {
    const t = this.o.timeoutMs;
    return this.submit({ id: this.nextId++, kind: 'read', stmts, maxRows: this.o.maxRows, timeoutMs: t, schema, judge }, t) as Promise<ReadAnswer>;
  }

  /** Computes the checksum on a worker. */
  checksum(): Promise<Checksum> {
    return this.submit({ id: this.nextId++, kind: 'checksum' }, null) as Promise<Checksum>;
  }

  /** Terminates every worker and fails queued jobs. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.retireTimer);
    for (const j of this.queue.splice(0)) j.reject(new SqlfleetError('UNAVAILABLE', 'node is stopping'));
    for (const s of this.slots) if (s.timer) clearTimeout(s.timer);
    // A worker stuck inside SQLite never finishes terminating: do not wait for it forever.
    const all = Promise.all(this.slots.map((s) => s.worker.terminate()));
    await Promise.race([all, new Promise((r) => setTimeout(r, 1000).unref())]);
    this.slots = [];
  }

  private submit(msg: ReadJob, timeoutMs: number | null): Promise<unknown> {
    if (this.closed) return Promise.reject(new SqlfleetError('UNAVAILABLE', 'node is stopping'));
    if (this.fatal) return Promise.reject(this.fatal);
    return new Promise((resolve, reject) => {
      this.queue.push({ msg, timeoutMs, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    for (const slot of this.slots) {
      if (this.queue.length === 0) return;
      if (!slot.ready || slot.job) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      slot.worker.postMessage(job.msg);
      // The worker stops row-producing queries itself at the deadline; this timer catches
      // the ones stuck in one native call (with a grace period for the worker's answer).
      if (job.timeoutMs !== null) slot.timer = setTimeout(() => this.overrun(slot), job.timeoutMs + 250);
    }
    // Jobs wait and every worker is busy: one more worker, unless one is starting already
    // (it takes the next job when ready) or the pool is at its size.
    if (this.queue.length > 0 && !this.closed && !this.fatal && this.slots.length < this.o.size && this.slots.every((s) => s.ready)) {
      this.slots.push(this.spawn());
    }
  }

  /** Ends extra workers that ran no job for `retireMs`; the first worker always stays. */
  private retire(retireMs: number): void {
    const now = Date.now();
    for (let i = this.slots.length - 1; i > 0; i--) {
      const s = this.slots[i];
      if (!s.ready || s.job || now - s.idleSince < retireMs) continue;
      this.slots.splice(i, 1);
      void s.worker.terminate();
    }
  }

  private finish(slot: Slot, reply: ReadReply): void {
    const job = slot.job;
    if (!job || job.msg.id !== reply.id) return;
    if (slot.timer) clearTimeout(slot.timer);
    slot.job = null;
    slot.timer = null;
    slot.idleSince = Date.now();
    if (reply.ok) job.resolve(reply.value);
    else job.reject(new SqlfleetError(reply.error.code, reply.error.message, reply.error.details));
    this.dispatch();
  }

  private overrun(slot: Slot): void {
    const idx = this.slots.indexOf(slot);
    if (idx < 0 || !slot.job) return;
    slot.job.reject(new SqlfleetError('TIMEOUT', `query ran past --query-timeout (${this.o.timeoutMs} ms) and was stopped`));
    slot.job = null;
    this.abandoned++;
    this.stuck++;
    this.o.onAbandon?.(this.abandoned);
    slot.worker.once('exit', () => this.stuck--);
    void slot.worker.terminate();
    this.slots[idx] = this.spawn();
  }

  /** A worker found the process unfit to read: every queued and future job fails with that error. */
  private failAll(e: SqlfleetError): void {
    if (this.fatal) return;
    this.fatal = e;
    this.failFirstReady(e);
    for (const j of this.queue.splice(0)) j.reject(e);
    for (const s of this.slots) if (s.job) s.job.reject(e);
  }

  private spawn(): Slot {
    const script = workerScript();
    const worker = script
      ? new Worker(script, { eval: true, workerData: { path: this.o.path, driver: DRIVER_PATH } })
      : new Worker(new URL('./read-worker-boot.mjs', import.meta.url), {
          workerData: { path: this.o.path, driver: DRIVER_PATH, entry: new URL('./read-worker.ts', import.meta.url).href },
        });
    worker.unref();
    const slot: Slot = { worker, ready: false, job: null, timer: null, idleSince: Date.now() };
    worker.on('message', (m: ReadReply) => {
      if (m.id === 0 && !m.ok) {
        this.failAll(new SqlfleetError(m.error.code, m.error.message, m.error.details));
        return;
      }
      if (m.id === 0) {
        slot.ready = true;
        slot.idleSince = Date.now();
        this.markFirstReady();
        this.dispatch();
        return;
      }
      this.finish(slot, m);
    });
    worker.on('error', (e) => {
      const idx = this.slots.indexOf(slot);
      if (idx < 0) return; // already replaced
      if (slot.timer) clearTimeout(slot.timer);
      slot.job?.reject(new SqlfleetError('INTERNAL', `read worker failed: ${e.message}`));
      slot.job = null;
      slot.ready = false;
      // Respawn after a pause, so a worker that cannot start does not spin.
      setTimeout(() => {
        if (this.closed || this.fatal || this.slots[idx] !== slot) return;
        this.slots[idx] = this.spawn();
      }, 200).unref();
    });
    return slot;
  }
}

let bundled: string | null | undefined;

/**
 * The read worker bundled to one CommonJS script, once per process (prebuilt beside the
 * node's bundle by bin/sqlfleet.js). A worker that loads it needs no TypeScript loader:
 * booting tsx in every worker cost ~50 MB of RSS and ~0.4 s each. Null when bundling
 * fails; the pool then boots workers through tsx.
 */
function workerScript(): string | null {
  if (bundled !== undefined) return bundled;
  try {
    // Running from the bundle bin/sqlfleet.js builds: the worker was bundled beside it.
    bundled = fs.readFileSync(new URL('./read-worker.cjs', import.meta.url), 'utf8');
    return bundled;
  } catch {
    // running from the TypeScript sources: bundle it now
  }
  try {
    bundled = bundleReadWorker();
  } catch {
    bundled = null;
  }
  return bundled;
}
