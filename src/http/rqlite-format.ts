// sqlfleet results in rqlite's JSON shapes (rqlite: command/encoding/json.go): rows as
// {columns, types, values} or associative {types, rows}, changes as {last_insert_id,
// rows_affected} (zero fields omitted, as Go's omitempty does), errors as {error}. Pure.

/** A result as sqlfleet's executor answers it (DESIGN §2). */
export interface SqlfleetResult {
  columns?: string[];
  rows?: unknown[][];
  changes?: number;
  last_insert_rowid?: number | bigint;
}

/** How to render. */
export interface FormatOptions {
  associative: boolean;
  blobArray: boolean;
  /** Seconds this statement took, when `timings` was asked for. */
  time?: number;
  /** /db/request: rqlite marks change results with `"rows": null` when associative. */
  request?: boolean;
}

/**
 * One result in rqlite's shape. `declared` are the columns' declared types (lower case,
 * '' for expressions), which are filled from the first row's values as rqlite does.
 */
export function formatResult(r: SqlfleetResult, declared: string[] | null, o: FormatOptions): Record<string, unknown> {
  const timed = o.time !== undefined ? { time: o.time } : {};
  if (r.columns === undefined) {
    const out: Record<string, unknown> = {};
    const id = r.last_insert_rowid;
    // SQLite's last rowid is per connection: only a statement that changed rows reports it.
    if (r.changes && id !== undefined && id !== 0 && id !== 0n) out.last_insert_id = id;
    if (r.changes) out.rows_affected = r.changes;
    if (o.associative && o.request) out.rows = null;
    return { ...out, ...timed };
  }
  const columns = r.columns;
  const rows = r.rows ?? [];
  const types = columns.map((_c, i) => {
    const t = declared?.[i] ?? '';
    return t !== '' ? t : valueType(rows[0]?.[i]);
  });
  // Blobs travel as base64 text; with blob_array, columns declared BLOB become byte arrays.
  const values = o.blobArray
    ? rows.map((row) => row.map((v, i) => (types[i] === 'blob' && typeof v === 'string' ? [...Buffer.from(v, 'base64')] : v)))
    : rows;
  if (o.associative) {
    const typeMap: Record<string, string> = {};
    columns.forEach((c, i) => (typeMap[c] = types[i]!));
    const objs = values.map((row) => Object.fromEntries(columns.map((c, i) => [c, row[i]])));
    return { types: typeMap, rows: objs, ...timed };
  }
  return { columns, types, ...(values.length ? { values } : {}), ...timed };
}

/** rqlite's type name for a value whose column has no declared type (db.go populateEmptyTypes). */
function valueType(v: unknown): string {
  if (typeof v === 'bigint') return 'integer';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'real';
  if (typeof v === 'string') return 'text';
  return '';
}

/** A per-statement error in rqlite's shape. */
export function formatError(message: string, time?: number): Record<string, unknown> {
  return time !== undefined ? { error: message, time } : { error: message };
}
