// Random bytes as text for values made on every write or request (an entry's seed, an
// interactive transaction's seed, a Hrana baton): slices of one pool refilled by the CSPRNG,
// so each costs no call into OpenSSL of its own (a randomBytes() call per write or per
// transaction showed in the master's profiles: ~3 % under interactive transactions).
import { randomFillSync } from 'node:crypto';

const pool = Buffer.alloc(8 * 1024);
let at = pool.length;

/** `n` random bytes (at most the pool's size) as hex or base64url text. */
export function randomText(n: number, encoding: 'hex' | 'base64url'): string {
  if (at + n > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const text = pool.toString(encoding, at, at + n);
  at += n;
  return text;
}
