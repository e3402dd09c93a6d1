// rqlite's HTTP API (DESIGN §7) as another front on the one executor: every /db/* request
// is translated into ordinary QueryRequests, so classification, determinism, acks,
// forwarding, roles and limits are the ones POST / has. What differs is only the shape of
// requests and answers (rqlite's http/service.go), plus two request options: a slave
// forwards schema changes, and double-quoted strings follow SQLite's legacy rule.
import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Context, Hono } from 'hono';
import { SqlfleetError, isSqlfleetError, type ErrorCode } from '../errors.js';
import { parseEpochStamp, parseRequest, type QueryRequest } from '../core/request.js';
import type { Outcome } from '../core/executor.js';
import { hasRole, type Principal, type Role } from '../auth/users.js';
import { legacyStrings } from '../sql/dqs.js';
import { splitStatements } from '../sql/split.js';
import type { StatementResult } from '../store/types.js';
import { readBody } from './body.js';
import { stringify } from './json.js';
import { QueryParams, parseStatements, type RqStatement } from './rqlite-body.js';
import { formatError, formatResult, type SqlfleetResult } from './rqlite-format.js';
import { QUEUE_DEFAULTS, WriteQueue } from './rqlite-queue.js';

/** What the rqlite routes need from the node beyond the executor: its database as a file. */
export interface RqliteSupport {
  /** SQLite's error preparing `sql` on this node, or null (the double-quoted-string check). */
  prepareError(sql: string): string | null;
  /** Declared column types of a row-returning statement, or null. */
  columnTypes(sql: string): string[] | null;
  /** Statements dropping every user object now (a load's first half). */
  dropStatements(): string[];
  /** A consistent copy of the user tables in a temporary file the caller removes. */
  backup(): Promise<{ file: string; index: number; bytes: number }>;
  /** SQL dump of a backup file, in slices. */
  dump(file: string): AsyncIterable<string>;
  /** Validates an uploaded SQLite file or SQL dump into the statements that recreate it. */
  fromSqliteFile(data: Buffer): { sql: string; params?: string[] }[];
  fromDump(text: string): { statements: { sql: string; params?: string[] }[]; results: StatementResult[] };
  /** Removes a file backup() made. */
  remove(file: string): void;
}

/** What registerRqlite needs from createApp. */
export interface RqliteDeps {
  execute(req: QueryRequest, rawBody: string, who: Principal): Promise<Outcome>;
  status(): Record<string, unknown>;
  /** Stamped on a load a slave passes to the master (x-sqlfleet-epoch). */
  knownEpoch(): number;
  ready(): boolean;
  /** Absent in a bare app (tests of the routing alone): its routes then answer UNAVAILABLE. */
  support: RqliteSupport | undefined;
  token: string;
  maxBody: number;
  maxStatements: number;
  need: (role: Role) => (c: Context, next: () => Promise<void>) => Promise<void>;
  /** For the queued writes' background errors; silent when absent. */
  log?: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

/** Largest /db/load upload: a whole database, so above --max-body (its SQL must fit one log entry). */
export const LOAD_MAX_BYTES = 32 * 1024 * 1024;

/** Largest load as a log entry (JSON): below the 64 MiB a slave accepts in one append. */
export const LOAD_MAX_ENTRY = 48 * 1024 * 1024;

// Errors that belong to one statement: rqlite answers them inside `results` under HTTP 200.
const STATEMENT_ERRORS = new Set<ErrorCode>(['SQL_SYNTAX', 'SQL_ERROR', 'CONSTRAINT', 'READ_ONLY_COMMAND', 'FORBIDDEN_STATEMENT', 'TRANSACTION_CONTROL', 'BAD_REQUEST']);

type Mode = 'execute' | 'query' | 'request';
type Level = ReturnType<QueryParams['level']>;

/** What one executor call gave: its results, or the error of one of its statements. */
type CallResult =
  | { ok: true; results: StatementResult[]; index: number; seconds: number; write: boolean }
  | { ok: false; error: SqlfleetError; seconds: number };

/** Registers /db/execute, /db/query, /db/request, /db/backup, /db/load, /readyz, /nodes, /leader. */
export function registerRqlite(app: Hono, d: RqliteDeps): void {
  const principal = (c: Context) => c.get('principal' as never) as Principal;
  const support = (): RqliteSupport => {
    if (!d.support) throw new SqlfleetError('UNAVAILABLE', 'this node was built without database access for the rqlite routes');
    return d.support;
  };

  const role = () => String(d.status().role);
  const masterUrl = () => String(d.status().master ?? '');

  // One executor call for `stmts` as one QueryRequest (atomic when several).
  const call = async (stmts: RqStatement[], who: Principal, o: { command?: 'query'; consistency?: 'strong'; minIndex?: number; key?: string }): Promise<CallResult> => {
    const body: Record<string, unknown> = {
      queries: stmts.map((s) => (s.params === undefined ? { query: s.sql } : { query: s.sql, params: s.params })),
      ...(o.command ? { command: o.command } : {}),
      ...(o.key !== undefined ? { idempotency_key: o.key } : {}),
      ...(o.consistency ? { consistency: o.consistency } : {}),
      ...(o.minIndex !== undefined ? { min_index: o.minIndex } : {}),
    };
    // Validated exactly as POST / validates a body: a bad one is the client's 400.
    const req: QueryRequest = { ...parseRequest(body, d.maxStatements), forwardSchema: true };
    const started = performance.now();
    const seconds = () => (performance.now() - started) / 1000;
    try {
      const out = await d.execute(req, stringify(body), who);
      if (out.status === 200 && out.body.ok === true) {
        const write = out.cls !== 'read' && !(out.cls === 'forwarded' && o.command === 'query');
        return { ok: true, results: out.body.results as StatementResult[], index: Number(out.body.index), seconds: seconds(), write };
      }
      throw fromOutcome(out);
    } catch (e) {
      if (isSqlfleetError(e) && STATEMENT_ERRORS.has(e.code)) return { ok: false, error: e, seconds: seconds() };
      throw e;
    }
  };

  // Reads at rqlite's levels: none = local; weak and strong = the master's answer (a slave
  // forwards); linearizable = local once this node applied what the master had (index wait).
  const readOpts = async (level: Level, who: Principal): Promise<{ consistency?: 'strong'; minIndex?: number }> => {
    if (role() === 'master' || level === 'none') return {};
    if (level === 'linearizable') {
      const probe = await call([{ sql: 'SELECT 1' }], who, { command: 'query', consistency: 'strong' });
      if (!probe.ok) throw probe.error;
      return { minIndex: probe.index };
    }
    return { consistency: 'strong' };
  };

  const handle = async (c: Context, mode: Mode): Promise<Response> => {
    const qp = new QueryParams(new URL(c.req.url).searchParams);
    const who = principal(c);
    const started = performance.now();
    const level = qp.level();
    const isSlave = role() !== 'master';
    if (isSlave && qp.flag('redirect') && (mode !== 'query' || level !== 'none')) return redirect(c, masterUrl());
    if (mode !== 'execute' && level === 'none' && qp.get('freshness') !== null && isSlave && stale(d.status(), qp.flag('freshness_strict'))) {
      return respond(c, qp, { error: 'stale read' }, started);
    }
    const stmts = (await statementsOf(c, qp, d.maxBody)).map((s) => ({ ...s, sql: dqs(s.sql, support()) }));
    // As on POST /: a retry with a key already applied gets the first answer, nothing twice.
    const key = mode === 'query' ? undefined : c.req.header('idempotency-key');
    if (mode === 'execute' && qp.flag('queue')) return queued(c, qp, stmts, who, key, started);
    const reads = mode === 'execute' ? {} : await readOpts(level, who);
    const command = mode === 'query' ? ('query' as const) : undefined;
    const tx = qp.flag('transaction');
    const calls: { stmts: RqStatement[]; result: CallResult }[] = [];
    if (tx) {
      calls.push({ stmts, result: await call(stmts, who, { command, ...reads, key }) });
    } else if (mode === 'query') {
      // Reads together (one snapshot); only if one fails, each alone to say which.
      const all = await call(stmts, who, { command, ...reads });
      if (all.ok || stmts.length === 1) calls.push({ stmts, result: all });
      else for (const s of stmts) calls.push({ stmts: [s], result: await call([s], who, { command, ...reads }) });
    } else {
      // rqlite runs each statement on its own outside a transaction: one entry each (and
      // one idempotency key each, derived from the request's).
      for (const [i, s] of stmts.entries()) {
        const k = key === undefined ? undefined : stmts.length === 1 ? key : `${key}#${i}`;
        calls.push({ stmts: [s], result: await call([s], who, { command, ...reads, key: k }) });
      }
    }
    return answer(c, qp, mode, calls, started);
  };

  /** rqlite's answer for the executor calls of one request. */
  const answer = (c: Context, qp: QueryParams, mode: Mode, calls: { stmts: RqStatement[]; result: CallResult }[], started: number, extra: Record<string, unknown> = {}): Response => {
    const tx = qp.flag('transaction');
    const fmt = { associative: qp.flag('associative'), blobArray: qp.flag('blob_array'), request: mode === 'request' };
    const timings = qp.flag('timings');
    const results: Record<string, unknown>[] = [];
    let raftIndex = 0;
    for (const { stmts: group, result } of calls) {
      const time = timings ? result.seconds : undefined;
      if (!result.ok) {
        const at = tx ? failedAt(result.error, group.length) : 0;
        // A failed transaction rolled back: statements before the failing one changed nothing.
        for (let i = 0; i < at; i++) results.push({});
        results.push(formatError(message(result.error, mode), time));
        continue;
      }
      if (result.write) raftIndex = Math.max(raftIndex, result.index);
      const oneEach = result.results.length === group.length;
      result.results.forEach((r, i) => {
        const declared = oneEach && 'columns' in r ? support().columnTypes(group[i]!.sql) : null;
        results.push(formatResult(r as SqlfleetResult, declared, { ...fmt, time }));
      });
    }
    return respond(c, qp, { results, ...extra, ...(qp.flag('raft_index') && raftIndex > 0 ? { raft_index: raftIndex } : {}) }, started);
  };

  // Queued writes (rqlite-queue.ts): one queue per node, flushed through the executor with
  // each request's own principal (consecutive requests of one user share an entry).
  let queue: WriteQueue<Principal> | undefined;
  const queued = async (c: Context, qp: QueryParams, stmts: RqStatement[], who: Principal, key: string | undefined, started: number): Promise<Response> => {
    // Refused now when the principal may not write at all; finer refusals (schema needs
    // admin) come from the executor at the flush, with this request's principal.
    if (!hasRole(who, 'write')) throw new SqlfleetError('FORBIDDEN', `user "${who.user}" (role ${who.role}) may not run writes: needs role write`);
    queue ??= new WriteQueue<Principal>(async (all, k, p) => {
      const r = await call(all, p, { key: k });
      return r.ok ? { ok: true, results: r.results, index: r.index } : { ok: false, error: r.error };
    }, { ...QUEUE_DEFAULTS, statementError: (e) => STATEMENT_ERRORS.has(e.code) || e.code === 'FORBIDDEN', log: d.log ?? (() => undefined) });
    const { seq, done } = await queue.enqueue(stmts, key, who);
    if (!qp.flag('wait')) return respond(c, qp, { results: [], sequence_number: seq }, started);
    const waitMs = qp.ms('timeout') ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const applied = await Promise.race([done, new Promise<null>((r) => (timer = setTimeout(() => r(null), waitMs)))]);
    clearTimeout(timer);
    if (applied === null) throw new SqlfleetError('TIMEOUT', `queued write ${seq} not applied within ${waitMs} ms; it stays queued`, { sequence_number: seq });
    const result: CallResult = applied.ok ? { ...applied, seconds: (performance.now() - started) / 1000, write: true } : { ...applied, seconds: (performance.now() - started) / 1000 };
    return answer(c, qp, 'execute', [{ stmts, result }], started, { sequence_number: seq });
  };

  app.post('/db/execute', d.need('read'), (c) => handle(c, 'execute'));
  app.on(['GET', 'POST'], '/db/query', d.need('read'), (c) => handle(c, 'query'));
  app.post('/db/request', d.need('read'), (c) => handle(c, 'request'));

  app.get('/db/backup', d.need('read'), async (c) => {
    const qp = new QueryParams(new URL(c.req.url).searchParams);
    const sup = support();
    const b = await sup.backup();
    const headers = { 'x-sqlfleet-index': String(b.index) };
    // Streamed from the private copy, which is removed once sent (or the client left).
    const sql = qp.get('fmt') === 'sql';
    const source: AsyncIterable<string | Buffer> = sql ? sup.dump(b.file) : fs.createReadStream(b.file);
    const it = source[Symbol.asyncIterator]();
    const enc = new TextEncoder();
    const body = new ReadableStream<Uint8Array>({
      async pull(ctrl) {
        try {
          const n = await it.next();
          if (n.done) {
            ctrl.close();
            sup.remove(b.file);
          } else ctrl.enqueue(typeof n.value === 'string' ? enc.encode(n.value) : new Uint8Array(n.value));
        } catch (e) {
          sup.remove(b.file);
          ctrl.error(e);
        }
      },
      async cancel() {
        await it.return?.();
        sup.remove(b.file);
      },
    });
    return c.body(body, 200, {
      ...headers,
      ...(sql ? { 'content-type': 'text/plain; charset=utf-8' } : { 'content-type': 'application/octet-stream', 'content-length': String(b.bytes), 'content-disposition': 'attachment; filename="backup.sqlite"' }),
    });
  });

  app.post('/db/load', d.need('admin'), async (c) => {
    const qp = new QueryParams(new URL(c.req.url).searchParams);
    const started = performance.now();
    // A load a slave passed on carries its master's epoch (as forwarded writes do): the
    // master refuses an old one, and a node that is no longer master refuses it rather than
    // pass it on, so a load held up in a network cut never runs after its sender gave up.
    const stampHeader = c.req.header('x-sqlfleet-epoch');
    const stamp = parseEpochStamp(stampHeader);
    if (role() !== 'master') {
      if (stamp !== undefined) {
        throw new SqlfleetError('MASTER_UNAVAILABLE', 'a load passed on by another node reached a node that is no longer the master; nothing was applied, retry', { outcome: 'not_applied', master: masterUrl() });
      }
      if (qp.flag('redirect')) return redirect(c, masterUrl());
      return forwardLoad(c, masterUrl(), d.knownEpoch(), d.token, principal(c));
    }
    const data = await binaryBody(c, LOAD_MAX_BYTES);
    const ctype = (c.req.header('content-type') ?? '').toLowerCase();
    const isFile = data.length >= 16 && data.subarray(0, 16).toString('latin1') === 'SQLite format 3\0';
    if (ctype.startsWith('application/octet-stream') && !isFile) throw new SqlfleetError('BAD_REQUEST', 'not a SQLite database file (the header is missing)');
    // A SQL text follows the double-quoted-string rule of every /db/* text (rqlite's clients
    // write VALUES("fiona"); support.fromDump applies it) and answers its statements' results.
    const dump = isFile ? null : support().fromDump(data.toString('utf8'));
    const recreate = dump ? dump.statements : support().fromSqliteFile(data);
    // Drops are listed right before the executor runs, with no await in between, so no
    // other write can create an object this entry would miss.
    const drops = support().dropStatements();
    const stmts: { sql: string; params?: string[] }[] = [...drops.map((sql) => ({ sql })), ...recreate];
    if (stmts.length === 0) return respond(c, qp, { results: [] }, started);
    const body = { command: 'exec', queries: stmts.map((s) => (s.params ? { query: s.sql, params: s.params } : { query: s.sql })) };
    const raw = JSON.stringify(body);
    // The entry must fit one replication append on every slave (node.ts allows 64 MiB and more).
    if (raw.length > LOAD_MAX_ENTRY) throw new SqlfleetError('PAYLOAD_TOO_LARGE', `the load is ${raw.length} bytes as a log entry; at most ${LOAD_MAX_ENTRY} fit one`);
    const req: QueryRequest = { ...parseRequest(body, Number.MAX_SAFE_INTEGER, undefined, stampHeader), bulk: true };
    try {
      const out = await d.execute(req, raw, principal(c));
      if (out.status !== 200) throw fromOutcome(out);
      // rqlite answers a SQL-text load with the results of its statements, as run on the
      // empty database the load starts from (a file load has no statements of its own).
      const fmt = { associative: qp.flag('associative'), blobArray: qp.flag('blob_array'), request: false };
      const results = (dump?.results ?? []).map((r) => formatResult(r as SqlfleetResult, null, fmt));
      return respond(c, qp, { results, raft_index: out.body.index, statements: stmts.length }, started);
    } catch (e) {
      if (isSqlfleetError(e) && STATEMENT_ERRORS.has(e.code)) {
        throw new SqlfleetError('BAD_REQUEST', `load refused, nothing was changed: ${e.message}`);
      }
      throw e;
    }
  });

  // rqlite's readiness probe, in its own plain-text form.
  app.get('/readyz', (c) => {
    const ready = d.ready();
    if (new URL(c.req.url).searchParams.has('noleader')) return c.text('[+]node ok', 200);
    const s = d.status();
    const leaderUp = s.role === 'master' || s.master_reachable !== false;
    if (!leaderUp) return c.text('[+]node ok\n[+]leader not contactable', 503);
    if (!ready) return c.text('[+]node ok\n[+]leader ok\n[+]store not ready', 503);
    return c.text('[+]node ok\n[+]leader ok\n[+]store ok', 200);
  });

  app.get('/nodes', d.need('read'), (c) => {
    const qp = new URL(c.req.url).searchParams;
    const nodes = rqliteNodes(d.status());
    const body = qp.get('ver') === '2' ? { nodes } : Object.fromEntries(nodes.map((n) => [n.id, n]));
    return c.body(qp.has('pretty') ? JSON.stringify(body, null, 4) : JSON.stringify(body), 200, { 'content-type': 'application/json; charset=utf-8' });
  });

  app.get('/leader', d.need('read'), (c) => {
    const leader = rqliteNodes(d.status()).find((n) => n.leader);
    if (!leader) throw new SqlfleetError('MASTER_UNAVAILABLE', 'leader not found');
    return c.json(leader);
  });
}

/** rqlite's node objects from sqlfleet's /status node list. */
function rqliteNodes(s: Record<string, unknown>): { id: string; api_addr: string; addr: string; version: string; voter: boolean; reachable: boolean; leader: boolean }[] {
  const list = (s.nodes as { id: number; url: string | null; role: string; state: string }[] | undefined) ?? [];
  // A configured slave that was never heard from has no URL yet.
  return list.map((n) => ({
    id: String(n.id),
    api_addr: n.url ?? '',
    addr: (n.url ?? '').replace(/^https?:\/\//, ''),
    version: VERSION,
    voter: true,
    reachable: n.state !== 'down',
    leader: n.role === 'master',
  }));
}

/** sqlfleet's version, as /status `build` reports it. */
export const VERSION = '0.1.0';

const startedAt = new Date();

/** /status with rqlite's `store`, `build`, `http`, `runtime` and `os` objects beside sqlfleet's fields. */
export function withRqliteStatus(s: Record<string, unknown>, ready: boolean, auth: boolean): Record<string, unknown> {
  const nodes = rqliteNodes(s);
  const leader = nodes.find((n) => n.leader);
  const url = String(s.url ?? '');
  const applied = Number(s.applied_index ?? 0);
  return {
    ...s,
    store: {
      ready,
      node_id: String(s.node),
      addr: url.replace(/^https?:\/\//, ''),
      leader: leader ? { node_id: leader.id, addr: leader.addr } : { node_id: '', addr: '' },
      raft: { state: s.role === 'master' ? 'Leader' : 'Follower', applied_index: applied, commit_index: applied, voter: true },
      db_applied_index: applied,
      nodes: nodes.map((n) => ({ id: n.id, addr: n.addr, suffrage: 'Voter' })),
    },
    build: { version: `sqlfleet-${VERSION}`, commit: 'unknown', branch: 'unknown', build_time: 'unknown', compiler: 'node' },
    http: { bind_addr: url.replace(/^https?:\/\//, ''), auth: auth ? 'enabled' : 'disabled' },
    runtime: { GOOS: process.platform, GOARCH: process.arch, num_cpu: availableParallelism(), version: process.version, start_time: startedAt.toISOString(), uptime_s: Math.round(process.uptime()) },
    os: { pid: process.pid, ppid: process.ppid },
  };
}

// A stale read for rqlite's `freshness`: a slave that lost its master, or (strict) one
// behind what the master had at the last heartbeat. Heartbeats bound the precision.
function stale(s: Record<string, unknown>, strict: boolean): boolean {
  if (s.master_reachable === false) return true;
  if (!strict) return false;
  const master = ((s.nodes as { role: string; applied_index?: number }[] | undefined) ?? []).find((n) => n.role === 'master');
  return master?.applied_index !== undefined && master.applied_index > Number(s.applied_index ?? 0);
}

async function statementsOf(c: Context, qp: QueryParams, maxBody: number): Promise<RqStatement[]> {
  if (c.req.method === 'GET') {
    const q = qp.get('q');
    if (q === null) throw new SqlfleetError('BAD_REQUEST', 'query parameter not set: use ?q=SQL');
    return [{ sql: q }];
  }
  const raw = await readBody(c, maxBody);
  if ((c.req.header('content-type') ?? '').toLowerCase().startsWith('text/plain')) {
    if (raw.trim() === '') throw new SqlfleetError('BAD_REQUEST', 'no statements');
    return [{ sql: raw }];
  }
  return parseStatements(raw);
}

/** The text with SQLite's legacy double-quoted-string rule applied, statement by statement. */
function dqs(sql: string, s: RqliteSupport): string {
  if (!sql.includes('"')) return sql;
  const parts = splitStatements(sql);
  if (parts.length <= 1) return legacyStrings(sql, s.prepareError);
  return parts.map((p) => legacyStrings(p, s.prepareError)).join(';\n');
}

function failedAt(e: SqlfleetError, count: number): number {
  const i = e.details.statement;
  return typeof i === 'number' && i >= 0 && i < count ? i : 0;
}

function message(e: SqlfleetError, mode: Mode): string {
  if (e.code === 'READ_ONLY_COMMAND' && mode === 'query') return 'attempt to change database via query operation';
  return e.message;
}

/** A non-200 executor (or forwarded) answer as the error it carries. */
function fromOutcome(out: Outcome): SqlfleetError {
  const err = (out.body.error ?? {}) as { code?: string; message?: string; [k: string]: unknown };
  const { code, message: msg, ...rest } = err;
  const known = typeof code === 'string' && code in ERROR_STATUS ? (code as ErrorCode) : 'INTERNAL';
  return new SqlfleetError(known, typeof msg === 'string' ? msg : `status ${out.status}`, rest);
}

const ERROR_STATUS: Record<string, true> = Object.fromEntries(
  ['BAD_REQUEST', 'SQL_SYNTAX', 'SQL_ERROR', 'READ_ONLY_COMMAND', 'TRANSACTION_CONTROL', 'CONSTRAINT', 'STALE_EPOCH', 'SCHEMA_ON_SLAVE', 'FORBIDDEN_STATEMENT', 'FORBIDDEN', 'UNAUTHORIZED', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE', 'MASTER_UNAVAILABLE', 'NOT_MASTER', 'DIVERGED', 'UNAVAILABLE', 'TIMEOUT'].map((k) => [k, true]),
);

function respond(c: Context, qp: QueryParams, body: Record<string, unknown>, started: number): Response {
  const out = qp.flag('timings') ? { ...body, time: (performance.now() - started) / 1000 } : body;
  const text = qp.flag('pretty') ? prettyJson(out) : stringify(out);
  return c.body(text, 200, { 'content-type': 'application/json; charset=utf-8' });
}

const BIG = `\u0000big${Math.random().toString(36).slice(2)}:`;

// Indented JSON that keeps 64-bit integers exact, as stringify() does unindented.
function prettyJson(v: unknown): string {
  const text = JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? BIG + x.toString() : x), 4);
  return text.split(JSON.stringify(BIG).slice(0, -1)).map((part, i) => (i === 0 ? part : part.replace(/^(-?\d+)"/, '$1'))).join('');
}

function redirect(c: Context, master: string): Response {
  if (!master) throw new SqlfleetError('MASTER_UNAVAILABLE', 'leader not found');
  const u = new URL(c.req.url);
  return c.redirect(`${master}${u.pathname}${u.search}`, 301);
}

async function binaryBody(c: Context, max: number): Promise<Buffer> {
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
  const data = Buffer.from(await c.req.arrayBuffer());
  if (data.length > max) throw tooLarge(max);
  return data;
}

function tooLarge(max: number): SqlfleetError {
  return new SqlfleetError('PAYLOAD_TOO_LARGE', `a load is at most ${max} bytes`);
}

// A slave passes a load to the master as is: the master validates and logs it, and the
// load reaches this slave like any other entry.
async function forwardLoad(c: Context, master: string, epoch: number, token: string, who: Principal): Promise<Response> {
  if (!master) throw new SqlfleetError('MASTER_UNAVAILABLE', 'no master known to forward the load to');
  const data = await binaryBody(c, LOAD_MAX_BYTES);
  const u = new URL(c.req.url);
  let res: Response;
  try {
    res = await fetch(`${master}/db/load${u.search}`, {
      method: 'POST',
      body: new Uint8Array(data),
      headers: {
        authorization: `Bearer ${token}`,
        ...(epoch > 0 ? { 'x-sqlfleet-epoch': String(epoch) } : {}),
        'content-type': c.req.header('content-type') ?? 'application/octet-stream',
        ...(who.cluster || who.user === 'anonymous' ? {} : { 'x-sqlfleet-user': who.user }),
      },
      signal: AbortSignal.timeout(300_000),
    });
  } catch (e) {
    throw new SqlfleetError('MASTER_UNAVAILABLE', `the master at ${master} cannot be reached for the load: ${(e as Error).message}`, { master });
  }
  return new Response(await res.arrayBuffer(), { status: res.status, headers: { 'content-type': res.headers.get('content-type') ?? 'application/json' } });
}
