// Types of the storage layer, shared with replication and core. No I/O.

/** A JSON-safe bound parameter value. */
export type SqlValue = string | number | bigint | null;

/** Positional (`?`, `?NNN`) or named (`:a`, `@a`, `$a`) parameters. */
export type Params = SqlValue[] | Record<string, SqlValue>;

/** One statement with its parameters. */
export interface Stmt {
  readonly sql: string;
  readonly params?: Params;
  /** In an interactive transaction's entry: this statement failed on the master, and must fail (harmlessly) on replay too. */
  readonly fails?: true;
}

/** A replication log entry: one atomic write (a statement or a batch). */
export interface Entry {
  readonly index: number;
  /** The master term that wrote it; fences a deposed master. */
  readonly epoch: number;
  /** Master's clock in ms: the value of 'now' while the entry is applied. */
  readonly ts: number;
  /** 64-bit seed (hex) for random()/randomblob() while the entry is applied. */
  readonly seed: string;
  /** sha256 of the previous entry's hash and this entry's content (hex). */
  readonly hash: string;
  readonly stmts: readonly Stmt[];
  /** The client's idempotency key, when it sent one: recorded with the entry on every node. */
  readonly key?: string;
}

/** Result of a statement that returns rows. */
export interface RowsResult {
  columns: string[];
  rows: unknown[][];
}

/** Result of a statement that changes rows. */
export interface WriteResult {
  changes: number;
  last_insert_rowid: number | bigint;
}

/** What one statement produced. */
export type StatementResult = RowsResult | WriteResult | (RowsResult & WriteResult);

/** Name prefix of internal tables: invisible to clients, checksums and show-all. */
export const INTERNAL_PREFIX = '_sqlfleet_';
