// Runs statements on a better-sqlite3 connection: prepared-statement cache, parameter
// binding, JSON-safe values, and translation of driver errors into SqlfleetError.
import type { Database as Db, Statement } from 'better-sqlite3';
import { SqlfleetError } from '../errors.js';
import { bindNumbered, numberedSlots, type NumberedSlots } from '../sql/params.js';
import type { Params, StatementResult, Stmt, WriteResult } from './types.js';
import { Lru } from '../sql/lru.js';

// Why connections need help seeing schema changes (issue 12, SQLite 3.53): a connection
// that did not make a change notices it only when one of its statements *steps* and finds
// the file's schema cookie moved. Preparing does not check, except after a few errors
// ("no such table/column"). So on a connection that only reads, a prepare that fails on
// the cached schema ("sub-select returns 5 columns") keeps failing, fresh prepares too,
// and EXPLAIN (which never steps the program it shows) describes old tables and indexes.
// PRAGMA schema_version does not help: it reads the cookie without comparing it.

/** The cached statement whose step makes SQLite compare the cookie and reload a stale schema. */
const refreshers = new WeakMap<Db, Statement>();

/**
 * Makes `db` re-read the schema if another connection changed it since `db` last looked
 * (inside a read transaction: as of that transaction's snapshot). A few µs: one step.
 */
export function refreshSchema(db: Db): void {
  let stmt = refreshers.get(db);
  if (!stmt) {
    stmt = db.prepare('SELECT 1 FROM sqlite_schema LIMIT 0');
    refreshers.set(db, stmt);
  }
  stmt.all();
}

/**
 * `db.prepare(sql)`, retried once after `refreshSchema` when SQLite refuses it, so the
 * error (or success) is the one the current schema gives. Successful prepares cost nothing
 * extra: a statement prepared on a stale schema is re-prepared by SQLite when it steps.
 */
export function prepareFresh(db: Db, sql: string): Statement {
  try {
    return db.prepare(sql);
  } catch (e) {
    const code = (e as { code?: unknown })?.code;
    if (typeof code !== 'string' || !code.startsWith('SQLITE_')) throw e;
    refreshSchema(db);
    return db.prepare(sql);
  }
}

/** Reads the schema cookie of `db`; ~60 ns inside a write transaction. */
export function schemaCookieReader(db: Db): () => number {
  const stmt = db.prepare('PRAGMA schema_version').pluck();
  return () => Number(stmt.get());
}

/** LRU of prepared statements for one connection. */
export class StatementCache {
  /** Prepared statements by text (sql/lru.ts: a delete and set of a Map entry on every hit rehashed a large Map). */
  private readonly map: Lru<string, Statement>;
  private cookie: number | undefined;
  private rowidStmt: Statement | undefined;
  /**
   * The rowid of the last row a *client* statement inserted on this connection. SQLite's
   * last_insert_rowid() also counts the node's own log and bookkeeping inserts, so an
   * UPDATE would otherwise report the rowid of the previous write's log entry.
   */
  lastUserRowid: bigint = 0n;
  /**
   * sqlite3_changes() as a client alone would see it: the row count of the last INSERT,
   * UPDATE or DELETE a client ran here. Other statements (DDL) leave it as it was, as in
   * SQLite (better-sqlite3 answers 0 for them, and the node's own bookkeeping writes must
   * not show through).
   */
  lastUserChanges = 0;
  /**
   * What the SQL functions last_insert_rowid() and changes() return on the writer
   * (store.ts): the same two values, but counted from the start of the log entry being
   * applied (0 before its first write). Carried over from earlier requests they would be
   * each node's own history: a request that failed on the master only (its rows rolled
   * back, its counters not), a restart, a snapshot. A tester stored different values on
   * master and slaves that way.
   */
  entryRowid = 0n;
  entryChanges = 0;

  /** A log entry starts: last_insert_rowid() and changes() in SQL are 0 until it writes. */
  beginEntry(): void {
    this.entryRowid = 0n;
    this.entryChanges = 0;
  }

  /** A client statement inserted a row with `rowid` (top-level INSERT or REPLACE). */
  noteRowid(rowid: bigint): void {
    this.lastUserRowid = rowid;
    this.entryRowid = rowid;
  }

  /** A client INSERT, UPDATE or DELETE changed `n` rows. */
  noteChanges(n: number): void {
    this.lastUserChanges = n;
    this.entryChanges = n;
  }

  /**
   * The connection's sqlite3_last_insert_rowid() now, from the run of a statement that
   * changes nothing (the SQL function last_insert_rowid() is overridden on the writer).
   */
  connectionRowid(): bigint {
    this.rowidStmt ??= this.db.prepare('DELETE FROM _sqlfleet_meta WHERE 0').safeIntegers(true);
    return BigInt(this.rowidStmt.run().lastInsertRowid);
  }
  /**
   * Texts prepared once and not cached (a doorkeeper): a statement is cached only when its
   * text comes a second time. A better-sqlite3 statement is freed only when V8 collects its
   * object, and a cached one lives long enough to be promoted to the old generation, which
   * is collected rarely: unique literal writes (a new text per request) left thousands of
   * evicted statements there, ~7 KB of SQLite memory each (a slave's peak RSS +50-60 MB in
   * the bench's literal figure). Uncached, a one-off statement dies young and the next
   * scavenge frees it. Holds strings only.
   */
  private readonly seen: Lru<string, true>;
  constructor(
    private readonly db: Db,
    max = 500,
  ) {
    this.map = new Lru(max);
    this.seen = new Lru(Math.max(1000, 2 * max));
  }

  /**
   * Call before a read with the schema cookie the writer last committed: when it moved,
   * the connection re-reads the schema and the cache is emptied (a cached EXPLAIN would
   * otherwise keep describing the old schema; other statements SQLite re-prepares itself).
   * An unchanged cookie costs one comparison.
   */
  sync(cookie: number | undefined): void {
    if (cookie === undefined || cookie === this.cookie) return;
    this.cookie = cookie;
    this.map.clear();
    refreshSchema(this.db);
  }

  /** The prepared statement for `sql`, preparing it on a miss (cached from its text's second miss on). */
  get(sql: string): Statement {
    let stmt = this.map.get(sql);
    if (stmt) return stmt;
    stmt = prepareFresh(this.db, sql);
    stmt.safeIntegers(true);
    if (this.seen.get(sql)) this.map.set(sql, stmt);
    else this.seen.set(sql, true);
    return stmt;
  }

  /** Forget every statement (after a schema change, or before closing). */
  clear(): void {
    this.map.clear();
  }
}

/** Runs one statement; rows come back as arrays with their column names. */
export function runStatement(cache: StatementCache, s: Stmt): StatementResult {
  const stmt = cache.get(s.sql);
  const args = bindArgs(stmt, s.params);
  if (stmt.reader) {
    stmt.raw(true);
    const before = stmt.readonly ? 0n : cache.connectionRowid();
    const rows = (stmt.all(...args) as unknown[][]).map((r) => r.map(toJsonValue));
    const columns = stmt.columns().map((c) => c.name);
    // A write with RETURNING: one row per row it changed; it moves the counters as a write.
    if (!stmt.readonly) noteReturning(cache, s.sql, rows.length, before);
    return { columns, rows };
  }
  return runChange(cache, stmt, args, s.sql);
}

// Leading whitespace and comments, then an optional WITH clause.
const LEAD = String.raw`^(?:\s|--[^\n]*(?:\n|$)|/\*[\s\S]*?\*/)*(?:WITH\b[\s\S]*?\)\s*)?`;
/** An INSERT or REPLACE (after comments and an optional WITH): it sets last_insert_rowid() when it adds a row. */
export const INSERTS = new RegExp(`${LEAD}(?:INSERT|REPLACE)\\b`, 'i');
/** An INSERT, REPLACE, UPDATE or DELETE: it sets sqlite3_changes(); other statements leave it. */
export const CHANGES = new RegExp(`${LEAD}(?:INSERT|REPLACE|UPDATE|DELETE)\\b`, 'i');

/** What a prepared statement's text says it sets, tested once per statement. */
const verbs = new WeakMap<Statement, { inserts: boolean; changes: boolean }>();

/**
 * Runs a statement that returns no rows and reports what it changed (last_insert_rowid as
 * SQLite would for the client alone). Only a top-level INSERT or REPLACE moves SQLite's
 * last_insert_rowid() (an insert by a trigger is undone when the trigger ends), so it is
 * taken from the run's own answer when such a statement added rows: no
 * `SELECT last_insert_rowid()` before every statement (one more SQLite call per row of a batch,
 * on every node).
 */
function runChange(cache: StatementCache, stmt: Statement, args: unknown[], sql: string): WriteResult {
  noteRun(cache, stmt, sql, stmt.run(...args));
  return { changes: cache.lastUserChanges, last_insert_rowid: toJsonValue(cache.lastUserRowid) as number | bigint };
}

/**
 * The counters after `stmt` (a statement that returns no rows) ran and answered `info`:
 * the same rule on a slave replaying it (runChange) and on the master in an interactive
 * transaction (interactive.ts runTyped).
 */
export function noteRun(cache: StatementCache, stmt: Statement, sql: string, info: { changes: number; lastInsertRowid: number | bigint }): void {
  let v = verbs.get(stmt);
  if (v === undefined) verbs.set(stmt, (v = { inserts: INSERTS.test(sql), changes: CHANGES.test(sql) }));
  if (info.changes > 0 && v.inserts) cache.noteRowid(BigInt(info.lastInsertRowid));
  if (info.changes > 0 || v.changes) cache.noteChanges(Number(info.changes));
}

/**
 * The counters after a write with RETURNING that gave `rows` rows (one per row it
 * changed): the same on the master (interactive.ts) and on a slave replaying it.
 * `before`: connectionRowid() before it ran.
 */
export function noteReturning(cache: StatementCache, sql: string, rows: number, before: bigint): void {
  cache.noteChanges(rows);
  const after = cache.connectionRowid();
  if (after !== before || (rows > 0 && INSERTS.test(sql))) cache.noteRowid(after);
}

/** Bounds of a read: rows returned and a wall-clock deadline (ms since epoch). */
export interface ReadLimits {
  maxRows: number;
  deadline: number;
}

/**
 * Runs a read row by row, so a runaway query is stopped at the deadline and a huge
 * result is cut at maxRows (flagged `truncated`) instead of exhausting memory.
 */
export function runRead(cache: StatementCache, s: Stmt, limits: ReadLimits): StatementResult & { truncated?: true } {
  const stmt = cache.get(s.sql);
  const args = bindArgs(stmt, s.params);
  if (!stmt.reader) return runChange(cache, stmt, args, s.sql);
  stmt.raw(true);
  const rows: unknown[][] = [];
  let truncated = false;
  const it = stmt.iterate(...args) as IterableIterator<unknown[]>;
  try {
    for (const r of it) {
      if (rows.length >= limits.maxRows) {
        truncated = true;
        break;
      }
      rows.push(r);
      if ((rows.length & 255) === 0 && Date.now() > limits.deadline) throw timeout();
    }
  } finally {
    it.return?.();
  }
  if (Date.now() > limits.deadline) throw timeout();
  const columns = stmt.columns().map((c) => c.name);
  return truncated ? { columns, rows, truncated: true } : { columns, rows };
}

/**
 * A read SQLite answers with at most one row (a point read, point-read.ts): one step with
 * get() instead of an iterator, no deadline (its program is a bounded lookup). With
 * --max-rows ≥ 1 its one row is never truncated.
 */
export function runPointRead(cache: StatementCache, s: Stmt, limits: ReadLimits): StatementResult & { truncated?: true } {
  if (limits.maxRows < 1) return runRead(cache, s, limits);
  const stmt = cache.get(s.sql);
  const row = stmt.raw(true).get(...bindArgs(stmt, s.params)) as unknown[] | undefined;
  return { columns: columnNames(stmt, row), rows: row === undefined ? [] : [row] };
}

/**
 * Result column names of a prepared statement, read from SQLite once per statement
 * (columns() builds five strings per column). Only for the event loop's point reads: their
 * cache is emptied whenever the schema cookie moves, and the cookie is current when they run
 * (a read worker's job carries a cookie that a schema change may pass while it waits).
 */
const names = new WeakMap<Statement, readonly string[]>();
function columnNames(stmt: Statement, row: unknown[] | undefined): string[] {
  let n = names.get(stmt);
  if (n === undefined || (row !== undefined && row.length !== n.length)) names.set(stmt, (n = stmt.columns().map((c) => c.name)));
  return n.slice(); // each answer owns its array
}

function timeout(): SqlfleetError {
  return new SqlfleetError('TIMEOUT', 'query ran past --query-timeout and was stopped');
}

/** Slots of statements with `?NNN` (null: none there), found once per prepared statement. */
const numbered = new WeakMap<Statement, NumberedSlots | null>();

/** The arguments better-sqlite3 binds; an array against `?NNN` is split as SQLite numbers the slots (sql/params.ts). */
export function bindArgs(stmt: Statement, params: Params | undefined): unknown[] {
  if (params === undefined) return [];
  if (!Array.isArray(params)) return [stripPrefixes(params)];
  if (/\?\d/.test(stmt.source)) {
    let slots = numbered.get(stmt);
    if (slots === undefined) numbered.set(stmt, (slots = numberedSlots(stmt.source) ?? null));
    if (slots) return bindNumbered(slots, params.map(logValue));
  }
  return params.some(isTagged) ? params.map(logValue) : params;
}

// Interactive transactions log integer and blob parameters as {"$i": "12"} and
// {"$b": "<base64>"} (store/interactive.ts: the log carries JSON); bound as bigint and bytes.
function isTagged(v: unknown): boolean {
  return typeof v === 'object' && v !== null && !(v instanceof Uint8Array);
}

function logValue(v: unknown): unknown {
  if (!isTagged(v)) return v;
  const t = v as { $i?: unknown; $b?: unknown };
  if (typeof t.$i === 'string') return BigInt(t.$i);
  if (typeof t.$b === 'string') return Buffer.from(t.$b, 'base64');
  return v;
}

function stripPrefixes(params: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(params)) out[/^[:@$]/.test(k) ? k.slice(1) : k] = logValue(v);
  return out;
}

/** Blobs become base64 strings; integers stay exact (bigint only when beyond 2^53). */
export function toJsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return v >= -9007199254740991n && v <= 9007199254740991n ? Number(v) : v;
  // Buffers arrive from read workers as plain Uint8Arrays (structured clone).
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  return v;
}

/** Maps a driver error to the client-facing error, tagging the failing statement's position. */
export function translateError(e: unknown, statement?: number): SqlfleetError {
  if (e instanceof SqlfleetError) return e;
  const details = statement === undefined ? {} : { statement };
  const err = e as { code?: unknown; message?: unknown };
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const code = typeof err?.code === 'string' ? err.code : '';
  if (code.startsWith('SQLITE_CONSTRAINT')) return new SqlfleetError('CONSTRAINT', message, { ...details, sqlite_code: code });
  if (code.startsWith('SQLITE_READONLY')) return new SqlfleetError('READ_ONLY_COMMAND', `this statement writes: ${message}`, details);
  if (code.startsWith('SQLITE_')) {
    if (/syntax error|incomplete input|unrecognized token/.test(message)) return new SqlfleetError('SQL_SYNTAX', message, details);
    return new SqlfleetError('SQL_ERROR', message, { ...details, sqlite_code: code });
  }
  if (e instanceof RangeError || e instanceof TypeError) return new SqlfleetError('BAD_REQUEST', `parameters: ${message}`, details);
  return new SqlfleetError('SQL_ERROR', message, details);
}
