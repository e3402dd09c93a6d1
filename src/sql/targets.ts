// The tables INSERT and REPLACE statements write into, read from the tokens: for statements
// the parser could not read (SQLite takes `'t'` as a table name there, sql-parser-cst does
// not), and for the bodies of triggers (store/rowid-ceiling.ts). Pure: no I/O.
import { tokens, type Token } from './split.js';
import type { InsertTarget } from './types.js';

const word = (t: readonly Token[], i: number) => (t[i]?.type === 'word' ? t[i]!.value.toUpperCase() : undefined);
const nameAt = (t: readonly Token[], i: number) => (t[i] && (t[i]!.type === 'word' || t[i]!.type === 'ident' || t[i]!.type === 'string') ? t[i]!.value : undefined);

/** `INSERT [OR x] INTO [schema.]name` or `REPLACE INTO ...` starting at token `i`: its table, and the token after it. */
function targetAt(t: readonly Token[], i: number): { target: InsertTarget; next: number } | undefined {
  let k: number;
  if (word(t, i) === 'REPLACE') k = i + 1;
  else if (word(t, i) === 'INSERT') k = word(t, i + 1) === 'OR' ? i + 3 : i + 1;
  else return undefined;
  if (word(t, k) !== 'INTO') return undefined;
  const first = nameAt(t, k + 1);
  if (first === undefined) return undefined;
  if (t[k + 2]?.text !== '.') return { target: { name: first }, next: k + 2 };
  const second = nameAt(t, k + 3);
  return second === undefined ? undefined : { target: { schema: first, name: second }, next: k + 4 };
}

/** The table of a statement that starts `INSERT [OR ...] INTO` or `REPLACE INTO`; undefined for anything else (a WITH before it too). */
export function insertTargetOf(sql: string): InsertTarget | undefined {
  const t: Token[] = [];
  for (const tok of tokens(sql)) if (t.push(tok) >= 8) break;
  return targetAt(t, 0)?.target;
}

/** Every table `sql` inserts into anywhere (a trigger's body), each once. */
export function insertTargetsIn(sql: string): InsertTarget[] {
  const t = [...tokens(sql)];
  const out = new Map<string, InsertTarget>();
  for (let i = 0; i < t.length; i++) {
    const hit = targetAt(t, i);
    if (!hit) continue;
    const key = `${hit.target.schema ?? ''}.${hit.target.name}`.toLowerCase();
    if (!out.has(key)) out.set(key, hit.target);
    i = hit.next - 1;
  }
  return [...out.values()];
}
