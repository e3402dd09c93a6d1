// The replicated floor: the least a master + slaves write path can cost on this machine,
// to compare sqlfleet's write figures with what the architecture allows (issue 29), not
// with a single node. It is limit.mjs (node:http, cached prepared statements, group
// commit with a savepoint per write) plus only what replication cannot do without: each
// write gets a log row on the master, every committed group goes to every slave as one
// length-prefixed JSON frame over one persistent TCP connection (no HTTP, no hashing, no
// auth, no parsing, no metrics, frames pipelined), each slave applies a frame in one
// transaction with the same log rows and answers the last index it applied, and the master
// answers a write once every slave acknowledged it (ack "all"). Not a product: no failure
// handling beyond stopping; the numbers are what matter.
//
//   ROLE=slave  PORT=… DB=… node bench/floor.mjs          prints {"msg":"ready","url":"tcp://…"}
//   ROLE=master PORT=… DB=… SLAVES=127.0.0.1:p1,127.0.0.1:p2 node bench/floor.mjs
//                                                          prints {"msg":"ready","url":"http://…"}
// Run from the project root (better-sqlite3 resolves from the project's node_modules).
import { createRequire } from 'node:module';
import http from 'node:http';
import net from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

const require = createRequire(join(process.cwd(), 'package.json'));
const Database = require('better-sqlite3');

const ROLE = process.env.ROLE || 'master';
const PORT = Number(process.env.PORT || 8302);
const HOST = process.env.HOST || '127.0.0.1';
const DB = process.env.DB || '.data/floor.db';
mkdirSync(dirname(DB), { recursive: true });
for (const s of ['', '-wal', '-shm']) rmSync(DB + s, { force: true });
const db = new Database(DB);
db.pragma('journal_mode = WAL');
db.pragma('synchronous = NORMAL');
db.exec('CREATE TABLE IF NOT EXISTS kv (k TEXT PRIMARY KEY, v TEXT)');
db.exec('CREATE TABLE IF NOT EXISTS log (idx INTEGER PRIMARY KEY, body TEXT NOT NULL)');
const cache = new Map();
const prep = (sql) => {
  let s = cache.get(sql);
  if (!s) { s = db.prepare(sql); if (cache.size < 1000) cache.set(sql, s); }
  return s;
};
const appendLog = db.prepare('INSERT INTO log (idx, body) VALUES (?, ?)');
const runOne = ([q, params]) => {
  const st = prep(q);
  if (st.reader) return { columns: st.columns().map((x) => x.name), rows: st.raw(true).all(params ?? []) };
  const r = st.run(params ?? []);
  return { changes: r.changes, last_insert_rowid: Number(r.lastInsertRowid) };
};
const stop = () => { db.close(); process.exit(0); };
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

/** Splits length-prefixed frames out of a byte stream. */
function framer(onFrame) {
  let buf = Buffer.alloc(0);
  return (chunk) => {
    buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
    while (buf.length >= 4) {
      const n = buf.readUInt32LE(0);
      if (buf.length < 4 + n) break;
      onFrame(buf.subarray(4, 4 + n));
      buf = buf.subarray(4 + n);
    }
  };
}
const frame = (text) => {
  const body = Buffer.from(text);
  const head = Buffer.allocUnsafe(4);
  head.writeUInt32LE(body.length, 0);
  return [head, body];
};

if (ROLE === 'slave') {
  let applied = 0;
  // One frame: [first index, [[[sql, params], …] per entry, …]] in one transaction.
  // (The log row re-serializes each entry: a slave that kept the master's text would need
  // a frame format with offsets; JSON.stringify of a parsed entry is the simple floor.)
  const apply = db.transaction((first, entries) => {
    entries.forEach((stmts, i) => {
      for (const s of stmts) runOne(s);
      appendLog.run(first + i, JSON.stringify(stmts));
    });
  });
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    sock.on('data', framer((f) => {
      const [first, entries] = JSON.parse(f.toString('utf8'));
      apply.immediate(first, entries);
      applied = first + entries.length - 1;
      const ack = Buffer.allocUnsafe(4);
      ack.writeUInt32LE(applied, 0);
      sock.write(ack);
    }));
    sock.on('error', () => sock.destroy());
  });
  server.listen(PORT, HOST, () => console.log(JSON.stringify({ msg: 'ready', url: `tcp://${HOST}:${server.address().port}` })));
} else {
  const send = (res, status, obj) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  let applied = 0;
  const acked = [];
  /** Committed groups waiting for every slave: [last index, [[res, status, body], …]]. */
  const waiting = [];
  const release = () => {
    const upTo = Math.min(...acked);
    while (waiting.length && waiting[0][0] <= upTo) for (const [res, s, b] of waiting.shift()[1]) send(res, s, b);
  };
  const slaves = (process.env.SLAVES || '').split(',').filter(Boolean).map((hp, i) => {
    const [h, p] = hp.split(':');
    acked[i] = 0;
    const sock = net.connect(Number(p), h);
    sock.setNoDelay(true);
    let ackBuf = Buffer.alloc(0);
    sock.on('data', (c) => {
      ackBuf = ackBuf.length ? Buffer.concat([ackBuf, c]) : c;
      while (ackBuf.length >= 4) { acked[i] = ackBuf.readUInt32LE(0); ackBuf = ackBuf.subarray(4); }
      release();
    });
    sock.on('error', (e) => { console.error(`slave ${hp}: ${e.message}`); process.exit(1); });
    return sock;
  });
  if (slaves.length === 0) acked.push(Infinity);

  let queue = [];
  const flush = () => {
    const jobs = queue; queue = [];
    const out = [];
    const entries = [];
    const first = applied + 1;
    db.exec('BEGIN IMMEDIATE');
    for (const j of jobs) {
      db.exec('SAVEPOINT w');
      try {
        const results = j.stmts.map(runOne);
        const text = JSON.stringify(j.stmts); // once: the log row and the frame
        appendLog.run(applied + 1, text);
        db.exec('RELEASE w');
        applied++;
        entries.push(text);
        out.push([j.res, 200, { ok: true, results }]);
      } catch (e) {
        db.exec('ROLLBACK TO w'); db.exec('RELEASE w');
        out.push([j.res, 400, { ok: false, error: { code: 'SQL_ERROR', message: String(e.message) } }]);
      }
    }
    db.exec('COMMIT');
    if (entries.length) {
      const f = frame(`[${first},[${entries.join(',')}]]`);
      for (const s of slaves) { s.cork(); s.write(f[0]); s.write(f[1]); s.uncork(); }
    }
    waiting.push([applied, out]);
    release();
  };

  const server = http.createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/health') return send(res, 200, { ok: true });
    if (req.method !== 'POST') return send(res, 404, { ok: false });
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      let b;
      try { b = JSON.parse(Buffer.concat(chunks).toString('utf8')); } catch { return send(res, 400, { ok: false, error: { code: 'BAD_REQUEST', message: 'bad json' } }); }
      try {
        if (!Array.isArray(b.queries) && prep(b.query).reader) return send(res, 200, { ok: true, results: [runOne([b.query, b.params])] });
      } catch (e) { return send(res, 400, { ok: false, error: { code: 'SQL_ERROR', message: String(e.message) } }); }
      const stmts = Array.isArray(b.queries)
        ? b.queries.map((q) => (typeof q === 'string' ? [q, []] : [q.query, q.params ?? []]))
        : [[b.query, b.params ?? []]];
      if (queue.push({ res, stmts }) === 1) setImmediate(flush);
    });
  });
  const ready = () => server.listen(PORT, HOST, () => console.log(JSON.stringify({ msg: 'ready', url: `http://${HOST}:${server.address().port}` })));
  let connected = 0;
  if (slaves.length === 0) ready();
  for (const s of slaves) s.once('connect', () => { if (++connected === slaves.length) ready(); });
}
