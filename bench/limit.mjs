// The single-node limit: the fastest one Node process answers sqlfleet's `POST /` JSON on
// this machine. node:http without a framework, better-sqlite3 with cached prepared
// statements, and group commit: the writes that arrive in one event-loop turn share one
// transaction, each in its own savepoint (a failing write undoes only itself), and are
// answered after the commit. No replication, no SQL parsing, no logging: a replicated
// system can only be slower, so this bounds what any figure can reach.
//
//   PORT=8301 DB=/tmp/limit.db node bench/limit.mjs
//   BENCH_YARDSTICK=bench/limit.mjs npm run bench     # sqlfleet's figures as ratios to it
//
// Env: PORT (8301; 0 = any free port), HOST (127.0.0.1), DB (the file; removed first),
// SYNC (NORMAL or FULL). Prints one JSON line, {"limit":"<url>"}, once it listens.
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';

const port = Number(process.env.PORT ?? 8301);
const host = process.env.HOST ?? '127.0.0.1';
const file = process.env.DB ?? path.join('.bench', 'limit.db');

fs.mkdirSync(path.dirname(file), { recursive: true });
for (const suffix of ['', '-wal', '-shm']) fs.rmSync(`${file}${suffix}`, { force: true });
const db = new Database(file);
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${process.env.SYNC === 'FULL' ? 'FULL' : 'NORMAL'}`);
db.exec('CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)');

const cache = new Map();
function statement(sql) {
  let s = cache.get(sql);
  if (!s) {
    if (cache.size >= 1000) cache.delete(cache.keys().next().value);
    s = db.prepare(sql);
    cache.set(sql, s);
  }
  return s;
}
const control = (sql) => db.prepare(sql);
const begin = control('BEGIN');
const commit = control('COMMIT');
const savepoint = control('SAVEPOINT w');
const release = control('RELEASE w');
const undo = control('ROLLBACK TO w');

function runOne(q) {
  const s = statement(q.query);
  const args = q.params === undefined ? [] : [q.params];
  if (s.reader) {
    s.raw(true);
    return { columns: s.columns().map((c) => c.name), rows: s.all(...args) };
  }
  const r = s.run(...args);
  return { changes: r.changes, last_insert_rowid: Number(r.lastInsertRowid) };
}

/** The statements of one request. */
function statements(body) {
  if (Array.isArray(body.queries)) return body.queries.map((q) => (typeof q === 'string' ? { query: q } : q));
  return [{ query: body.query, params: body.params }];
}

function reply(res, status, value) {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

// Writes of this event-loop turn, committed together on the next setImmediate.
let pending = [];
function flush() {
  const group = pending;
  pending = [];
  const answers = [];
  begin.run();
  for (const w of group) {
    savepoint.run();
    try {
      const results = w.list.map(runOne);
      release.run();
      answers.push([w.res, 200, { ok: true, results }]);
    } catch (e) {
      undo.run();
      release.run();
      answers.push([w.res, 400, { ok: false, error: { code: 'SQL_ERROR', message: e.message } }]);
    }
  }
  commit.run();
  for (const [res, status, value] of answers) reply(res, status, value);
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/health') return reply(res, 200, { ok: true });
  if (req.method !== 'POST') return reply(res, 404, { ok: false, error: { code: 'NOT_FOUND', message: 'POST / and GET /health only' } });
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let body;
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return reply(res, 400, { ok: false, error: { code: 'BAD_REQUEST', message: 'the body is not JSON' } });
    }
    const list = statements(body);
    let reads = true;
    try {
      reads = list.every((q) => statement(q.query).reader);
    } catch (e) {
      return reply(res, 400, { ok: false, error: { code: 'SQL_ERROR', message: e.message } });
    }
    if (reads) {
      try {
        return reply(res, 200, { ok: true, results: list.map(runOne) });
      } catch (e) {
        return reply(res, 400, { ok: false, error: { code: 'SQL_ERROR', message: e.message } });
      }
    }
    if (pending.length === 0) setImmediate(flush);
    pending.push({ list, res });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(port, host, () => {
  console.log(JSON.stringify({ limit: `http://${host}:${server.address().port}` }));
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => (db.close(), process.exit(0)));
