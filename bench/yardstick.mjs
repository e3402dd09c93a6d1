// The yardstick: what one plain process answers for the same `POST /` JSON a sqlfleet node
// takes, with hono + @hono/node-server + better-sqlite3 and nothing else: no replication, no
// SQL classification, no log table, no logging; every write is its own commit. sqlfleet's
// speed figures are ratios to it, measured in the same run (absolute figures move 2x between
// runs on a shared machine).
//
//   PORT=8300 DB=/tmp/yardstick.db node bench/yardstick.mjs
//
// Env: PORT (8300; 0 = any free port), HOST (127.0.0.1), DB (the file; removed first),
// SYNC (NORMAL or FULL). Prints one JSON line, {"yardstick":"<url>"}, once it listens.
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import { Hono } from 'hono';
import { serve } from '@hono/node-server';

const port = Number(process.env.PORT ?? 8300);
const host = process.env.HOST ?? '127.0.0.1';
const file = process.env.DB ?? path.join('.bench', 'yardstick.db');

fs.mkdirSync(path.dirname(file), { recursive: true });
for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${file}${suffix}`, { force: true });
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${process.env.SYNC === 'FULL' ? 'FULL' : 'NORMAL'}`);
db.exec('CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)');

// Prepared statements by SQL text, as any server would keep them (bounded: unique literal
// texts must not grow it without end).
const prepared = new Map();
function statement(sql) {
  let s = prepared.get(sql);
  if (!s) {
    if (prepared.size >= 1000) prepared.delete(prepared.keys().next().value);
    s = db.prepare(sql);
    prepared.set(sql, s);
  }
  return s;
}

/** Runs one statement: rows for a reader, changes for a writer. */
function run(sql, params) {
  const s = statement(sql);
  const args = params === undefined ? [] : [params];
  if (s.reader) {
    s.raw(true);
    return { columns: s.columns().map((c) => c.name), rows: s.all(...args) };
  }
  const r = s.run(...args);
  return { changes: r.changes, last_insert_rowid: Number(r.lastInsertRowid) };
}

const app = new Hono();
app.post('/', async (c) => {
  let body;
  try {
    body = await c.req.json();
  } catch {
    return c.json({ ok: false, error: { code: 'BAD_REQUEST', message: 'the body is not JSON' } }, 400);
  }
  const list = Array.isArray(body.queries)
    ? body.queries.map((q) => (typeof q === 'string' ? { query: q } : q))
    : [{ query: body.query, params: body.params }];
  try {
    // A request with several statements is atomic, as on a sqlfleet node.
    const results = list.length === 1 ? [run(list[0].query, list[0].params)] : db.transaction(() => list.map((q) => run(q.query, q.params)))();
    return c.json({ ok: true, results });
  } catch (e) {
    return c.json({ ok: false, error: { code: 'SQL_ERROR', message: e.message } }, 400);
  }
});

app.get('/health', (c) => c.json({ ok: true }));

serve({ fetch: app.fetch, port, hostname: host }, (info) => {
  console.log(JSON.stringify({ yardstick: `http://${host}:${info.port}` }));
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (db.close(), process.exit(0)));
