// The internal tables: replication log and node metadata, written in the same
// transactions as user data so a crash leaves log, data and applied index consistent.
//
// The applied point (index and chain hash) is the log's last row: a commit writes no
// metadata row (one B-tree page less in the WAL per commit, ~10 µs of CPU on every node
// per write). The meta row holds it for when the log is empty: it is written in the same
// transaction that trims the log, so max(last log row, meta row) is always right.
import type { Database as Db, Statement } from 'better-sqlite3';
import { INTERNAL_PREFIX } from './types.js';

export const LOG_TABLE = `${INTERNAL_PREFIX}log`;
export const META_TABLE = `${INTERNAL_PREFIX}meta`;
/** Idempotency keys of applied writes: key -> index and the first answer's results. */
export const IDEM_TABLE = `${INTERNAL_PREFIX}idem`;

/**
 * The applied point of a database: its last log row, or the meta row when that is ahead
 * (a trimmed log). One row: [index, hash]. Used by the store, the read workers, snapshots
 * and backups alike.
 */
export const APPLIED_SQL = `SELECT idx, hash FROM (
  SELECT idx, hash FROM ${LOG_TABLE} WHERE idx = (SELECT max(idx) FROM ${LOG_TABLE})
  UNION ALL
  SELECT (SELECT value FROM ${META_TABLE} WHERE key = 'applied_index'), (SELECT value FROM ${META_TABLE} WHERE key = 'last_hash')
) ORDER BY idx DESC LIMIT 1`;

/** Reads the applied point of `db` (see APPLIED_SQL). */
export function readApplied(db: Db): { index: number; hash: string } {
  const row = db.prepare(APPLIED_SQL).raw(true).get() as [number | null, string | null] | undefined;
  return { index: Number(row?.[0] ?? 0), hash: String(row?.[1] ?? '') };
}

/**
 * Log rows from idx ? on (at most ? of them) as [idx, JSON text of the entry], the text
 * built by SQLite: the text of store.ts entryJson() (an idempotency key may be escaped
 * otherwise, as JSON: it parses the same). One string per row instead of seven values
 * and a template: a catching-up master's log reads cost ~40 % less CPU (bench/log-read-cost.ts).
 */
export const LOG_JSON_SQL = `SELECT idx, '{"index":' || idx || ',"epoch":' || epoch || ',"ts":' || ts || ',"seed":"' || seed || '","hash":"' || hash
  || '","stmts":' || stmts || CASE WHEN ikey IS NULL THEN '}' ELSE ',"key":' || json_quote(ikey) || '}' END
  FROM ${LOG_TABLE} WHERE idx >= ? ORDER BY idx LIMIT ?`;

/** Creates the internal tables when missing. */
export function createInternalTables(db: Db): void {
  db.exec(`
    CREATE TABLE IF NOT EXISTS ${LOG_TABLE} (
      idx INTEGER PRIMARY KEY,
      epoch INTEGER NOT NULL,
      ts INTEGER NOT NULL,
      seed TEXT NOT NULL,
      hash TEXT NOT NULL,
      stmts TEXT NOT NULL
    );
    CREATE TABLE IF NOT EXISTS ${META_TABLE} (key TEXT PRIMARY KEY, value) WITHOUT ROWID;
    INSERT OR IGNORE INTO ${META_TABLE}(key, value) VALUES ('applied_index', 0), ('last_hash', ''), ('epoch', 0);
    CREATE TABLE IF NOT EXISTS ${IDEM_TABLE} (key TEXT PRIMARY KEY, idx INTEGER NOT NULL, ts INTEGER NOT NULL, results TEXT NOT NULL) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS ${IDEM_TABLE}_ts ON ${IDEM_TABLE}(ts);
  `);
  // The log carries each entry's idempotency key so catch-up and failover copies ship it;
  // files written before keys existed get the column here.
  const cols = db.prepare(`SELECT name FROM pragma_table_info('${LOG_TABLE}')`).pluck().all();
  if (!cols.includes('ikey')) db.exec(`ALTER TABLE ${LOG_TABLE} ADD COLUMN ikey TEXT`);
}

/** Prepared statements over the internal tables. */
export interface InternalStatements {
  getMeta: Statement;
  setMeta: Statement;
  /** Sets applied_index and last_hash in one statement (in the transaction that trims the log). */
  setApplied: Statement;
  appendLog: Statement;
  readLog: Statement;
  /** Log rows from an idx on as [idx, the entry's JSON text] (LOG_JSON_SQL). */
  readLogJson: Statement;
  firstLog: Statement;
  trimLog: Statement;
  getIdem: Statement;
  putIdem: Statement;
  pruneIdem: Statement;
}

/** Prepares the statements once per writer connection. */
export function prepareInternal(db: Db): InternalStatements {
  return {
    getMeta: db.prepare(`SELECT value FROM ${META_TABLE} WHERE key = ?`).pluck(),
    setMeta: db.prepare(`INSERT INTO ${META_TABLE}(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`),
    setApplied: db.prepare(
      `UPDATE ${META_TABLE} SET value = CASE key WHEN 'applied_index' THEN ? ELSE ? END WHERE key IN ('applied_index', 'last_hash')`,
    ),
    appendLog: db.prepare(`INSERT INTO ${LOG_TABLE}(idx, epoch, ts, seed, hash, stmts, ikey) VALUES (?, ?, ?, ?, ?, ?, ?)`),
    readLog: db.prepare(`SELECT idx, epoch, ts, seed, hash, stmts, ikey FROM ${LOG_TABLE} WHERE idx >= ? ORDER BY idx LIMIT ?`).raw(true),
    readLogJson: db.prepare(LOG_JSON_SQL).raw(true),
    firstLog: db.prepare(`SELECT min(idx) FROM ${LOG_TABLE}`).pluck(),
    trimLog: db.prepare(`DELETE FROM ${LOG_TABLE} WHERE idx <= ?`),
    getIdem: db.prepare(`SELECT idx, results FROM ${IDEM_TABLE} WHERE key = ?`),
    putIdem: db.prepare(`INSERT OR REPLACE INTO ${IDEM_TABLE}(key, idx, ts, results) VALUES (?, ?, ?, ?)`),
    pruneIdem: db.prepare(`DELETE FROM ${IDEM_TABLE} WHERE ts < ?`),
  };
}
