// The sqlfleet client: reads to any healthy node, writes to the master, read-your-writes
// through min_index, and writes retried across failures under one idempotency key, so a
// retry is answered with the first answer instead of being applied twice.
import { Deadline } from './deadline.js';
import { SqlfleetClientError, type WriteOutcome } from './errors.js';
import { Router } from './router.js';
import { Transport, TransportError, type HttpAnswer } from './transport.js';
import type {
  BatchResult,
  CallOptions,
  ClientConfig,
  ClusterStatus,
  ExecuteResult,
  Params,
  QueryOptions,
  QueryResult,
  SqlValue,
  Statement,
  StatementResult,
  WriteOptions,
} from './types.js';
import { uuidv7 } from './uuid.js';

const DEFAULT_TIMEOUT_MS = 10_000;
/** Longest /status request of a discovery round: a hung node must not eat the call's budget. */
const STATUS_TIMEOUT_MS = 1_500;
const BACKOFF_FIRST_MS = 50;
const BACKOFF_MAX_MS = 1_000;

/** A connection to a sqlfleet cluster; safe to share across concurrent calls. */
export class Client {
  private readonly transport: Transport;
  private readonly router: Router;
  private readonly timeoutMs: number;
  private readonly attemptMs: number;
  private readonly readYourWrites: boolean;
  private readonly discover: boolean;
  private readonly ack: ClientConfig['ack'];
  private discovery: Promise<{ res: HttpAnswer; url: string } | undefined> | null = null;
  private lastWrite = 0;
  private closed = false;

  constructor(config: ClientConfig) {
    const urls = typeof config.urls === 'string' ? [config.urls] : [...config.urls];
    if (urls.length === 0) throw new TypeError('createClient: "urls" needs at least one node URL');
    for (const u of urls) new URL(u); // throws TypeError on a malformed URL, now rather than at the first call
    this.timeoutMs = positive(config.timeoutMs ?? DEFAULT_TIMEOUT_MS, 'timeoutMs');
    this.attemptMs = positive(config.attemptTimeoutMs ?? Math.max(1_000, this.timeoutMs / 2), 'attemptTimeoutMs');
    this.readYourWrites = config.readYourWrites ?? true;
    this.discover = config.discover ?? true;
    this.ack = config.ack;
    this.router = new Router(urls, this.discover);
    this.transport = new Transport(config);
  }

  /** Log index of this client's last acknowledged write (0 before any): reads wait for it. */
  get lastWriteIndex(): number {
    return this.lastWrite;
  }

  /** URL of the master as last learned (undefined until a call needed it). */
  get masterUrl(): string | undefined {
    return this.router.master;
  }

  /** Runs a write (or any statement) on the master; retried under one idempotency key until its deadline. */
  async execute(sql: string, params?: Params, opts: WriteOptions = {}): Promise<ExecuteResult> {
    const { body, attempts } = await this.write({ query: sql, ...(params === undefined ? {} : { params }) }, opts);
    const results = (body.results ?? []) as StatementResult[];
    const last = results[results.length - 1] ?? {};
    const withRows = [...results].reverse().find((r) => Array.isArray(r.columns));
    return {
      changes: results.reduce((n, r) => n + (r.changes ?? 0), 0),
      lastInsertRowid: Number(last.last_insert_rowid ?? 0),
      columns: withRows?.columns ?? [],
      rows: withRows?.rows ?? [],
      index: Number(body.index),
      replayed: body.idempotent_replay === true,
      replicatedTo: (body.replicated_to as number[] | undefined) ?? [],
      attempts,
    };
  }

  /** Runs several statements as one atomic write (all or nothing); results in order. */
  async batch(statements: readonly Statement[], opts: WriteOptions = {}): Promise<BatchResult> {
    if (statements.length === 0) throw new TypeError('batch: needs at least one statement');
    const queries = statements.map((s) => (typeof s === 'string' ? s : { query: s.sql, ...(s.params === undefined ? {} : { params: s.params }) }));
    const { body, attempts } = await this.write({ queries, transaction: true }, opts);
    return {
      results: (body.results ?? []) as StatementResult[],
      index: Number(body.index),
      replayed: body.idempotent_replay === true,
      replicatedTo: (body.replicated_to as number[] | undefined) ?? [],
      attempts,
    };
  }

  /** Runs a read on a healthy node (the master with `consistency: 'strong'`), after this client's last write. */
  async query<R extends readonly SqlValue[] = SqlValue[]>(sql: string, params?: Params, opts: QueryOptions = {}): Promise<QueryResult<R>> {
    const strong = opts.consistency === 'strong';
    const minIndex = opts.minIndex ?? (this.readYourWrites && this.lastWrite > 0 ? this.lastWrite : undefined);
    const payload = {
      command: 'query',
      query: sql,
      ...(params === undefined ? {} : { params }),
      ...(minIndex === undefined ? {} : { min_index: minIndex }),
      ...(strong ? { consistency: 'strong' } : {}),
    };
    const body = await this.read(payload, strong, opts);
    const results = (body.results ?? []) as StatementResult[];
    const r = [...results].reverse().find((x) => Array.isArray(x.columns)) ?? {};
    return {
      columns: r.columns ?? [],
      rows: (r.rows ?? []) as unknown as R[],
      index: Number(body.index),
      node: Number(body.node),
      truncated: results.some((x) => x.truncated === true),
    };
  }

  /** GET /status of the master (or of any node when no master answers). */
  async status(opts: CallOptions = {}): Promise<ClusterStatus> {
    const d = this.deadline(opts);
    let attempts = 0;
    let last: unknown;
    while (!d.over) {
      if (this.router.master === undefined) await this.findMaster(d, attempts, undefined);
      const url = this.router.master ?? this.router.nextRead();
      attempts++;
      try {
        const res = await this.transport.send(url, 'GET', '/status', undefined, d.attempt(this.attemptMs));
        if (res.status === 200) {
          this.router.answered(url);
          return res.body as ClusterStatus;
        }
        if (isCredentialRefusal(res.status)) throw this.serverError(res, url, attempts, undefined);
        last = this.serverError(res, url, attempts, undefined);
      } catch (e) {
        if (!(e instanceof TransportError)) throw e;
        last = e;
      }
      this.router.failed(url);
      await d.pause(BACKOFF_FIRST_MS);
    }
    throw this.endError(d, attempts, undefined, last);
  }

  /** Closes every connection; calls after close() reject with CLOSED. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.transport.close();
  }

  // ---- writes ------------------------------------------------------------------------

  private async write(fields: Record<string, unknown>, opts: WriteOptions): Promise<{ body: Record<string, unknown>; attempts: number }> {
    const d = this.deadline(opts);
    const ack = opts.ack ?? this.ack;
    const payload = { command: 'exec', ...fields, idempotency_key: opts.idempotencyKey ?? uuidv7(), ...(ack ? { ack } : {}) };
    let attempts = 0;
    // Once a request may have reached a master, the outcome stays unknown until an answer settles it.
    let unknown = false;
    let last: unknown;
    for (let backoff = BACKOFF_FIRST_MS; !d.over; backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)) {
      if (this.router.master === undefined) await this.findMaster(d, attempts, unknown ? 'unknown' : 'not_applied');
      const url = this.router.master;
      if (url === undefined) {
        last = new SqlfleetClientError('no node named a master', { code: 'NO_MASTER', attempts });
        await d.pause(backoff);
        continue;
      }
      attempts++;
      let res: HttpAnswer;
      try {
        res = await this.transport.send(url, 'POST', '/', payload, d.attempt(this.attemptMs));
      } catch (e) {
        if (!(e instanceof TransportError)) throw e;
        if (e.sent) unknown = true;
        last = e;
        this.router.failed(url);
        await d.pause(backoff);
        continue;
      }
      this.router.answered(url);
      if (res.status === 200 && res.body.ok === true) {
        if (typeof res.body.forwarded_to === 'string') this.router.setMaster(res.body.forwarded_to);
        const index = Number(res.body.index);
        if (Number.isFinite(index)) this.lastWrite = Math.max(this.lastWrite, index);
        return { body: res.body, attempts };
      }
      const err = errorBody(res);
      if (!retryableWrite(res.status, err.code)) {
        // A definite refusal settles an earlier unknown: the retry ran the key check first, so
        // had an earlier attempt been applied, this one would have been its replay.
        throw this.serverError(res, url, attempts, err.code === 'IDEMPOTENCY_KEY_EXPIRED' ? 'unknown' : 'not_applied');
      }
      if (err.outcome === 'unknown' || res.status === 500 || res.status === 504) unknown = true;
      last = this.serverError(res, url, attempts, unknown ? 'unknown' : 'not_applied');
      // The node is not (or no longer) the master, or cannot reach it: look again.
      this.router.setMaster(typeof err.master === 'string' && err.master !== url ? err.master : undefined);
      await d.pause(backoff);
    }
    throw this.endError(d, attempts, unknown ? 'unknown' : 'not_applied', last);
  }

  // ---- reads -------------------------------------------------------------------------

  private async read(payload: Record<string, unknown>, strong: boolean, opts: CallOptions): Promise<Record<string, unknown>> {
    const d = this.deadline(opts);
    let attempts = 0;
    let last: unknown;
    for (let backoff = BACKOFF_FIRST_MS; !d.over; backoff = Math.min(backoff * 2, BACKOFF_MAX_MS)) {
      if (strong && this.router.master === undefined) await this.findMaster(d, attempts, undefined);
      const url = strong ? (this.router.master ?? this.router.nextRead()) : this.router.nextRead();
      attempts++;
      let res: HttpAnswer;
      try {
        res = await this.transport.send(url, 'POST', '/', payload, d.attempt(this.attemptMs));
      } catch (e) {
        if (!(e instanceof TransportError)) throw e;
        last = e;
        this.router.failed(url);
        if (attempts % this.router.all().length === 0) await d.pause(backoff);
        continue;
      }
      if (res.status === 200 && res.body.ok === true) {
        this.router.answered(url);
        return res.body;
      }
      const err = errorBody(res);
      // 503: starting, diverged, master unreachable (strong); 504 with applied_index: this
      // node is behind min_index. Another node may answer; anything else is the answer.
      const retry = res.status === 503 || res.status === 502 || (res.status === 504 && err.applied_index !== undefined);
      if (!retry) throw this.serverError(res, url, attempts, undefined);
      last = this.serverError(res, url, attempts, undefined);
      this.router.failed(url);
      if (strong) this.router.setMaster(undefined);
      if (attempts % this.router.all().length === 0) await d.pause(backoff);
    }
    throw this.endError(d, attempts, undefined, last);
  }

  // ---- discovery ---------------------------------------------------------------------

  /**
   * Asks every known node's /status who the master is (one round shared by concurrent
   * calls). Throws UNAUTHORIZED / FORBIDDEN at once when no master was found and a node
   * refused the credentials: retrying cannot change that answer.
   */
  private async findMaster(d: Deadline, attempts: number, outcome: WriteOutcome | undefined): Promise<void> {
    if (!this.discovery) {
      const round = this.discoveryRound(d).finally(() => {
        this.discovery = null;
      });
      this.discovery = round;
    }
    // A round started by another call may outlive this call's budget: stop waiting at ours.
    // The listener goes with the wait, so retries do not pile them up on the call's signal.
    const end = d.ended();
    let refusal: { res: HttpAnswer; url: string } | undefined | void;
    try {
      refusal = await Promise.race([this.discovery, end.promise]);
    } finally {
      end.stop();
    }
    if (refusal && this.router.master === undefined) throw this.serverError(refusal.res, refusal.url, attempts, outcome);
  }

  /** One round of /status requests; the credential refusal a node answered, if any. */
  private async discoveryRound(d: Deadline): Promise<{ res: HttpAnswer; url: string } | undefined> {
    const signal = AbortSignal.timeout(Math.max(1, Math.min(STATUS_TIMEOUT_MS, d.remaining())));
    let refusal: { res: HttpAnswer; url: string } | undefined;
    const answers = await Promise.all(
      this.router.candidates().map(async (url) => {
        try {
          const res = await this.transport.send(url, 'GET', '/status', undefined, signal);
          if (isCredentialRefusal(res.status)) refusal ??= { res, url };
          if (res.status !== 200) return undefined;
          this.router.answered(url);
          return { url, status: res.body as ClusterStatus };
        } catch {
          this.router.failed(url);
          return undefined;
        }
      }),
    );
    this.router.learn(answers.filter((a) => a !== undefined));
    return refusal;
  }

  // ---- errors ------------------------------------------------------------------------

  private deadline(opts: CallOptions): Deadline {
    if (this.closed) throw new SqlfleetClientError('the client was closed', { code: 'CLOSED' });
    if (opts.signal?.aborted) throw new SqlfleetClientError('aborted before it started', { code: 'ABORTED', outcome: 'not_applied' });
    return new Deadline(opts.timeoutMs === undefined ? this.timeoutMs : positive(opts.timeoutMs, 'timeoutMs'), opts.signal);
  }

  private serverError(res: HttpAnswer, url: string, attempts: number, outcome: WriteOutcome | undefined): SqlfleetClientError {
    const { code, message, statement, ...details } = errorBody(res);
    return new SqlfleetClientError(typeof message === 'string' ? message : `HTTP ${res.status}`, {
      code: typeof code === 'string' ? code : `HTTP_${res.status}`,
      status: res.status,
      statement: typeof statement === 'number' ? statement : undefined,
      outcome,
      node: url,
      attempts,
      details,
    });
  }

  /** The error of a call whose budget ran out (or was aborted) after `attempts` requests. */
  private endError(d: Deadline, attempts: number, outcome: WriteOutcome | undefined, last: unknown): SqlfleetClientError {
    const why = last instanceof Error ? `; last failure: ${last.message}` : '';
    if (d.abortedByCaller) return new SqlfleetClientError(`aborted after ${attempts} request(s)${why}`, { code: 'ABORTED', outcome, attempts, cause: last });
    if (last instanceof SqlfleetClientError && last.status !== undefined) {
      // The last server answer says most (MASTER_UNAVAILABLE, TIMEOUT, ...); the outcome is the call's.
      return new SqlfleetClientError(`${last.message} (gave up at the deadline after ${attempts} request(s))`, {
        code: last.code,
        status: last.status,
        statement: last.statement,
        outcome,
        node: last.node,
        attempts,
        details: last.details,
        cause: last,
      });
    }
    const code = last instanceof SqlfleetClientError ? last.code : last instanceof TransportError && !last.badResponse && attempts > 0 && !isTimeout(last) ? 'NETWORK' : 'DEADLINE';
    return new SqlfleetClientError(`no answer within the deadline after ${attempts} request(s)${why}`, { code: last instanceof TransportError && last.badResponse ? 'BAD_RESPONSE' : code, outcome, attempts, cause: last });
  }
}

/** 401 and 403 are definite: the same credentials get the same answer on a retry. */
function isCredentialRefusal(status: number): boolean {
  return status === 401 || status === 403;
}

/** Writes are retried (same key) on 5xx answers and on refusals that name another master. */
function retryableWrite(status: number, code: unknown): boolean {
  if (status >= 500) return true;
  return code === 'SCHEMA_ON_SLAVE' || code === 'NOT_MASTER';
}

function errorBody(res: HttpAnswer): Record<string, unknown> {
  const e = res.body.error;
  return e && typeof e === 'object' ? (e as Record<string, unknown>) : {};
}

function isTimeout(e: TransportError): boolean {
  return /Timeout|Abort/i.test(e.errCode);
}

function positive(v: number, name: string): number {
  if (!Number.isFinite(v) || v <= 0) throw new TypeError(`${name} must be a positive number of milliseconds, got ${v}`);
  return v;
}
