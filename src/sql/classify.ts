// The classifier of DESIGN §3: splits a query text into statements, parses each with
// sql-parser-cst and classifies it by its CST; where the parser fails (or disagrees with
// the leading keyword SQLite will see), asks SQLite through the probe. Results are cached
// so the same SQL is parsed once. Pure apart from the injected probe.

import { parse, type ParserOptions, type Statement } from 'sql-parser-cst';
import { SqlfleetError } from '../errors.js';
import { classifyStatement } from './cst.js';
import { classifyWithSqlite } from './fallback.js';
import { Lru } from './lru.js';
import type { Verdict } from './pragma.js';
import { isNodeLocalSource } from './pragma.js';
import { CLOCK_FUNCTIONS, CURRENT_WORDS, KINDS_BY_LEADING_WORD, RANDOM_FUNCTIONS, REASONS } from './rules.js';
import { statementSpans, tokens, type StatementSpan, type Token } from './split.js';
import { insertTargetOf } from './targets.js';
import { CLASS_RANK, type Classification, type ClassifiedStatement, type SqliteProbe, type StatementClass } from './types.js';

/** Classifies query texts; one per node, shared by every request. */
export interface Classifier {
  /** Classifies every statement of `text`; throws BAD_REQUEST, SQL_SYNTAX or SQL_ERROR. */
  classify(text: string): Classification;
  /** How many times the parser ran (cache misses), for tests and metrics. */
  readonly parses: number;
}

/** What a classifier needs. */
export interface ClassifierOptions {
  /** Prepares a statement on SQLite when the parser cannot parse it. */
  readonly probe: SqliteProbe;
  /** Entries per cache (whole texts, and single statements); default 10 000. */
  readonly cacheSize?: number;
  /** Longer texts are classified but not cached, so the caches stay small; default 4096 chars. */
  readonly maxCachedLength?: number;
  /** Texts with more statements are refused before any is classified; default unlimited. */
  readonly maxStatements?: number;
  /** How much sql-parser-cst may be asked to parse; default PARSE_LIMITS. */
  readonly parseLimits?: ParseLimits;
}

/**
 * Bounds on the work given to sql-parser-cst, which runs on the event loop at 10-30 µs a
 * token and recurses per nesting level: a 589 KB `IN (0, …, 99999)` held a node for
 * seconds (its /health and heartbeats waited; in etcd mode the master lost its lease),
 * and a 20k-term `OR` chain overflowed the stack. A statement past these bounds is
 * classified the fallback's way instead (its tokens, then SQLite's prepare, both linear
 * and fast), which is exact for valid SQL; SQLite's own limits ("Expression tree is too
 * large") then answer 400.
 */
export interface ParseLimits {
  /** Longest statement (characters; a token takes at least one) the parser is given. */
  readonly maxLength: number;
  /** Deepest nesting of parentheses the parser is given. */
  readonly maxDepth: number;
  /** Most characters parsed for one text (statements and their shapes together). */
  readonly perText: number;
}

/** Default parse limits: some tens of ms of parsing for one text at most on a busy node. */
export const PARSE_LIMITS: ParseLimits = Object.freeze({ maxLength: 2000, maxDepth: 32, perText: 4000 });

// Deepest nesting of parentheses in `sql`, stopping once past `max`. Parentheses in
// strings and comments count too: that can only send a statement to the fallback.
function nestingOver(sql: string, max: number): boolean {
  let depth = 0;
  for (let i = 0; i < sql.length; i++) {
    const k = sql.charCodeAt(i);
    if (k === 40 && ++depth > max) return true;
    if (k === 41) depth--;
  }
  return false;
}

/** Parser options: SQLite dialect, and every parameter style SQLite binds. */
export const PARSE_OPTIONS: ParserOptions = {
  dialect: 'sqlite',
  paramTypes: ['?', '?nr', ':name', '@name', '$name'],
};

// SQLite messages that mean the text is not valid SQL (as opposed to e.g. "no such table").
const SYNTAX = /syntax error|incomplete input|unrecognized token/i;

// "Unexpected X at line L, column C" from the parser's error, with the position moved
// from the statement to the whole text the client sent.
function parserWhere(err: unknown, span: StatementSpan, text: string): string | undefined {
  if (!(err instanceof Error)) return undefined;
  const what = (err.message.split('\n')[0] ?? '').replace(/^Syntax Error:\s*/, '');
  const m = /-->.*:(\d+):(\d+)\s*$/m.exec(err.message);
  if (!m) return what;
  const before = text.slice(0, span.start).split('\n');
  const line = before.length - 1 + Number(m[1]);
  const column = Number(m[1]) === 1 ? before[before.length - 1]!.length + Number(m[2]) : Number(m[2]);
  return `parser: ${what} at line ${line}, column ${column}`;
}

// Turns the probe's SQLite error into the client-facing error. TypeErrors (closed
// connection, bad arguments) are bugs or outages, not the client's SQL: they pass through.
function probeError(e: unknown, parseErr: unknown, span: StatementSpan, index: number, text: string): never {
  if (e instanceof SqlfleetError || e instanceof TypeError) throw e;
  const message = e instanceof Error ? e.message : String(e);
  if (SYNTAX.test(message)) {
    const where = parserWhere(parseErr, span, text);
    throw new SqlfleetError('SQL_SYNTAX', where ? `${message} (${where})` : message, { statement: index });
  }
  throw new SqlfleetError('SQL_ERROR', message, { statement: index });
}

// True when the parser's class is one SQLite's reading of the first keyword allows.
// `(SELECT 1)` parses as a select but is not SQLite; such disagreements go to SQLite.
function agreesWithLeadingWord(sql: string, verdict: Verdict): boolean {
  if (verdict.kind === 'forbidden') return true;
  const first = tokens(sql).next().value;
  const kinds = first?.type === 'word' ? KINDS_BY_LEADING_WORD[first.value.toUpperCase()] : undefined;
  return kinds?.includes(verdict.kind) ?? false;
}

const isWordToken = (t: Token | undefined, word: string): boolean => t?.type === 'word' && t.value.toUpperCase() === word;
const isOpen = (t: Token | undefined): boolean => t?.type === 'punct' && t.text === '(';

// Index of the `)` that closes the `(` at toks[open] (the end of the tokens when unclosed).
function closing(toks: readonly Token[], open: number): number {
  let depth = 0;
  for (let i = open; i < toks.length; i++) {
    if (toks[i]!.type !== 'punct') continue;
    if (toks[i]!.text === '(') depth++;
    else if (toks[i]!.text === ')' && --depth === 0) return i;
  }
  return toks.length;
}

// The name of a function called at toks[i] (a name followed by `(`), lower case.
const calledAt = (toks: readonly Token[], i: number): string | undefined =>
  (toks[i]!.type === 'word' || toks[i]!.type === 'ident') && isOpen(toks[i + 1]) ? toks[i]!.value.toLowerCase() : undefined;

// CURRENT_TIMESTAMP and its kin among toks[from, to), upper case.
function currentIn(toks: readonly Token[], from: number, to: number): string | undefined {
  for (let i = from; i < to; i++) {
    const w = toks[i]!.type === 'word' ? toks[i]!.value.toUpperCase() : '';
    if (CURRENT_WORDS.has(w)) return w;
  }
  return undefined;
}

/**
 * cst.ts's refusals of node-local values (VACUUM, generated columns, index expressions,
 * total_changes(), layout pragmas in writes), read from the tokens of a statement the
 * parser could not read (too long, too deep, or a parser gap): these go to SQLite's
 * prepare, which accepts them all.
 */
function fallbackRefusal(sql: string, kind: StatementClass): string | undefined {
  const toks = [...tokens(sql)];
  const head = toks[0]?.type === 'word' ? toks[0].value.toUpperCase() : '';
  if (head === 'VACUUM') return REASONS.vacuum;
  if (kind !== 'write' && kind !== 'schema') return undefined;
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i]!;
    // SQLite takes a string after FROM or JOIN as a table name.
    const asName = t.type === 'word' || t.type === 'ident' || (t.type === 'string' && (isWordToken(toks[i - 1], 'FROM') || isWordToken(toks[i - 1], 'JOIN')));
    if (!asName) continue;
    if (calledAt(toks, i) === 'total_changes') return REASONS.totalChanges;
    if (isNodeLocalSource(t.value)) return REASONS.nodeLocal(t.value.toLowerCase());
  }
  const table = (head === 'CREATE' && isWordToken(toks[1], 'TABLE') && !toks.some((t) => isWordToken(t, 'SELECT'))) || head === 'ALTER';
  if (table) {
    // Generated columns: AS ( expr ) [STORED | VIRTUAL].
    for (let i = 0; i < toks.length; i++) {
      if (!isWordToken(toks[i], 'AS') || !isOpen(toks[i + 1])) continue;
      const end = closing(toks, i + 1);
      const word = currentIn(toks, i + 2, end);
      if (word) return REASONS.currentInSchema(word, 'a generated column');
      if (isWordToken(toks[end + 1], 'STORED')) continue;
      for (let j = i + 2; j < end; j++) {
        const fn = calledAt(toks, j);
        if (fn && (CLOCK_FUNCTIONS.has(fn) || RANDOM_FUNCTIONS.has(fn))) return REASONS.virtualClock(fn);
      }
    }
  }
  const on = toks.findIndex((t) => isWordToken(t, 'ON'));
  if (head === 'CREATE' && toks.slice(1, 3).some((t) => isWordToken(t, 'INDEX')) && on > 0) {
    const word = currentIn(toks, on, toks.length);
    if (word) return REASONS.currentInSchema(word, 'an index');
    for (let i = on; i < toks.length; i++) {
      const fn = calledAt(toks, i);
      if (!fn || !CLOCK_FUNCTIONS.has(fn)) continue;
      const end = closing(toks, i + 1);
      // A name not followed by `(` is a column: date(x) reads its column, date('now') the clock.
      const column = toks.slice(i + 2, end).some((a, k) => (a.type === 'word' || a.type === 'ident') && !isOpen(toks[i + 3 + k]));
      if (!column) return REASONS.indexClock(fn);
    }
  }
  return undefined;
}

/** Creates a classifier with its own caches. */
export function createClassifier(opts: ClassifierOptions): Classifier {
  const cacheSize = opts.cacheSize ?? 10_000;
  const maxCached = opts.maxCachedLength ?? 4096;
  const limits = opts.parseLimits ?? PARSE_LIMITS;
  const texts = new Lru<string, Classification>(cacheSize);
  const statements = new Lru<string, ClassifiedStatement>(cacheSize);
  // Literal-free shape → verdict (null: this shape cannot stand for its texts), so SQL
  // that differs only in its literals is parsed once per shape, not once per text.
  const shapes = new Lru<string, Verdict | null>(cacheSize);

  let parses = 0;

  function parserVerdict(sql: string): Verdict | null {
    parses++;
    try {
      const parsed = parse(sql, PARSE_OPTIONS).statements.filter((st) => st.type !== 'empty');
      if (parsed.length !== 1) return null;
      const verdict = classifyStatement(parsed[0]!);
      return agreesWithLeadingWord(sql, verdict) ? verdict : null;
    } catch {
      return null;
    }
  }

  function decide(span: StatementSpan, index: number, text: string, useParser: boolean): Verdict {
    let parseErr: unknown;
    let parsed: Statement[] | undefined;
    if (useParser) {
      parses++;
      try {
        parsed = parse(span.sql, PARSE_OPTIONS).statements.filter((s) => s.type !== 'empty');
      } catch (e) {
        // A stack overflow says nothing about where the text is wrong: SQLite will say.
        if (!(e instanceof RangeError)) parseErr = e;
      }
    }
    if (parsed?.length === 1) {
      const verdict = classifyStatement(parsed[0]!);
      if (agreesWithLeadingWord(span.sql, verdict)) return verdict;
    }
    // Refused before SQLite prepares it when its first word says it writes (SQLite refuses
    // CURRENT_TIMESTAMP in an index with a 400 of its own); a WITH once SQLite said it writes.
    const lead = KINDS_BY_LEADING_WORD[tokens(span.sql).next().value?.value.toUpperCase() ?? ''];
    const early = lead && !lead.includes('read') ? fallbackRefusal(span.sql, lead[0]!) : undefined;
    if (early) return { kind: 'forbidden', reason: early };
    const verdict = classifyWithSqlite(span.sql, (sql) => {
      try {
        return opts.probe(sql);
      } catch (e) {
        return probeError(e, parseErr, span, index, text);
      }
    });
    // Read again only when SQLite's class differs from the one the first word gave (a WITH):
    // the same tokens would give the same answer, and a long batch text is read once.
    const refused = lead && !lead.includes('read') && verdict.kind === lead[0] ? undefined : fallbackRefusal(span.sql, verdict.kind);
    if (refused) return { kind: 'forbidden', reason: refused };
    const into = verdict.kind === 'write' ? insertTargetOf(span.sql) : undefined;
    return into ? { ...verdict, into } : verdict;
  }

  function classifyOne(span: StatementSpan, index: number, text: string, spend: (span: StatementSpan) => boolean): ClassifiedStatement {
    const hit = statements.get(span.sql);
    if (hit) return hit;
    // A pragma function names its table in a string (pragma_table_info('_sqlfleet_log')): the
    // shape, which lifts strings, would hand an internal table the verdict of a user's one.
    const shape = span.sql.length <= maxCached && !/pragma_/i.test(span.sql) ? shapeOf(span.sql) : null;
    const known = shape === null ? undefined : shapes.get(shape);
    if (known) return Object.freeze(known.into ? { sql: span.sql, kind: known.kind, reason: known.reason, into: known.into } : { sql: span.sql, kind: known.kind, reason: known.reason });
    const verdict = decide(span, index, text, spend(span));
    const result: ClassifiedStatement = Object.freeze({ sql: span.sql, ...verdict });
    if (span.sql.length <= maxCached) statements.set(span.sql, result);
    // The shape has the statement's tokens: parsing it costs as much again.
    if (shape !== null && known === undefined && spend(span)) {
      // A shape stands for its texts only when the parser reads it alone and agrees
      // with the text it came from; otherwise (e.g. a string used as a table name,
      // where a parameter is not allowed) every text goes the full way.
      const sv = parserVerdict(shape);
      const same = sv && sv.kind === verdict.kind && sv.reason === verdict.reason && sv.into?.schema === verdict.into?.schema && sv.into?.name === verdict.into?.name;
      shapes.set(shape, same ? sv : null);
    }
    return result;
  }

  return {
    get parses() {
      return parses;
    },
    classify(text: string): Classification {
      const hit = texts.get(text);
      if (hit) return hit;
      const spans = statementSpans(text);
      if (spans.length === 0) throw new SqlfleetError('BAD_REQUEST', 'query is empty');
      if (spans.length > (opts.maxStatements ?? Infinity)) {
        throw new SqlfleetError('BAD_REQUEST', `too many statements: ${spans.length} > ${opts.maxStatements} (--max-statements)`);
      }
      let budget = limits.perText;
      const spend = (span: StatementSpan): boolean => {
        const cost = span.sql.length;
        if (cost > limits.maxLength || cost > budget || nestingOver(span.sql, limits.maxDepth)) return false;
        budget -= cost;
        return true;
      };
      const classified = spans.map((span, i) => classifyOne(span, i, text, spend));
      const kind = classified.reduce((k, s) => (CLASS_RANK[s.kind] > CLASS_RANK[k] ? s.kind : k), classified[0]!.kind);
      const result: Classification = Object.freeze({ statements: Object.freeze(classified), kind });
      if (text.length <= maxCached) texts.set(text, result);
      return result;
    },
  };
}

/**
 * The statement's tokens with string and number literals replaced by `?` (comments and
 * spacing dropped), or null when it has no literal, or is a PRAGMA (whose value decides
 * its class).
 */
export function shapeOf(sql: string): string | null {
  const parts: string[] = [];
  let lifted = false;
  for (const t of tokens(sql)) {
    if (parts.length === 0 && t.type === 'word' && t.value.toUpperCase() === 'PRAGMA') return null;
    if (t.type === 'string' || t.type === 'number') {
      parts.push('?');
      lifted = true;
    } else parts.push(t.text);
  }
  return lifted ? parts.join(' ') : null;
}
