// Interactive transactions (DESIGN §8): a write transaction that holds the master's writer
// across requests and becomes ONE log entry at COMMIT, and a read-only snapshot.
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { randomText } from '../random.js';
import { SqlfleetError } from '../errors.js';
import type { DetSession, Determinism } from './determinism.js';
import { StatementCache, bindArgs, noteReturning, noteRun, prepareFresh, translateError } from './exec.js';
import type { Entry, Params, Stmt } from './types.js';
import type { InsertTarget } from '../sql/types.js';

/** A value as SQLite gave it: integers as bigint, reals as number, blobs as bytes. */
export type RawValue = null | bigint | number | string | Uint8Array;

/** One statement's result with SQLite's own types (the Hrana front needs integer vs real, text vs blob). */
export interface TypedResult {
  cols: { name: string; decltype: string | null }[];
  rows: RawValue[][];
  changes: number;
  lastInsertRowid: bigint | null;
  /** SQLite's verdict: the statement does not write. */
  readonly: boolean;
}

/**
 * Runs one statement on `cache`'s connection, keeping SQLite's value types; at most
 * `maxRows` rows come back. `evaluateAll`: the rows past that are still computed (and
 * dropped). Inside a write transaction every statement is replayed by the slaves in full,
 * so the master must compute what they will: a read cut short left the random generator,
 * or an error in a later row, different here (a tester's divergence).
 */
export function runTyped(cache: StatementCache, s: Stmt, maxRows: number, evaluateAll = false): TypedResult {
  const stmt = cache.get(s.sql);
  const args = bindArgs(stmt, s.params);
  const before = stmt.reader && !stmt.readonly ? cache.connectionRowid() : 0n;
  let rows: RawValue[][] = [];
  let cols: TypedResult['cols'] = [];
  let changes = 0;
  if (stmt.reader) {
    stmt.raw(true);
    const it = stmt.iterate(...args) as IterableIterator<RawValue[]>;
    let seen = 0;
    for (const r of it) {
      seen++;
      if (rows.length < maxRows) rows.push(r);
      else if (!evaluateAll) {
        it.return?.();
        break;
      }
    }
    cols = stmt.columns().map((c) => ({ name: c.name, decltype: c.type }));
    if (stmt.readonly) return { cols, rows, changes: 0, lastInsertRowid: null, readonly: true };
    // A write with RETURNING (evaluated in full on the writer): one row per row changed,
    // counted as a slave replaying it counts (exec.ts noteReturning).
    noteReturning(cache, s.sql, seen, before);
    return { cols, rows, changes: seen, lastInsertRowid: cache.lastUserRowid, readonly: false };
  }
  const info = stmt.run(...args);
  changes = Number(info.changes);
  if (stmt.readonly) return { cols, rows, changes: 0, lastInsertRowid: null, readonly: true };
  noteRun(cache, stmt, s.sql, info); // as a slave replaying the entry counts it
  return { cols, rows, changes, lastInsertRowid: cache.lastUserRowid, readonly: false };
}

/**
 * Parameters as the log carries them: JSON scalars. Integers bound as integers travel as
 * {"$i": "123"}, blobs as {"$b": "<base64>"}; exec.ts's bindArgs turns them back.
 */
export function logParams(p: Params | undefined): Params | undefined {
  if (p === undefined) return undefined;
  const enc = (v: unknown): unknown =>
    typeof v === 'bigint' ? { $i: v.toString() } : v instanceof Uint8Array ? { $b: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') } : v;
  if (Array.isArray(p)) return p.map(enc) as unknown as Params;
  return Object.fromEntries(Object.entries(p).map(([k, v]) => [k, enc(v)])) as unknown as Params;
}

/** What the store lends an interactive transaction. */
export interface TxHost {
  db: Db;
  cache: StatementCache;
  det: Determinism;
  maxRows: number;
  /** Inside the open transaction: appends the entry to the log; returns it with its JSON. */
  append(stmts: Stmt[], epoch: number, ts: number, seed: string): { entry: Entry; json: string };
  /** After COMMIT: the store's applied point moves to `entry`. */
  committed(entry: Entry): void;
  /** The writer is free again (after COMMIT, ROLLBACK or abort). */
  release(): void;
  /** Before (`after` false) and after a write statement: throws when INSERT target `t`, or a table triggers insert into, holds the largest rowid (rowid-ceiling.ts). */
  ceiling(t: InsertTarget | undefined, after: boolean): void;
}

/** An entry committed by a transaction, ready to ship. */
export interface TxWritten {
  entry: Entry;
  json: string;
}

/**
 * A write transaction on the writer connection. Every statement runs under one timestamp
 * and one random seed fixed at BEGIN (the generator's state carries over between
 * statements); COMMIT appends all of them, reads and failed statements included, in
 * order, as one log entry, so a replica replaying it computes exactly what ran here.
 */
export class WriterTx {
  readonly ts = Date.now();
  readonly seed = randomText(8, 'hex');
  private readonly session: DetSession;
  private readonly stmts: Stmt[] = [];
  private wrote = false;
  /** Set at COMMIT, ROLLBACK or abort; the abort's reason when there is one. */
  private done = false;
  private reason: SqlfleetError | null = null;
  private readonly aborted: ((e: SqlfleetError) => void)[] = [];

  constructor(private readonly host: TxHost) {
    this.session = { ctx: { ts: this.ts, seed: this.seed } };
    host.db.exec('BEGIN IMMEDIATE');
    host.cache.beginEntry(); // one log entry: last_insert_rowid() and changes() count from here, as a slave's replay does
  }

  /** True until COMMIT, ROLLBACK or abort. */
  get open(): boolean {
    return !this.done;
  }

  /** Why statements fail now: the abort's reason, or that the transaction has ended (built when needed: an Error's stack costs). */
  private ended(): SqlfleetError {
    return this.reason ?? new SqlfleetError('BAD_REQUEST', 'the transaction has ended', { hrana_code: 'TRANSACTION_CLOSED' });
  }

  /** Called once if the transaction is aborted (timeout, role lost, SQLite rolled it back). */
  onAbort(fn: (e: SqlfleetError) => void): void {
    this.aborted.push(fn);
  }

  /**
   * Runs one statement inside the transaction; a failing one is logged as failing (replicas
   * expect it to fail too). Around a write (`writes`: the classifier's verdict, and SQLite's
   * after it ran), `into` (the table of an INSERT) and the tables triggers insert into are
   * checked for the largest rowid. Before: the statement is refused unrun and unlogged.
   * After: its effects cannot be undone alone (no savepoint per statement), so the whole
   * transaction rolls back.
   */
  run(s: Stmt, into?: InsertTarget, writes = false): TypedResult {
    if (this.done) throw this.ended();
    if (writes) this.host.ceiling(into, false);
    const logged: Stmt = s.params === undefined ? { sql: s.sql } : { sql: s.sql, params: logParams(s.params) };
    let r: TypedResult;
    try {
      r = this.host.det.withSession(this.session, () => runTyped(this.host.cache, s, this.host.maxRows, true));
    } catch (e) {
      const err = translateError(e);
      if (!this.host.db.inTransaction) {
        // SQLite ended the transaction itself (ON CONFLICT ROLLBACK, disk full): nothing of it stays.
        this.finish(new SqlfleetError('SQL_ERROR', `the transaction was rolled back by SQLite: ${err.message}`, { hrana_code: 'TRANSACTION_ABORTED' }));
        throw err;
      }
      this.stmts.push({ ...logged, fails: true });
      throw err;
    }
    if (!r.readonly) {
      try {
        this.host.ceiling(into, true);
      } catch (e) {
        const err = translateError(e);
        this.finish(new SqlfleetError('SQL_ERROR', `the transaction was rolled back: ${err.message}`, { hrana_code: 'TRANSACTION_ABORTED' }));
        throw err;
      }
    }
    this.stmts.push(logged);
    if (!r.readonly) this.wrote = true;
    return r;
  }

  /**
   * COMMIT: `check()` (may this node still write?) runs first; then the entry is appended
   * and committed. Null when the transaction wrote nothing (no entry is needed).
   */
  commit(epoch: number, check: () => void): TxWritten | null {
    if (this.done) throw this.ended();
    try {
      check();
    } catch (e) {
      this.rollback();
      throw e;
    }
    let written: TxWritten | null = null;
    try {
      if (this.wrote) written = this.host.append(this.stmts, epoch, this.ts, this.seed);
      this.host.db.exec('COMMIT');
    } catch (e) {
      this.rollback();
      throw translateError(e);
    }
    if (written) this.host.committed(written.entry);
    this.finish(null);
    return written;
  }

  /** ROLLBACK: nothing of the transaction is kept or logged. */
  rollback(): void {
    if (this.done) return;
    this.finish(null);
  }

  /** Rolls back and tells the owner why (timeout, role lost). */
  abort(e: SqlfleetError): void {
    if (this.done) return;
    this.finish(e);
  }

  private finish(reason: SqlfleetError | null): void {
    if (this.host.db.inTransaction) {
      try {
        this.host.db.exec('ROLLBACK');
      } catch {
        /* already rolled back by SQLite */
      }
    }
    this.done = true;
    this.reason = reason;
    this.host.release();
    if (reason) for (const fn of this.aborted) fn(reason);
  }
}

/** A read-only transaction: its own connection holding one snapshot of the database. */
export class ReadSnapshot {
  private readonly db: Db;
  private readonly cache: StatementCache;

  constructor(
    file: string,
    private readonly maxRows: number,
  ) {
    this.db = new Database(file, { readonly: true, fileMustExist: true });
    this.cache = new StatementCache(this.db, 50);
    this.db.exec('BEGIN');
    // The snapshot starts at the first read: take it now, at BEGIN.
    this.db.prepare('SELECT count(*) FROM sqlite_schema').get();
  }

  /** Runs a statement against the snapshot (a write fails: the connection is read-only). */
  run(s: Stmt): TypedResult {
    try {
      return runTyped(this.cache, s, this.maxRows);
    } catch (e) {
      throw translateError(e);
    }
  }

  /** Ends the snapshot and closes its connection. */
  close(): void {
    this.cache.clear();
    try {
      this.db.close();
    } catch {
      /* closing twice */
    }
  }
}

/** What a statement takes and returns, without running it (Hrana's describe). */
export interface Description {
  params: { name: string | null }[];
  cols: { name: string; decltype: string | null }[];
  isExplain: boolean;
  isReadonly: boolean;
}

/** Prepares `sql` on `db` (never runs it) and describes it; parameter names are read from the text. */
export function describeOn(db: Db, sql: string): Description {
  let stmt;
  try {
    stmt = prepareFresh(db, sql);
  } catch (e) {
    throw translateError(e);
  }
  const cols = stmt.reader ? stmt.columns().map((c) => ({ name: c.name, decltype: c.type })) : [];
  // better-sqlite3 does not expose sqlite3_bind_parameter_name: scan outside literals.
  const text = sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|\/\*[\s\S]*?\*\//g, ' ');
  const params: { name: string | null }[] = [];
  const seen = new Set<string>();
  for (const m of text.matchAll(/\?(\d*)|([:@$][A-Za-z_][A-Za-z0-9_]*)/g)) {
    if (m[2]) {
      if (!seen.has(m[2])) params.push({ name: m[2] });
      seen.add(m[2]);
    } else if (m[1]) {
      const n = Number(m[1]);
      while (params.length < n) params.push({ name: null });
      params[n - 1] = { name: `?${n}` };
    } else params.push({ name: null });
  }
  return { params, cols, isExplain: /^\s*EXPLAIN\b/i.test(sql), isReadonly: stmt.readonly };
}
