// UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then random bits. The server reads the
// time back to refuse a retry older than its --idempotency-window instead of applying it.
import { randomBytes } from 'node:crypto';

/** A new UUIDv7 for `now` (ms since the epoch). */
export function uuidv7(now = Date.now()): string {
  const b = randomBytes(16);
  const ms = BigInt(now);
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6] & 0x0f) | 0x70; // version 7
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
