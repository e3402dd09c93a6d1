// Master side of log shipping: one pump per slave pushes entries it has not applied,
// batching whatever queued while the previous batch was in flight.
import { failpoint } from '../failpoints.js';
import type { Membership } from '../cluster/membership.js';
import type { Store } from '../store/store.js';
import type { Entry } from '../store/types.js';
import { PeerUnreachableError, type PeerClient } from './client.js';

/** What a slave answers to /internal/append. */
export interface AppendAnswer {
  ok: boolean;
  applied_index?: number;
  error?: { code: string; message: string };
}

/** Options of the shipper. */
export interface ShipperDeps {
  store: Store;
  client: PeerClient;
  membership: Membership;
  epoch: () => number;
  /** This master's URL, sent with every batch so a follower knows whom it follows. */
  selfUrl: () => string;
  batchMaxEntries: number;
  batchMaxBytes: number;
  timeoutMs: number;
  retryMs: number;
  /** A slave follows a newer epoch: this master was deposed. */
  onStale: (masterUrl: string | null, epoch: number) => void;
  /** Sends a snapshot of the master's database to a slave; resolves with the index it holds. */
  sendSnapshot: (id: number, url: string) => Promise<number>;
  /** Observes the size of each batch shipped. */
  onBatch?: (entries: number) => void;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/**
 * Serialized recent entries kept in memory so the hot path never re-reads or re-encodes
 * them; bounded in count and bytes (a 1000-row batch entry is ~70 kB). Slaves further
 * behind are served from the log table. 20k entries held ~20 MB of the master's heap.
 */
const RECENT_MAX = 4_096;
const RECENT_MAX_CHARS = 8 * 1024 * 1024;

/** One encoded append request. */
interface Batch {
  from: number;
  epoch: number;
  count: number;
  /** Filled to a batch limit: more entries are probably waiting (catch-up). */
  full: boolean;
  /** The master's applied index when it was built (sent as master_index). */
  master: number;
  body: string;
}

/** Pushes the master's log to every slave. */
export class Shipper {
  private readonly inflight = new Set<number>();
  private readonly again = new Set<number>();
  private readonly recent = new Map<number, string>();
  private recentChars = 0;
  private readonly retryTimers = new Map<number, NodeJS.Timeout>();
  private readonly resync = new Set<number>();
  /** Per slave URL: the next batch, encoded while the previous one was in flight. */
  private readonly prepared = new Map<string, Batch>();
  private stopped = false;
  private kickQueued = false;

  constructor(private readonly d: ShipperDeps) {}

  /** Remembers a freshly written entry (and its JSON) and wakes every pump. */
  onWrite(entry: Entry, json: string): void {
    const slaves = this.d.membership.slaves();
    if (slaves.length === 0) return;
    this.recent.set(entry.index, json);
    this.recentChars += json.length;
    while (this.recent.size > RECENT_MAX || this.recentChars > RECENT_MAX_CHARS) this.dropOldest();
    // The pumps wake once the whole group commit has been remembered (a microtask runs after
    // the store's loop over the group's hooks): kicked at its first entry, a pump built its
    // batch while the rest of the group was only in the log table, and read it back from SQLite.
    if (this.kickQueued) return;
    this.kickQueued = true;
    queueMicrotask(() => {
      this.kickQueued = false;
      for (const m of this.d.membership.slaves()) this.kick(m.id);
    });
  }

  private dropOldest(): void {
    const first = this.recent.entries().next().value as [number, string] | undefined;
    if (!first) return;
    this.recent.delete(first[0]);
    this.recentChars -= first[1].length;
  }

  /** Starts (or re-arms) the pump of one slave. */
  kick(id: number): void {
    if (this.stopped) return;
    if (this.inflight.has(id)) {
      this.again.add(id);
      return;
    }
    void this.pump(id);
  }

  /** Drops cached entries the log no longer holds (call after trimming up to `upTo`). */
  forget(upTo: number): void {
    for (const index of this.recent.keys()) {
      if (index > upTo) break;
      this.dropOldest();
    }
  }

  /** Re-seeds a slave with a snapshot before any further entry (diverged or behind the log). */
  requestResync(id: number): void {
    this.resync.add(id);
    this.kick(id);
  }

  /** Stops all pumps. */
  stop(): void {
    this.stopped = true;
    for (const t of this.retryTimers.values()) clearTimeout(t);
  }

  private async pump(id: number): Promise<void> {
    this.inflight.add(id);
    try {
      for (;;) {
        this.again.delete(id);
        const m = this.d.membership.get(id);
        if (this.stopped || !m || !m.url || m.state === 'down') return;
        // A slave that has everything, or whose next entry is in the recent cache (which never
        // holds trimmed entries, see forget), cannot be behind the log: the query is skipped.
        const next = m.applied + 1;
        // An index 0 not yet confirmed is not known (a promoted master's first contact): it is
        // asked first (the empty probe below), not answered with a snapshot of the whole file.
        const known = m.confirmed || m.applied > 0;
        const behindLog = known && next <= this.d.store.appliedIndex && !this.recent.has(next) && next < this.d.store.firstLogIndex();
        if (this.resync.has(id) || (behindLog && m.state !== 'diverged')) {
          this.d.log('info', 'sending snapshot', { slave: id, slave_index: m.applied, log_starts_at: this.d.store.firstLogIndex() });
          const index = await this.d.sendSnapshot(id, m.url);
          this.resync.delete(id);
          this.d.membership.contact(id, index, undefined, true);
          continue;
        }
        if (m.state === 'diverged') return;
        let from = m.applied + 1;
        if (!m.confirmed) {
          // First batch of this master to the slave: resend the slave's own last entry (or
          // this master's last, if the slave claims more), so its applier compares hashes
          // and a log that forked in an earlier epoch is found before any ack counts it.
          // Index not known yet (a promoted master's first contact): an empty batch asks for it.
          from = m.applied === 0 ? this.d.store.appliedIndex + 1 : Math.max(1, Math.min(m.applied, this.d.store.appliedIndex));
        } else if (from > this.d.store.appliedIndex) {
          if (this.again.has(id)) continue;
          return;
        }
        const answer = await this.send(m.url, from);
        if (answer.ok && typeof answer.applied_index === 'number') {
          // An empty probe confirms nothing unless the replica is empty too.
          const probed = !m.confirmed && from > this.d.store.appliedIndex && answer.applied_index > 0;
          this.d.membership.contact(id, answer.applied_index, undefined, false, !probed);
        } else if (answer.error?.code === 'STALE_EPOCH') {
          const e = answer.error as { epoch?: unknown; master?: unknown };
          this.d.onStale(typeof e.master === 'string' ? e.master : null, typeof e.epoch === 'number' ? e.epoch : this.d.epoch() + 1);
          return;
        } else if (answer.error?.code === 'DIVERGED') {
          this.d.log('error', 'slave diverged', { slave: id, reason: answer.error.message });
          this.d.membership.diverged(id);
          return;
        } else if (typeof answer.applied_index === 'number' && answer.applied_index !== m.applied) {
          this.d.membership.contact(id, answer.applied_index); // resend from where it is
        } else {
          this.d.log('warn', 'slave refused entries', { slave: id, error: answer.error });
          this.retry(id);
          return;
        }
      }
    } catch (e) {
      if (e instanceof PeerUnreachableError) {
        if (!e.sent) this.d.membership.unreachable(id);
        this.retry(id);
      } else {
        this.d.log('error', 'shipping failed', { slave: id, err: String(e) });
        this.retry(id);
      }
    } finally {
      this.inflight.delete(id);
    }
  }

  private retry(id: number): void {
    if (this.stopped || this.retryTimers.has(id)) return;
    this.retryTimers.set(
      id,
      setTimeout(() => {
        this.retryTimers.delete(id);
        this.kick(id);
      }, this.d.retryMs),
    );
  }

  /**
   * Sends the batch starting at `from`. A full batch means the slave is catching up: while
   * it applies, the next batch is read from the log and encoded (kept in `prepared`), so
   * the slave waits for the network only, not for the master's log reads as well.
   */
  private async send(url: string, from: number): Promise<AppendAnswer> {
    const p = this.prepared.get(url);
    this.prepared.delete(url);
    const batch = p && p.from === from && p.epoch === this.d.epoch() ? p : this.build(from);
    this.d.onBatch?.(batch.count);
    const pending = this.d.client.append<AppendAnswer>(url, batch.body, { timeoutMs: this.d.timeoutMs });
    pending.catch(() => undefined); // awaited below; handled now in case building the next batch throws first
    if (batch.full && from + batch.count <= this.d.store.appliedIndex) {
      await new Promise((r) => setImmediate(r)); // let the request go out first
      try {
        if (!this.stopped) this.prepared.set(url, this.build(from + batch.count));
      } catch (e) {
        // Only a read-ahead: the next send() builds that batch again and reports a failure there.
        this.d.log('warn', 'could not prepare the next batch', { from: from + batch.count, err: e instanceof Error ? e.message : String(e) });
      }
    }
    return (await pending) ?? { ok: false };
  }

  /** The append body for entries `from`... (up to the batch limits), from the cache or the log. */
  private build(from: number): Batch {
    failpoint('shipper.build');
    const parts: string[] = [];
    let bytes = 0;
    const last = this.d.store.appliedIndex;
    for (let i = from; i <= last && parts.length < this.d.batchMaxEntries && bytes < this.d.batchMaxBytes; i++) {
      let s = this.recent.get(i);
      if (s === undefined) {
        const batch = this.d.store.entriesJson(i, this.d.batchMaxEntries - parts.length, this.d.batchMaxBytes - bytes);
        if (batch.length === 0) break;
        for (const e of batch) {
          parts.push(e.json);
          bytes += e.json.length;
        }
        i = batch[batch.length - 1].index;
        continue;
      }
      parts.push(s);
      bytes += s.length;
    }
    const epoch = this.d.epoch();
    return {
      from,
      epoch,
      count: parts.length,
      full: parts.length >= this.d.batchMaxEntries || bytes >= this.d.batchMaxBytes,
      master: last,
      body: `{"epoch":${epoch},"master":${JSON.stringify(this.d.selfUrl())},"master_index":${last},"entries":[${parts.join(',')}]}`,
    };
  }
}
