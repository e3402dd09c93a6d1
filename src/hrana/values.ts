// Hrana's JSON encoding (HRANA_3_SPEC.md): values, statements, results and errors, to and
// from the session's types. No I/O.
import { SqlfleetError } from '../errors.js';
import type { Description, RawValue, TypedResult } from '../store/interactive.js';
import type { Params, Stmt } from '../store/types.js';

/** A Hrana value: integers travel as decimal strings, blobs as base64. */
export type HValue =
  | { type: 'null' }
  | { type: 'integer'; value: string }
  | { type: 'float'; value: number }
  | { type: 'text'; value: string }
  | { type: 'blob'; base64: string };

/** A Hrana statement as the client sends it. */
export interface HStmt {
  sql?: string | null;
  sql_id?: number | null;
  args?: HValue[];
  named_args?: { name: string; value: HValue }[];
  want_rows?: boolean;
  replication_index?: string | null;
}

/** Hrana's error object: `code` is what clients match on (SQLITE_CONSTRAINT_UNIQUE, …). */
export interface HError {
  message: string;
  code?: string | null;
  /** SQLite's extended code when `code` is its primary one (not in the spec; clients ignore it). */
  extended_code?: string;
  /** sqlfleet's: the refusing node's epoch, when a relayed request was stamped with an older one. */
  epoch?: number;
}

function bad(msg: string): SqlfleetError {
  return new SqlfleetError('BAD_REQUEST', msg, { hrana_code: 'PROTO_ERROR' });
}

/** Decodes a value into what SQLite binds: bigint integers, byte blobs. */
export function decodeValue(v: unknown): RawValue {
  if (v === null || typeof v !== 'object') throw bad('a value must be an object with a "type"');
  const o = v as Record<string, unknown>;
  switch (o.type) {
    case 'null':
      return null;
    case 'integer':
      if (typeof o.value !== 'string' && typeof o.value !== 'number') throw bad('integer value must be a string');
      try {
        return BigInt(o.value);
      } catch {
        throw bad(`bad integer "${String(o.value)}"`);
      }
    case 'float':
      if (typeof o.value !== 'number') throw bad('float value must be a number');
      return o.value;
    case 'text':
      if (typeof o.value !== 'string') throw bad('text value must be a string');
      return o.value;
    case 'blob':
      if (typeof o.base64 !== 'string') throw bad('blob needs "base64"');
      return Buffer.from(o.base64, 'base64');
    default:
      throw bad(`unknown value type ${JSON.stringify(o.type)}`);
  }
}

/** Encodes a value SQLite returned. */
export function encodeValue(v: unknown): HValue {
  if (v === null || v === undefined) return { type: 'null' };
  if (typeof v === 'bigint') return { type: 'integer', value: v.toString() };
  if (typeof v === 'number') return { type: 'float', value: v };
  if (typeof v === 'string') return { type: 'text', value: v };
  if (v instanceof Uint8Array) return { type: 'blob', base64: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64') };
  if (typeof v === 'boolean') return { type: 'integer', value: v ? '1' : '0' };
  return { type: 'text', value: String(v) };
}

/** A Hrana statement as a session Stmt (`sqls`: the stream's stored SQL texts by id). */
export function decodeStmt(h: unknown, sqls: Map<number, string>): Stmt & { wantRows: boolean } {
  if (h === null || typeof h !== 'object') throw bad('stmt must be an object');
  const s = h as HStmt;
  const sql = resolveSql(s.sql, s.sql_id, sqls);
  const args = s.args ?? [];
  const named = s.named_args ?? [];
  if (!Array.isArray(args) || !Array.isArray(named)) throw bad('args and named_args must be arrays');
  let params: Params | undefined;
  if (named.length > 0) {
    if (args.length > 0) throw bad('a statement takes args or named_args, not both');
    const obj: Record<string, unknown> = {};
    for (const a of named) obj[String(a?.name)] = decodeValue(a?.value);
    params = obj as unknown as Params;
  } else if (args.length > 0) params = args.map(decodeValue) as unknown as Params;
  return { sql, ...(params === undefined ? {} : { params }), wantRows: s.want_rows !== false };
}

/** The SQL text of a request: given inline, or stored earlier with store_sql. */
export function resolveSql(sql: unknown, sqlId: unknown, sqls: Map<number, string>): string {
  if (typeof sql === 'string') {
    if (sqlId !== undefined && sqlId !== null) throw bad('give sql or sql_id, not both');
    return sql;
  }
  if (typeof sqlId === 'number') {
    const text = sqls.get(sqlId);
    if (text === undefined) throw new SqlfleetError('BAD_REQUEST', `no SQL text stored under sql_id ${sqlId}`, { hrana_code: 'SQL_NOT_FOUND' });
    return text;
  }
  throw bad('a statement needs "sql" or "sql_id"');
}

/** A statement's result in Hrana's shape. */
export function encodeResult(r: TypedResult, wantRows: boolean, started: number): Record<string, unknown> {
  return {
    cols: r.cols.map((c) => ({ name: c.name, decltype: c.decltype })),
    rows: wantRows ? r.rows.map((row) => row.map(encodeValue)) : [],
    affected_row_count: r.changes,
    last_insert_rowid: r.lastInsertRowid === null ? null : r.lastInsertRowid.toString(),
    rows_read: r.rows.length,
    rows_written: r.changes,
    query_duration_ms: performance.now() - started,
  };
}

/** A Hrana result back into a TypedResult (the slave's relay reads the master's answers). */
export function decodeResult(h: Record<string, unknown>): TypedResult {
  const cols = (h.cols as { name: string; decltype?: string | null }[]) ?? [];
  const rows = ((h.rows as unknown[][]) ?? []).map((row) => row.map(decodeValue));
  const lir = h.last_insert_rowid;
  return {
    cols: cols.map((c) => ({ name: c.name, decltype: c.decltype ?? null })),
    rows,
    changes: Number(h.affected_row_count ?? 0),
    lastInsertRowid: typeof lir === 'string' ? BigInt(lir) : null,
    readonly: Number(h.affected_row_count ?? 0) === 0,
  };
}

/** A session Stmt as Hrana (the relay sends it to the master). */
export function encodeStmt(s: Stmt): HStmt {
  const out: HStmt = { sql: s.sql, want_rows: true };
  if (Array.isArray(s.params)) out.args = s.params.map(encodeValue);
  else if (s.params) out.named_args = Object.entries(s.params).map(([name, value]) => ({ name, value: encodeValue(value) }));
  return out;
}

/** A describe result in Hrana's shape. */
export function encodeDescribe(d: Description): Record<string, unknown> {
  return { params: d.params, cols: d.cols, is_explain: d.isExplain, is_readonly: d.isReadonly };
}

/** Any error as Hrana's error object, with the code clients match on. */
export function encodeError(e: unknown): HError {
  if (e instanceof SqlfleetError) {
    // sqld sends SQLite's primary code (SQLITE_CONSTRAINT), which @libsql/client reports as
    // `code`; the extended one (SQLITE_CONSTRAINT_UNIQUE) rides along as extended_code.
    const sqlite = typeof e.details.sqlite_code === 'string' ? e.details.sqlite_code : null;
    const primary = sqlite?.replace(/^(SQLITE_[A-Z]+)_.*$/, '$1') ?? null;
    const code = typeof e.details.hrana_code === 'string' ? e.details.hrana_code : primary ?? HRANA_CODES[e.code] ?? e.code;
    const out: HError = sqlite && sqlite !== code ? { message: e.message, code, extended_code: sqlite } : { message: e.message, code };
    if (e.code === 'MASTER_UNAVAILABLE' && typeof e.details.epoch === 'number') out.epoch = e.details.epoch;
    return out;
  }
  return { message: 'internal error; see the node log', code: 'INTERNAL' };
}

/** sqlfleet codes as sqld would name them. */
const HRANA_CODES: Record<string, string> = {
  SQL_SYNTAX: 'SQL_PARSE_ERROR',
  SQL_ERROR: 'SQLITE_ERROR',
  CONSTRAINT: 'SQLITE_CONSTRAINT',
  READ_ONLY_COMMAND: 'SQLITE_READONLY',
  TIMEOUT: 'TIMEOUT',
};
