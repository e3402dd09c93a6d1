// A small SQLite tokenizer and the statement splitter built on it. Pure: no I/O.
// It follows SQLite's own tokenizer (tokenize.c) closely enough that `;` inside strings,
// quoted identifiers, comments and trigger bodies never splits a statement.

/** Kinds of significant token; whitespace and comments are skipped. */
export type TokenType = 'word' | 'ident' | 'string' | 'number' | 'param' | 'punct';

/** One significant token of SQL text. */
export interface Token {
  readonly type: TokenType;
  /** The token as written. */
  readonly text: string;
  /** Unquoted name for `ident`, unescaped content for `string`, else the text. */
  readonly value: string;
  /** Offsets into the tokenized text: [start, end). */
  readonly start: number;
  readonly end: number;
}

/** One statement of a text and where its trimmed text starts in that text. */
export interface StatementSpan {
  readonly sql: string;
  readonly start: number;
}

// Identifier characters as SQLite sees them: ASCII letters, digits, `_`, `$`, and any
// non-ASCII character (SQLite treats bytes >= 0x80 as identifier characters).
// Tested on char codes: the tokenizer runs over whole request texts (up to --max-body) on
// the event loop, and a regular expression per character cost most of its time.
const isIdStart = (k: number): boolean => (k >= 97 && k <= 122) || (k >= 65 && k <= 90) || k === 95 || k >= 0x80;
const isIdChar = (k: number): boolean => isIdStart(k) || (k >= 48 && k <= 57) || k === 36;
const isSpace = (k: number): boolean => k === 32 || k === 9 || k === 10 || k === 13 || k === 12;
const isDigitOrDot = (k: number): boolean => (k >= 48 && k <= 57) || k === 46;
const NUMBER = /(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?)/y;
const OPERATORS = ['->>', '->', '||', '<=', '>=', '==', '!=', '<>', '<<', '>>'];

// End of a quoted run starting at `i` (the opening quote); a doubled closing quote is an
// escape. Unterminated runs extend to the end of the text, as in SQLite.
function quotedEnd(text: string, i: number, close: string, doubling: boolean): number {
  let j = i + 1;
  while (j < text.length) {
    if (text[j] === close) {
      if (doubling && text[j + 1] === close) j += 2;
      else return j + 1;
    } else j++;
  }
  return text.length;
}

function unquote(raw: string, close: string, doubling: boolean): string {
  const closed = raw.length > 1 && raw.endsWith(close);
  const inner = raw.slice(1, closed ? -1 : undefined);
  return doubling ? inner.split(close + close).join(close) : inner;
}

/** Yields the significant tokens of `text`, skipping whitespace and comments. */
export function* tokens(text: string): Generator<Token> {
  let i = 0;
  const n = text.length;
  while (i < n) {
    const k = text.charCodeAt(i);
    const start = i;
    if (isSpace(k)) { i++; continue; }
    const c = text[i]!;
    if (c === '-' && text[i + 1] === '-') {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl + 1;
      continue;
    }
    if (c === '/' && text[i + 1] === '*') {
      const close = text.indexOf('*/', i + 2);
      i = close < 0 ? n : close + 2;
      continue;
    }
    let type: TokenType;
    let value: string | undefined;
    if (c === "'") {
      i = quotedEnd(text, i, "'", true);
      type = 'string';
      value = unquote(text.slice(start, i), "'", true);
    } else if (c === '"' || c === '`') {
      i = quotedEnd(text, i, c, true);
      type = 'ident';
      value = unquote(text.slice(start, i), c, true);
    } else if (c === '[') {
      i = quotedEnd(text, i, ']', false);
      type = 'ident';
      value = unquote(text.slice(start, i), ']', false);
    } else if ((c === 'x' || c === 'X') && text[i + 1] === "'") {
      i = quotedEnd(text, i + 1, "'", false); // blob literal: a value, never a name
      type = 'number';
    } else if (isIdStart(k)) {
      while (i < n && isIdChar(text.charCodeAt(i))) i++;
      type = 'word';
    } else if (isDigitOrDot(k) && (NUMBER.lastIndex = i, NUMBER.test(text))) {
      i = NUMBER.lastIndex;
      type = 'number';
    } else if (c === '?' || c === ':' || c === '@' || c === '$' || c === '#') {
      i++;
      while (i < n && isIdChar(text.charCodeAt(i))) i++;
      type = i - start > 1 || c === '?' ? 'param' : 'punct';
    } else {
      const op = OPERATORS.find((o) => text.startsWith(o, i));
      i += op ? op.length : 1;
      type = 'punct';
    }
    const raw = text.slice(start, i);
    yield { type, text: raw, value: value ?? raw, start, end: i };
  }
}

const isWord = (t: Token | undefined, ...words: string[]): boolean =>
  t !== undefined && t.type === 'word' && words.includes(t.value.toUpperCase());
const isSemi = (t: Token | undefined): boolean => t !== undefined && t.type === 'punct' && t.text === ';';

// True when the first tokens are [EXPLAIN [QUERY PLAN]] CREATE [TEMP|TEMPORARY] TRIGGER:
// such a statement's body holds `;`, and only `; END ;` ends it (SQLite's sqlite3_complete
// uses the same rule, which also copes with CASE ... END and columns named "end").
function startsTrigger(head: readonly Token[]): boolean {
  let i = 0;
  if (isWord(head[i], 'EXPLAIN')) i++;
  if (isWord(head[i], 'QUERY') && isWord(head[i + 1], 'PLAN')) i += 2;
  if (!isWord(head[i], 'CREATE')) return false;
  i++;
  if (isWord(head[i], 'TEMP', 'TEMPORARY')) i++;
  return isWord(head[i], 'TRIGGER');
}

/** Splits `text` into statements with their offsets; see splitStatements. */
export function statementSpans(text: string): StatementSpan[] {
  const spans: StatementSpan[] = [];
  let segStart = 0;
  let head: Token[] = []; // the first few tokens of the current statement
  let inTrigger = false;
  let prev: Token | undefined;
  let prev2: Token | undefined;
  const flush = (end: number): void => {
    if (head.length > 0) {
      const raw = text.slice(segStart, end);
      const lead = raw.length - raw.trimStart().length;
      spans.push({ sql: raw.trim(), start: segStart + lead });
    }
    head = [];
    inTrigger = false;
    prev = prev2 = undefined;
  };
  // No ';' at all: one statement (or none), found without tokenizing the whole text; a
  // large single statement is then tokenized once (by the classifier's fallback), not twice.
  if (!text.includes(';')) {
    if (tokens(text).next().done) return spans;
    const lead = text.length - text.trimStart().length;
    return [{ sql: text.trim(), start: lead }];
  }
  for (const t of tokens(text)) {
    if (isSemi(t) && !(inTrigger && !(isWord(prev, 'END') && isSemi(prev2)))) {
      flush(t.start);
      segStart = t.end;
      continue;
    }
    if (head.length < 5) {
      head.push(t);
      inTrigger = startsTrigger(head);
    }
    prev2 = prev;
    prev = t;
  }
  flush(text.length);
  return spans;
}

/**
 * Splits SQLite text on top-level `;` into trimmed statements without the `;`, dropping
 * empty ones (only whitespace or comments).
 */
export function splitStatements(text: string): string[] {
  return statementSpans(text).map((s) => s.sql);
}
