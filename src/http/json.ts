// JSON output that keeps 64-bit integers exact: bigints are written as bare JSON numbers.
import { randomBytes } from 'node:crypto';

const MARK = `\u0000big${randomBytes(6).toString('hex')}:`;
const MARK_JSON = JSON.stringify(MARK).slice(1, -1);
const MARK_RE = new RegExp(`"${MARK_JSON.replace(/\\/g, '\\\\')}(-?\\d+)"`, 'g');

/** JSON.stringify that renders bigint values as exact JSON integers; `space` indents as JSON.stringify's. */
export function stringify(value: unknown, space?: number): string {
  // Almost no answer holds a bigint, and a replacer makes JSON.stringify call back into
  // JavaScript for every key and value: try without one first (it throws on a bigint).
  try {
    return JSON.stringify(value, null, space);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
  }
  let sawBig = false;
  const text = JSON.stringify(value, (_k, v) => {
    if (typeof v === 'bigint') {
      sawBig = true;
      return MARK + v.toString();
    }
    return v;
  }, space);
  return sawBig ? text.replace(MARK_RE, '$1') : text;
}
