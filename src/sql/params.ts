// Positional parameters as SQLite numbers them, for binding an array to a statement that
// uses `?NNN`. Pure: no I/O.

import { tokens } from './split.js';

/** The parameter slots of a statement with `?NNN`: how many, and which carry a number. */
export interface NumberedSlots {
  /** sqlite3_bind_parameter_count: the highest number, a plain `?` taking the next one. */
  readonly count: number;
  /** Slots named by a `?NNN`; the others (gaps, plain `?`) have no name. */
  readonly numbered: ReadonlySet<number>;
}

/**
 * The slots of `sql` (SQLite's rule: `?NNN` is slot NNN; a plain `?` is one more than the
 * highest so far), or undefined when it has no `?NNN` or also has named parameters.
 */
export function numberedSlots(sql: string): NumberedSlots | undefined {
  let count = 0;
  const numbered = new Set<number>();
  for (const t of tokens(sql)) {
    if (t.type !== 'param') continue;
    if (t.text === '?') count++;
    else if (/^\?\d+$/.test(t.text)) {
      const n = Number(t.text.slice(1));
      numbered.add(n);
      count = Math.max(count, n);
    } else return undefined;
  }
  return numbered.size === 0 ? undefined : { count, numbered };
}

/**
 * An array of values (value i for slot i + 1) as better-sqlite3 binds it: the unnamed
 * slots (gaps and plain `?`) positionally, in order, then one object for the `?NNN` slots.
 * better-sqlite3 counts a slot without a name as positional, so `SELECT ?2` with [1, 2]
 * needs (1, {2: 2}); an object alone was "Too few parameter values". Values past `count`
 * stay positional, so too many values are refused as for plain `?`.
 */
export function bindNumbered(slots: NumberedSlots, values: readonly unknown[]): unknown[] {
  const positional: unknown[] = [];
  const byNumber: Record<number, unknown> = {};
  values.forEach((v, i) => {
    if (slots.numbered.has(i + 1)) byNumber[i + 1] = v;
    else positional.push(v);
  });
  return [...positional, byNumber];
}
