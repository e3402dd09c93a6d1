// Append frames as the slave reads them: JSON.parse of the whole body, plus each entry's
// statements exactly as the master shipped them (its log row's text, the text its hash
// covers), so the slave checks the hash over that text and stores it instead of
// serializing every entry's statements again (JSON.stringify per entry was ~8 % of a
// catching-up slave's CPU).
//
// The texts are found by walking the body in the one layout the shipper writes
// (shipper.ts build(), store.ts entryJson()): {…,"entries":[{"index":N,"epoch":N,"ts":N,
// "seed":"…","hash":"…","stmts":<JSON>[,"key":"…"]},…]} ending the body. Any other layout
// (another sender, duplicate keys, whitespace) gives no texts, and the slave serializes
// the parsed statements as before. The layout leaves JSON.parse no choice: each entry
// object has exactly these keys once, so its parsed `stmts` are the parse of that text.
import { SqlfleetError } from '../errors.js';

/** Each entry's statements text, by request object (parseAppend's results only). */
const texts = new WeakMap<object, string[]>();

/** The statements texts of `req`'s entries, in order, when it came from parseAppend and had the shipper's layout. */
export function shippedStmts(req: unknown): string[] | undefined {
  return typeof req === 'object' && req !== null ? texts.get(req) : undefined;
}

/** Parses an append body (BAD_REQUEST when it is not JSON) and remembers its entries' statements texts. */
export function parseAppend(body: string): unknown {
  let req: unknown;
  try {
    req = JSON.parse(body);
  } catch (e) {
    throw new SqlfleetError('BAD_REQUEST', `malformed JSON: ${(e as Error).message}`);
  }
  const entries = (req as { entries?: unknown } | null)?.entries;
  if (Array.isArray(entries) && entries.length > 0) {
    const found = stmtsTexts(body, entries.length);
    if (found) texts.set(req as object, found);
  }
  return req;
}

const ENTRIES = ',"entries":[';
const QUOTE = 34;
const BACKSLASH = 92;
const COMMA = 44;
const CLOSE_BRACKET = 93;
const CLOSE_BRACE = 125;

/** Index past the digits at `p` (at least one), or -1. */
function digits(s: string, p: number): number {
  const start = p;
  for (let c = s.charCodeAt(p); c >= 48 && c <= 57; c = s.charCodeAt(++p));
  return p > start ? p : -1;
}

/** Index past the JSON string whose opening quote is at `p - 1`, or -1. */
function stringEnd(s: string, p: number): number {
  for (;;) {
    const q = s.indexOf('"', p);
    if (q < 0) return -1;
    let b = q - 1;
    while (s.charCodeAt(b) === BACKSLASH) b--;
    if ((q - 1 - b) % 2 === 0) return q + 1; // an even run of backslashes: the quote closes
    p = q + 1;
  }
}

/** Index past the JSON array or object starting at `p`, or -1 (strings are skipped whole). */
function compoundEnd(s: string, p: number): number {
  const first = s.charCodeAt(p);
  if (first !== 91 && first !== 123) return -1;
  let depth = 0;
  for (let i = p; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === QUOTE) {
      const e = stringEnd(s, i + 1);
      if (e < 0) return -1;
      i = e - 1;
    } else if (c === 91 || c === 123) depth++;
    else if (c === CLOSE_BRACKET || c === CLOSE_BRACE) {
      if (--depth === 0) return i + 1;
    }
  }
  return -1;
}

/** `s` holds `lit` at `p`: index past it, else -1. */
function lit(s: string, p: number, l: string): number {
  return p >= 0 && s.startsWith(l, p) ? p + l.length : -1;
}

/** The statements texts of the `count` entries of an append body in the shipper's layout, or null. */
export function stmtsTexts(body: string, count: number): string[] | null {
  const at = body.indexOf(ENTRIES);
  if (at < 0) return null;
  const out: string[] = [];
  let p = at + ENTRIES.length;
  for (;;) {
    p = digits(body, lit(body, p, '{"index":'));
    p = digits(body, lit(body, p, ',"epoch":'));
    p = digits(body, lit(body, p, ',"ts":'));
    p = lit(body, p, ',"seed":"');
    if (p < 0) return null;
    p = stringEnd(body, p);
    p = lit(body, p, ',"hash":"');
    if (p < 0) return null;
    p = stringEnd(body, p);
    p = lit(body, p, ',"stmts":');
    if (p < 0) return null;
    const end = compoundEnd(body, p);
    if (end < 0) return null;
    out.push(body.slice(p, end));
    p = end;
    if (body.startsWith(',"key":"', p)) p = stringEnd(body, p + 8);
    if (p < 0 || body.charCodeAt(p) !== CLOSE_BRACE) return null;
    const c = body.charCodeAt(p + 1);
    p += 2;
    if (c === COMMA) continue;
    if (c !== CLOSE_BRACKET) return null;
    // The entries array ends the body, so it is the "entries" JSON.parse kept.
    return body.charCodeAt(p) === CLOSE_BRACE && p + 1 === body.length && out.length === count ? out : null;
  }
}
