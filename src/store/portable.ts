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
import { takeSnapshot } from './snapshot.js';
import { INTERNAL_PREFIX } from './types.js';

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
 * Refuses what a load cannot recreate faithfully through ordinary statements.
 */
export function recreateStatements(db: Db): string[] {
  const objs = userObjects(db);
  const virtual = objs.find((o) => o.type === 'table' && /^\s*CREATE\s+VIRTUAL\s+TABLE/i.test(o.sql ?? ''));
  if (virtual) throw bad(`virtual table ${virtual.name} cannot be loaded (its shadow tables are not ordinary tables)`);
  const tables = objs.filter((o) => o.type === 'table');
  const byName = new Map(tables.map((t) => [t.name, t]));
  const out: string[] = [];
  const ordered = fkOrder(db, tables.map((t) => t.name));
  for (const name of ordered) out.push(byName.get(name)!.sql!);
  for (const name of ordered) out.push(...insertStatements(db, name));
  for (const o of objs) if (o.type !== 'table' && o.sql) out.push(o.sql);
  const uv = Number(db.pragma('user_version', { simple: true }));
  if (uv !== 0) out.push(`PRAGMA user_version = ${uv}`);
  return out;
}

function insertStatements(db: Db, table: string): string[] {
  // Generated columns (hidden 2 and 3) cannot be inserted; they are recomputed.
  const cols = (db.prepare('SELECT name, hidden FROM pragma_table_xinfo(?)').all(table) as { name: string; hidden: number }[])
    .filter((c) => c.hidden === 0)
    .map((c) => c.name);
  const head = `INSERT INTO ${q(table)}(${cols.map(q).join(', ')}) VALUES `;
  const stmt = db.prepare(`SELECT ${cols.map(q).join(', ')} FROM ${q(table)}`).raw(true).safeIntegers(true);
  const out: string[] = [];
  let rows: string[] = [];
  let chars = 0;
  for (const r of stmt.iterate() as IterableIterator<unknown[]>) {
    const row = `(${r.map(sqlLiteral).join(', ')})`;
    rows.push(row);
    chars += row.length;
    if (rows.length >= ROWS_PER_INSERT || chars >= CHARS_PER_INSERT) {
      out.push(head + rows.join(', '));
      rows = [];
      chars = 0;
    }
  }
  if (rows.length) out.push(head + rows.join(', '));
  return out;
}

/** A SQL dump of `db`'s user objects, in the form `sqlite3 .dump` and rqlite's `fmt=sql` give. */
export function dumpSql(db: Db): string {
  return ['PRAGMA foreign_keys=OFF;', 'BEGIN TRANSACTION;', ...recreateStatements(db).map((s) => `${s};`), 'COMMIT;', ''].join('\n');
}

/** What `backupFile` produced. */
export interface BackupFile {
  file: string;
  /** Log index the copy holds. */
  index: number;
  bytes: number;
}

/**
 * A consistent copy of the user database: VACUUM INTO off the main thread (writes go on),
 * then the internal tables are removed from the copy with their pages zeroed and vacuumed,
 * so neither the log nor deleted history leaves the node.
 */
export async function backupFile(dbPath: string, out: string): Promise<BackupFile> {
  const snap = await takeSnapshot(dbPath, out);
  const db = new Database(out);
  try {
    db.pragma('journal_mode = DELETE');
    db.pragma('secure_delete = ON');
    const internal = db
      .prepare(`SELECT name FROM sqlite_schema WHERE type = 'table' AND lower(name) LIKE '\\_sqlfleet\\_%' ESCAPE '\\'`)
      .pluck()
      .all() as string[];
    for (const t of internal) db.exec(`DROP TABLE ${q(t)}`);
    db.exec('VACUUM');
  } finally {
    db.close();
  }
  return { file: out, index: snap.index, bytes: fs.statSync(out).size };
}

/** The SQLite file header's magic string. */
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** True when `data` starts like a SQLite database file. */
export const looksLikeSqlite = (data: Uint8Array): boolean => data.length >= 16 && Buffer.from(data.subarray(0, 16)).equals(MAGIC);

/**
 * Checks an uploaded SQLite file (header, page size, length, integrity, no internal tables)
 * and returns the statements that recreate it. Throws BAD_REQUEST; never touches the node.
 */
export function statementsFromSqliteFile(data: Buffer, scratchDir: string): string[] {
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

/**
 * Runs a SQL dump on a private in-memory database (so it is checked by SQLite itself, as a
 * whole) and returns the statements that recreate the result. `allowed` vets each statement
 * first (the node's classifier: no ATTACH, no extension loading, no internal tables).
 */
export function statementsFromDump(text: string, allowed: (sql: string) => void, split: (sql: string) => string[]): string[] {
  const db = new Database(':memory:');
  try {
    const stmts = split(text).filter((s) => !/^(BEGIN|COMMIT|END|ROLLBACK)\b/i.test(s) && !/^PRAGMA\s+foreign_keys\s*=/i.test(s));
    if (stmts.length === 0) throw bad('the SQL dump holds no statements');
    for (const s of stmts) {
      allowed(s);
      try {
        db.exec(s);
      } catch (e) {
        throw bad(`the SQL dump fails: ${(e as Error).message} (in: ${s.slice(0, 120)})`);
      }
    }
    return fromDb(db);
  } finally {
    db.close();
  }
}

function fromDb(db: Db): string[] {
  const internal = (db.prepare('SELECT name FROM sqlite_schema').pluck().all() as string[]).find(isInternal);
  if (internal) throw bad(`the upload contains ${internal}: tables named ${INTERNAL_PREFIX}* are sqlfleet's own and cannot be loaded`);
  return recreateStatements(db);
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

  /** The SQL dump of a backup file. */
  dump(file: string): string {
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return dumpSql(db);
    } finally {
      db.close();
    }
  }

  /** See statementsFromSqliteFile. */
  fromSqliteFile(data: Buffer): string[] {
    return statementsFromSqliteFile(data, this.o.scratchDir);
  }

  /** See statementsFromDump. */
  fromDump(text: string): string[] {
    const filtered = (sql: string) => this.o.split(sql).filter((s) => !/^(DELETE\s+FROM|INSERT\s+INTO)\s+["'`[]?sqlite_sequence\b/i.test(s));
    return statementsFromDump(text, this.o.vet, filtered);
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
