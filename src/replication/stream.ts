// The replication stream: the master's appends to a slave over one long-lived connection
// instead of one HTTP request per batch. The master opens it as an HTTP tunnel (undici's
// connect() from the peer's keep-alive pool, so TLS and its CA are the pool's): CONNECT
// /internal/stream with the cluster token and `sqlfleet-stream: sqlfleet-append/1`. Not an
// HTTP Upgrade: a Node server that listens for upgrades receives every Upgrade request
// (h2c from Java's HttpClient, WebSocket) instead of answering it as plain HTTP/1.1.
// After the 200 each request is one line holding exactly the JSON body of
// POST /internal/append, and each answer is one line holding that route's JSON answer, in
// order. JSON never holds a raw newline, so a newline ends a frame. One batch is in flight
// per connection (the shipper's pump sends the next one after the answer), so answers match
// requests by order alone.
//
// Why: at one client per write, each slave cost the master ~350 µs of CPU per write and
// the slave ~300 µs while every batch was an undici request answered by node:http; over
// the stream ~120 µs and ~140 µs (bench/README.md, "What a slave costs at one client").
// Everything else (fencing by epoch, hash checks, the slave's answers) is the append
// route's own.
//
// A peer that connects but refuses the tunnel (a node from before the stream closes a
// CONNECT; a wrong token is answered 401) is served over HTTP for a minute before the
// stream is tried again.
import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { neverConnected, PeerUnreachableError } from './client.js';

export const STREAM_PATH = '/internal/stream';
export const STREAM_PROTOCOL = 'sqlfleet-append/1';
/** Request and answer header naming the protocol of the tunnel. */
export const STREAM_HEADER = 'sqlfleet-stream';

/** Splits a byte stream into lines (frames) and calls `onLine` with each, decoded as UTF-8. */
export class LineReader {
  private chunks: Buffer[] = [];
  private size = 0;

  constructor(
    private readonly max: number,
    private readonly onLine: (line: string) => void,
  ) {}

  /** Feeds bytes; false when a frame grew past the limit (the caller closes the connection). */
  push(chunk: Buffer): boolean {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      const part = chunk.subarray(start, nl);
      const line = this.chunks.length === 0 ? part.toString('utf8') : Buffer.concat([...this.chunks, part], this.size + part.length).toString('utf8');
      this.chunks = [];
      this.size = 0;
      start = nl + 1;
      this.onLine(line);
    }
    if (start < chunk.length) {
      this.chunks.push(start === 0 ? chunk : chunk.subarray(start));
      this.size += chunk.length - start;
    }
    return this.size <= this.max;
  }
}

/** One pending append: its answer or its failure. */
interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** One open stream to a slave. */
interface Conn {
  socket: Duplex;
  pending: Pending | null;
  idle: NodeJS.Timeout | null;
}

/** A client stream left unused this long is closed (the slave's own limit is longer). */
const CLIENT_IDLE_MS = 30_000;
/** A peer that refused the tunnel is asked again after this long. */
const FALLBACK_MS = 60_000;

/** The master's streams, one per slave URL. */
export class AppendStreams {
  private readonly conns = new Map<string, Conn>();
  private readonly connecting = new Map<string, Promise<Conn | null>>();
  private readonly httpUntil = new Map<string, number>();
  private closed = false;

  constructor(
    private readonly token: string,
    /** The keep-alive pool of a peer (client.ts); a tunnel takes one of its connections for good. */
    private readonly pool: (url: string) => Dispatcher,
    private readonly maxAnswer = 1024 * 1024,
  ) {}

  /**
   * Sends one append body and resolves with the slave's parsed answer; null when this
   * peer does not speak the stream (the caller uses HTTP). PeerUnreachableError as the
   * HTTP client's: `sent` false only when the connection was never made.
   */
  async append(url: string, body: string, timeoutMs: number): Promise<unknown> {
    if (this.closed) throw new PeerUnreachableError(`append to ${url}: client closed`, false);
    if ((this.httpUntil.get(url) ?? 0) > Date.now()) return null;
    const conn = this.conns.get(url) ?? (await this.connect(url, timeoutMs));
    if (!conn || conn.pending) return null; // no stream, or one already in flight: HTTP
    if (conn.socket.destroyed || this.conns.get(url) !== conn) {
      this.drop(url, conn, null); // closed since it was found: this one goes over HTTP
      return null;
    }
    if (conn.idle) clearTimeout(conn.idle);
    conn.idle = null;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => this.drop(url, conn, new PeerUnreachableError(`append to ${url}: no answer in ${timeoutMs} ms`, true)), timeoutMs);
      conn.pending = { resolve, reject, timer };
      conn.socket.write(body + '\n');
    });
  }

  /** Closes every stream. */
  close(): void {
    this.closed = true;
    for (const [url, c] of this.conns) this.drop(url, c, new PeerUnreachableError(`append to ${url}: client closed`, true));
  }

  private connect(url: string, timeoutMs: number): Promise<Conn | null> {
    let p = this.connecting.get(url);
    if (!p) {
      p = this.open(url, timeoutMs).finally(() => this.connecting.delete(url));
      this.connecting.set(url, p);
    }
    return p;
  }

  private async open(url: string, timeoutMs: number): Promise<Conn | null> {
    let socket: Duplex;
    try {
      const tunnel = await this.pool(url).connect({
        origin: new URL(url).origin,
        path: STREAM_PATH,
        headers: { authorization: `Bearer ${this.token}`, [STREAM_HEADER]: STREAM_PROTOCOL },
        signal: AbortSignal.timeout(timeoutMs),
      });
      socket = tunnel.socket;
      if (tunnel.headers[STREAM_HEADER] !== STREAM_PROTOCOL) {
        socket.destroy();
        return this.viaHttp(url);
      }
    } catch (e) {
      const err = e as Error & { code?: unknown };
      const code = typeof err.code === 'string' ? err.code : '';
      const why = `stream to ${url}: ${code || err.name}: ${err.message}`;
      // Never connected (refused, unreachable, TLS refused): the append was not sent.
      if (neverConnected(code)) throw new PeerUnreachableError(why, false);
      // Connected and no answer in time (a slave whose event loop is busy): as an HTTP
      // request that timed out, not as a refused connection (that marks the slave down).
      if (err.name === 'TimeoutError' || err.name === 'AbortError' || code === 'UND_ERR_ABORTED') throw new PeerUnreachableError(why, true);
      // Connected, then refused or closed (a node from before the stream closes a CONNECT;
      // a wrong token is answered 401): POST /internal/append says why, or works.
      return this.viaHttp(url);
    }
    if (this.closed) {
      socket.destroy();
      throw new PeerUnreachableError(`append to ${url}: client closed`, false);
    }
    const conn: Conn = { socket, pending: null, idle: null };
    (socket as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    const reader = new LineReader(this.maxAnswer, (line) => this.answer(url, conn, line));
    socket.on('data', (chunk: Buffer) => {
      if (!reader.push(chunk)) this.drop(url, conn, new PeerUnreachableError(`append to ${url}: answer over ${this.maxAnswer} bytes`, true));
    });
    socket.on('error', (e) => this.drop(url, conn, new PeerUnreachableError(`append to ${url}: ${(e as { code?: string }).code ?? e.message}`, true)));
    socket.on('close', () => this.drop(url, conn, new PeerUnreachableError(`append to ${url}: stream closed`, true)));
    this.conns.set(url, conn);
    return conn;
  }

  private viaHttp(url: string): null {
    this.httpUntil.set(url, Date.now() + FALLBACK_MS);
    return null;
  }

  private answer(url: string, conn: Conn, line: string): void {
    const p = conn.pending;
    if (!p) return void this.drop(url, conn, new PeerUnreachableError(`append to ${url}: answer to no request`, true));
    conn.pending = null;
    clearTimeout(p.timer);
    conn.idle = setTimeout(() => this.drop(url, conn, new PeerUnreachableError(`append to ${url}: idle`, true)), CLIENT_IDLE_MS);
    conn.idle.unref();
    try {
      p.resolve(JSON.parse(line));
    } catch {
      p.reject(new PeerUnreachableError(`append to ${url}: answer is not JSON`, true));
      this.drop(url, conn, null);
    }
  }

  private drop(url: string, conn: Conn, e: Error | null): void {
    if (this.conns.get(url) === conn) this.conns.delete(url);
    if (conn.idle) clearTimeout(conn.idle);
    conn.idle = null;
    const p = conn.pending;
    conn.pending = null;
    if (p) {
      clearTimeout(p.timer);
      p.reject(e ?? new PeerUnreachableError(`append to ${url}: stream closed`, true));
    }
    conn.socket.destroy();
  }
}
