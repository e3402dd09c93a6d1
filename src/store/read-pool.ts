// A small pool of read workers. Reads are queued to the least busy worker; one that
// overruns --query-timeout is answered 504 and its worker replaced, so the node keeps
// serving. better-sqlite3 cannot interrupt SQLite: a worker stuck inside a single native
// call (an aggregate over an endless CTE) is abandoned and ends when the query does.
import { Worker } from 'node:worker_threads';
import { SqlfleetError, type ErrorCode } from '../errors.js';
import type { Checksum } from './checksum.js';
import type { StatementResult, Stmt } from './types.js';

/** A job for a read worker. */
export type ReadJob =
  | { id: number; kind: 'read'; stmts: readonly Stmt[]; maxRows: number; timeoutMs: number }
  | { id: number; kind: 'checksum' };

/** A worker's answer. */
export type ReadReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: ErrorCode; message: string; details: Record<string, unknown> } };

interface Job {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | null;
}

interface Slot {
  worker: Worker;
  busy: Map<number, Job>;
  ready: Promise<void>;
  isReady: boolean;
}

/** Options of the pool. */
export interface ReadPoolOptions {
  path: string;
  size: number;
  timeoutMs: number;
  maxRows: number;
  onAbandon?: (abandoned: number) => void;
}

/** Runs reads and checksums off the main thread. */
export class ReadPool {
  private slots: Slot[] = [];
  private nextId = 1;
  private closed = false;
  /** Workers given up on because a query overran and could not be stopped. */
  abandoned = 0;

  constructor(private readonly o: ReadPoolOptions) {
    for (let i = 0; i < o.size; i++) this.slots.push(this.spawn());
  }

  /** Waits until every worker has opened its connection. */
  async ready(): Promise<void> {
    await Promise.all(this.slots.map((s) => s.ready));
  }

  /** Runs read statements (in one read transaction when several). */
  read(stmts: readonly Stmt[]): Promise<StatementResult[]> {
    return this.submit((id) => ({ id, kind: 'read', stmts, maxRows: this.o.maxRows, timeoutMs: this.o.timeoutMs }), this.o.timeoutMs) as Promise<
      StatementResult[]
    >;
  }

  /** Computes the checksum on a worker. */
  checksum(): Promise<Checksum> {
    return this.submit((id) => ({ id, kind: 'checksum' }), null) as Promise<Checksum>;
  }

  /** Terminates every worker. */
  async close(): Promise<void> {
    this.closed = true;
    // A worker stuck inside SQLite never finishes terminating: do not wait for it forever.
    const all = Promise.all(this.slots.map((s) => s.worker.terminate()));
    await Promise.race([all, new Promise((r) => setTimeout(r, 1000).unref())]);
    this.slots = [];
  }

  private submit(make: (id: number) => ReadJob, timeoutMs: number | null): Promise<unknown> {
    if (this.closed) return Promise.reject(new SqlfleetError('UNAVAILABLE', 'node is stopping'));
    const ready = this.slots.filter((s) => s.isReady);
    const slot = (ready.length ? ready : this.slots).reduce((a, b) => (b.busy.size < a.busy.size ? b : a));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const job: Job = { resolve, reject, timer: null };
      slot.busy.set(id, job);
      slot.worker.postMessage(make(id));
      // The worker stops row-producing queries itself at the deadline; this timer catches
      // the ones stuck in one native call. It counts from when the worker can run the job,
      // plus the time of the jobs queued before it, plus a grace period.
      if (timeoutMs !== null) {
        const queued = slot.busy.size - 1;
        void slot.ready.then(() => {
          if (slot.busy.has(id)) job.timer = setTimeout(() => this.overrun(slot, id), timeoutMs * (1 + queued) + 250);
        });
      }
    });
  }

  private overrun(slot: Slot, id: number): void {
    const idx = this.slots.indexOf(slot);
    if (idx < 0) return;
    this.slots[idx] = this.spawn();
    this.abandoned++;
    this.o.onAbandon?.(this.abandoned);
    for (const [jid, job] of slot.busy) {
      if (job.timer) clearTimeout(job.timer);
      job.reject(
        jid === id
          ? new SqlfleetError('TIMEOUT', `query ran past --query-timeout (${this.o.timeoutMs} ms) and was stopped`)
          : new SqlfleetError('TIMEOUT', 'read was queued behind a query that overran --query-timeout; retry'),
      );
    }
    slot.busy.clear();
    void slot.worker.terminate();
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./read-worker-boot.mjs', import.meta.url), {
      workerData: { path: this.o.path, entry: new URL('./read-worker.ts', import.meta.url).href },
    });
    worker.unref();
    const busy: Slot['busy'] = new Map();
    let markReady: () => void = () => {};
    const ready = new Promise<void>((r) => (markReady = r));
    const slot: Slot = { worker, busy, ready, isReady: false };
    worker.on('message', (m: ReadReply) => {
      if (m.id === 0) {
        slot.isReady = true;
        return markReady();
      }
      const job = busy.get(m.id);
      if (!job) return;
      busy.delete(m.id);
      if (job.timer) clearTimeout(job.timer);
      if (m.ok) job.resolve(m.value);
      else job.reject(new SqlfleetError(m.error.code, m.error.message, m.error.details));
    });
    worker.on('error', (e) => {
      for (const job of busy.values()) job.reject(new SqlfleetError('INTERNAL', `read worker failed: ${e.message}`));
      busy.clear();
      const idx = this.slots.findIndex((s) => s.worker === worker);
      if (idx >= 0 && !this.closed) this.slots[idx] = this.spawn();
    });
    return slot;
  }
}
