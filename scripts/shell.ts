// sqlfleet shell: a REPL in the manner of sqlite3 and rqlite's shell. Each statement goes
// to one node with POST / (reads answered there, writes forwarded by the node as usual).
//
//   npm run shell -- [url] [--timeout ms]        default url http://127.0.0.1:8080 (":8081" works too)
//   echo "SELECT 1;" | npm --silent run shell -- http://127.0.0.1:8081
//   npm run shell -- --user ana:secret | --user ana --password secret | --token T   (nodes with --auth;
//   also http://ana:secret@host:8080)
//
// A statement is sent once the input ends with ';' outside quotes and comments (a CREATE
// TRIGGER needs its END;). Lines starting with '.' are commands (.help). Results print as
// aligned tables, errors as "CODE: message" on stderr. History is kept in
// ~/.sqlfleet_history (or $SQLFLEET_HISTORY) when the input is a terminal. Thin on purpose:
// it only uses the public HTTP API. Exit status 1 when input was piped and anything failed.

import { readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const USER_TABLES =
  "SELECT name FROM sqlite_schema WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_sqlfleet\\_%' ESCAPE '\\' ORDER BY name";
const SCHEMA =
  "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '\\_sqlfleet\\_%' ESCAPE '\\'";
const HISTORY_SIZE = 1000;
const HELP = `.checksum            digests of this node's user tables
.connect URL         talk to another node
.consistency MODE    reads: local (this node, default) or strong (the master)
.help                this text
.quit                exit (also .exit, Ctrl-D)
.schema [TABLE]      CREATE statements of user tables, indexes, views and triggers
.status              this node, its master, and every node's state and lag
.tables              user tables
Anything else is SQL, sent when it ends with ';'.`;

/** A failure shown as "CODE: message". */
class ShellError extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
  }
}

type Json = Record<string, any>;

/** Options of one shell session. */
interface Session {
  url: string;
  /** Authorization header for nodes started with --auth; undefined = none. */
  authorization: string | undefined;
  timeoutMs: number;
  consistency: 'local' | 'strong';
  out: (text: string) => void;
  err: (text: string) => void;
  failures: number;
}

// ---- statement splitting ----------------------------------------------------------------

/**
 * Splits `text` into complete statements (each ending with ';' outside quotes, identifiers
 * and comments; a CREATE TRIGGER only at "END;") and the incomplete rest.
 */
export function splitStatements(text: string): { statements: string[]; rest: string } {
  const statements: string[] = [];
  let start = 0;
  let words: string[] = [];
  let last = '';
  let content = false; // the current statement has a token (not only blanks and comments)
  let i = 0;
  const skipTo = (close: string, from: number): number => {
    const j = text.indexOf(close, from);
    return j < 0 ? text.length : j + close.length;
  };
  while (i < text.length) {
    const ch = text[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      // A doubled quote inside is an escaped quote: skipping twice lands in the same state.
      i = skipTo(ch, i + 1);
      last = 'x';
      content = true;
    } else if (ch === '[') {
      i = skipTo(']', i + 1);
      last = 'x';
      content = true;
    } else if (ch === '-' && text[i + 1] === '-') {
      i = skipTo('\n', i + 2);
    } else if (ch === '/' && text[i + 1] === '*') {
      i = skipTo('*/', i + 2);
    } else if (/[A-Za-z0-9_$]/.test(ch)) {
      let j = i;
      while (j < text.length && /[A-Za-z0-9_$]/.test(text[j]!)) j++;
      last = text.slice(i, j).toUpperCase();
      if (words.length < 3) words.push(last);
      content = true;
      i = j;
    } else if (ch === ';') {
      const trigger = words[0] === 'CREATE' && (words[1] === 'TRIGGER' || (/^TEMP(ORARY)?$/.test(words[1] ?? '') && words[2] === 'TRIGGER'));
      i++;
      if (!trigger || last === 'END') {
        const stmt = text.slice(start, i).trim();
        if (content) statements.push(stmt);
        start = i;
        words = [];
        last = '';
        content = false;
      } else {
        last = ';';
      }
    } else {
      if (!/\s/.test(ch)) {
        last = ch;
        content = true;
      }
      i++;
    }
  }
  return { statements, rest: content ? text.slice(start) : '' };
}

// ---- output -----------------------------------------------------------------------------

function cellText(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'object') return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x));
  return String(v).replace(/\r?\n/g, '\\n');
}

/** An aligned table with a border, numbers right-aligned, NULL for null. */
export function formatTable(columns: string[], rows: unknown[][]): string {
  const cells = rows.map((r) => r.map(cellText));
  const numeric = columns.map((_c, i) => rows.length > 0 && rows.every((r) => r[i] === null || typeof r[i] === 'number' || typeof r[i] === 'bigint'));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((r) => (r[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const line = (vals: string[], header: boolean) =>
    `| ${vals.map((v, i) => (numeric[i] && !header ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join(' | ')} |`;
  return [rule, line(columns, true), rule, ...cells.map((r) => line(r, false)), ...(cells.length ? [rule] : [])].join('\n');
}

// ---- HTTP -------------------------------------------------------------------------------

const BIG = '\u0000big:';
/** The marker as it is written inside a JSON string (a raw NUL is not valid JSON). */
const BIG_JSON = '\\u0000big:';

/** JSON.parse keeping integers beyond 2^53 exact (as bigint), as nodes write them. */
export function parseJson(text: string): any {
  const marked = text.replace(/"(?:[^"\\]|\\.)*"|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g, (m) =>
    m[0] !== '"' && /^-?\d{16,}$/.test(m) && !Number.isSafeInteger(Number(m)) ? `"${BIG_JSON}${m}"` : m,
  );
  return JSON.parse(marked, (_k, v) => (typeof v === 'string' && v.startsWith(BIG) ? BigInt(v.slice(BIG.length)) : v));
}

/** GET (no body) or POST JSON to the node; returns the parsed answer or throws ShellError. */
async function call(s: Session, path: string, body?: unknown): Promise<Json> {
  let res: Response;
  try {
    res = await fetch(s.url + path, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...(s.authorization ? { authorization: s.authorization } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(s.timeoutMs),
    });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    if (err.name === 'TimeoutError') throw new ShellError('CLIENT_TIMEOUT', `no answer from ${s.url} within ${s.timeoutMs} ms`);
    throw new ShellError('UNREACHABLE', `cannot reach ${s.url}: ${err.cause?.code ?? err.cause?.message ?? err.message}`);
  }
  const text = await res.text();
  let json: Json;
  try {
    json = parseJson(text);
  } catch {
    throw new ShellError(`HTTP_${res.status}`, text.slice(0, 300) || res.statusText);
  }
  if (json.ok === false) throw new ShellError(String(json.error?.code ?? `HTTP_${res.status}`), String(json.error?.message ?? ''));
  if (!res.ok) throw new ShellError(`HTTP_${res.status}`, text.slice(0, 300));
  return json;
}

async function query(s: Session, sql: string, params?: unknown[]): Promise<{ columns: string[]; rows: unknown[][] }> {
  const answer = await call(s, '/', { command: 'query', query: sql, ...(params ? { params } : {}) });
  return answer.results[0];
}

// ---- commands ---------------------------------------------------------------------------

async function runSql(s: Session, sql: string): Promise<void> {
  const answer = await call(s, '/', { query: sql, ...(s.consistency === 'strong' ? { consistency: 'strong' } : {}) });
  for (const r of answer.results as Json[]) {
    if (Array.isArray(r.columns)) {
      s.out(formatTable(r.columns, r.rows));
      continue;
    }
    const notes = [`index ${answer.index}`];
    if (Array.isArray(answer.replicated_to)) notes.push(`replicated to [${answer.replicated_to.join(',')}]`);
    if (Array.isArray(answer.lagging) && answer.lagging.length) notes.push(`lagging [${answer.lagging.join(',')}]`);
    s.out(`${r.changes} row${r.changes === 1 ? '' : 's'} affected (${notes.join(', ')})`);
  }
}

async function status(s: Session): Promise<void> {
  const st = await call(s, '/status');
  const master = st.role === 'master' ? '' : `, master ${st.master}${st.master_reachable === false ? ' (unreachable)' : ''}`;
  s.out(`node ${st.node} (${st.role}) at ${st.url}, applied index ${st.applied_index}${master}`);
  const verdicts = new Map<number, Json>((Array.isArray(st.verified) ? st.verified : []).map((v: Json) => [v.id, v]));
  const check = (id: number, role: string): string => {
    if (role === 'master' || !Array.isArray(st.verified)) return role === 'master' ? 'reference' : '';
    const v = verdicts.get(id);
    return v?.equal === true ? `equal at ${v.index}` : v?.equal === false ? 'DIFFERS' : 'not compared';
  };
  const rows = (st.nodes as Json[]).map((n) => [n.id, n.role, n.url ?? '?', n.state, n.applied_index, n.lag, check(n.id, n.role)]);
  s.out(formatTable(['id', 'role', 'url', 'state', 'applied', 'lag', 'data check'], rows));
}

async function dot(s: Session, line: string): Promise<'quit' | void> {
  const [cmd, ...args] = line.split(/\s+/);
  switch (cmd) {
    case '.quit':
    case '.exit':
      return 'quit';
    case '.help':
      s.out(HELP);
      return;
    case '.status':
      return status(s);
    case '.tables':
      for (const [name] of (await query(s, USER_TABLES)).rows) s.out(String(name));
      return;
    case '.schema': {
      const r = args[0] ? await query(s, `${SCHEMA} AND tbl_name = ? ORDER BY type = 'table' DESC, name`, [args[0]]) : await query(s, `${SCHEMA} ORDER BY tbl_name, type = 'table' DESC, name`);
      for (const [sql] of r.rows) s.out(`${String(sql)};`);
      return;
    }
    case '.checksum': {
      const c = await call(s, '/checksum');
      s.out(`index ${c.index}, db ${c.db}`);
      const tables = Object.entries(c.tables as Record<string, string>);
      if (tables.length) s.out(formatTable(['table', 'digest'], tables));
      return;
    }
    case '.connect':
      if (!args[0]) throw new ShellError('BAD_COMMAND', 'usage: .connect URL');
      {
        const target = normalizeUrl(args[0]);
        s.url = target.url;
        if (target.authorization) s.authorization = target.authorization; // else: keep the session's credentials
      }
      return status(s);
    case '.consistency':
      if (args[0] !== 'local' && args[0] !== 'strong') throw new ShellError('BAD_COMMAND', 'usage: .consistency local|strong');
      s.consistency = args[0];
      return;
    default:
      throw new ShellError('BAD_COMMAND', `unknown command "${cmd}"; enter .help for the list`);
  }
}

// ---- the loop ---------------------------------------------------------------------------

/**
 * A node URL from "http://h:p", "h:p", ":p" or "p" (the last two on 127.0.0.1). Credentials in
 * it ("http://ana:secret@h:p") become a Basic authorization header: fetch refuses such URLs.
 */
export function normalizeUrl(u: string): { url: string; authorization?: string } {
  const port = /^:?(\d+)$/.exec(u);
  const full = port ? `http://127.0.0.1:${port[1]}` : /^https?:\/\//.test(u) ? u : `http://${u}`;
  let parsed: URL;
  try {
    parsed = new URL(full);
  } catch {
    throw new ShellError('BAD_COMMAND', `not a URL: ${u}`);
  }
  let authorization: string | undefined;
  if (parsed.username || parsed.password) {
    authorization = basic(decodeURIComponent(parsed.username), decodeURIComponent(parsed.password));
    parsed.username = '';
    parsed.password = '';
  }
  return { url: parsed.href.replace(/\/+$/, ''), ...(authorization ? { authorization } : {}) };
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/**
 * The Authorization header from --token, or --user NAME:PASSWORD / --user NAME --password P
 * (as show-all, promote and backup take them); undefined when none is given.
 */
export function credentials(o: { user?: string; password?: string; token?: string }): string | undefined {
  if (o.token && o.user) throw new ShellError('BAD_COMMAND', 'give --user or --token, not both');
  if (o.token) return `Bearer ${o.token}`;
  if (!o.user) {
    if (o.password) throw new ShellError('BAD_COMMAND', '--password needs --user');
    return undefined;
  }
  const colon = o.user.indexOf(':');
  if (colon >= 0 && o.password === undefined) return basic(o.user.slice(0, colon), o.user.slice(colon + 1));
  if (o.password === undefined) throw new ShellError('BAD_COMMAND', `no password for user ${o.user}: give --user NAME:PASSWORD or --password`);
  return basic(colon >= 0 ? o.user.slice(0, colon) : o.user, o.password);
}

/** `npm --silent run shell < x.sql | head`: the reader went away; stop without an EPIPE trace. */
function stopQuietlyOnClosedPipe(): void {
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(process.exitCode ?? 0);
  });
}

function historyFile(): string {
  return process.env.SQLFLEET_HISTORY ?? join(homedir(), '.sqlfleet_history');
}

/** History lines, newest first (readline's order); empty if there is none yet. */
export function loadHistory(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).reverse().slice(0, HISTORY_SIZE);
  } catch {
    return [];
  }
}

/** Writes readline's history (newest first) to `file`, oldest line first. */
export function saveHistory(file: string, history: readonly string[]): void {
  try {
    writeFileSync(file, `${[...history].slice(0, HISTORY_SIZE).reverse().join('\n')}\n`, { mode: 0o600 });
  } catch {
    // history is a convenience: a read-only home must not break the shell
  }
}

async function main(): Promise<number> {
  stopQuietlyOnClosedPipe();
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      timeout: { type: 'string', default: '10000' },
      user: { type: 'string' },
      password: { type: 'string' },
      token: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(
      `usage: npm run shell -- [url] [--timeout ms] [--user NAME[:PASSWORD] [--password P] | --token T]   (default http://127.0.0.1:8080;\n` +
        `       credentials also as http://NAME:PASSWORD@host:port)\n\n${HELP}`,
    );
    return 0;
  }
  const interactive = Boolean(process.stdin.isTTY && process.stdout.isTTY);
  const target = normalizeUrl(positionals[0] ?? 'http://127.0.0.1:8080');
  const given = credentials({ user: values.user, password: values.password, token: values.token });
  const s: Session = {
    url: target.url,
    authorization: given ?? target.authorization,
    timeoutMs: Number(values.timeout) > 0 ? Number(values.timeout) : 10_000,
    consistency: 'local',
    out: (t) => process.stdout.write(`${t}\n`),
    err: (t) => process.stderr.write(`${t}\n`),
    failures: 0,
  };
  const attempt = async (fn: () => Promise<unknown>): Promise<unknown> => {
    try {
      return await fn();
    } catch (e) {
      s.failures++;
      if (e instanceof ShellError) s.err(`${e.code}: ${e.message}`);
      else s.err(`ERROR: ${(e as Error).message}`);
      return undefined;
    }
  };

  let history: string[] = interactive ? loadHistory(historyFile()) : [];
  const rl = readline.createInterface({
    input: process.stdin,
    output: process.stdout,
    terminal: interactive,
    history,
    historySize: HISTORY_SIZE,
    removeHistoryDuplicates: true,
  });
  rl.on('history', (h: string[]) => (history = h));
  const prompt = (more: boolean) => {
    if (!interactive) return;
    rl.setPrompt(more ? `${' '.repeat(Math.max(0, new URL(s.url).host.length - 3))}...> ` : `${new URL(s.url).host}> `);
    rl.prompt();
  };
  let buffer = '';
  rl.on('SIGINT', () => {
    if (buffer === '') return rl.close();
    buffer = '';
    process.stdout.write('\n');
    prompt(false);
  });

  if (interactive) {
    s.out(`sqlfleet shell: ${s.url}. Enter ".help" for usage hints; statements end with ";".`);
    await attempt(() => status(s));
  }
  prompt(false);
  for await (const line of rl) {
    if (buffer === '' && line.trim().startsWith('.')) {
      if ((await attempt(() => dot(s, line.trim()))) === 'quit') break;
      prompt(false);
      continue;
    }
    buffer += `${line}\n`;
    const { statements, rest } = splitStatements(buffer);
    buffer = rest;
    for (const sql of statements) await attempt(() => runSql(s, sql));
    prompt(buffer !== '');
  }
  // Input ended inside a statement: run what there is, as sqlite3 does.
  if (buffer.trim() !== '') await attempt(() => runSql(s, buffer.trim()));
  rl.close();
  if (interactive) saveHistory(historyFile(), history);
  return !interactive && s.failures > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      console.error(`shell: ${e instanceof Error ? e.message : String(e)}`);
      process.exitCode = 1;
    },
  );
}
