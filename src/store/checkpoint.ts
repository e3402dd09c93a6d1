// WAL checkpoints off the commit path. With SQLite's automatic checkpoint, the commit that
// fills the WAL past 1000 pages copies them into the database file and fsyncs it, inside
// that write's latency; at 4-5 pages per replicated write that is one write in ~200. Here
// a worker thread checkpoints every `intervalMs` instead (checkpoint-worker.js), and the
// writer keeps an automatic checkpoint at `backstopPages` only as a bound on the WAL should
// the worker fall behind or fail.
//
// The worker runs while the database is written: it starts when the WAL file changes (its
// size or modification time, looked at every `intervalMs` on this thread: one stat) and
// ends after IDLE_STOP_MS without a change. A thread with its own isolate and connection
// costs ~8 MB resident, which a node nobody writes to does not need (bench/mem-idle.ts).
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import { DRIVER_PATH } from './driver.js';

/** Options of the checkpointer. */
export interface CheckpointerOptions {
  path: string;
  intervalMs: number;
  /** The worker ends after this long without a write to the WAL; default IDLE_STOP_MS. */
  idleStopMs?: number;
  log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** The writer's automatic checkpoint while a Checkpointer runs (SQLite's default is 1000). */
export const BACKSTOP_PAGES = 10_000;

/** The checkpoint worker ends after this long without a write to the WAL. */
export const IDLE_STOP_MS = 30_000;

/** Checkpoints one database's WAL on a worker thread while it is written. */
export class Checkpointer {
  private worker: Worker | null = null;
  private exited: Promise<void> = Promise.resolve();
  /** The worker failed: the writer checkpoints by itself from then on (no new worker). */
  private failed = false;
  private stopped = false;
  /** A worker asked to end and not gone yet: a new one waits for it (one checkpointing connection at a time). */
  private ending: Promise<void> | null = null;
  private walSeen = '';
  private lastChange = 0;
  private readonly poll: NodeJS.Timeout;
  private readonly wal: string;
  private readonly idleStopMs: number;

  constructor(private readonly o: CheckpointerOptions) {
    this.wal = `${o.path}-wal`;
    this.idleStopMs = o.idleStopMs ?? IDLE_STOP_MS;
    this.look();
    this.poll = setInterval(() => this.look(), o.intervalMs);
    this.poll.unref();
  }

  /** True while a worker thread runs (for tests). */
  get running(): boolean {
    return this.worker !== null;
  }

  private look(): void {
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(this.wal, { throwIfNoEntry: false });
    } catch {
      st = undefined;
    }
    // No WAL, or an empty one, holds nothing to checkpoint.
    const seen = st && st.size > 0 ? `${st.size}:${st.mtimeMs}` : '';
    const now = Date.now();
    if (seen !== this.walSeen) {
      this.walSeen = seen;
      if (seen !== '') {
        this.lastChange = now;
        this.start();
      }
    } else if (this.worker && now - this.lastChange >= this.idleStopMs) {
      void this.end();
    }
  }

  private start(): void {
    if (this.worker || this.failed || this.stopped) return;
    if (this.ending) {
      void this.ending.then(() => this.start());
      return;
    }
    const o = this.o;
    const worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { path: o.path, intervalMs: o.intervalMs, driver: DRIVER_PATH },
    });
    worker.unref();
    worker.on('message', (m: { error?: string }) => o.log?.('warn', 'WAL checkpoint failed', { err: m.error }));
    worker.on('error', (e) => {
      this.failed = true;
      o.log?.('error', 'checkpoint worker failed; the writer checkpoints by itself', { err: e.message });
    });
    this.exited = new Promise((resolve) =>
      worker.once('exit', () => {
        if (this.worker === worker) this.worker = null;
        resolve();
      }),
    );
    this.worker = worker;
  }

  /** Asks the worker to close its connection and end; resolves when it has (or after 1 s, terminated). */
  private async end(): Promise<void> {
    const worker = this.worker;
    if (!worker) return this.ending ?? undefined;
    this.worker = null;
    const exited = this.exited;
    worker.postMessage('stop');
    const late = setTimeout(() => void worker.terminate(), 1000);
    const ending = exited.then(() => {
      clearTimeout(late);
      if (this.ending === ending) this.ending = null;
    });
    this.ending = ending;
    return ending;
  }

  /** Stops the worker; its connection is closed before this resolves (or after 1 s, terminated). */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    await this.end();
  }
}
