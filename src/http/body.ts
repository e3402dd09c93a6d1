// Reads a request body as text with a byte limit. On Node it reads the IncomingMessage
// directly: going through the Web Request stream @hono/node-server builds cost ~8% of
// the master's CPU in profiles. Elsewhere (app.request() in tests) it uses the Request.
import type { IncomingMessage } from 'node:http';
import type { Context } from 'hono';
import { SqlfleetError } from '../errors.js';

function tooLarge(max: number): SqlfleetError {
  return new SqlfleetError('PAYLOAD_TOO_LARGE', `body is over the ${max}-byte limit (--max-body)`);
}

/** The body as UTF-8 text; PAYLOAD_TOO_LARGE past `max` bytes. */
export async function readBody(c: Context, max: number): Promise<string> {
  const declared = Number(c.req.header('content-length'));
  if (Number.isFinite(declared) && declared > max) throw tooLarge(max);
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  if (!incoming || incoming.readableEnded) {
    const text = await c.req.text();
    if (Buffer.byteLength(text) > max) throw tooLarge(max);
    return text;
  }
  return readIncoming(incoming, max);
}

/** A Node request's body as UTF-8 text; PAYLOAD_TOO_LARGE past `max` bytes (the rest is drained). */
export function readIncoming(incoming: IncomingMessage, max: number): Promise<string> {
  const declared = Number(incoming.headers['content-length']);
  if (Number.isFinite(declared) && declared > max) {
    incoming.resume();
    return Promise.reject(tooLarge(max));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        cleanup();
        incoming.resume(); // discard the rest so the answer can be sent
        reject(tooLarge(max));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (e: Error) => {
      cleanup();
      reject(new SqlfleetError('BAD_REQUEST', `body could not be read: ${e.message}`));
    };
    const cleanup = () => {
      incoming.off('data', onData);
      incoming.off('end', onEnd);
      incoming.off('error', onError);
    };
    incoming.on('data', onData);
    incoming.on('end', onEnd);
    incoming.on('error', onError);
  });
}
