// Validates a client's JSON body once into a complete QueryRequest (DESIGN §2 fields).
import { SqlfleetError } from '../errors.js';
import { parseExact } from '../json.js';
import type { AckLevel } from '../replication/acks.js';
import type { Params, SqlValue, Stmt } from '../store/types.js';

/** A validated POST / request. */
export interface QueryRequest {
  /** `exec` runs anything allowed; `query` refuses writes; undefined = inferred. */
  readonly command: 'exec' | 'query' | undefined;
  readonly stmts: Stmt[];
  /** True when the client sent `queries` (each item is one statement) rather than `query`. */
  readonly batch: boolean;
  readonly ack: AckLevel;
  readonly minIndex: number | undefined;
  readonly consistency: 'local' | 'strong';
  /** rqlite's /db/*: a slave forwards schema changes to the master instead of refusing them (DESIGN §7). */
  readonly forwardSchema?: boolean;
  /** POST /db/load: one entry that replaces the database, not capped by --max-statements. */
  readonly bulk?: boolean;
  /** Writes: the client's idempotency key (`idempotency_key` field or `Idempotency-Key` header). */
  readonly idempotencyKey?: string;
  /** True when the key came only from the header, so a forwarded body must add it. */
  readonly keyFromHeader?: boolean;
  /**
   * A forwarded request: the epoch of the master the forwarding node sent it to (its
   * x-sqlfleet-epoch header). A node in a newer epoch refuses it, nothing applied.
   */
  readonly forwardedEpoch?: number;
}

/** Longest idempotency key accepted (a UUID is 36 characters). */
export const MAX_IDEMPOTENCY_KEY = 128;

/** Every field a POST / body may carry. */
export const FIELDS = new Set(['command', 'query', 'params', 'queries', 'transaction', 'is_master', 'ack', 'min_index', 'consistency', 'idempotency_key']);

/**
 * A POST / body parsed as JSON, integers beyond 2^53 kept exact (so a parameter
 * 9007199254740993 is bound as that integer, not as ...992); BAD_REQUEST when not JSON.
 */
export function parseBody(raw: string): unknown {
  try {
    return parseExact(raw);
  } catch (e) {
    throw bad(`malformed JSON: ${(e as Error).message}`);
  }
}

/** Turns the parsed JSON body (and an `Idempotency-Key` header) into a QueryRequest or throws BAD_REQUEST / FORBIDDEN. */
export function parseRequest(body: unknown, maxStatements: number, keyHeader?: string, epochHeader?: string): QueryRequest {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('body must be a JSON object');
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) if (!FIELDS.has(k)) throw bad(`unknown field "${k}"`);
  if (b.is_master !== undefined && typeof b.is_master !== 'boolean') throw bad('"is_master" must be a boolean');
  if (b.is_master === true) {
    throw new SqlfleetError('FORBIDDEN', '"is_master": true is reserved for cluster-internal requests; clients may omit it');
  }
  const command = oneOf(b.command, 'command', ['exec', 'query'] as const);
  const ack = oneOf(b.ack, 'ack', ['all', 'one', 'master'] as const) ?? 'all';
  const consistency = oneOf(b.consistency, 'consistency', ['local', 'strong'] as const) ?? 'local';
  if (b.transaction !== undefined && typeof b.transaction !== 'boolean') throw bad('"transaction" must be a boolean');
  let minIndex: number | undefined;
  if (b.min_index !== undefined) {
    if (!Number.isSafeInteger(b.min_index) || (b.min_index as number) < 0) throw bad('"min_index" must be a non-negative integer');
    minIndex = b.min_index as number;
  }
  const bodyKey = b.idempotency_key === undefined ? undefined : idempotencyKey(b.idempotency_key, '"idempotency_key"');
  const headerKey = keyHeader === undefined ? undefined : idempotencyKey(keyHeader, 'the Idempotency-Key header');
  if (bodyKey !== undefined && headerKey !== undefined && bodyKey !== headerKey) throw bad('"idempotency_key" and the Idempotency-Key header differ');
  const stmts = statements(b);
  if (stmts.length > maxStatements) throw bad(`too many statements: ${stmts.length} > ${maxStatements}`);
  const key = bodyKey ?? headerKey;
  const forwardedEpoch = parseEpochStamp(epochHeader);
  return { command, stmts, batch: b.queries !== undefined, ack, minIndex, consistency, idempotencyKey: key, keyFromHeader: bodyKey === undefined && key !== undefined, forwardedEpoch };
}

/** The x-sqlfleet-epoch header of a forwarded request, or undefined; BAD_REQUEST when not an epoch. */
export function parseEpochStamp(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  const n = /^\d{1,15}$/.test(header) ? Number(header) : NaN;
  if (!Number.isSafeInteger(n)) throw bad('the x-sqlfleet-epoch header must be a non-negative integer');
  return n;
}

/** The body a slave forwards: the raw body, plus the key when it came in a header. */
export function forwardBody(req: QueryRequest, raw: string): string {
  if (!req.keyFromHeader || req.idempotencyKey === undefined) return raw;
  // The raw text is a JSON object (it parsed as one): splice the field in after its '{'.
  const at = raw.indexOf('{');
  return `${raw.slice(0, at + 1)}"idempotency_key":${JSON.stringify(req.idempotencyKey)},${raw.slice(at + 1)}`;
}

// Printable ASCII without spaces: a UUID, a ULID or any opaque token fits, and the key can
// never contain the newline entryHash separates it with.
const KEY_RE = /^[\x21-\x7e]+$/;

function idempotencyKey(v: unknown, name: string): string {
  if (typeof v !== 'string') throw bad(`${name} must be a string`);
  if (v.length === 0 || v.length > MAX_IDEMPOTENCY_KEY) throw bad(`${name} must be 1 to ${MAX_IDEMPOTENCY_KEY} characters`);
  if (!KEY_RE.test(v)) throw bad(`${name} may hold only printable ASCII characters without spaces`);
  return v;
}

function statements(b: Record<string, unknown>): Stmt[] {
  if (b.query !== undefined && b.queries !== undefined) throw bad('send either "query" or "queries", not both');
  if (b.queries !== undefined) {
    if (b.params !== undefined) throw bad('"params" goes inside each item of "queries"');
    if (!Array.isArray(b.queries) || b.queries.length === 0) throw bad('"queries" must be a non-empty array');
    return b.queries.map((q, i) => {
      if (typeof q === 'string') return { sql: sqlText(q, `queries[${i}]`) };
      if (q && typeof q === 'object' && !Array.isArray(q)) {
        const o = q as Record<string, unknown>;
        for (const k of Object.keys(o)) if (k !== 'query' && k !== 'params') throw bad(`unknown field "queries[${i}].${k}"`);
        return withParams(sqlText(o.query, `queries[${i}].query`), o.params, `queries[${i}].params`);
      }
      throw bad(`queries[${i}] must be a string or {query, params}`);
    });
  }
  if (b.query === undefined) throw bad('missing "query" (or "queries")');
  return [withParams(sqlText(b.query, 'query'), b.params, 'params')];
}

function sqlText(v: unknown, name: string): string {
  if (typeof v !== 'string') throw bad(`"${name}" must be a string`);
  if (v.trim() === '') throw bad(`"${name}" is empty`);
  // SQLite stops reading at NUL: what follows would be checked but never run as sent.
  if (v.includes('\0')) throw bad(`"${name}" contains a NUL character`);
  return v;
}

function withParams(sql: string, params: unknown, name: string): Stmt {
  if (params === undefined || params === null) return { sql };
  if (Array.isArray(params)) return { sql, params: params.map((v, i) => value(v, `${name}[${i}]`)) };
  if (typeof params === 'object') {
    const out: Record<string, SqlValue> = {};
    for (const [k, v] of Object.entries(params as Record<string, unknown>)) {
      if (!/^[:@$]?[A-Za-z_0-9]+$/.test(k)) throw bad(`${name}: bad parameter name "${k}"`);
      out[k] = value(v, `${name}.${k}`);
    }
    return { sql, params: out as Params };
  }
  throw bad(`"${name}" must be an array or an object`);
}

function value(v: unknown, name: string): SqlValue {
  if (v === null || typeof v === 'string') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw bad(`${name} must be a finite number`);
    return v;
  }
  if (typeof v === 'boolean') return v ? 1 : 0;
  // An exact integer beyond 2^53 (parseBody): carried as the log carries one, {"$i": "…"},
  // so the entry stays plain JSON on every node; the store binds it as a 64-bit integer.
  if (typeof v === 'bigint') return { $i: v.toString() } as unknown as SqlValue;
  throw bad(`${name} must be a string, number, boolean or null`);
}

function oneOf<T extends string>(v: unknown, name: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || !allowed.includes(v as T)) throw bad(`"${name}" must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  return v as T;
}

function bad(message: string): SqlfleetError {
  return new SqlfleetError('BAD_REQUEST', message);
}
