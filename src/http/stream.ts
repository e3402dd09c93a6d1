// The slave's end of the replication stream (src/replication/stream.ts): CONNECT
// /internal/stream with the cluster token opens a tunnel, then one append body per line is
// answered by one line, through the same `append` as POST /internal/append (lane.ts).
// Only CONNECT is taken: Upgrade requests (h2c, WebSocket) stay plain HTTP requests.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { SqlfleetError } from '../errors.js';
import { LineReader, STREAM_HEADER, STREAM_PATH, STREAM_PROTOCOL } from '../replication/stream.js';
import { errorOutcome } from './app.js';
import { parseAppend } from '../replication/frame.js';
import { clusterTokenRequired } from './auth.js';
import { failpoint } from '../failpoints.js';
import { stringify } from './json.js';
import type { LaneDeps } from './lane.js';

/** A stream with no frame for this long is closed (the master closes its own after 30 s). */
const SERVER_IDLE_MS = 120_000;

function refuse(socket: Duplex, status: number, reason: string, body?: unknown): void {
  const json = body === undefined ? '' : JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(json)}\r\n\r\n${json}`);
}

/** Serves replication streams on `server`; the returned function closes every open one. */
export function serveReplicationStream(server: Server, d: LaneDeps): () => void {
  const open = new Set<Duplex>();
  let closing = false;
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    // Stopping: a keep-alive connection still busy at close() could open one after it.
    if (closing) return refuse(socket, 503, 'Service Unavailable', new SqlfleetError('UNAVAILABLE', 'node is stopping').toJSON());
    const path = (req.url ?? '').split('?')[0];
    if (path !== STREAM_PATH || req.headers[STREAM_HEADER] !== STREAM_PROTOCOL) {
      return refuse(socket, 404, 'Not Found', new SqlfleetError('NOT_FOUND', `no tunnel to ${path} (${STREAM_HEADER}: ${req.headers[STREAM_HEADER] ?? 'none'})`).toJSON());
    }
    if (!d.hasClusterToken(req.headers.authorization)) {
      return refuse(socket, 401, 'Unauthorized', clusterTokenRequired().toJSON());
    }
    socket.write(`HTTP/1.1 200 Connection Established\r\n${STREAM_HEADER}: ${STREAM_PROTOCOL}\r\n\r\n`);
    (socket as { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
    (socket as { setTimeout?: (ms: number, cb: () => void) => void }).setTimeout?.(SERVER_IDLE_MS, () => socket.destroy());
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    const reader = new LineReader(d.maxBody, (line) => {
      let out;
      try {
        out = d.append(parseAppend(line)); // + the entries' statements texts (frame.ts)
      } catch (e) {
        out = errorOutcome(e, d.log, STREAM_PATH);
      }
      try {
        failpoint('stream.write');
        socket.write(stringify(out.body) + '\n');
      } catch (e) {
        // The master sees the stream close and resends from the slave's index.
        d.log('error', 'could not answer on the replication stream; closing it', { err: e instanceof Error ? e.message : String(e) });
        socket.destroy();
        return;
      }
      d.observe?.(STREAM_PATH, String(out.status));
    });
    const feed = (chunk: Buffer) => {
      if (reader.push(chunk)) return;
      d.log('warn', 'replication stream frame over the byte limit; closing it', { limit: d.maxBody });
      socket.destroy();
    };
    socket.on('data', feed);
    if (head.length) feed(head); // frames sent along with the CONNECT
  });
  return () => {
    closing = true;
    for (const s of open) s.destroy();
    open.clear();
  };
}
