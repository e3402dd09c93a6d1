// Slave side of log shipping: checks epoch, order and hash chain, then applies a batch of
// entries in one transaction. Replays of entries already applied are skipped, so a resend
// is harmless and nothing is applied twice.
import { SqlfleetError, isSqlfleetError } from '../errors.js';
import type { Store } from '../store/store.js';
import type { Entry } from '../store/types.js';
import type { AppendAnswer } from './shipper.js';

/** Body of POST /internal/append. */
export interface AppendRequest {
  epoch: number;
  /** URL of the master that sent it (absent from older senders). */
  master?: string;
  /** The sender's applied index: a replica holding more has entries the master never had. */
  master_index?: number;
  entries: Entry[];
}

/** How a replica's log left the master's: it holds entries from `from` on that the master does not. */
export interface Fork {
  from: number;
  reason: string;
}

/** Driver failures that say nothing about the data (retry later rather than diverge). */
const TRANSIENT = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|NOMEM|CANTOPEN)/;

/** Applies what the master ships. */
export class Applier {
  private divergedReason: string | null = null;
  private forkInfo: Fork | null = null;

  constructor(
    private readonly store: Store,
    private readonly onApplied: () => void,
    private readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void,
  ) {}

  /** Why this replica stopped applying, or null. */
  get diverged(): string | null {
    return this.divergedReason;
  }

  /** Set when this replica's log forked from the master's (a failover): its extra entries must be set aside. */
  get fork(): Fork | null {
    return this.forkInfo;
  }

  /** Forgets a divergence once the replica was re-seeded from a snapshot. */
  reset(): void {
    this.divergedReason = null;
    this.forkInfo = null;
  }

  private forked(from: number, reason: string): AppendAnswer {
    this.divergedReason = reason;
    this.forkInfo = { from, reason };
    this.log('error', 'replica log forked from the master; stopped applying', { from, reason });
    return { ok: false, applied_index: this.store.appliedIndex, error: { code: 'DIVERGED', message: reason } };
  }

  /**
   * Handles one append request; throws SqlfleetError for refusals. `texts`: each entry's
   * statements as the master shipped them (frame.ts), when known.
   */
  append(req: AppendRequest, texts?: readonly string[]): AppendAnswer {
    if (!req || typeof req.epoch !== 'number' || !Array.isArray(req.entries)) {
      throw new SqlfleetError('BAD_REQUEST', 'append needs {epoch, entries[]}');
    }
    const known = this.store.epoch;
    if (req.epoch < known) throw new SqlfleetError('STALE_EPOCH', `entries from epoch ${req.epoch}; this node follows epoch ${known}`);
    if (req.epoch > known) this.store.setEpoch(req.epoch);
    if (this.divergedReason) {
      return { ok: false, applied_index: this.store.appliedIndex, error: { code: 'DIVERGED', message: this.divergedReason } };
    }
    const applied = this.store.appliedIndex;
    if (typeof req.master_index === 'number' && req.master_index < applied) {
      return this.forked(req.master_index + 1, `this replica holds entries ${req.master_index + 1}..${applied} that the master (epoch ${req.epoch}) does not have`);
    }
    // A resent entry this replica already has must be the same entry: the master resends
    // a replica's last entry first in each new epoch to check exactly this.
    let replayed: Entry | undefined;
    for (const e of req.entries) if (e.index <= applied) replayed = e;
    if (replayed) {
      const mine = this.store.hashAt(replayed.index);
      if (mine !== null && mine !== replayed.hash) {
        return this.forked(replayed.index, `entry ${replayed.index} here differs from the master's (epoch ${req.epoch})`);
      }
    }
    const fresh = req.entries.filter((e) => e.index > applied);
    if (fresh.length === 0) return { ok: true, applied_index: applied };
    const freshTexts = texts && texts.length === req.entries.length ? texts.filter((_, i) => req.entries[i].index > applied) : undefined;
    if (fresh[0].index !== applied + 1) {
      return { ok: false, applied_index: applied, error: { code: 'INDEX_MISMATCH', message: `expected entry ${applied + 1}, got ${fresh[0].index}` } };
    }
    try {
      this.store.apply(fresh, freshTexts);
    } catch (e) {
      const sqliteCode = isSqlfleetError(e) ? String(e.details.sqlite_code ?? '') : '';
      if (TRANSIENT.test(sqliteCode)) {
        this.log('warn', 'could not apply entries, will retry', { err: String(e) });
        return { ok: false, applied_index: this.store.appliedIndex, error: { code: 'RETRY', message: String(e) } };
      }
      this.divergedReason = `entry ${fresh[0].index}..${fresh[fresh.length - 1].index} failed here: ${(e as Error).message}`;
      this.log('error', 'replica diverged; stopped applying', { reason: this.divergedReason });
      return { ok: false, applied_index: this.store.appliedIndex, error: { code: 'DIVERGED', message: this.divergedReason } };
    }
    this.onApplied();
    return { ok: true, applied_index: this.store.appliedIndex };
  }
}
