// Point reads on the event loop. A read goes to a worker thread so a slow or runaway query
// never blocks the node; but the round trip (postMessage to the worker and back, a thread
// wake-up each way) cost a slave a third of its CPU under a load of primary-key lookups.
// A statement that SQLite answers with one lookup of at most one row, with a short program
// of cheap opcodes, cannot run away, so it runs here, on the node's own read-only
// connection. Which statements qualify is asked of SQLite itself (EXPLAIN QUERY PLAN and
// EXPLAIN), by a read worker (`isPointRead`), never on the event loop: preparing client SQL
// can take seconds (views or CTEs that expand, long texts). The worker judges a text from
// the second time it is seen, once per schema, after running it (when that run was quick:
// otherwise the next request asks again); the verdict comes back with its answer. A text
// qualifies when:
//
//  - the plan is a single step: SEARCH of one table by its INTEGER PRIMARY KEY, its
//    WITHOUT ROWID primary key, or a UNIQUE index with `=` on every column of that index
//    (no scan, join, subquery, sort);
//  - the program is at most MAX_POINT_OPS opcodes, every one of them in SAFE_OPS: no loop
//    (SQLite leaves out the loop over an index only when it proved the lookup finds at most
//    one row: `email = ?` on a unique column has none; `email IS ?` does, as it may find
//    every NULL; so do `IN (...)` lists), no SQL function (randomblob(1e9), printf widths),
//    no `||` (a chain of them is quadratic in its operands), no aggregate, virtual table,
//    trigger or temporary table. An allow-list: an opcode SQLite adds later is refused.
//
// Anything else keeps going to the read workers. What the plan cannot show: a row whose
// stored value is itself huge costs its size here, as it would in the worker's answer.
import type { Database as Db } from 'better-sqlite3';
import { StatementCache, bindArgs, runPointRead, type ReadLimits } from './exec.js';
import type { StatementResult, Stmt } from './types.js';

/** Longest program a point read may have (a lookup of one row has 10–25 opcodes). */
const MAX_POINT_OPS = 100;
/** Longer texts are not judged (their prepare alone may cost more than the worker trip). */
const MAX_JUDGED_TEXT = 2000;
/** A run that took longer than this in the worker is not judged (a point read takes microseconds). */
export const MAX_JUDGED_RUN_MS = 2;

/** Opcodes of a one-row lookup: cursor seeks, column loads, literals, comparisons, CASE/CAST/arithmetic, LIMIT. */
const SAFE_OPS = new Set([
  'Init', 'Transaction', 'TableLock', 'Goto', 'Halt', 'Noop', 'ColumnsUsed', 'Once',
  'OpenRead', 'SeekRowid', 'NotExists', 'MustBeInt', 'SeekGE', 'SeekGT', 'SeekLE', 'SeekLT',
  'IdxGT', 'IdxGE', 'IdxLT', 'IdxLE', 'DeferredSeek', 'IdxRowid', 'Column', 'Rowid',
  'Variable', 'Integer', 'Int64', 'Real', 'String8', 'String', 'Null', 'Blob', 'Copy', 'SCopy',
  'Affinity', 'Cast', 'RealAffinity', 'Eq', 'Ne', 'Lt', 'Le', 'Gt', 'Ge', 'ElseEq', 'IsNull',
  'NotNull', 'ZeroOrNull', 'IsTrue', 'If', 'IfNot', 'IfPos', 'Not', 'And', 'Or', 'BitAnd',
  'BitOr', 'BitNot', 'Add', 'AddImm', 'Subtract', 'Multiply', 'Divide', 'Remainder',
  'DecrJumpZero', 'OffsetLimit', 'ResultRow',
]);
const BY_ROWID = /^SEARCH (?:TABLE )?(\S+)(?: AS \S+)? USING INTEGER PRIMARY KEY \(rowid=\?\)$/;
const BY_PRIMARY_KEY = /^SEARCH (?:TABLE )?(\S+)(?: AS \S+)? USING PRIMARY KEY \(([^()]*)\)$/;
const BY_INDEX = /^SEARCH (?:TABLE )?(\S+)(?: AS \S+)? USING (?:COVERING )?INDEX (\S+) \(([^()]*)\)$/;
/** Texts remembered (verdicts and first sightings), per schema. */
const MAX_TEXTS = 2000;

/**
 * Whether SQLite answers `s` with at most one row found by one unique lookup, with a short
 * program of cheap opcodes. Prepares `s` (EXPLAIN QUERY PLAN, EXPLAIN): call it on a read
 * worker, with `cache` synced to the current schema.
 */
export function isPointRead(db: Db, cache: StatementCache, s: Stmt): boolean {
  if (s.sql.length > MAX_JUDGED_TEXT) return false;
  try {
    const stmt = cache.get(s.sql);
    if (!stmt.reader) return false;
    const args = bindArgs(stmt, s.params);
    const plan = db.prepare(`EXPLAIN QUERY PLAN ${s.sql}`).all(...args) as { detail: string }[];
    if (plan.length !== 1 || !uniqueLookup(db, plan[0].detail)) return false;
    let ops = 0;
    for (const o of db.prepare(`EXPLAIN ${s.sql}`).iterate(...args) as IterableIterator<{ opcode: string }>) {
      if (++ops > MAX_POINT_OPS || !SAFE_OPS.has(o.opcode)) return false;
    }
    return true;
  } catch {
    return false; // the worker gave the client SQLite's own error
  }
}

function uniqueLookup(db: Db, detail: string): boolean {
  if (BY_ROWID.test(detail)) return true;
  // A WITHOUT ROWID table's key: the loop-free program proves every column is pinned.
  const pk = BY_PRIMARY_KEY.exec(detail);
  if (pk) return pk[2].split(' AND ').every((t) => /^\S+=\?$/.test(t));
  const m = BY_INDEX.exec(detail);
  if (!m) return false;
  const [, table, index, terms] = m;
  const cols = terms.split(' AND ').map((t) => /^(\S+)=\?$/.exec(t)?.[1]);
  if (cols.some((c) => c === undefined)) return false;
  const list = db.prepare('SELECT name, "unique" FROM pragma_index_list(?)').all(table) as { name: string; unique: number }[];
  if (!list.some((i) => i.name === index && i.unique === 1)) return false;
  // Every key column of the index is pinned by `=` (an index on expressions has none named).
  const keys = db.prepare('SELECT name FROM pragma_index_info(?)').pluck().all(index) as (string | null)[];
  return keys.length > 0 && keys.length === cols.length && keys.every((k) => k !== null && cols.includes(k));
}

/** Where a read goes: run here, to a worker that also judges it, or to a worker. */
export type PointRoute = 'run' | 'judge' | 'worker';

/** The event loop's side: verdicts per text for the current schema, and the point reads themselves. */
export class PointReads {
  private readonly cache: StatementCache;
  /** SQL text -> verdict, for the schema `cookie`. */
  private readonly verdicts = new Map<string, boolean>();
  /** Texts seen: a text is judged from its second sighting on, so unique texts cost nothing extra. */
  private readonly seen = new Set<string>();
  private cookie: number | undefined;

  constructor(db: Db) {
    this.cache = new StatementCache(db, 200);
  }

  /** Where a single-statement read of `sql` goes, with `cookie` the schema the writer last committed. */
  route(sql: string, cookie: number): PointRoute {
    if (cookie !== this.cookie) {
      this.cookie = cookie;
      this.verdicts.clear();
      this.seen.clear();
      this.cache.sync(cookie);
    }
    const verdict = this.verdicts.get(sql);
    if (verdict !== undefined) return verdict ? 'run' : 'worker';
    if (this.seen.has(sql)) return 'judge';
    if (this.seen.size >= MAX_TEXTS) this.seen.clear();
    this.seen.add(sql);
    return 'worker';
  }

  /** Records a worker's verdict on `sql`, judged with schema `cookie` (dropped if the schema moved since). */
  record(sql: string, cookie: number, point: boolean): void {
    if (cookie !== this.cookie) return;
    if (this.verdicts.size >= MAX_TEXTS) this.verdicts.clear();
    this.verdicts.set(sql, point);
    this.seen.delete(sql);
  }

  /** Runs a statement whose route is 'run'. */
  run(s: Stmt, limits: ReadLimits): StatementResult {
    return runPointRead(this.cache, s, limits);
  }
}
