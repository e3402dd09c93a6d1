// Double-quoted string literals (SQLite's legacy "DQS" rule) without a second SQLite build.
// better-sqlite3's SQLite is compiled with SQLITE_DQS=0, so `VALUES("fiona")` fails with
// "no such column: fiona"; rqlite's SQLite accepts it. SQLite's own rule is: a double-quoted
// token is an identifier when it resolves, otherwise a string. We let SQLite decide the
// first half (prepare the text; it names the token that did not resolve) and rewrite that
// token into a single-quoted literal, which is exactly what the legacy rule does. The
// rewritten text is what runs, is logged and replicated, so replicas stay deterministic.
// Pure: SQLite is reached only through the injected `check`.
import { tokens, type Token } from './split.js';

/** Prepares `sql` and returns SQLite's error message, or null when it prepares. */
export type PrepareCheck = (sql: string) => string | null;

/** Most rewrites per statement: each one is a prepare, and a statement rarely has many. */
const MAX_ROUNDS = 64;

// SQLite 3.41+ quotes the name and hints at the legacy rule; older versions print it bare.
const NO_SUCH_COLUMN = /^no such column: (?:"((?:[^"]|"")*)" - should this be a string literal in single-quotes\?|(.+))$/;

/** A single-quoted SQL literal with the same content. */
const literal = (s: string): string => `'${s.split("'").join("''")}'`;

const doubleQuoted = (t: Token): boolean => t.type === 'ident' && t.text.startsWith('"');

/**
 * Rewrites the double-quoted tokens of one statement that SQLite cannot resolve as names
 * into string literals. Text without a double quote, or that prepares as is, is returned
 * unchanged (a resolvable "x" stays an identifier, as in SQLite).
 */
export function legacyStrings(sql: string, check: PrepareCheck): string {
  if (!sql.includes('"')) return sql;
  let text = sql;
  for (let round = 0; round < MAX_ROUNDS; round++) {
    const err = check(text);
    if (err === null) return text;
    const m = NO_SUCH_COLUMN.exec(err);
    if (!m) {
      // SQLite could not get as far as resolving names (e.g. the table is created earlier in
      // the same transaction): only the positions where a name can never resolve are safe.
      return round === 0 ? valuesLiterals(text) : text;
    }
    const name = m[1] !== undefined ? m[1].split('""').join('"') : m[2]!;
    const tok = [...tokens(text)].find((t) => doubleQuoted(t) && t.value === name);
    if (!tok) return text; // a real unknown column (unquoted, or qualified): SQLite's error stands
    text = text.slice(0, tok.start) + literal(tok.value) + text.slice(tok.end);
  }
  return text;
}

/**
 * Turns double-quoted tokens inside `VALUES (...)` rows into literals: no table is in scope
 * there, so SQLite's legacy rule would always make them strings.
 */
export function valuesLiterals(sql: string): string {
  const toks = [...tokens(sql)];
  const spans: Token[] = [];
  for (let i = 0; i < toks.length; i++) {
    if (!(toks[i]!.type === 'word' && toks[i]!.value.toUpperCase() === 'VALUES')) continue;
    let depth = 0;
    let j = i + 1;
    for (; j < toks.length; j++) {
      const t = toks[j]!;
      if (t.type === 'punct' && t.text === '(') depth++;
      else if (t.type === 'punct' && t.text === ')') depth--;
      else if (depth > 0 && doubleQuoted(t)) spans.push(t);
      else if (depth === 0 && !(t.type === 'punct' && t.text === ',')) break;
      // A subquery inside a row has a scope of its own: leave its names alone.
      if (depth > 0 && t.type === 'word' && t.value.toUpperCase() === 'SELECT') {
        while (j < toks.length && depth > 0) {
          j++;
          const u = toks[j];
          if (u?.type === 'punct' && u.text === '(') depth++;
          else if (u?.type === 'punct' && u.text === ')') depth--;
        }
      }
    }
    i = j - 1;
  }
  let out = sql;
  for (const t of spans.reverse()) out = out.slice(0, t.start) + literal(t.value) + out.slice(t.end);
  return out;
}
