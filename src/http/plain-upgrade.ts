// An HTTP/1.1 request that offers an Upgrade the node does not speak (h2c, which Java's
// HttpClient offers on every request) must be answered as plain HTTP, as it was before the
// node listened for WebSocket upgrades: once a server has an 'upgrade' listener, Node hands
// every request carrying an Upgrade header to it, with the socket detached from the HTTP
// parser. This gives the connection back to the server as if the offer had not been made:
// the request head is written again without the Upgrade and HTTP2-Settings headers (and
// those tokens of Connection), put back in front of the body bytes already read, and the
// socket handed to the server's own connection handling.
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';

const OFFER = new Set(['upgrade', 'http2-settings']);

/** Serves `req` (an Upgrade offer declined) through `server`'s ordinary request handling. */
export function declineUpgrade(server: Server, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  const lines = [`${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/${req.httpVersion}`];
  for (let i = 0; i + 1 < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!;
    const value = req.rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (OFFER.has(lower)) continue;
    if (lower === 'connection') {
      const kept = value
        .split(',')
        .map((t) => t.trim())
        .filter((t) => t !== '' && !OFFER.has(t.toLowerCase()));
      if (kept.length > 0) lines.push(`${name}: ${kept.join(', ')}`);
      continue;
    }
    lines.push(`${name}: ${value}`);
  }
  socket.unshift(Buffer.concat([Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1'), head]));
  server.emit('connection', socket);
}
