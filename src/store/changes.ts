// Change capture (DESIGN §9): row-level events written by SQLite itself, in the same
// transaction as the entry that caused them, on every node.
//
// better-sqlite3 has no preupdate hook and no session extension, so each node installs
// TEMP triggers (AFTER INSERT/UPDATE/DELETE) on its writer connection for every captured
// table. TEMP triggers live in the connection, not in the file: they are not replicated,
// not in snapshots, and need no DDL entry, so --capture stays a node-local flag. They write
// into the main-schema table _sqlfleet_changes, so an entry's events commit (or roll back,
// statement by statement) with the entry itself. Slaves apply entries on their writer
// connection too, so the same triggers fire there and every node records the same events.
//
// The triggers read the entry index and time from app-defined functions: the index is the
// log's last row + 1 (the entry is logged after its statements run), the time is the
// entry's, from the determinism context. Schema changes move the schema cookie; the
// triggers are rebuilt then, and the change is recorded as a 'schema' event.
import type { Database as Db, Statement } from 'better-sqlite3';
import type { CaptureSpec } from '../config.js';
import type { Determinism, DetSession, EntryContext } from './determinism.js';
import { prepareFresh, type StatementCache } from './exec.js';
import { APPLIED_SQL, LOG_TABLE, META_TABLE } from './internal.js';
import { INTERNAL_PREFIX } from './types.js';

export type { CaptureSpec };

export const CHANGES_TABLE = `${INTERNAL_PREFIX}changes`;
/** Meta key: the lowest index whose events this node still holds in full. */
const OLDEST_KEY = 'changes_oldest';
const TRIGGER_PREFIX = `${INTERNAL_PREFIX}cdc_`;
const TRIM_EVERY_MS = 1000;

/** A stored event, as read back: its position and its JSON text (built once, identical on every node). */
export interface StoredChange {
  index: number;
  pos: number;
  table: string;
  op: string;
  json: string;
}

/** Statements that only change rows: no trigger can make them fail, so the triggers stay. */
const DML = /^\s*(?:INSERT|REPLACE|UPDATE|DELETE|SELECT|WITH|VALUES)\b/i;

const q = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const lit = (s: string): string => `'${s.replace(/'/g, "''")}'`;

/** Row image of `ref` (NEW or OLD) as a JSON object; blobs as base64 text, integers exact. */
function image(ref: string, cols: readonly string[]): string {
  const pairs = cols.map((c) => `${lit(c)}, CASE WHEN typeof(${ref}.${q(c)}) = 'blob' THEN ${INTERNAL_PREFIX}b64(${ref}.${q(c)}) ELSE ${ref}.${q(c)} END`);
  return `json_object(${pairs.join(', ')})`;
}

interface TableShape {
  name: string;
  cols: string[];
  key: string[];
}

/**
 * Capture on one writer connection: functions, triggers, schema tracking. Built on every
 * open of the writer (a snapshot install reopens it).
 */
class Capture {
  private idx: number | undefined;
  private ts = 0;
  /** SQL of the statement last prepared on the writer: the text of a schema event. */
  private lastSql = '';
  private cookie = -1;
  private tempCookie = -1;
  private dirty = false;
  private inEntry = false;
  private schema = new Map<string, [string, string]>();
  private readonly mainCookie: Statement;
  private readonly tmpCookie: Statement;
  private readonly applied: Statement;
  private readonly lastLogged: Statement;
  private readonly putSchema: Statement;
  private readonly schemaRows: Statement;
  private readonly tables: Statement;
  private readonly triggers: Statement;

  constructor(
    private readonly db: Db,
    private readonly spec: 'all' | ReadonlySet<string>,
  ) {
    db.function(`${INTERNAL_PREFIX}cdc_idx`, () => this.idx ?? 0);
    db.function(`${INTERNAL_PREFIX}cdc_ts`, () => this.ts);
    db.function(`${INTERNAL_PREFIX}b64`, { deterministic: true }, (b: unknown) => Buffer.from(b as Uint8Array).toString('base64'));
    this.mainCookie = db.prepare('PRAGMA main.schema_version').pluck();
    this.tmpCookie = db.prepare('PRAGMA temp.schema_version').pluck();
    this.applied = db.prepare(APPLIED_SQL).raw(true);
    this.lastLogged = db.prepare(`SELECT max(idx) FROM ${LOG_TABLE}`).pluck();
    this.putSchema = db.prepare(
      `INSERT INTO ${CHANGES_TABLE}(idx, pos, tbl, op, ts, sql) VALUES (@idx, (SELECT coalesce(max(pos) + 1, 0) FROM ${CHANGES_TABLE} WHERE idx = @idx), @tbl, 'schema', @ts, @sql)`,
    );
    this.schemaRows = db.prepare(`SELECT type || ' ' || name, tbl_name, sql FROM main.sqlite_schema WHERE name NOT LIKE '${INTERNAL_PREFIX}%' AND name NOT LIKE 'sqlite~_%' ESCAPE '~' ORDER BY 1`).raw(true);
    this.tables = db.prepare(`SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' AND name NOT LIKE '${INTERNAL_PREFIX}%' AND name NOT LIKE 'sqlite~_%' ESCAPE '~' ORDER BY name`).pluck();
    this.triggers = db.prepare(`SELECT name FROM temp.sqlite_schema WHERE type = 'trigger' AND name LIKE '${TRIGGER_PREFIX}%'`).pluck();
    this.resync();
  }

  /** Wraps the writer's determinism so every entry (and interactive statement) passes through here. */
  wrap(det: Determinism): Determinism {
    return {
      withEntry: <T>(ctx: EntryContext, fn: () => T): T => this.around(ctx, () => det.withEntry(ctx, fn)),
      withSession: <T>(s: DetSession, fn: () => T): T => this.around(s.ctx, () => det.withSession(s, fn)),
    };
  }

  /** Hooks the writer's statement cache: each prepare is a statement boundary. */
  hook(cache: StatementCache): void {
    const get = cache.get.bind(cache);
    cache.get = (sql: string) => {
      if (this.inEntry) {
        this.boundary();
        this.lastSql = sql;
        // A trigger naming a column makes ALTER TABLE ... DROP COLUMN fail ("error in
        // trigger"): on a capturing node only, which would split replicas. Triggers are
        // dropped before any statement that is not plain DML, and rebuilt after it.
        if (!DML.test(sql)) this.dropTriggers();
      }
      return get(sql);
    };
  }

  private around<T>(ctx: EntryContext, fn: () => T): T {
    this.inEntry = true;
    this.ts = ctx.ts;
    // The entry is logged after its statements run: its index is the log's last + 1.
    this.idx = this.currentIndex();
    // A rolled-back transaction also rolls back trigger changes made in it: rebuild quietly.
    if (this.cookie !== this.readCookie() || this.tempCookie !== Number(this.tmpCookie.get()) || this.dirty) this.resync();
    try {
      const r = fn();
      this.boundary();
      return r;
    } finally {
      this.inEntry = false;
      this.idx = undefined;
      this.ts = 0;
    }
  }

  private readCookie(): number {
    return Number(this.mainCookie.get());
  }

  private currentIndex(): number {
    // max(idx) is one B-tree seek (~0.5 µs); the full applied point (~5 µs) only for an empty log.
    const last = this.lastLogged.get() as number | null;
    if (last !== null) return last + 1;
    const row = this.applied.get() as [number | null] | undefined;
    return Number(row?.[0] ?? 0) + 1;
  }

  /** After a statement: if it changed the schema, record a schema event and rebuild the triggers. */
  private boundary(): void {
    const cookie = this.readCookie();
    if (cookie === this.cookie && !this.dirty) return;
    if (cookie !== this.cookie) {
      const before = this.schema;
      const after = this.readSchema();
      const touched = new Set<string>();
      for (const [k, v] of after) if (before.get(k)?.[1] !== v[1]) touched.add(v[0]);
      for (const [k, v] of before) if (!after.has(k)) touched.add(v[0]);
      const table = [...touched].sort().find((t) => this.captures(t));
      if (table !== undefined && this.idx !== undefined) this.putSchema.run({ idx: this.idx, tbl: table, ts: this.ts, sql: this.lastSql });
    }
    this.resync();
  }

  private captures(table: string): boolean {
    return this.spec === 'all' || this.spec.has(table);
  }

  private readSchema(): Map<string, [string, string]> {
    const m = new Map<string, [string, string]>();
    for (const [k, tbl, sql] of this.schemaRows.all() as [string, string, string | null][]) m.set(k, [tbl, sql ?? '']);
    return m;
  }

  /** Drops and recreates the triggers for the current schema; records the cookies they match. */
  private resync(): void {
    this.dropTriggers();
    for (const name of this.tables.all() as string[]) if (this.captures(name)) this.createTriggers(this.shape(name));
    this.schema = this.readSchema();
    this.cookie = this.readCookie();
    this.tempCookie = Number(this.tmpCookie.get());
    this.dirty = false;
  }

  private dropTriggers(): void {
    const names = this.triggers.all() as string[];
    for (const n of names) this.db.exec(`DROP TRIGGER IF EXISTS temp.${q(n)}`);
    if (names.length) this.dirty = true;
  }

  private shape(name: string): TableShape {
    const info = this.db.prepare(`SELECT name, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid`).all(name) as { name: string; pk: number; hidden: number }[];
    const cols = info.filter((c) => c.hidden !== 1).map((c) => c.name);
    const key = info.filter((c) => c.pk > 0).sort((a, b) => a.pk - b.pk).map((c) => c.name);
    return { name, cols, key };
  }

  private createTriggers(t: TableShape): void {
    const keyOf = (ref: string) => (t.key.length ? image(ref, t.key) : `json_object('rowid', ${ref}.rowid)`);
    const ins = (op: string, key: string, before: string, after: string) =>
      `INSERT INTO main.${CHANGES_TABLE}(idx, pos, tbl, op, key, before, after, ts) VALUES (${INTERNAL_PREFIX}cdc_idx(), ` +
      `(SELECT coalesce(max(pos) + 1, 0) FROM main.${CHANGES_TABLE} WHERE idx = ${INTERNAL_PREFIX}cdc_idx()), ` +
      `${lit(t.name)}, '${op}', ${key}, ${before}, ${after}, ${INTERNAL_PREFIX}cdc_ts());`;
    const on = `ON main.${q(t.name)} BEGIN`;
    const name = (op: string) => q(`${TRIGGER_PREFIX}${op}_${t.name}`);
    this.db.exec(
      `CREATE TEMP TRIGGER ${name('i')} AFTER INSERT ${on} ${ins('insert', keyOf('NEW'), 'NULL', image('NEW', t.cols))} END;` +
        `CREATE TEMP TRIGGER ${name('u')} AFTER UPDATE ${on} ${ins('update', keyOf('NEW'), image('OLD', t.cols), image('NEW', t.cols))} END;` +
        `CREATE TEMP TRIGGER ${name('d')} AFTER DELETE ${on} ${ins('delete', keyOf('OLD'), image('OLD', t.cols), 'NULL')} END;`,
    );
  }
}

/** Creates the changes table when missing, and notes from which index this node holds events. */
function createChangesTable(db: Db): void {
  const exists = db.prepare(`SELECT 1 FROM sqlite_schema WHERE name = ?`).get(CHANGES_TABLE);
  if (exists) return;
  db.transaction(() => {
    db.exec(`CREATE TABLE ${CHANGES_TABLE} (
      idx INTEGER NOT NULL, pos INTEGER NOT NULL, tbl TEXT NOT NULL, op TEXT NOT NULL,
      key TEXT, before TEXT, after TEXT, ts INTEGER NOT NULL, sql TEXT,
      PRIMARY KEY (idx, pos)) WITHOUT ROWID`);
    const row = db.prepare(APPLIED_SQL).raw(true).get() as [number | null] | undefined;
    db.prepare(`INSERT OR REPLACE INTO ${META_TABLE}(key, value) VALUES (?, ?)`).run(OLDEST_KEY, Number(row?.[0] ?? 0) + 1);
  }).immediate();
}

/** Options of a node's change log. */
export interface ChangeLogOptions {
  capture: CaptureSpec;
  /** Events of this many most recent entries are kept (by index); older ones are trimmed. */
  retain: number;
  /** The store's applied index (trimming keeps the events of the last `retain` entries). */
  applied: () => number;
}

/**
 * A node's change feed: capture on its writer, reads of stored events, and wake-ups for
 * subscribers when entries commit. Outlives reopenings of the database (snapshots).
 */
export class ChangeLog {
  private readonly listeners = new Set<(index: number) => void>();
  private readonly closers = new Set<() => void>();
  /** The webhook's delivered index, when one runs: events not yet delivered are not trimmed. */
  hold: (() => number) | null = null;
  private reader: Db | null = null;
  private writer: Db | null = null;
  private readStmt: Statement | null = null;
  private timer: NodeJS.Timeout | null = null;
  private readonly spec: 'all' | 'none' | ReadonlySet<string>;

  constructor(readonly options: ChangeLogOptions) {
    const c = options.capture;
    this.spec = c === 'all' || c === 'none' ? c : new Set(c);
  }

  /** True when this node captures anything. */
  get enabled(): boolean {
    return this.spec !== 'none';
  }

  /**
   * Installs capture on a freshly opened writer (and remembers the read connection);
   * returns the determinism to use on the writer (the same one when capture is off).
   */
  attach(writer: Db, reader: Db, cache: StatementCache, det: Determinism): Determinism {
    this.writer = writer;
    this.reader = reader;
    this.readStmt = null;
    if (this.spec === 'none') return det;
    createChangesTable(writer);
    const cap = new Capture(writer, this.spec);
    cap.hook(cache);
    if (!this.timer) {
      this.timer = setInterval(() => {
        try {
          this.trim(this.options.applied());
        } catch {
          // busy or closing: the next tick tries again
        }
      }, TRIM_EVERY_MS);
      this.timer.unref();
    }
    return cap.wrap(det);
  }

  /** The store's applied index now. */
  applied(): number {
    return this.options.applied();
  }

  /** Called by the store after each commit, with the last index applied. */
  committed(index: number): void {
    for (const fn of this.listeners) fn(index);
  }

  /** Calls `fn` when the node stops (open feeds end) until the returned function is called. */
  onShutdown(fn: () => void): () => void {
    this.closers.add(fn);
    return () => this.closers.delete(fn);
  }

  /** Open feeds (each registered for shutdown). */
  get feeds(): number {
    return this.closers.size;
  }

  /** Ends every open feed (the node is stopping). */
  shutdown(): void {
    for (const fn of [...this.closers]) fn();
    this.closers.clear();
  }

  /** Calls `fn` after every commit until the returned function is called. */
  subscribe(fn: (index: number) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Subscribers now. */
  get subscribers(): number {
    return this.listeners.size;
  }

  /** The lowest index whose events this node still holds in full. */
  oldest(): number {
    if (!this.reader) return 1;
    try {
      const v = this.reader.prepare(`SELECT value FROM ${META_TABLE} WHERE key = ?`).pluck().get(OLDEST_KEY);
      return v === undefined ? 1 : Number(v);
    } catch {
      return 1;
    }
  }

  /** Up to `limit` events after position (index, pos), in order. */
  read(index: number, pos: number, limit: number): StoredChange[] {
    if (!this.reader || this.spec === 'none') return [];
    try {
      this.readStmt ??= prepareFresh(this.reader, `SELECT idx, pos, tbl, op, key, before, after, ts, sql FROM ${CHANGES_TABLE} WHERE (idx, pos) > (?, ?) ORDER BY idx, pos LIMIT ?`).raw(true);
    } catch {
      return []; // the table is not there (yet): nothing captured
    }
    const rows = this.readStmt.all(index, pos, limit) as [number, number, string, string, string | null, string | null, string | null, number, string | null][];
    return rows.map(([idx, p, tbl, op, key, before, after, ts, sql]) => ({ index: idx, pos: p, table: tbl, op, json: eventJson(idx, p, tbl, op, key, before, after, ts, sql) }));
  }

  /**
   * Deletes events of entries older than the retention; false when the writer is busy (an
   * interactive transaction holds it) and the next call should try again.
   */
  trim(applied: number): boolean {
    const db = this.writer;
    if (!db || !db.open || db.inTransaction || this.spec === 'none') return !db?.inTransaction;
    const oldest = this.oldest();
    const cut = Math.min(applied - this.options.retain + 1, oldest + 10_000, (this.hold?.() ?? Infinity) + 1); // bounded work per call
    if (cut <= oldest) return true;
    db.transaction(() => {
      db.prepare(`DELETE FROM ${CHANGES_TABLE} WHERE idx < ?`).run(cut);
      db.prepare(`INSERT OR REPLACE INTO ${META_TABLE}(key, value) VALUES (?, ?)`).run(OLDEST_KEY, cut);
    }).immediate();
    return true;
  }
}

/** One event as JSON text: stored JSON images spliced in as they are (64-bit integers stay exact). */
function eventJson(idx: number, pos: number, tbl: string, op: string, key: string | null, before: string | null, after: string | null, ts: number, sql: string | null): string {
  const time = JSON.stringify(new Date(ts).toISOString());
  const base = `{"index":${idx},"pos":${pos},"table":${JSON.stringify(tbl)},"op":"${op}","key":${key ?? 'null'},"before":${before ?? 'null'},"after":${after ?? 'null'},"ts":${time}`;
  return sql === null ? `${base}}` : `${base},"sql":${JSON.stringify(sql)}}`;
}
