// Webhook delivery of the change feed (--cdc-url, DESIGN §9): rqlite's CDC model, made to
// survive failover. Only the master sends: batches of events in log order, retried with
// backoff until the receiver answers 2xx. After each delivered batch the master writes the
// high-water mark (the last delivered <index>.<pos>) as a log entry of its own, so every
// replica holds it; a new master resumes right after it. Duplicates are therefore at most
// the batch in flight when a master is lost (at least once, never a gap); receivers
// deduplicate on the event's (index, pos).
import type { Replicate } from '../core/executor.js';
import type { Store } from '../store/store.js';
import { META_TABLE } from '../store/internal.js';

/** Meta key (replicated through the log) of the last delivered event. */
export const DELIVERED_KEY = 'cdc_delivered';

/** What the sender needs from the node. */
export interface WebhookDeps {
  url: string;
  store: Store;
  /** True while this node is the master. */
  isMaster: () => boolean;
  replicate: () => Replicate;
  epoch: () => number;
  /** Wakes readers waiting on the applied index after the mark's entry committed. */
  notify: () => void;
  ackTimeoutMs: number;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Most events per request (default 500). */
  batchMax?: number;
  /** Per-request deadline (default 10 s). */
  timeoutMs?: number;
  /** Least time between two batches (default 100 ms): each delivered batch costs a log entry for its mark, so small batches are gathered. */
  minIntervalMs?: number;
}

/** Where delivery stands, for /status. */
export interface WebhookStatus {
  url: string;
  delivered: string | null;
  delivered_index: number;
  lag_entries: number;
  batches: number;
  events: number;
  failures: number;
  last_error: string | null;
}

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 10_000;

/** The webhook sender of one node; idle unless the node is master. */
export class Webhook {
  private running = false;
  private wake: (() => void) | null = null;
  private unsubscribe = () => {};
  private batches = 0;
  private events = 0;
  private failures = 0;
  private lastError: string | null = null;
  private loop: Promise<void> = Promise.resolve();

  constructor(private readonly d: WebhookDeps) {}

  /** Starts the delivery loop. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.unsubscribe = this.d.store.changes.subscribe(() => this.poke());
    this.loop = this.run().catch((e: unknown) => this.d.log('error', 'the change webhook stopped', { err: e instanceof Error ? e.message : String(e) }));
  }

  /** Stops it (an in-flight request is abandoned: it is sent again by whoever is master next). */
  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe();
    this.poke();
    await this.loop;
  }

  /** The index through which every event was delivered (events after it must be kept). */
  deliveredIndex(): number {
    const m = this.mark();
    return m ? m.index - 1 : 0;
  }

  /** Delivery state for /status. */
  status(): WebhookStatus {
    const mark = this.mark();
    return {
      url: this.d.url,
      delivered: mark ? `${mark.index}.${mark.pos}` : null,
      delivered_index: mark?.index ?? 0,
      lag_entries: Math.max(0, this.d.store.appliedIndex - (mark?.index ?? 0)),
      batches: this.batches,
      events: this.events,
      failures: this.failures,
      last_error: this.lastError,
    };
  }

  private poke(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.wake = null;
        resolve();
      }, ms);
      t.unref();
      this.wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  private mark(): { index: number; pos: number } | undefined {
    return this.d.store.getMeta<{ index: number; pos: number }>(DELIVERED_KEY);
  }

  private async run(): Promise<void> {
    let backoff = MIN_BACKOFF_MS;
    let lastSent = 0;
    while (this.running) {
      if (!this.d.isMaster()) {
        await this.sleep(500);
        continue;
      }
      const mark = this.mark() ?? { index: 0, pos: -1 };
      const batch = this.d.store.changes.read(mark.index, mark.pos, this.d.batchMax ?? 500);
      if (batch.length === 0) {
        await this.sleep(1000);
        continue;
      }
      const wait = lastSent + (this.d.minIntervalMs ?? 100) - Date.now();
      if (batch.length < (this.d.batchMax ?? 500) && wait > 0) {
        await new Promise((r) => setTimeout(r, wait).unref());
        continue; // read again: more events may have come
      }
      lastSent = Date.now();
      try {
        await this.post(`{"events":[${batch.map((e) => e.json).join(',')}]}`);
        const last = batch[batch.length - 1];
        await this.record({ index: last.index, pos: last.pos });
        this.batches++;
        this.events += batch.length;
        this.lastError = null;
        backoff = MIN_BACKOFF_MS;
      } catch (e) {
        this.failures++;
        this.lastError = e instanceof Error ? e.message : String(e);
        if (this.failures === 1 || this.failures % 20 === 0) this.d.log('warn', 'change webhook delivery failed; retrying', { url: this.d.url, failures: this.failures, err: this.lastError, backoff_ms: backoff });
        await this.sleep(backoff);
        backoff = Math.min(backoff * 2, MAX_BACKOFF_MS);
      }
    }
  }

  private async post(body: string): Promise<void> {
    const res = await fetch(this.d.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      signal: AbortSignal.timeout(this.d.timeoutMs ?? 10_000),
    });
    await res.body?.cancel().catch(() => {}); // always consume or cancel a body
    if (res.status < 200 || res.status > 299) throw new Error(`the receiver answered ${res.status}`);
  }

  /** Writes the high-water mark as a log entry: replicated like any write, so a new master knows it. */
  private async record(mark: { index: number; pos: number }): Promise<void> {
    const rep = this.d.replicate();
    rep.admit();
    try {
      const epoch = this.d.epoch();
      const { index } = await this.d.store.write(
        [{ sql: `INSERT INTO ${META_TABLE}(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, params: [DELIVERED_KEY, JSON.stringify(mark)] }],
        epoch,
        undefined,
        {
          check: () => rep.check(),
          onCommit: (entry, json) => {
            this.d.notify();
            rep.onWrite(entry, json);
          },
        },
      );
      await rep.waitAcks(index, 'all', this.d.ackTimeoutMs);
    } finally {
      rep.done();
    }
  }
}
