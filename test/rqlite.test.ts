// rqlite's HTTP API (DESIGN §7): the real rqlite-js client from npm against a real cluster,
// via the master and via a slave, plus raw HTTP for the shapes the client does not cover.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, describe } from 'node:test';
import { REPO_ROOT, assertSameChecksums, get, post, request, startCluster, tempDir, useCluster, waitForIndex, type Cluster, type TestNode } from './helpers/cluster.js';

// rqlite-js is CommonJS without type declarations.
const rqlite = createRequire(import.meta.url)('rqlite-js') as {
  DataApiClient: new (hosts: string) => RqClient;
  BackupApiClient: new (hosts: string) => { backup(fmt?: string): Promise<NodeJS.ReadableStream>; load(data: Buffer | string, fmt?: string): Promise<NodeJS.ReadableStream> };
  StatusApiClient: new (hosts: string) => { status(): Promise<{ body: any; status: number }> };
};
interface RqResults {
  hasError(): boolean;
  getFirstError(): Error | undefined;
  get(i: number): { get(col: string): unknown; getLastInsertId(): number; getRowsAffected(): number; toObject(): Record<string, unknown> } & Error;
  getResults(): unknown[];
  toArray(): Record<string, unknown>[];
}
interface RqClient {
  execute(sql: unknown, options?: Record<string, unknown>): Promise<RqResults>;
  query(sql: unknown, options?: Record<string, unknown>): Promise<RqResults>;
}

const rq = (path: string, body: unknown, contentType?: string) =>
  (n: TestNode) => request(`${n.url}${path}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body), contentType: contentType ?? 'application/json' });

async function streamToBuffer(s: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks);
}

describe('rqlite API', () => {
  const { cluster, it } = useCluster({ slaves: 2 });
  const master = () => cluster().master;
  const slave = () => cluster().slaves[0]!;

  it('rqlite-js via the master: schema, double-quoted strings, parameters, named parameters, queries', async () => {
    const db = new rqlite.DataApiClient(master().url);
    let r = await db.execute('CREATE TABLE foo (id INTEGER NOT NULL PRIMARY KEY, name TEXT, age INTEGER, score REAL)');
    assert.equal(r.hasError(), false, String(r.getFirstError()));
    // rqlite's own documentation example: a double-quoted string literal.
    r = await db.execute('INSERT INTO foo(name, age) VALUES("fiona", 20)');
    assert.equal(r.hasError(), false, String(r.getFirstError()));
    assert.equal(r.get(0).getLastInsertId(), 1);
    assert.equal(r.get(0).getRowsAffected(), 1);
    r = await db.execute([['INSERT INTO foo(name, age, score) VALUES(?, ?, ?)', 'sinead', 30, 1.5], ['INSERT INTO foo(name, age) VALUES(:name, :age)', { name: 'declan', age: 40 }]]);
    assert.equal(r.hasError(), false, String(r.getFirstError()));
    assert.equal(r.get(1).getLastInsertId(), 3);
    const q = await db.query('SELECT id, name, age, score FROM foo ORDER BY id', { level: 'none' });
    assert.deepEqual(q.toArray(), [
      { id: 1, name: 'fiona', age: 20, score: null },
      { id: 2, name: 'sinead', age: 30, score: 1.5 },
      { id: 3, name: 'declan', age: 40, score: null },
    ]);
    const p = await db.query([['SELECT name FROM foo WHERE age > ? ORDER BY id', 25]]);
    assert.deepEqual(p.toArray(), [{ name: 'sinead' }, { name: 'declan' }]);
  });

  it('rqlite-js via a slave: schema changes and writes are forwarded, reads at every level', async () => {
    const db = new rqlite.DataApiClient(slave().url);
    let r = await db.execute('CREATE TABLE bar (id INTEGER PRIMARY KEY, v TEXT)');
    assert.equal(r.hasError(), false, String(r.getFirstError()));
    r = await db.execute([['INSERT INTO bar(v) VALUES(?)', 'x'], ['INSERT INTO bar(v) VALUES("y")']], { transaction: true });
    assert.equal(r.hasError(), false, String(r.getFirstError()));
    for (const level of ['none', 'weak', 'linearizable', 'strong']) {
      const q = await db.query('SELECT v FROM bar ORDER BY id', { level });
      assert.deepEqual(q.toArray(), [{ v: 'x' }, { v: 'y' }], `level ${level}`);
    }
    // The table exists on the master too: it was created there, not on the slave alone.
    const m = await new rqlite.DataApiClient(master().url).query('SELECT count(*) AS n FROM bar', { level: 'none' });
    assert.deepEqual(m.toArray(), [{ n: 2 }]);
  });

  it('rqlite-js transaction: stops at the first error and rolls back', async () => {
    const db = new rqlite.DataApiClient(slave().url);
    await db.execute('CREATE TABLE tx (id INTEGER PRIMARY KEY, v TEXT UNIQUE)');
    const r = await db.execute(["INSERT INTO tx(v) VALUES('a')", "INSERT INTO tx(v) VALUES('a')", "INSERT INTO tx(v) VALUES('b')"], { transaction: true });
    assert.equal(r.hasError(), true);
    assert.match(String(r.getFirstError()?.message), /UNIQUE constraint failed/);
    const q = await db.query('SELECT count(*) AS n FROM tx', { level: 'strong' });
    assert.deepEqual(q.toArray(), [{ n: 0 }]);
  });

  it('rqlite-js status: store.ready and the rqlite objects beside sqlfleet fields', async () => {
    for (const n of [master(), slave()]) {
      const s = await new rqlite.StatusApiClient(n.url).status();
      assert.equal(s.body.store.ready, true);
      assert.equal(typeof s.body.build.version, 'string');
      assert.equal(typeof s.body.http.bind_addr, 'string');
      assert.equal(typeof s.body.runtime.GOOS, 'string');
      assert.equal(s.body.store.leader.addr, master().url.replace(/^https?:\/\//, ''));
      // sqlfleet's own fields are still there.
      assert.equal(s.body.node, n.id);
      assert.ok(Array.isArray(s.body.nodes));
    }
  });

  it('per-statement errors under HTTP 200; other statements still run outside a transaction', async () => {
    const res = await rq('/db/execute', ['CREATE TABLE e (id INTEGER PRIMARY KEY, v TEXT)', 'INSERT INTO nosuch VALUES(1)', 'nonsense', "INSERT INTO e(v) VALUES('ok')"])(slave());
    assert.equal(res.status, 200, res.text);
    const [a, b, c, d] = res.body.results;
    // DDL answers sqlite3_changes() as rqlite does: the connection's last INSERT/UPDATE/DELETE
    // count (an earlier test's), so only "no error" is certain here (rqlite-fidelity.test.ts pins it).
    assert.equal(a.error, undefined, JSON.stringify(a));
    assert.match(b.error, /no such table: nosuch/);
    assert.match(c.error, /syntax error/);
    assert.deepEqual(d, { last_insert_id: 1, rows_affected: 1 });
    const q = await get(`${slave().url}/db/query?level=strong&q=${encodeURIComponent('SELECT v FROM e')}`);
    assert.deepEqual(q.body.results, [{ columns: ['v'], types: ['text'], values: [['ok']] }]);
  });

  it('transaction=true over raw HTTP: the failing statement is named, the rest rolled back', async () => {
    await rq('/db/execute', ['CREATE TABLE t2 (id INTEGER PRIMARY KEY, v TEXT NOT NULL)'])(master());
    const res = await rq('/db/execute?transaction', ["INSERT INTO t2(v) VALUES('a')", 'INSERT INTO t2(v) VALUES(NULL)', "INSERT INTO t2(v) VALUES('c')"])(master());
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.results.length, 2, res.text);
    assert.match(res.body.results[1].error, /NOT NULL constraint failed/);
    const q = await rq('/db/query?level=none', ['SELECT count(*) FROM t2'])(master());
    assert.deepEqual(q.body.results[0].values, [[0]]);
  });

  it('types from declared columns, associative rows, blobs as base64 or byte arrays, timings, raft_index', async () => {
    const n = master();
    await rq('/db/execute', ['CREATE TABLE ty (i INTEGER, r REAL, t TEXT, b BLOB, d DATETIME)'])(n);
    const w = await rq('/db/execute?raft_index&timings', [["INSERT INTO ty VALUES(7, 2.5, 'x', X'0102FF', '2024-01-01')"]])(n);
    assert.ok(w.body.raft_index > 0, w.text);
    assert.equal(typeof w.body.time, 'number');
    assert.equal(typeof w.body.results[0].time, 'number');
    const q = await rq('/db/query', ['SELECT i, r, t, b, d, i + 1 AS e FROM ty'])(n);
    assert.deepEqual(q.body.results[0], {
      columns: ['i', 'r', 't', 'b', 'd', 'e'],
      types: ['integer', 'real', 'text', 'blob', 'datetime', 'integer'],
      values: [[7, 2.5, 'x', 'AQL/', '2024-01-01', 8]],
    });
    const a = await rq('/db/query?associative&blob_array', ['SELECT i, b FROM ty'])(n);
    assert.deepEqual(a.body.results[0], { types: { i: 'integer', b: 'blob' }, rows: [{ i: 7, b: [1, 2, 255] }] });
    // 64-bit integers stay exact, indented or not.
    for (const path of ['/db/query', '/db/query?pretty']) {
      const big = await rq(path, ['SELECT 9007199254740993 AS big'])(n);
      assert.match(big.text, /\[\s*9007199254740993\s*\]/, big.text);
    }
    const empty = await rq('/db/query', ['SELECT i FROM ty WHERE 0'])(n);
    assert.deepEqual(empty.body.results[0], { columns: ['i'], types: ['integer'] });
  });

  it('/db/request mixes writes and reads; /db/query refuses a write per statement', async () => {
    const n = slave();
    const r = await rq('/db/request?associative', ['CREATE TABLE rq (v TEXT)', ["INSERT INTO rq VALUES(?)", 'z'], 'SELECT v FROM rq'])(n);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.body.results[1], { last_insert_id: 1, rows_affected: 1, rows: null });
    assert.deepEqual(r.body.results[2], { types: { v: 'text' }, rows: [{ v: 'z' }] });
    const q = await rq('/db/query', ["INSERT INTO rq VALUES('no')", 'SELECT count(*) FROM rq'])(n);
    assert.equal(q.status, 200, q.text);
    assert.match(q.body.results[0].error, /attempt to change database via query operation/);
    assert.deepEqual(q.body.results[1].values, [[1]]);
  });

  it('bad bodies are 400 with a message; unknown query parameters are ignored', async () => {
    for (const body of ['not json', '{}', '[]', '[42]', '[[]]', '[["SELECT ?", [1, 2]]]']) {
      const r = await rq('/db/execute', body)(master());
      assert.equal(r.status, 400, `${body}: ${r.text}`);
      assert.equal(typeof r.body.error.message, 'string');
    }
    const r = await rq('/db/query?frobnicate=1&level=none', ['SELECT 1'])(master());
    assert.deepEqual(r.body.results[0].values, [[1]]);
    const t = await rq('/db/query?timeout=notaduration', ['SELECT 1'])(master());
    assert.equal(t.status, 400);
  });

  it('redirect: a slave answers 301 to the master for writes', async () => {
    const res = await fetch(`${slave().url}/db/execute?redirect`, { method: 'POST', body: '["SELECT 1"]', headers: { 'content-type': 'application/json' }, redirect: 'manual' });
    await res.arrayBuffer();
    assert.equal(res.status, 301);
    assert.equal(res.headers.get('location'), `${master().url}/db/execute?redirect`);
  });

  it('/readyz, /nodes and /leader answer as rqlite does', async () => {
    const r = await get(`${slave().url}/readyz`);
    assert.equal(r.status, 200);
    assert.match(r.text, /\[\+\]node ok\n\[\+\]leader ok\n\[\+\]store ok/);
    const nodes = await get(`${slave().url}/nodes`);
    assert.deepEqual(Object.keys(nodes.body).sort(), ['0', '1', '2']);
    assert.equal(nodes.body['0'].leader, true);
    assert.equal(nodes.body['0'].api_addr, master().url);
    const v2 = await get(`${slave().url}/nodes?ver=2`);
    assert.equal(v2.body.nodes.length, 3);
    const leader = await get(`${slave().url}/leader`);
    assert.equal(leader.body.api_addr, master().url);
  });

  it('double-quoted identifiers that resolve stay identifiers', async () => {
    const n = master();
    await rq('/db/execute', ['CREATE TABLE dq ("name" TEXT, other TEXT)'])(n);
    const w = await rq('/db/execute', ['INSERT INTO dq("name", other) VALUES("lit", "name")'])(n);
    assert.deepEqual(w.body.results[0], { last_insert_id: 1, rows_affected: 1 }, w.text);
    // "name" resolves to the column in a WHERE; "nope" does not and is the string 'nope'.
    const q = await rq('/db/query', ['SELECT "name", "nope" FROM dq WHERE "name" = \'lit\''])(n);
    assert.deepEqual(q.body.results[0].values, [['lit', 'nope']], q.text);
    const o = await rq('/db/query', ['SELECT other FROM dq'])(n);
    assert.deepEqual(o.body.results[0].values, [['name']]);
  });
});

describe('rqlite backup and load', () => {
  const { cluster, it } = useCluster({ slaves: 1 });
  let fresh: Cluster | undefined;
  after(async () => {
    await fresh?.stop();
  });

  it('backup (SQLite file and SQL dump) then load into a fresh cluster, through rqlite-js', async () => {
    const src = cluster().master;
    const db = new rqlite.DataApiClient(src.url);
    await db.execute('CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE)');
    await db.execute('CREATE TABLE c (id INTEGER PRIMARY KEY, p INTEGER REFERENCES p(id), v BLOB, f REAL)');
    await db.execute('CREATE INDEX c_p ON c(p)');
    await db.execute('CREATE VIEW pv AS SELECT name FROM p');
    const rows: unknown[] = [];
    for (let i = 1; i <= 300; i++) rows.push(['INSERT INTO p(name) VALUES(?)', `n${i}`], [`INSERT INTO c(p, v, f) VALUES(?, X'00FF', ?)`, i, i + 0.5]);
    const w = await db.execute(rows, { transaction: true });
    assert.equal(w.hasError(), false, String(w.getFirstError()));
    const backup = new rqlite.BackupApiClient(src.url);
    const file = await streamToBuffer(await backup.backup());
    assert.equal(file.subarray(0, 16).toString('latin1'), 'SQLite format 3\0');
    const sql = (await streamToBuffer(await backup.backup('sql'))).toString('utf8');
    assert.match(sql, /CREATE TABLE p/);
    assert.doesNotMatch(sql, /_sqlfleet_/);
    assert.doesNotMatch(file.toString('latin1'), /_sqlfleet_/);

    fresh = await startCluster({ slaves: 1 });
    const target = fresh.slaves[0]!; // a load sent to a slave goes to the master
    await post(`${fresh.master.url}/`, { query: 'CREATE TABLE old (x)' });
    await streamToBuffer(await new rqlite.BackupApiClient(target.url).load(file, 'binary'));
    const check = async (n: TestNode) => {
      const q = await new rqlite.DataApiClient(n.url).query(['SELECT count(*) AS n, sum(f) AS s FROM c', 'SELECT count(*) AS n FROM pv'], { level: 'none' });
      const old = await rq('/db/query?level=none', ["SELECT name FROM sqlite_schema WHERE name = 'old'"])(n);
      assert.equal(old.body.results[0].values, undefined, `the old table is gone on node ${n.id}: ${old.text}`);
      return q.toArray();
    };
    const status = await get(`${fresh.master.url}/status`);
    await waitForIndex(fresh.nodes, status.body.applied_index);
    for (const n of fresh.nodes) assert.deepEqual(await check(n), [{ n: 300, s: 45300 }, { n: 300 }]);
    await assertSameChecksums(fresh.nodes);
    const c1 = await get(`${src.url}/checksum`);
    const c2 = await get(`${fresh.master.url}/checksum`);
    assert.deepEqual(c2.body.tables, c1.body.tables, 'loaded tables equal the source');

    // The SQL dump loads too, replacing everything again.
    await post(`${fresh.master.url}/`, { query: "INSERT INTO p(name) VALUES('extra')" });
    const res = await request(`${fresh.master.url}/db/load`, { method: 'POST', body: sql, contentType: 'text/plain' });
    assert.equal(res.status, 200, res.text);
    const c3 = await get(`${fresh.master.url}/checksum`);
    assert.deepEqual(c3.body.tables, c1.body.tables);
  });

  it('bad load files are 400 and the old database keeps serving', async () => {
    const n = cluster().master;
    const before = (await get(`${n.url}/checksum`)).body;
    const good = Buffer.from(await (await fetch(`${n.url}/db/backup`)).arrayBuffer());
    const corrupt = Buffer.from(good);
    corrupt.fill(0x5a, corrupt.length - 2048, corrupt.length - 100); // scribble over a b-tree page
    const badPage = Buffer.from(good);
    badPage.writeUInt16BE(1000, 16);
    const cases: [string, Buffer | string, string, RegExp][] = [
      ['not sqlite', Buffer.from('hello world, not a database'), 'application/octet-stream', /not a SQLite database/],
      ['truncated', good.subarray(0, good.length - 1000), 'application/octet-stream', /truncated/],
      ['wrong page size', badPage, 'application/octet-stream', /page size/],
      ['corrupt', corrupt, 'application/octet-stream', /corrupt|malformed/],
      ['internal table in dump', 'CREATE TABLE _sqlfleet_x (a);', 'text/plain', /_sqlfleet_/],
      ['attach in dump', "ATTACH DATABASE '/tmp/x.db' AS x;", 'text/plain', /ATTACH/i],
      ['broken dump', 'CREATE TABLE q (a); INSERT INTO nope VALUES (1);', 'text/plain', /no such table: nope/],
    ];
    for (const [name, body, type, why] of cases) {
      const r = await request(`${n.url}/db/load`, { method: 'POST', body: typeof body === 'string' ? body : new Uint8Array(body), contentType: type });
      assert.equal(r.status, 400, `${name}: ${r.text}`);
      assert.match(r.body.error.message, why, name);
    }
    const big = await request(`${n.url}/db/load`, { method: 'POST', body: new Uint8Array(33 * 1024 * 1024), contentType: 'application/octet-stream' });
    assert.equal(big.status, 413);
    assert.deepEqual((await get(`${n.url}/checksum`)).body, before);
  });

  it('npm run backup / restore: a file, then the cluster back to it on every node', async () => {
    const c = cluster();
    const dir = tempDir('sqlfleet-backup-');
    const run = (script: string, ...args: string[]) =>
      promisify(execFile)(process.execPath, ['--import', 'tsx', path.join('scripts', script), ...args, '--master-url', c.master.url], { cwd: REPO_ROOT, timeout: 60_000 });
    try {
      const before = (await get(`${c.master.url}/checksum`)).body.tables;
      const file = path.join(dir, 'b.sqlite');
      const out = await run('backup.ts', file);
      assert.match(out.stdout, /bytes at index \d+/);
      await run('backup.ts', path.join(dir, 'b.sql'), '--sql');
      assert.match(fs.readFileSync(path.join(dir, 'b.sql'), 'utf8'), /^PRAGMA foreign_keys=OFF;/);
      await post(`${c.master.url}/`, { query: "INSERT INTO p(name) VALUES('after-backup')" });
      assert.notDeepEqual((await get(`${c.master.url}/checksum`)).body.tables, before);
      const r = await run('restore.ts', file);
      assert.match(r.stdout, /loaded as log index \d+/);
      await waitForIndex(c.nodes, (await get(`${c.master.url}/status`)).body.applied_index);
      for (const n of c.nodes) assert.deepEqual((await get(`${n.url}/checksum`)).body.tables, before, `node ${n.id}`);
      // A bad file: the script fails and says so; nothing changes.
      fs.writeFileSync(path.join(dir, 'bad.sqlite'), Buffer.concat([Buffer.from('SQLite format 3\0'), Buffer.alloc(100)]));
      await assert.rejects(run('restore.ts', path.join(dir, 'bad.sqlite')), /refused \(400\)/);
      assert.deepEqual((await get(`${c.master.url}/checksum`)).body.tables, before);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
