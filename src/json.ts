// JSON.parse that keeps integers beyond 2^53 exact, as BigInt: a client's parameter
// 9007199254740993 or a master's answer holding one must not be rounded on the way
// (http/json.ts's stringify writes bigints back as exact JSON integers).
import { randomBytes } from 'node:crypto';

// A prefix no client string can guess, marking the integers lifted into strings (written
// into the JSON text escaped: a raw control character is not allowed in a JSON string).
const MARK_TAIL = `int${randomBytes(6).toString('hex')}:`;
const MARK = `\u0000${MARK_TAIL}`;
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// A JSON string (skipped as a whole), or an integer literal of 16+ digits that is not part
// of a fraction or an exponent: the only numbers that may be beyond 2^53.
const LITERALS = /"(?:[^"\\]|\\.)*"|(?<![\w.+-])-?\d{16,}(?![.eE\d])/g;

/**
 * Parses `text` like JSON.parse (throwing its SyntaxError), except that an integer literal
 * beyond 2^53 within SQLite's 64-bit range comes back as a BigInt. Larger ones stay
 * numbers (SQLite reads such a literal as REAL too). Texts without 16 digits in a row
 * (nearly all) take JSON.parse alone.
 */
export function parseExact(text: string): unknown {
  if (!/\d{16}/.test(text)) return JSON.parse(text);
  let lifted = false;
  const marked = text.replace(LITERALS, (m) => {
    if (m.charCodeAt(0) === 34 || Number.isSafeInteger(Number(m))) return m;
    const n = BigInt(m);
    if (n < INT64_MIN || n > INT64_MAX) return m;
    lifted = true;
    return `"\\u0000${MARK_TAIL}${m}"`;
  });
  if (!lifted) return JSON.parse(text);
  return JSON.parse(marked, (_k, v: unknown) => (typeof v === 'string' && v.startsWith(MARK) ? BigInt(v.slice(MARK.length)) : v));
}
