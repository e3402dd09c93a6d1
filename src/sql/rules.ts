// Reasons and keyword tables shared by the parser path (cst.ts) and the SQLite fallback
// (fallback.ts), so both paths refuse the same things with the same words. Pure: no I/O.

import type { StatementClass } from './types.js';

// What to write instead of CURRENT_TIMESTAMP and its kin (the same values, computed on write).
const CURRENT_REPLACEMENT: Readonly<Record<string, string>> = {
  CURRENT_TIMESTAMP: "datetime('now')",
  CURRENT_DATE: "date('now')",
  CURRENT_TIME: "time('now')",
};

/** Client-facing sentences for forbidden statements. */
export const REASONS = {
  attach: 'ATTACH is not allowed: it touches the file system',
  detach: 'DETACH is not allowed: sqlfleet never attaches databases',
  loadExtension: 'load_extension() is not allowed: it loads native code from the file system',
  vacuumInto: 'VACUUM INTO is not allowed: it writes a file on the node',
  vacuum:
    'VACUUM is not allowed: every statement runs inside a replicated sqlfleet transaction, where SQLite cannot VACUUM.' +
    ' A node reuses freed pages by itself; for a compact copy take a backup (GET /db/backup, npm run backup),' +
    ' and POST /nodes/:id/resync re-seeds a slave from a compact snapshot',
  virtualClock: (fn: string): string =>
    `${fn}() in a VIRTUAL generated column is not allowed: such a column is computed again at every read, where` +
    ` ${fn}() ${fn.startsWith('random') ? 'would draw a new random number' : "may read the node's clock"} and SQLite refuses it, so every read of the table` +
    ' and /checksum would fail. Make the column STORED (computed once, on write, the same on every replica) or use a DEFAULT',
  currentInSchema: (word: string, where: string): string =>
    `${word} in ${where} is not allowed: SQLite refuses it there, so every read of the database would fail` +
    ` ("malformed database schema"). Use ${CURRENT_REPLACEMENT[word] ?? "datetime('now')"} in a STORED generated column, a DEFAULT or a CHECK instead`,
  indexClock: (fn: string): string =>
    `${fn}() of no column in an index is not allowed: it reads the clock, which SQLite refuses in an index` +
    ' (PRAGMA integrity_check, and a backup of the database could not be restored). Index a column that stores the time instead',
  totalChanges:
    "total_changes() is not allowed in a write or schema statement: it counts every change of the node's own connection" +
    ' since it opened, so each replica would store another number. Read it with a plain SELECT',
  nodeLocal: (name: string): string =>
    `${name} is not allowed in a write or schema statement: it reports the node's own file layout, build or connection` +
    ' state, which differ between replicas. Read it with a plain SELECT',
  temp: 'TEMP tables, views, indexes and triggers are not allowed: they would exist on one connection of one node only',
  internal: (name: string): string => `${name} is an internal sqlfleet table: clients cannot use it`,
  sqliteTable: (name: string): string => `${name} belongs to SQLite itself: clients cannot write or change it`,
  pragmaFunction: (name: string): string => `${name} is not allowed: it reveals the node's file paths`,
  unsupported: (what: string): string => `${what} statements are not supported`,
  transaction: (word: string): string =>
    `${word} is transaction control: send the statements as "queries" with "transaction": true`,
} as const;

/**
 * The classes a statement may have given its leading keyword. The parser's verdict must
 * agree with SQLite's reading of the text; a disagreement sends the statement to the
 * SQLite fallback. The fallback also uses it to decide the class.
 */
export const KINDS_BY_LEADING_WORD: Readonly<Record<string, readonly StatementClass[]>> = {
  SELECT: ['read'],
  VALUES: ['read'],
  EXPLAIN: ['read'],
  WITH: ['read', 'write'],
  PRAGMA: ['read', 'schema'],
  INSERT: ['write'],
  REPLACE: ['write'],
  UPDATE: ['write'],
  DELETE: ['write'],
  CREATE: ['schema'],
  DROP: ['schema'],
  ALTER: ['schema'],
  REINDEX: ['schema'],
  ANALYZE: ['schema'],
  VACUUM: ['schema'],
  BEGIN: ['transaction'],
  COMMIT: ['transaction'],
  END: ['transaction'],
  ROLLBACK: ['transaction'],
  SAVEPOINT: ['transaction'],
  RELEASE: ['transaction'],
};

/** True when a table name belongs to SQLite's own bookkeeping (sqlite_master, sqlite_sequence, ...). */
export const isSqliteName = (name: string): boolean => name.toLowerCase().startsWith('sqlite_');

/** True when a schema qualifier names the per-connection TEMP database. */
export const isTempSchema = (name: string | undefined): boolean => name?.toLowerCase() === 'temp';

/**
 * Date and time functions: each reads the clock when its time value is 'now' or missing,
 * or with the 'localtime'/'utc' modifiers, which column values can supply too.
 */
export const CLOCK_FUNCTIONS: ReadonlySet<string> = new Set([
  'date', 'time', 'datetime', 'julianday', 'unixepoch', 'strftime', 'timediff',
]);

/** Functions that return a new random value at each call. */
export const RANDOM_FUNCTIONS: ReadonlySet<string> = new Set(['random', 'randomblob']);

/**
 * SQL's time keywords: SQLite treats them as non-deterministic (unlike date('now')), so in a
 * generated column, an index expression or a partial index's WHERE it refuses the whole
 * schema of the file on any connection without sqlfleet's overrides.
 */
export const CURRENT_WORDS: ReadonlySet<string> = new Set(['CURRENT_TIMESTAMP', 'CURRENT_DATE', 'CURRENT_TIME']);
