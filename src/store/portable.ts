// The database as a portable artifact (rqlite's backup and load): a consistent SQLite file
// or SQL dump of the user tables, and the validation and translation of an uploaded file
// or dump into the statements of ONE log entry that replaces every user object. A load is
// thereby an ordinary write: logged, replicated, exactly-once, and atomic (a failing
// statement rolls the whole entry back and the old database keeps serving).
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { SqlfleetError } from '../errors.js';
import { DRIVER_PATH } from './driver.js';
import { Worker } from 'node:worker_threads';
import { APPLIED_SQL } from './internal.js';
import { INTERNAL_PREFIX, type StatementResult } from './types.js';
import { CHANGES, INSERTS, toJsonValue } from './exec.js';

/** A read-only side connection on a node's file, reopened when a snapshot replaced the file. */
export class SideReader {
  private conn: Db | null = null;
  private ino = -1;

  constructor(private readonly file: string) {}

  /** The connection, reopened if the file at the path is no longer the one it opened. */
  db(): Db {
    const ino = fs.statSync(this.file).ino;
    if (this.conn && ino === this.ino) return this.conn;
    this.conn?.close();
    this.conn = new Database(this.file, { readonly: true, fileMustExist: true });
    this.conn.pragma('busy_timeout = 5000');
    this.ino = ino;
    return this.conn;
  }

  /** SQLite's error when preparing `sql` here, or null when it prepares (DQS rewrite check). */
  prepareError = (sql: string): string | null => {
    try {
      this.db().prepare(sql);
      return null;
    } catch (e) {
      return e instanceof Error ? e.message : String(e);
    }
  };

  /** Declared column types (lower case, '' when none) of a statement that returns rows, else null. */
  columnTypes(sql: string): string[] | null {
    try {
      const stmt = this.db().prepare(sql);
      return stmt.reader ? stmt.columns().map((c) => (c.type ?? '').toLowerCase()) : null;
    } catch {
      return null;
    }
  }

  /** Statements dropping every user table and view, dependents first (foreign keys are enforced). */
  dropStatements(): string[] {
    const objs = userObjects(this.db());
    const views = objs.filter((o) => o.type === 'view').map((o) => `DROP VIEW ${q(o.name)}`);
    const tables = fkOrder(this.db(), objs.filter((o) => o.type === 'table').map((o) => o.name)).reverse();
    return [...views, ...tables.map((t) => `DROP TABLE ${q(t)}`)];
  }

  /** Closes the connection. */
  close(): void {
    this.conn?.close();
    this.conn = null;
  }
}

interface SchemaObject {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

/** Identifier quoting that survives any name. */
const q = (name: string): string => `"${name.split('"').join('""')}"`;

const isInternal = (name: string): boolean => name.toLowerCase().startsWith(INTERNAL_PREFIX);

function userObjects(db: Db): SchemaObject[] {
  return (db.prepare('SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY rowid').all() as SchemaObject[]).filter(
    (o) => !o.name.toLowerCase().startsWith('sqlite_') && !isInternal(o.name) && !isInternal(o.tbl_name),
  );
}

/** Tables ordered so that every table comes after the tables its foreign keys reference. */
function fkOrder(db: Db, tables: string[]): string[] {
  const set = new Set(tables);
  const parents = new Map<string, string[]>();
  for (const t of tables) {
    const refs = db.prepare('SELECT DISTINCT "table" AS p FROM pragma_foreign_key_list(?)').pluck().all(t) as string[];
    parents.set(t, refs.filter((p) => set.has(p) && p !== t));
  }
  const out: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (t: string): void => {
    if (state.get(t)) return; // done, or a cycle: keep schema order for the rest of it
    state.set(t, 'visiting');
    for (const p of parents.get(t) ?? []) visit(p);
    state.set(t, 'done');
    out.push(t);
  };
  for (const t of tables) visit(t);
  return out;
}

/** A SQL literal for a value read with safeIntegers: exact integers, REAL kept REAL, blobs as X''. */
export function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'NULL';
    if (!Number.isFinite(v)) return v > 0 ? '1e999' : '-1e999';
    const s = String(v);
    return /[.eE]/.test(s) ? s : `${s}.0`; // a REAL stays a REAL
  }
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `X'${Buffer.from(v).toString('hex').toUpperCase()}'`;
  return `'${String(v).split("'").join("''")}'`;
}

/** Rows per INSERT and about how many characters one may reach. */
const ROWS_PER_INSERT = 500;
const CHARS_PER_INSERT = 256 * 1024;

/**
 * The statements that recreate every user object of `db` with its rows: tables (parents
 * first), rows as multi-row INSERTs, then indexes, triggers and views, then user_version.
 * Refuses what a load cannot recreate faithfully through ordinary statements. Lazy, so a
 * dump can be streamed in slices.
 */
export function* recreate(db: Db, rows: (db: Db, table: string) => Iterable<LoadStatement> = insertStatements): Generator<LoadStatement> {
  const objs = userObjects(db);
  const virtual = objs.find((o) => o.type === 'table' && /^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(o.sql ?? ''));
  if (virtual) throw bad(`virtual table ${virtual.name} cannot be loaded (its shadow tables are not ordinary tables)`);
  const tables = objs.filter((o) => o.type === 'table');
  const byName = new Map(tables.map((t) => [t.name, t]));
  const ordered = fkOrder(db, tables.map((t) => t.name));
  for (const name of ordered) yield { sql: byName.get(name)!.sql! };
  for (const name of ordered) yield* rows(db, name);
  for (const o of objs) if (o.type !== 'table' && o.sql) yield { sql: o.sql };
  const uv = Number(db.pragma('user_version', { simple: true }));
  if (uv !== 0) yield { sql: `PRAGMA user_version = ${uv}` };
}

/** One statement of a load, with its parameters. */
export interface LoadStatement {
  sql: string;
  params?: string[];
}

// Generated columns (hidden 2 and 3) cannot be inserted; they are recomputed.
function insertableColumns(db: Db, table: string): string[] {
  return (db.prepare('SELECT name, hidden FROM pragma_table_xinfo(?)').all(table) as { name: string; hidden: number }[])
    .filter((c) => c.hidden === 0)
    .map((c) => c.name);
}

// Rows of `table`, read exactly (safeIntegers), encoded and grouped into chunks.
function* chunks(db: Db, table: string, cols: string[], encode: (row: unknown[]) => string): Generator<string[]> {
  const stmt = db.prepare(`SELECT ${cols.map(q).join(', ')} FROM ${q(table)}`).raw(true).safeIntegers(true);
  let rows: string[] = [];
  let chars = 0;
  for (const r of stmt.iterate() as IterableIterator<unknown[]>) {
    const row = encode(r);
    rows.push(row);
    chars += row.length;
    if (rows.length >= ROWS_PER_INSERT || chars >= CHARS_PER_INSERT) {
      yield rows;
      rows = [];
      chars = 0;
    }
  }
  if (rows.length) yield rows;
}

/** Multi-row `INSERT ... VALUES` statements with literals: the form of a SQL dump. */
function* insertStatements(db: Db, table: string): Generator<LoadStatement> {
  const cols = insertableColumns(db, table);
  const head = `INSERT INTO ${q(table)}(${cols.map(q).join(', ')}) VALUES `;
  for (const rows of chunks(db, table, cols, (r) => `(${r.map(sqlLiteral).join(', ')})`)) yield { sql: head + rows.join(', ') };
}

/** A value as JSON that json_extract gives back with its SQLite type: REAL keeps a decimal point, a BLOB is {"x": hex}. */
function jsonValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'number') return sqlLiteral(v) === 'NULL' ? 'null' : sqlLiteral(v);
  if (Buffer.isBuffer(v) || v instanceof Uint8Array) return `{"x":"${Buffer.from(v).toString('hex')}"}`;
  return JSON.stringify(String(v));
}

/**
 * The same rows for a load: one short statement per table whose data is a bound JSON text
 * (`json_each`), so the classifier parses a few hundred characters per table instead of
 * the whole database (sql-parser-cst reads about 1 MB/s), and values keep their types.
 */
export function* jsonInsertStatements(db: Db, table: string): Generator<LoadStatement> {
  const cols = insertableColumns(db, table);
  const exprs = cols.map((_c, i) => `CASE json_type(value, '$[${i}]') WHEN 'object' THEN unhex(json_extract(value, '$[${i}].x')) ELSE json_extract(value, '$[${i}]') END`);
  const sql = `INSERT INTO ${q(table)}(${cols.map(q).join(', ')}) SELECT ${exprs.join(', ')} FROM json_each(?) ORDER BY key`;
  for (const rows of chunks(db, table, cols, (r) => `[${r.map(jsonValue).join(',')}]`)) yield { sql, params: [`[${rows.join(',')}]`] };
}

/**
 * A SQL dump of the database file, in the form `sqlite3 .dump` and rqlite's `fmt=sql`
 * give, in slices: the event loop gets a turn between slices, so writes go on meanwhile.
 */
export async function* dumpSlices(file: string): AsyncGenerator<string> {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    yield 'PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n';
    for (const s of recreate(db)) {
      yield `${s.sql};\n`;
      await new Promise((resolve) => setImmediate(resolve));
    }
    yield 'COMMIT;\n';
  } finally {
    db.close();
  }
}

/** What `backupFile` produced. */
export interface BackupFile {
  file: string;
  /** Log index the copy holds. */
  index: number;
  bytes: number;
}

// The whole backup runs on a worker thread (inline code: no extra file for the bundle to
// ship), so neither the copies nor dropping the log from the copy block the event loop.
const BACKUP_WORKER = `
const { parentPort, workerData: w } = require('node:worker_threads');
const Database = require(w.driver);
let src, copy;
try {
  src = new Database(w.dbPath, { readonly: true, fileMustExist: true });
  src.pragma('busy_timeout = 5000');
  src.prepare('VACUUM INTO ?').run(w.full);
  src.close();
  src = undefined;
  copy = new Database(w.full);
  copy.pragma('journal_mode = DELETE');
  const index = Number(copy.prepare(w.appliedSql).pluck().get() || 0);
  const internal = copy.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' AND substr(lower(name), 1, length(?)) = ?").pluck().all(w.prefix, w.prefix);
  for (const t of internal) copy.exec('DROP TABLE "' + t.split('"').join('""') + '"');
  copy.prepare('VACUUM INTO ?').run(w.out);
  parentPort.postMessage({ ok: true, index });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String(e && e.message ? e.message : e) });
} finally {
  if (src) src.close();
  if (copy) copy.close();
}
`;

/**
 * A consistent copy of the user database: VACUUM INTO from the live file (a read
 * transaction: writes go on), the internal tables dropped from that private copy, then a
 * second VACUUM INTO that keeps only live pages, so neither the log nor deleted history
 * leaves the node. All of it off the main thread.
 */
export async function backupFile(dbPath: string, out: string): Promise<BackupFile> {
  const full = `${out}.full`;
  fs.rmSync(out, { force: true });
  try {
    const index = await new Promise<number>((resolve, reject) => {
      const w = new Worker(BACKUP_WORKER, { eval: true, workerData: { driver: DRIVER_PATH, dbPath, full, out, appliedSql: APPLIED_SQL, prefix: INTERNAL_PREFIX } });
      w.once('message', (m: { ok: boolean; index?: number; error?: string }) => (m.ok ? resolve(m.index ?? 0) : reject(new Error(`backup failed: ${m.error}`))));
      w.once('error', reject);
      w.once('exit', (code) => code !== 0 && reject(new Error(`backup worker exited with ${code}`)));
    });
    return { file: out, index, bytes: fs.statSync(out).size };
  } finally {
    for (const s of ['', '-journal', '-wal', '-shm']) fs.rmSync(full + s, { force: true });
  }
}

/** The SQLite file header's magic string. */
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** True when `data` starts like a SQLite database file. */
export const looksLikeSqlite = (data: Uint8Array): boolean => data.length >= 16 && Buffer.from(data.subarray(0, 16)).equals(MAGIC);

/**
 * Checks an uploaded SQLite file (header, page size, length, integrity, no internal tables)
 * and returns the statements that recreate it. Throws BAD_REQUEST; never touches the node.
 */
export function statementsFromSqliteFile(data: Buffer, scratchDir: string): LoadStatement[] {
  if (!looksLikeSqlite(data)) throw bad('not a SQLite database file (the header is missing)');
  if (data.length < 100) throw bad('truncated SQLite file: shorter than its 100-byte header');
  const raw = data.readUInt16BE(16);
  const pageSize = raw === 1 ? 65536 : raw;
  if (pageSize < 512 || pageSize > 65536 || (pageSize & (pageSize - 1)) !== 0) throw bad(`invalid page size ${raw} in the SQLite header`);
  if (data.length % pageSize !== 0) throw bad(`truncated SQLite file: ${data.length} bytes is not a whole number of ${pageSize}-byte pages`);
  const pages = data.readUInt32BE(28);
  // The in-header page count is valid when its version number matches the change counter.
  if (pages > 0 && data.readUInt32BE(92) === data.readUInt32BE(24) && pages * pageSize !== data.length) {
    throw bad(`truncated SQLite file: the header says ${pages} pages of ${pageSize} bytes, the file has ${data.length} bytes`);
  }
  const file = path.join(scratchDir, `load-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.db`);
  fs.writeFileSync(file, data);
  let db: Db | null = null;
  try {
    // Journal mode rollback in the header (bytes 18-19 = 1) so no -wal file is looked for.
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.from([1, 1]), 0, 2, 18);
    fs.closeSync(fd);
    db = new Database(file, { fileMustExist: true });
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw bad(`corrupt SQLite file: integrity_check says ${String(check)}`);
    return fromDb(db);
  } catch (e) {
    if (e instanceof SqlfleetError) throw e;
    throw bad(`unreadable SQLite file: ${(e as Error).message}`);
  } finally {
    db?.close();
    for (const s of ['', '-journal', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
  }
}

/** What a dump gives: the statements that recreate its result, and each of its own statements' result. */
export interface DumpLoad {
  statements: LoadStatement[];
  /** One per statement of the dump as sent (transaction control left out), as run on an empty database. */
  results: StatementResult[];
}

/**
 * Runs a SQL dump on a private in-memory database (so it is checked by SQLite itself, as a
 * whole) and returns the statements that recreate the result, with the result of each of
 * the dump's statements there (a load replaces everything, so an empty database is where
 * they run). `allowed` vets each statement first (the node's classifier: no ATTACH, no
 * extension loading, no internal tables); `rewrite` may change a statement before it runs
 * (rqlite's double-quoted-string rule), given SQLite's verdict on a text.
 */
export function statementsFromDump(
  text: string,
  allowed: (sql: string) => void,
  split: (sql: string) => string[],
  rewrite?: (sql: string, check: (sql: string) => string | null) => string,
  start: { changes: number; rowid: number | bigint } = { changes: 0, rowid: 0 },
): DumpLoad {
  const db = new Database(':memory:');
  try {
    const stmts = split(text).filter((s) => !/^(BEGIN|COMMIT|END|ROLLBACK)\b/i.test(s) && !/^PRAGMA\s+foreign_keys\s*=/i.test(s));
    if (stmts.length === 0) throw bad('the SQL dump holds no statements');
    const check = (sql: string): string | null => {
      try {
        db.prepare(sql);
        return null;
      } catch (e) {
        return (e as Error).message;
      }
    };
    const results: StatementResult[] = [];
    // As SQLite reports to the client: DDL before any INSERT/UPDATE/DELETE of the dump shows
    // the counts the node's writer had (rqlite runs a load on its one connection).
    let changes = start.changes;
    let rowid = start.rowid;
    for (const raw of stmts) {
      allowed(raw);
      const s = rewrite ? rewrite(raw, check) : raw;
      try {
        const stmt = db.prepare(s);
        if (stmt.reader) {
          stmt.raw(true);
          results.push({ columns: stmt.columns().map((c) => c.name), rows: (stmt.all() as unknown[][]).map((r) => r.map(toJsonValue)) } as StatementResult);
        } else {
          const info = stmt.run();
          // sqlite3_changes(): DDL leaves the last INSERT/UPDATE/DELETE's count (exec.ts).
          if (info.changes > 0 || CHANGES.test(s)) changes = info.changes;
          if (info.changes > 0 && INSERTS.test(s)) rowid = toJsonValue(info.lastInsertRowid) as number | bigint;
          results.push({ changes, last_insert_rowid: rowid });
        }
      } catch (e) {
        throw bad(`the SQL dump fails: ${(e as Error).message} (in: ${s.slice(0, 120)})`);
      }
    }
    return { statements: fromDb(db), results };
  } finally {
    db.close();
  }
}

function fromDb(db: Db): LoadStatement[] {
  const internal = (db.prepare('SELECT name FROM sqlite_schema').pluck().all() as string[]).find(isInternal);
  if (internal) throw bad(`the upload contains ${internal}: tables named ${INTERNAL_PREFIX}* are sqlfleet's own and cannot be loaded`);
  return [...recreate(db, jsonInsertStatements)];
}

function bad(message: string): SqlfleetError {
  return new SqlfleetError('BAD_REQUEST', message);
}

/** What a Portable needs: the node's file, a scratch directory, and the classifier's verdict. */
export interface PortableOptions {
  dbPath: string;
  scratchDir: string;
  /** Throws when a dump statement may not run on any node (ATTACH, internal tables, ...). */
  vet: (sql: string) => void;
  split: (sql: string) => string[];
  /** Applied to each statement of a dump before it runs (rqlite's double-quoted strings), given SQLite's verdict on a text. */
  rewrite?: (sql: string, check: (sql: string) => string | null) => string;
  /** The writer's counts as a client sees them (store.lastClientWrite), where a dump's results start. */
  lastWrite?: () => { changes: number; rowid: number | bigint };
}

/** Backup, load and column-type support of one node, for the rqlite routes. */
export class Portable {
  private readonly side: SideReader;

  constructor(private readonly o: PortableOptions) {
    this.side = new SideReader(o.dbPath);
  }

  /** See SideReader.prepareError. */
  prepareError = (sql: string): string | null => this.side.prepareError(sql);

  /** See SideReader.columnTypes. */
  columnTypes(sql: string): string[] | null {
    return this.side.columnTypes(sql);
  }

  /** See SideReader.dropStatements. */
  dropStatements(): string[] {
    return this.side.dropStatements();
  }

  /** A cleaned consistent copy in the scratch directory. */
  backup(): Promise<BackupFile> {
    const out = path.join(this.o.scratchDir, `backup-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.db`);
    return backupFile(this.o.dbPath, out).catch((e: unknown) => {
      this.remove(out);
      throw e;
    });
  }

  /** The SQL dump of a backup file, in slices (see dumpSlices). */
  dump(file: string): AsyncGenerator<string> {
    return dumpSlices(file);
  }

  /** See statementsFromSqliteFile. */
  fromSqliteFile(data: Buffer): LoadStatement[] {
    return statementsFromSqliteFile(data, this.o.scratchDir);
  }

  /** See statementsFromDump (with the node's double-quoted-string rule, rqlite's). */
  fromDump(text: string): DumpLoad {
    const filtered = (sql: string) => this.o.split(sql).filter((s) => !/^(DELETE\s+FROM|INSERT\s+INTO)\s+["'`[]?sqlite_sequence\b/i.test(s));
    return statementsFromDump(text, this.o.vet, filtered, this.o.rewrite, this.o.lastWrite?.());
  }

  /** Removes a file this made. */
  remove(file: string): void {
    for (const s of ['', '-journal', '-wal', '-shm']) fs.rmSync(file + s, { force: true });
  }

  /** Closes the side connection. */
  close(): void {
    this.side.close();
  }
}
