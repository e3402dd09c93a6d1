// Reasons and keyword tables shared by the parser path (cst.ts) and the SQLite fallback
// (fallback.ts), so both paths refuse the same things with the same words. Pure: no I/O.

import type { StatementClass } from './types.js';

/** Client-facing sentences for forbidden statements. */
export const REASONS = {
  attach: 'ATTACH is not allowed: it touches the file system',
  detach: 'DETACH is not allowed: sqlfleet never attaches databases',
  loadExtension: 'load_extension() is not allowed: it loads native code from the file system',
  vacuumInto: 'VACUUM INTO is not allowed: it writes a file on the node',
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
