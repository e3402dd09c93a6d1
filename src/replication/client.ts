// Node-to-node HTTP calls over undici keep-alive pools, with explicit timeouts and the
// cluster token. The only place (with the other replication files) that imports undici.
import type { Readable } from 'node:stream';
import { Pool } from 'undici';
import { SqlfleetError } from '../errors.js';
import { parseExact } from '../json.js';
import { AppendStreams } from './stream.js';

/** Answer of a peer: HTTP status and parsed JSON body. */
export interface PeerResponse<T = unknown> {
  status: number;
  body: T;
}

/** Options of one call. */
export interface CallOptions {
  timeoutMs: number;
  headers?: Record<string, string>;
  /** Aborts the call early (e.g. a forward whose master was replaced meanwhile). */
  signal?: AbortSignal;
}

/** A peer could not be reached or did not answer in time; `sent` says whether the request may have arrived. */
export class PeerUnreachableError extends Error {
  readonly code = 'PEER_UNREACHABLE';
  constructor(
    message: string,
    readonly sent: boolean,
  ) {
    super(message);
  }
}

/**
 * The connection to the peer was refused or never made (TLS refused before any request
 * byte included), by the error code undici or node:net gives: the peer certainly did not
 * act on the request.
 */
export function neverConnected(code: string): boolean {
  return ['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH'].includes(code) || /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS|ERR_SSL/.test(code);
}

/** Keep-alive pools to every peer URL, authenticated with the cluster token. */
export class PeerClient {
  private readonly pools = new Map<string, Pool>();
  private readonly streams: AppendStreams;

  constructor(
    private readonly token: string,
    private readonly tls: { ca?: string } = {},
  ) {
    this.streams = new AppendStreams(token, (url) => this.pool(url));
  }

  /** Sends an append body to a slave over its replication stream (stream.ts), or POST /internal/append when it has none; the slave's answer. */
  async append<T>(url: string, body: string, opts: CallOptions): Promise<T | null> {
    const answer = await this.streams.append(url, body, opts.timeoutMs);
    if (answer !== null) return answer as T;
    return (await this.post<T>(url, '/internal/append', body, opts)).body;
  }

  /** POSTs a JSON body (object or pre-serialized string) and returns the parsed answer. */
  async post<T>(url: string, path: string, body: unknown, opts: CallOptions): Promise<PeerResponse<T>> {
    return this.call<T>(url, 'POST', path, typeof body === 'string' ? body : JSON.stringify(body), opts);
  }

  /** POSTs a stream (a snapshot file) and returns the parsed answer. */
  async postStream<T>(url: string, path: string, body: Readable, opts: CallOptions): Promise<PeerResponse<T>> {
    return this.call<T>(url, 'POST', path, body, { ...opts, headers: { ...opts.headers, 'content-type': 'application/octet-stream' } });
  }

  /** GETs JSON from a peer. */
  async get<T>(url: string, path: string, opts: CallOptions): Promise<PeerResponse<T>> {
    return this.call<T>(url, 'GET', path, undefined, opts);
  }

  /** Closes every pool. */
  async close(): Promise<void> {
    this.streams.close();
    await Promise.all([...this.pools.values()].map((p) => p.destroy()));
    this.pools.clear();
  }

  private pool(url: string): Pool {
    let p = this.pools.get(url);
    if (!p) {
      p = new Pool(url, {
        connections: 8,
        keepAliveTimeout: 30_000,
        pipelining: 1,
        connectTimeout: 2_000,
        ...(this.tls.ca ? { connect: { ca: this.tls.ca } } : {}),
      });
      this.pools.set(url, p);
    }
    return p;
  }

  private async call<T>(url: string, method: 'GET' | 'POST', path: string, body: string | Readable | undefined, opts: CallOptions): Promise<PeerResponse<T>> {
    let res;
    try {
      res = await this.pool(url).request({
        method,
        path,
        body,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}`, ...opts.headers },
        headersTimeout: opts.timeoutMs,
        bodyTimeout: opts.timeoutMs,
        signal: opts.signal ? AbortSignal.any([AbortSignal.timeout(opts.timeoutMs), opts.signal]) : AbortSignal.timeout(opts.timeoutMs),
      });
    } catch (e) {
      const code = (e as { code?: string }).code ?? '';
      throw new PeerUnreachableError(`${method} ${url}${path}: ${code || (e as Error).message}`, !neverConnected(code));
    }
    let text: string;
    try {
      text = await res.body.text();
    } catch (e) {
      throw new PeerUnreachableError(`${method} ${url}${path}: body ${(e as Error).message}`, true);
    }
    let parsed: unknown;
    try {
      // Exact: a forwarded write's answer may hold integers beyond 2^53 (RETURNING, last_insert_rowid).
      parsed = text ? parseExact(text) : null;
    } catch {
      throw new SqlfleetError('INTERNAL', `peer ${url} answered non-JSON (status ${res.statusCode})`);
    }
    return { status: res.statusCode, body: parsed as T };
  }
}
