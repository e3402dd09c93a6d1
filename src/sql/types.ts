// Types shared by the SQL classifier and its callers. Pure: no I/O.

/** Statement classes of DESIGN §3, weakest first. */
export type StatementClass = 'read' | 'write' | 'schema' | 'transaction' | 'forbidden';

/** Strictness order: a multi-statement text takes the strictest class of its statements. */
export const CLASS_RANK: Record<StatementClass, number> = {
  read: 0,
  write: 1,
  schema: 2,
  transaction: 3,
  forbidden: 4,
};

/** The table an INSERT or REPLACE writes into, as the statement names it. */
export interface InsertTarget {
  readonly schema?: string;
  readonly name: string;
}

/** One statement of a query text, with its class. */
export interface ClassifiedStatement {
  /** The statement's own text, trimmed, without the trailing `;`. */
  readonly sql: string;
  readonly kind: StatementClass;
  /** Why it is forbidden / transaction control (shown to the client), or the statement type. */
  readonly reason: string;
  /**
   * An INSERT's (or REPLACE's) table, when the parser read it: the master checks after
   * running it that the table does not hold the largest rowid (store.ts, rowidCeiling).
   */
  readonly into?: InsertTarget;
}

/** The classification of a whole query text. */
export interface Classification {
  readonly statements: readonly ClassifiedStatement[];
  /** The strictest class among the statements. */
  readonly kind: StatementClass;
}

/**
 * Asks SQLite itself about one statement when the parser cannot (DESIGN §3 fallback):
 * prepares it on a read-only connection. Returns its `readonly` flag, or throws the
 * driver's error (an Error with a string `code` such as 'SQLITE_ERROR' and SQLite's message).
 */
export type SqliteProbe = (sql: string) => { readonly: boolean };
