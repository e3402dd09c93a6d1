// Idempotency-key policy that needs no storage: whether a key is too old to be honoured.
// Keys are kept for --idempotency-window (plus a grace for clock skew, see config.ts); a
// key that carries its own creation time (a UUIDv7, as sqlfleet/client sends) and is older
// than the window is refused, so a late retry is answered with an error, never applied twice.
import { SqlfleetError } from '../errors.js';

const UUID_V7 = /^([0-9a-f]{8})-([0-9a-f]{4})-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i;

/** Creation time (ms since epoch) of a UUIDv7 key, or undefined for any other key. */
export function keyTime(key: string): number | undefined {
  const m = UUID_V7.exec(key);
  return m ? parseInt(m[1] + m[2], 16) : undefined;
}

/** Throws IDEMPOTENCY_KEY_EXPIRED when `key` is a UUIDv7 older than `windowMs` at `now`. */
export function checkKeyAge(key: string, now: number, windowMs: number): void {
  const t = keyTime(key);
  if (t !== undefined && now - t > windowMs) {
    throw new SqlfleetError(
      'IDEMPOTENCY_KEY_EXPIRED',
      `idempotency key ${key} was created ${Math.round((now - t) / 1000)} s ago, past the ${Math.round(windowMs / 1000)} s --idempotency-window: ` +
        'whether it was applied can no longer be told, so it is not applied again; check with a read, then retry with a new key',
      { window_ms: windowMs },
    );
  }
}
