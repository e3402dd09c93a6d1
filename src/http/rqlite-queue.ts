// rqlite's queued writes (`/db/execute?queue`): the request is answered at once with a
// sequence number, and queued requests are applied in the background together — as one
// atomic log entry per flush, which is what makes bulk ingest fast (one commit, one
// replication round). A flush whose entry fails (one bad statement) is applied again
// request by request, so only the bad request is lost. `&wait` answers once the flush that
// holds the request has been applied (with its results, or its error).
//
// What a queued write guarantees: before a `wait` returns, nothing — it lives in this
// node's memory and a crash or restart of the node loses it, and its error (if any) is
// only logged. Once a `wait` has returned, that request and every request queued before
// it on the same node were committed and acknowledged like any write (ack "all").
import { SqlfleetError } from '../errors.js';
import type { StatementResult } from '../store/types.js';
import type { RqStatement } from './rqlite-body.js';

/** One executor call's outcome, as the rqlite routes see it; `who` is the principal of the requests it holds. */
export type QueueCall<P> = (stmts: RqStatement[], key: string | undefined, who: P) => Promise<Applied>;

/** What waiting for a queued request gives. */
export type Applied = { ok: true; results: StatementResult[]; index: number } | { ok: false; error: SqlfleetError };

interface Item<P> {
  who: P;
  seq: number;
  stmts: RqStatement[];
  key: string | undefined;
  done: Promise<Applied>;
  settle: (a: Applied) => void;
}

/** Limits of the queue (rqlite's -write-queue-capacity, -write-queue-batch-size, -write-queue-timeout). */
export interface QueueOptions {
  /** True for an error of the statements themselves (another grouping can succeed), not the cluster's (no master, timeout). */
  statementError: (e: SqlfleetError) => boolean;
  capacity: number;
  batchSize: number;
  flushMs: number;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export const QUEUE_DEFAULTS = { capacity: 1024, batchSize: 128, flushMs: 50 } as const;

/** The queue of one node. */
export class WriteQueue<P extends { user: string }> {
  private items: Item<P>[] = [];
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> = Promise.resolve();
  /** Increases across restarts too: milliseconds at start times 1000, plus a counter. */
  private seq = Date.now() * 1000;
  private readonly waiting: Array<() => void> = [];

  constructor(
    private readonly call: QueueCall<P>,
    private readonly o: QueueOptions,
  ) {}

  /** Queues a request; resolves with its sequence number once it has a place (waits while the queue is full). */
  async enqueue(stmts: RqStatement[], key: string | undefined, who: P): Promise<{ seq: number; done: Promise<Applied> }> {
    while (this.items.length >= this.o.capacity) await new Promise<void>((r) => this.waiting.push(r));
    let settle: (a: Applied) => void = () => {};
    const done = new Promise<Applied>((r) => (settle = r));
    const item: Item<P> = { who, seq: ++this.seq, stmts, key, done, settle };
    this.items.push(item);
    if (this.items.length >= this.o.batchSize) this.flushSoon(0);
    else this.flushSoon(this.o.flushMs);
    return { seq: item.seq, done };
  }

  /** Requests queued and not yet applied. */
  get depth(): number {
    return this.items.length;
  }

  private flushSoon(ms: number): void {
    if (this.timer && ms > 0) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      // One flush at a time, in order: a later wait never returns before an earlier request was applied.
      this.flushing = this.flushing.then(() => this.flush()).catch((e: unknown) => this.o.log('error', 'queued write flush failed', { err: String(e) }));
    }, ms);
  }

  private async flush(): Promise<void> {
    const batch = this.items.splice(0, this.o.batchSize);
    for (const w of this.waiting.splice(0)) w();
    if (this.items.length > 0) this.flushSoon(0);
    // Consecutive requests of one principal share an entry (each runs with its own rights), in order.
    for (let i = 0; i < batch.length; ) {
      let j = i + 1;
      while (j < batch.length && batch[j]!.who.user === batch[i]!.who.user) j++;
      await this.apply(batch.slice(i, j));
      i = j;
    }
  }

  private async apply(batch: Item<P>[]): Promise<void> {
    const who = batch[0]!.who;
    // A request with an idempotency key goes alone, so its key is recorded with its own entry.
    if (batch.length > 1 && batch.some((i) => i.key !== undefined)) {
      for (const i of batch) await this.apply([i]);
      return;
    }
    const all = batch.flatMap((i) => i.stmts);
    const whole = await this.call(all, batch.length === 1 ? batch[0]!.key : undefined, who);
    if (whole.ok) {
      let at = 0;
      for (const i of batch) {
        i.settle({ ok: true, index: whole.index, results: whole.results.slice(at, at + i.stmts.length) });
        at += i.stmts.length;
      }
      return;
    }
    if (batch.length === 1 || !this.o.statementError(whole.error)) {
      for (const i of batch) i.settle(whole);
      this.o.log('warn', 'queued writes failed', { requests: batch.length, first: batch[0]!.seq, err: whole.error.message });
      return;
    }
    // One statement spoiled the entry: each request alone, so the others still apply.
    for (const i of batch) {
      const one = await this.call(i.stmts, i.key, who);
      if (!one.ok) this.o.log('warn', 'a queued write failed', { sequence_number: i.seq, err: one.error.message });
      i.settle(one);
    }
  }
}
