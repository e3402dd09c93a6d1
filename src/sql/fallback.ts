// Classifies a statement the parser could not parse (DESIGN §3: parser gaps such as
// `AVG(ALL x)` must not refuse valid SQLite). The forbidden checks run on the token stream
// *before* SQLite sees the text, because SQLite runs some PRAGMAs while preparing them;
// then SQLite's prepare decides syntax, and its `readonly` flag plus the leading keyword
// decide the class.

import { tokens, type Token } from './split.js';
import {
  classifyPragma,
  isInternalName,
  FORBIDDEN_PRAGMA_FUNCTIONS,
  type PragmaForm,
  type Verdict,
} from './pragma.js';
import { KINDS_BY_LEADING_WORD, REASONS, isSqliteName, isTempSchema } from './rules.js';
import type { SqliteProbe } from './types.js';

const isWord = (t: Token | undefined, ...words: string[]): t is Token =>
  t !== undefined && t.type === 'word' && words.includes(t.value.toUpperCase());
const isPunct = (t: Token | undefined, text: string): boolean => t?.type === 'punct' && t.text === text;
const isName = (t: Token | undefined): t is Token =>
  t !== undefined && (t.type === 'word' || t.type === 'ident' || t.type === 'string');

// Index of the statement proper, after EXPLAIN [QUERY PLAN].
function leadIndex(toks: readonly Token[]): number {
  if (!isWord(toks[0], 'EXPLAIN')) return 0;
  return isWord(toks[1], 'QUERY') && isWord(toks[2], 'PLAN') ? 3 : 1;
}

// The object named at toks[i] after INTO/UPDATE/TABLE/..., skipping IF [NOT] EXISTS and OR <action>.
function targetAt(toks: readonly Token[], i: number): { schema?: string; name?: string } {
  if (isWord(toks[i], 'IF')) i += isWord(toks[i + 1], 'NOT') ? 3 : 2;
  if (isWord(toks[i], 'OR')) i += 2;
  const first = toks[i];
  if (!isName(first)) return {};
  const second = toks[i + 2];
  if (isPunct(toks[i + 1], '.') && isName(second)) return { schema: first.value, name: second.value };
  return { name: first.value };
}

// Words after which SQLite expects the name of the object a statement writes or creates.
const TARGET_WORDS = new Set(['INTO', 'UPDATE', 'TABLE', 'VIEW', 'INDEX', 'TRIGGER']);

/** Reads `PRAGMA [schema.]name [= value | (value)]` from the tokens after PRAGMA. */
export function pragmaFromTokens(toks: readonly Token[]): PragmaForm {
  let i = 0;
  let schema: string | undefined;
  if (isPunct(toks[1], '.')) {
    schema = toks[0]?.value;
    i = 2;
  }
  const name = toks[i]?.value ?? '';
  let value: Token[] = [];
  if (isPunct(toks[i + 1], '=')) value = toks.slice(i + 2);
  else if (isPunct(toks[i + 1], '(')) {
    const close = toks.findIndex((t, j) => j > i + 1 && isPunct(t, ')'));
    value = toks.slice(i + 2, close < 0 ? undefined : close);
  }
  if (value.length === 0) return { schema, name };
  return {
    schema,
    name,
    value: value.map((t) => (t.type === 'string' || t.type === 'ident' ? t.value : t.text)).join(''),
    valueIsString: value.length === 1 && value[0]!.type === 'string',
  };
}

// The forbidden checks on tokens; undefined when nothing is forbidden.
function forbiddenTokens(toks: readonly Token[], lead: number): string | undefined {
  const head = toks[lead]?.value.toUpperCase();
  if (head === 'ATTACH') return REASONS.attach;
  if (head === 'DETACH') return REASONS.detach;
  if (head === 'VACUUM' && toks.some((t) => isWord(t, 'INTO'))) return REASONS.vacuumInto;
  if (head === 'CREATE' && isWord(toks[lead + 1], 'TEMP', 'TEMPORARY')) return REASONS.temp;
  if (head === 'PRAGMA') {
    const v = classifyPragma(pragmaFromTokens(toks.slice(lead + 1)));
    if (v.kind === 'forbidden') return v.reason;
  }
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    // Strings count too: SQLite accepts `SELECT * FROM '_sqlfleet_log'`, which the parser does not.
    if (isName(t) && isInternalName(t.value)) return REASONS.internal(t.value);
    if (t.type === 'string') continue;
    const lower = t.value.toLowerCase();
    if (isName(t) && lower === 'load_extension' && isPunct(toks[i + 1], '(')) return REASONS.loadExtension;
    if (isName(t) && FORBIDDEN_PRAGMA_FUNCTIONS.has(lower)) return REASONS.pragmaFunction(lower);
    const targetWord =
      (t.type === 'word' && TARGET_WORDS.has(t.value.toUpperCase())) ||
      (isWord(t, 'FROM') && isWord(toks[i - 1], 'DELETE'));
    if (!targetWord) continue;
    const { schema, name } = targetAt(toks, i + 1);
    if (head === 'CREATE' && isTempSchema(schema)) return REASONS.temp;
    if (name !== undefined && isSqliteName(name)) return REASONS.sqliteTable(name);
  }
  return undefined;
}

/**
 * Classifies one statement the parser rejected. `probe` prepares it on SQLite (it throws
 * SQLite's error for invalid text; the caller translates that error).
 */
export function classifyWithSqlite(sql: string, probe: SqliteProbe): Verdict {
  const toks = [...tokens(sql)];
  const lead = leadIndex(toks);
  const forbidden = forbiddenTokens(toks, lead);
  if (forbidden) return { kind: 'forbidden', reason: forbidden };
  const { readonly } = probe(sql);
  if (lead > 0) return { kind: 'read', reason: 'sqlite:explain' };
  const word = toks[0]?.type === 'word' ? toks[0].value.toUpperCase() : undefined;
  const kinds = word === undefined ? undefined : KINDS_BY_LEADING_WORD[word];
  if (word === undefined || kinds === undefined) {
    return { kind: 'forbidden', reason: REASONS.unsupported(word ?? toks[0]?.text ?? 'empty') };
  }
  const reason = `sqlite:${word.toLowerCase()}`;
  if (word === 'PRAGMA') return { kind: classifyPragma(pragmaFromTokens(toks.slice(1))).kind, reason };
  if (kinds[0] === 'transaction') return { kind: 'transaction', reason: REASONS.transaction(word) };
  // A SELECT or WITH that SQLite says may write goes the write path: logged and replicated.
  if (kinds.includes('read')) return { kind: readonly ? 'read' : 'write', reason };
  return { kind: kinds[0]!, reason };
}
