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
  entries: Entry[];
}

/** Driver failures that say nothing about the data (retry later rather than diverge). */
const TRANSIENT = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|NOMEM|CANTOPEN)/;

/** Applies what the master ships. */
export class Applier {
  private divergedReason: string | null = null;

  constructor(
    private readonly store: Store,
    private readonly onApplied: () => void,
    private readonly log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void,
  ) {}

  /** Why this replica stopped applying, or null. */
  get diverged(): string | null {
    return this.divergedReason;
  }

  /** Forgets a divergence once the replica was re-seeded from a snapshot. */
  reset(): void {
    this.divergedReason = null;
  }

  /** Handles one append request; throws SqlfleetError for refusals. */
  append(req: AppendRequest): AppendAnswer {
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
    const fresh = req.entries.filter((e) => e.index > applied);
    if (fresh.length === 0) return { ok: true, applied_index: applied };
    if (fresh[0].index !== applied + 1) {
      return { ok: false, applied_index: applied, error: { code: 'INDEX_MISMATCH', message: `expected entry ${applied + 1}, got ${fresh[0].index}` } };
    }
    try {
      this.store.apply(fresh);
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
