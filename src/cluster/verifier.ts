// Divergence detection: the master compares each slave's checksum with its own at the
// same log index, and marks a slave whose data differs as diverged (it stops receiving
// entries until it is re-seeded with POST /nodes/:id/resync).
import { failpoint } from '../failpoints.js';
import type { Checksum } from '../store/checksum.js';
import type { Membership } from './membership.js';

/** What the verifier needs. */
export interface VerifierDeps {
  membership: Membership;
  localChecksum: () => Promise<Checksum>;
  remoteChecksum: (url: string) => Promise<Checksum>;
  log: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** One comparison of a slave against the master. */
export interface Verdict {
  id: number;
  index: number | null;
  /** true: equal; false: different at the same index; null: not comparable this round. */
  equal: boolean | null;
  tables?: string[];
}

/** Runs comparisons on demand or periodically. */
export class Verifier {
  last: Verdict[] = [];

  constructor(private readonly d: VerifierDeps) {}

  /** Compares every reachable slave whose index equals the master's; marks differing ones diverged. Never rejects. */
  async verifyOnce(): Promise<Verdict[]> {
    let mine: Checksum;
    try {
      failpoint('verify');
      mine = await this.d.localChecksum();
    } catch (e) {
      // A read worker that failed, a SQLite error, or the pool closing at shutdown: no
      // verdict this round, and never an unhandled rejection (it would end the process).
      this.d.log('warn', 'could not checksum the master for verification; trying again next round', { err: e instanceof Error ? e.message : String(e) });
      this.last = this.d.membership.slaves().map((m) => ({ id: m.id, index: null, equal: m.state === 'diverged' ? false : null }));
      return this.last;
    }
    const out: Verdict[] = [];
    for (const m of this.d.membership.slaves()) {
      if (!m.url || m.state === 'down' || m.state === 'diverged') {
        out.push({ id: m.id, index: null, equal: m.state === 'diverged' ? false : null });
        continue;
      }
      try {
        const theirs = await this.d.remoteChecksum(m.url);
        if (theirs.index !== mine.index) {
          out.push({ id: m.id, index: theirs.index, equal: null });
          continue;
        }
        const tables = Object.keys({ ...mine.tables, ...theirs.tables }).filter((t) => mine.tables[t] !== theirs.tables[t]);
        const equal = theirs.db === mine.db;
        out.push({ id: m.id, index: mine.index, equal, tables });
        if (!equal) {
          this.d.log('error', 'slave data differs from the master at the same index', { slave: m.id, index: mine.index, tables });
          this.d.membership.diverged(m.id);
        }
      } catch {
        out.push({ id: m.id, index: null, equal: null });
      }
    }
    this.last = out;
    return out;
  }
}
