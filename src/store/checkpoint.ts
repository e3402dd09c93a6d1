// WAL checkpoints off the commit path. With SQLite's automatic checkpoint, the commit that
// fills the WAL past 1000 pages copies them into the database file and fsyncs it, inside
// that write's latency; at 4-5 pages per replicated write that is one write in ~200. Here
// a worker thread checkpoints every `intervalMs` instead (checkpoint-worker.js), and the
// writer keeps an automatic checkpoint at `backstopPages` only as a bound on the WAL should
// the worker fall behind or fail.
import { Worker } from 'node:worker_threads';
import { DRIVER_PATH } from './driver.js';

/** Options of the checkpointer. */
export interface CheckpointerOptions {
  path: string;
  intervalMs: number;
  log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** The writer's automatic checkpoint while a Checkpointer runs (SQLite's default is 1000). */
export const BACKSTOP_PAGES = 10_000;

/** A worker thread that checkpoints one database's WAL. */
export class Checkpointer {
  private readonly worker: Worker;
  private readonly exited: Promise<void>;

  constructor(o: CheckpointerOptions) {
    this.worker = new Worker(new URL('./checkpoint-worker.js', import.meta.url), {
      workerData: { path: o.path, intervalMs: o.intervalMs, driver: DRIVER_PATH },
    });
    this.worker.unref();
    this.worker.on('message', (m: { error?: string }) => o.log?.('warn', 'WAL checkpoint failed', { err: m.error }));
    this.worker.on('error', (e) => o.log?.('error', 'checkpoint worker failed; the writer checkpoints by itself', { err: e.message }));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => resolve()));
  }

  /** Stops the worker; its connection is closed before this resolves (or after 1 s, terminated). */
  async stop(): Promise<void> {
    this.worker.postMessage('stop');
    const late = setTimeout(() => void this.worker.terminate(), 1000);
    await this.exited;
    clearTimeout(late);
  }
}
