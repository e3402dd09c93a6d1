// Idempotency keys in the store: the first answer of a keyed write is kept as JSON text
// beside its log index, so a retry gets that answer back instead of a second apply.
import type { StatementResult } from './types.js';

/** Default retention of applied keys in the store (by entry timestamp): 10 min window + 1 min clock-skew grace. */
export const DEFAULT_IDEMPOTENCY_RETAIN_MS = 11 * 60_000;

/** How often (in entry time) a node prunes expired keys: one indexed DELETE per second at most. */
export const PRUNE_EVERY_MS = 1_000;

/** Results as JSON text; 64-bit integers beyond 2^53 survive as {"$bigint": "..."}. */
export function encodeResults(results: readonly StatementResult[]): string {
  return JSON.stringify(results, (_k, v) => (typeof v === 'bigint' ? { $bigint: v.toString() } : v));
}

/** Inverse of encodeResults. */
export function decodeResults(text: string): StatementResult[] {
  return JSON.parse(text, (_k, v) => {
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.$bigint === 'string' && Object.keys(v).length === 1) {
      return BigInt(v.$bigint);
    }
    return v;
  }) as StatementResult[];
}
