// Hrana over WebSocket (subprotocols hrana3, hrana2, hrana1; JSON encoding): the same
// stream requests as over HTTP, addressed by stream_id, plus cursors.
import { declineUpgrade } from '../http/plain-upgrade.js';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { SqlfleetError } from '../errors.js';
import type { Principal } from '../auth/users.js';
import { batch, streamRequest, storeSql } from './requests.js';
import type { HStream, Streams } from './streams.js';
import { encodeError } from './values.js';

/** What the WebSocket front needs. */
export interface HranaWsDeps {
  streams: Streams;
  /** The principal of a hello's JWT (an API token of --auth); throws UNAUTHORIZED. */
  authenticate(jwt: string | null): Promise<Principal>;
  maxMessage: number;
  log: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

const PROTOCOLS = ['hrana3', 'hrana2', 'hrana1'];

/** Accepts Hrana WebSocket upgrades on `server`; returns a function that closes every socket. */
export function serveHranaWs(server: Server, d: HranaWsDeps): () => void {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: d.maxMessage,
    handleProtocols: (offered: Set<string>) => PROTOCOLS.find((p) => offered.has(p)) ?? false,
  });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return declineUpgrade(server, req, socket, head);
    wss.handleUpgrade(req, socket, head, (ws) => connection(ws, d));
  });
  return () => {
    for (const ws of wss.clients) ws.terminate();
    wss.close();
  };
}

interface Cursor {
  entries: unknown[];
  done: Promise<void>;
  finished: boolean;
}

function connection(ws: WebSocket, d: HranaWsDeps): void {
  let who: Promise<Principal> | null = null;
  const streams = new Map<number, HStream>();
  const cursors = new Map<number, Cursor>();
  const sqls = new Map<number, string>();
  const send = (msg: unknown) => {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(msg));
  };
  const fail = (message: string) => {
    send({ type: 'error', error: { message, code: 'PROTO_ERROR' } });
    ws.close(1002, message.slice(0, 120));
  };

  ws.on('message', (data, isBinary) => {
    if (isBinary) return fail('binary messages are not supported (JSON subprotocols only)');
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(String(data)) as Record<string, unknown>;
    } catch {
      return fail('malformed JSON');
    }
    if (msg.type === 'hello') {
      const jwt = typeof msg.jwt === 'string' ? msg.jwt : null;
      const attempt = d.authenticate(jwt);
      attempt.then(
        () => send({ type: 'hello_ok' }),
        (e: unknown) => {
          send({ type: 'hello_error', error: encodeError(e) });
          ws.close(1008, 'authentication failed');
        },
      );
      who = attempt;
      return;
    }
    if (msg.type !== 'request') return fail(`unknown message type ${JSON.stringify(msg.type)}`);
    if (!who) return fail('the first message must be a hello');
    const id = msg.request_id;
    const req = msg.request as Record<string, unknown> | null;
    who
      .then((p) => handle(p, req))
      .then(
        (response) => send({ type: 'response_ok', request_id: id, response }),
        (e: unknown) => send({ type: 'response_error', request_id: id, error: encodeError(e) }),
      );
  });
  ws.on('close', () => {
    for (const s of streams.values()) void d.streams.close(s);
    streams.clear();
  });
  ws.on('error', () => ws.terminate());

  const stream = (req: Record<string, unknown>): HStream => {
    const s = streams.get(Number(req.stream_id));
    if (!s) throw new SqlfleetError('BAD_REQUEST', `no open stream ${String(req.stream_id)}`, { hrana_code: 'STREAM_NOT_FOUND' });
    return s;
  };
  const queued = <T>(s: HStream, fn: () => Promise<T>): Promise<T> => {
    const run = s.chain.then(fn, fn);
    s.chain = run.catch(() => undefined);
    return run;
  };

  async function handle(p: Principal, req: Record<string, unknown> | null): Promise<Record<string, unknown>> {
    if (req === null || typeof req !== 'object') throw new SqlfleetError('BAD_REQUEST', 'request must be an object', { hrana_code: 'PROTO_ERROR' });
    switch (req.type) {
      case 'open_stream': {
        const sid = Number(req.stream_id);
        if (!Number.isInteger(sid) || streams.has(sid)) throw new SqlfleetError('BAD_REQUEST', `stream id ${String(req.stream_id)} is not free`, { hrana_code: 'PROTO_ERROR' });
        streams.set(sid, d.streams.open(p));
        return { type: 'open_stream' };
      }
      case 'close_stream': {
        const s = streams.get(Number(req.stream_id));
        streams.delete(Number(req.stream_id));
        if (s) await queued(s, () => d.streams.close(s));
        return { type: 'close_stream' };
      }
      case 'store_sql':
        storeSql(sqls, req.sql_id, req.sql);
        return { type: 'store_sql' };
      case 'close_sql':
        sqls.delete(Number(req.sql_id));
        return { type: 'close_sql' };
      case 'open_cursor': {
        const s = stream(req);
        const cid = Number(req.cursor_id);
        const c: Cursor = { entries: [], finished: false, done: Promise.resolve() };
        c.done = queued(s, async () => {
          try {
            await batch(s.session, req.batch, sqls, {
              begin: () => undefined,
              ok: (step, r) => {
                c.entries.push({ type: 'step_begin', step, cols: r.cols });
                for (const row of r.rows as unknown[]) c.entries.push({ type: 'row', row });
                c.entries.push({ type: 'step_end', affected_row_count: r.affected_row_count, last_insert_rowid: r.last_insert_rowid });
              },
              error: (step, error) => c.entries.push({ type: 'step_error', step, error }),
            });
          } catch (e) {
            c.entries.push({ type: 'error', error: encodeError(e) });
          }
          c.finished = true;
        });
        cursors.set(cid, c);
        return { type: 'open_cursor' };
      }
      case 'fetch_cursor': {
        const c = cursors.get(Number(req.cursor_id));
        if (!c) throw new SqlfleetError('BAD_REQUEST', `no open cursor ${String(req.cursor_id)}`, { hrana_code: 'CURSOR_NOT_FOUND' });
        await c.done;
        const max = Math.max(1, Number(req.max_count) || 1000);
        const entries = c.entries.splice(0, max);
        return { type: 'fetch_cursor', entries, done: c.entries.length === 0 };
      }
      case 'close_cursor':
        cursors.delete(Number(req.cursor_id));
        return { type: 'close_cursor' };
      default: {
        const s = stream(req);
        return queued(s, () => streamRequest(s.session, req, sqls));
      }
    }
  }
}
