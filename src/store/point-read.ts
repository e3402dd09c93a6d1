// Point reads on the event loop. A read goes to a worker thread so a slow or runaway query
// never blocks the node; but the round trip (postMessage to the worker and back, a thread
// wake-up each way) cost a slave a third of its CPU under a load of primary-key lookups.
// A statement that SQLite answers with one lookup of at most one row cannot run away, so
// it runs here, on the node's own read-only connection. Which statements qualify is asked
// of SQLite itself (EXPLAIN QUERY PLAN and EXPLAIN), once per SQL text and schema:
//
//  - the plan is a single step: SEARCH of one table by its INTEGER PRIMARY KEY, its
//    WITHOUT ROWID primary key, or a UNIQUE index with `=` on every column of that index
//    (no scan, join, subquery, sort);
//  - the program has no loop: SQLite leaves out the loop over the index only when it proved
//    the lookup finds at most one row (`email = ?` on a unique column has none; `email IS ?`
//    does, as it may find every NULL; so do `IN (...)` lists);
//  - the program calls no SQL function and no aggregate (randomblob(1e9), zeroblob, printf
//    widths could make one row arbitrarily expensive), no virtual table and no trigger.
//
// Anything else, or anything SQLite cannot explain, keeps going to the read workers.
import type { Database as Db } from 'better-sqlite3';
import { StatementCache, bindArgs, runRead, type ReadLimits } from './exec.js';
import type { StatementResult, Stmt } from './types.js';

/** Opcodes of a loop, or that make a one-row program unbounded in cost, or hide another table. */
const UNBOUNDED_OPS = new Set([
  'Next', 'Prev', 'Rewind', 'Last', 'SorterNext', 'Yield', 'InitCoroutine',
  'Function', 'PureFunc', 'AggStep', 'AggStep1', 'AggValue', 'AggFinal', 'AggInverse',
  'VOpen', 'VFilter', 'VNext', 'VColumn', 'Program', 'OpenEphemeral', 'SorterOpen',
]);
const BY_ROWID = /^SEARCH (?:TABLE )?(\S+)(?: AS \S+)? USING INTEGER PRIMARY KEY \(rowid=\?\)$/;
const BY_PRIMARY_KEY = /^SEARCH (?:TABLE )?(\S+)(?: AS \S+)? USING PRIMARY KEY \(([^()]*)\)$/;
const BY_INDEX = /^SEARCH (?:TABLE )?(\S+)(?: AS \S+)? USING (?:COVERING )?INDEX (\S+) \(([^()]*)\)$/;
/** Texts remembered (verdicts and first sightings), per schema. */
const MAX_TEXTS = 2000;

export class PointReads {
  private readonly cache: StatementCache;
  /** SQL text → verdict, for the schema `cookie`. */
  private readonly verdicts = new Map<string, boolean>();
  /** Texts seen once: a text is judged on its second sighting, so unique texts cost nothing extra. */
  private readonly seen = new Set<string>();
  private cookie: number | undefined;
  /** Reads answered here (for the metrics). */
  count = 0;

  constructor(private readonly db: Db) {
    this.cache = new StatementCache(db, 200);
  }

  /**
   * The result of `s` when it is a point read, run here; undefined when it must go to a
   * read worker. `cookie` is the schema cookie the writer last committed.
   */
  tryRun(s: Stmt, cookie: number, limits: ReadLimits): StatementResult | undefined {
    if (cookie !== this.cookie) {
      this.cookie = cookie;
      this.verdicts.clear();
      this.seen.clear();
      this.cache.sync(cookie);
    }
    let verdict = this.verdicts.get(s.sql);
    if (verdict === undefined) {
      if (!this.seen.has(s.sql)) {
        if (this.seen.size >= MAX_TEXTS) this.seen.clear();
        this.seen.add(s.sql);
        return undefined;
      }
      verdict = this.judge(s);
      if (this.verdicts.size >= MAX_TEXTS) this.verdicts.clear();
      this.verdicts.set(s.sql, verdict);
    }
    if (!verdict) return undefined;
    this.count++;
    return runRead(this.cache, s, limits);
  }

  /** Whether SQLite answers `s` with at most one row found by one unique lookup, calling nothing. */
  judge(s: Stmt): boolean {
    try {
      const stmt = this.cache.get(s.sql);
      if (!stmt.reader) return false;
      const args = bindArgs(stmt, s.params);
      const plan = this.db.prepare(`EXPLAIN QUERY PLAN ${s.sql}`).all(...args) as { detail: string }[];
      if (plan.length !== 1 || !this.uniqueLookup(plan[0].detail)) return false;
      const ops = this.db.prepare(`EXPLAIN ${s.sql}`).all(...args) as { opcode: string }[];
      return !ops.some((o) => UNBOUNDED_OPS.has(o.opcode));
    } catch {
      return false; // the worker gives the client SQLite's own error
    }
  }

  private uniqueLookup(detail: string): boolean {
    if (BY_ROWID.test(detail)) return true;
    // A WITHOUT ROWID table's key: the loop-free program (judge) proves every column is pinned.
    const pk = BY_PRIMARY_KEY.exec(detail);
    if (pk) return pk[2].split(' AND ').every((t) => /^\S+=\?$/.test(t));
    const m = BY_INDEX.exec(detail);
    if (!m) return false;
    const [, table, index, terms] = m;
    const cols = terms.split(' AND ').map((t) => /^(\S+)=\?$/.exec(t)?.[1]);
    if (cols.some((c) => c === undefined)) return false;
    const list = this.db.prepare('SELECT name, "unique" FROM pragma_index_list(?)').all(table) as { name: string; unique: number }[];
    if (!list.some((i) => i.name === index && i.unique === 1)) return false;
    // Every key column of the index is pinned by `=` (an index on expressions has none named).
    const keys = this.db.prepare('SELECT name FROM pragma_index_info(?)').pluck().all(index) as (string | null)[];
    return keys.length > 0 && keys.length === cols.length && keys.every((k) => k !== null && cols.includes(k));
  }
}
