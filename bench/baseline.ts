// The yardstick: one Node process, hono + @hono/node-server + better-sqlite3, no
// replication and no SQL parsing, answering sqlfleet's `POST /` shape ({query, params} or
// {queries, transaction}). Same durability as a sqlfleet node: WAL, synchronous=NORMAL,
// foreign keys on. Statements are prepared on one connection and cached by SQL text (LRU
// of 500, as sqlfleet); SQLite's own `stmt.reader` flag tells a read from a write, and
// reads run on the same connection (one thread: nothing to gain from a second one).
//
//   tsx bench/baseline.ts <db-file> [port]   → prints {"msg":"ready","url":…} on stdout
import { serve } from '@hono/node-server';
import Database from 'better-sqlite3';
import type { Database as Db, Statement } from 'better-sqlite3';
import { Hono } from 'hono';

type Params = unknown[] | Record<string, unknown> | undefined;
interface Item {
  sql: string;
  params: Params;
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: tsx bench/baseline.ts <db-file> [port]\n');
  process.exit(2);
}
const port = Number(process.argv[3] ?? 0);

const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.pragma('foreign_keys = ON');
db.pragma('busy_timeout = 5000');

/** Prepared statements by SQL text, least recently used dropped first. */
class Cache {
  private readonly map = new Map<string, Statement>();
  constructor(private readonly db: Db) {}
  get(sql: string): Statement {
    let s = this.map.get(sql);
    if (s) {
      this.map.delete(sql);
      this.map.set(sql, s);
      return s;
    }
    s = this.db.prepare(sql);
    this.map.set(sql, s);
    if (this.map.size > 500) this.map.delete(this.map.keys().next().value as string);
    return s;
  }
  clear(): void {
    this.map.clear();
  }
}
const cache = new Cache(db);
let index = 0;

const args = (p: Params): unknown[] => (p === undefined || p === null ? [] : Array.isArray(p) ? p : [p]);

function run(stmt: Statement, p: Params): unknown {
  if (stmt.reader) {
    stmt.raw(true);
    return { columns: stmt.columns().map((c) => c.name), rows: stmt.all(...args(p)) };
  }
  const info = stmt.run(...args(p));
  return { changes: info.changes, last_insert_rowid: Number(info.lastInsertRowid) };
}

function execute(items: Item[]): { index: number; results: unknown[]; write: boolean } {
  // SQLite's own flag says whether a statement reads; reads run on the same connection.
  const first = items.length === 1 ? cache.get(items[0].sql) : undefined;
  if (first?.reader) return { index, results: [run(first, items[0].params)], write: false };
  const results: unknown[] = [];
  const all = () => {
    for (const it of items) results.push(run(cache.get(it.sql), it.params));
  };
  if (items.length === 1) all();
  else db.transaction(all).immediate();
  index++;
  if (/^\s*(create|drop|alter)\b/i.test(items[0].sql)) cache.clear();
  return { index, results, write: true };
}

function items(b: Record<string, unknown>): Item[] {
  if (Array.isArray(b.queries)) {
    return b.queries.map((q) => (typeof q === 'string' ? { sql: q, params: undefined } : { sql: String(q.query), params: q.params as Params }));
  }
  if (typeof b.query !== 'string') throw new Error('missing "query"');
  return [{ sql: b.query, params: b.params as Params }];
}

const app = new Hono();
app.get('/health', (c) => c.json({ ok: true }));
app.post('/', async (c) => {
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(await c.req.text());
  } catch (e) {
    return c.json({ ok: false, error: { code: 'BAD_REQUEST', message: (e as Error).message } }, 400);
  }
  try {
    const r = execute(items(body));
    const out = { ok: true, node: 0, role: 'baseline', index: r.index, results: r.results, ...(r.write ? { replicated_to: [] } : {}) };
    return c.body(JSON.stringify(out), 200, { 'content-type': 'application/json' });
  } catch (e) {
    const err = e as { code?: string; message?: string };
    return c.json({ ok: false, error: { code: err.code ?? 'SQL_ERROR', message: err.message ?? String(e) } }, 400);
  }
});

const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' }, (info) => {
  process.stdout.write(JSON.stringify({ msg: 'ready', url: `http://127.0.0.1:${info.port}`, pid: process.pid }) + '\n');
});
const stop = () => {
  server.close(() => {
    db.close();
    process.exit(0);
  });
  setTimeout(() => process.exit(0), 2000).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
