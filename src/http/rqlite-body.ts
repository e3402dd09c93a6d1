// rqlite's request forms, parsed and validated once (rqlite: http/request_parser.go and
// http/query_params.go): statement bodies and query parameters. Pure: no I/O.
import { SqlfleetError } from '../errors.js';
import { parseExact } from '../json.js';

/** A positional or named parameter value as JSON gives it. */
export type RqValue = string | number | bigint | boolean | null;

/** One statement of an rqlite body: SQL, with positional or named parameters. */
export interface RqStatement {
  sql: string;
  params?: RqValue[] | Record<string, RqValue>;
}

function bad(message: string): SqlfleetError {
  return new SqlfleetError('BAD_REQUEST', message);
}

/**
 * Parses `["SQL", ["SQL ?", 1], ["SQL :n", {"n": 1}]]`. An empty array, a non-array, or a
 * parameter of a type SQLite cannot bind here is a BAD_REQUEST, as rqlite answers 400.
 */
export function parseStatements(raw: string): RqStatement[] {
  let body: unknown;
  try {
    body = parseExact(raw); // integers beyond 2^53 stay exact (BigInt), as on POST /
  } catch (e) {
    throw bad(`invalid JSON body: ${(e as Error).message}`);
  }
  if (!Array.isArray(body)) throw bad('invalid request: the body must be a JSON array of statements');
  if (body.length === 0) throw bad('no statements');
  return body.map((item, i) => statement(item, i));
}

function statement(item: unknown, i: number): RqStatement {
  if (typeof item === 'string') return { sql: sqlText(item, i) };
  if (!Array.isArray(item)) throw bad(`invalid request: statement ${i} must be a string or an array ["SQL", params...]`);
  if (item.length === 0 || typeof item[0] !== 'string') throw bad(`invalid request: statement ${i} must start with its SQL text`);
  const sql = sqlText(item[0], i);
  const rest = item.slice(1);
  if (rest.length === 0) return { sql };
  const objects = rest.filter((v) => v !== null && typeof v === 'object' && !Array.isArray(v));
  if (objects.length === 0) return { sql, params: rest.map((v, j) => value(v, `statement ${i} parameter ${j + 1}`)) };
  if (objects.length !== rest.length) throw bad(`statement ${i}: positional and named parameters cannot be mixed`);
  const named: Record<string, RqValue> = {};
  for (const o of objects as Record<string, unknown>[]) {
    for (const [k, v] of Object.entries(o)) named[k] = value(v, `statement ${i} parameter "${k}"`);
  }
  return { sql, params: named };
}

function sqlText(s: string, i: number): string {
  if (s.trim() === '') throw bad(`statement ${i} is empty`);
  return s;
}

function value(v: unknown, what: string): RqValue {
  if (v === null || typeof v === 'string' || typeof v === 'boolean' || typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  // rqlite binds an array of bytes as a BLOB; sqlfleet's log carries JSON scalars only.
  if (Array.isArray(v)) throw bad(`unsupported type: ${what} is an array (BLOB parameters are not supported; use X'hex' in the SQL)`);
  throw bad(`unsupported type: ${what}`);
}

/** rqlite's query parameters, as a lookup over the URL's search parameters. */
export class QueryParams {
  constructor(private readonly p: URLSearchParams) {
    for (const k of ['timeout', 'freshness', 'db_timeout', 'linearizable_timeout']) {
      const v = p.get(k);
      if (v !== null && parseDuration(v) === null) throw bad(`${k} is not a valid duration`);
    }
    if (p.has('freshness_strict') && !p.has('freshness')) throw bad('freshness_strict requires freshness');
    if (p.has('q') && p.get('q') === '') throw bad('query parameter not set');
  }

  /** A flag: present means on (rqlite), except an explicit `false` or `0`. */
  flag(name: string): boolean {
    const v = this.p.get(name);
    return v !== null && v !== 'false' && v !== '0';
  }

  /** A raw value. */
  get(name: string): string | null {
    return this.p.get(name);
  }

  /** A duration parameter in milliseconds (validated in the constructor). */
  ms(name: string): number | undefined {
    const v = this.p.get(name);
    return v === null ? undefined : (parseDuration(v) ?? undefined);
  }

  /** rqlite's read consistency level; unknown values and `auto` mean weak, as in rqlite. */
  level(): 'none' | 'weak' | 'linearizable' | 'strong' {
    const v = (this.p.get('level') ?? '').toLowerCase();
    return v === 'none' || v === 'strong' || v === 'linearizable' ? v : 'weak';
  }
}

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** A Go duration ("1s", "500ms", "1m30s") in milliseconds, or null when it is not one. */
export function parseDuration(s: string): number | null {
  if (s === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/y;
  let total = 0;
  let at = 0;
  while (at < s.length) {
    re.lastIndex = at;
    const m = re.exec(s);
    if (!m) return null;
    total += Number(m[1]) * UNITS[m[2]!]!;
    at = re.lastIndex;
  }
  return at > 0 ? total : null;
}
