// Issue 2 end to end: a master and two slaves as real processes, exercised over HTTP.

import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertError,
  assertSameChecksums,
  checksums,
  exec,
  get,
  ok,
  post,
  query,
  rows,
  status,
  waitFor,
  waitForIndex,
  useCluster,
  type TestNode,
} from './helpers/cluster.js';

/** The seed request of issue 2, byte for byte. */
const SEED_BODY =
  '{"command":"exec","query":"CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)","is_master":false}';

const { it, cluster } = useCluster({ slaves: 2 });

/** Runs DDL on the master and asserts it succeeded. */
async function ddl(sql: string): Promise<void> {
  ok(await exec(cluster().master, sql), sql);
}

/** Number of slaves a write response says applied it (`replicated_to` is a count or a list). */
function replicatedCount(body: { replicated_to?: unknown }): number {
  const r = body.replicated_to;
  if (Array.isArray(r)) return r.length;
  assert.equal(typeof r, 'number', `replicated_to missing: ${JSON.stringify(body)}`);
  return r as number;
}

/** Rows of `sql` (a read) on every node, in node order. */
async function rowsEverywhere(sql: string, params?: unknown): Promise<unknown[][][]> {
  return Promise.all(cluster().nodes.map(async (n) => rows(await query(n, sql, params), `${n.label()}: ${sql}`)));
}

/** Asserts `sql` gives `expected` rows on every node. */
async function assertRowsEverywhere(sql: string, expected: unknown[][], params?: unknown): Promise<void> {
  const all = await rowsEverywhere(sql, params);
  all.forEach((r, i) => assert.deepEqual(r, expected, `${cluster().nodes[i]!.label()}: ${sql}`));
}

it('seed example: CREATE TABLE users on the master exists on every slave when the response returns', async () => {
  const { master, slaves } = cluster();
  const reply = await post(master.url, SEED_BODY);
  const body = ok(reply, 'seed CREATE TABLE');
  assert.equal(body.node, 0);
  assert.equal(body.role, 'master');
  assert.equal(typeof body.index, 'number');
  assert.ok(body.index > 0, `index should be positive: ${reply.text}`);
  assert.equal(replicatedCount(body), 2);
  // No waiting: the default ack means every slave that is up applied it before we got the answer.
  for (const s of slaves) {
    const r = rows(
      await query(s, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'users'"),
      `${s.label()} sqlite_master`,
    );
    assert.deepEqual(r, [['users']], `users table missing on ${s.label()}`);
  }
  // The same body again is a no-op that still succeeds (IF NOT EXISTS).
  ok(await post(master.url, SEED_BODY), 'seed CREATE TABLE again');
});

it('DDL sent to each slave is refused 403 SCHEMA_ON_SLAVE naming the master URL', async () => {
  const { master, slaves, nodes } = cluster();
  const before = await checksums(nodes);
  for (const s of slaves) {
    const reply = await post(s.url, SEED_BODY);
    assertError(reply, 403, 'SCHEMA_ON_SLAVE', `seed body on ${s.label()}`);
    assert.equal(reply.body.error.master, master.url);
    for (const sql of [
      'CREATE TABLE on_slave (x)',
      'DROP TABLE users',
      'ALTER TABLE users ADD COLUMN age INTEGER',
      'CREATE INDEX users_email ON users(email)',
      'PRAGMA user_version = 7',
    ]) {
      const r = await exec(s, sql);
      assertError(r, 403, 'SCHEMA_ON_SLAVE', `${sql} on ${s.label()}`);
      assert.equal(r.body.error.master, master.url);
    }
  }
  assert.deepEqual(await checksums(nodes), before, 'a refused DDL changed something');
});

it('INSERT, UPDATE and DELETE via the master and via slaves are applied on every node', async () => {
  const { master, slaves } = cluster();
  const [s1, s2] = slaves as [TestNode, TestNode];
  await ddl('CREATE TABLE crud (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER)');

  const ins1 = ok(await exec(master, "INSERT INTO crud(name, qty) VALUES ('apple', 1)"), 'insert via master');
  assert.deepEqual(ins1.results, [{ changes: 1, last_insert_rowid: 1 }]);
  assert.equal(replicatedCount(ins1), 2);
  const ins2 = ok(await exec(s1, "INSERT INTO crud(name, qty) VALUES ('pear', 2)"), 'insert via slave 1');
  assert.deepEqual(ins2.results, [{ changes: 1, last_insert_rowid: 2 }]);
  assert.equal(ins2.node, 1, 'a forwarded write is answered by the slave that got it');
  assert.ok(ins2.index > ins1.index, 'log indexes grow');
  const ins3 = ok(await exec(s2, "INSERT INTO crud(name, qty) VALUES ('plum', 3)"), 'insert via slave 2');
  assert.deepEqual(ins3.results, [{ changes: 1, last_insert_rowid: 3 }]);

  const upd = ok(await exec(s2, "UPDATE crud SET qty = qty + 10 WHERE name IN ('apple', 'pear')"), 'update via slave 2');
  assert.equal(upd.results[0].changes, 2);
  // As SQLite reports it to a client alone: the last row the client inserted, not the node's own log row.
  assert.equal(upd.results[0].last_insert_rowid, 3, 'last_insert_rowid after an UPDATE');
  const del = ok(await exec(s1, "DELETE FROM crud WHERE name = 'plum'"), 'delete via slave 1');
  assert.equal(del.results[0].changes, 1);
  assert.equal(del.results[0].last_insert_rowid, 3, 'last_insert_rowid after a DELETE');
  const ignored = ok(await exec(master, "INSERT OR IGNORE INTO crud(id, name, qty) VALUES (1, 'dup', 0)"), 'an ignored insert');
  assert.deepEqual(ignored.results, [{ changes: 0, last_insert_rowid: 3 }]);
  const upd2 = ok(await exec(master, "UPDATE crud SET name = 'green apple' WHERE id = 1"), 'update via master');
  assert.equal(upd2.results[0].changes, 1);
  const none = ok(await exec(master, 'DELETE FROM crud WHERE id = 999'), 'delete of nothing');
  assert.equal(none.results[0].changes, 0);

  await assertRowsEverywhere('SELECT id, name, qty FROM crud ORDER BY id', [
    [1, 'green apple', 11],
    [2, 'pear', 12],
  ]);
});

it('a write sent to a slave is readable from that slave right after its response, whatever the ack', async () => {
  const { slaves } = cluster();
  await ddl('CREATE TABLE ryw (id INTEGER PRIMARY KEY, via INTEGER, ack TEXT)');
  for (const s of slaves) {
    for (const ack of [undefined, 'all', 'one', 'master']) {
      const label = `${s.label()} ack=${ack ?? 'default'}`;
      const w = ok(
        await exec(s, 'INSERT INTO ryw(via, ack) VALUES (?, ?)', [s.id, ack ?? 'default'], ack ? { ack } : {}),
        `write ${label}`,
      );
      const id = w.results[0].last_insert_rowid;
      const r = await query(s, 'SELECT via, ack FROM ryw WHERE id = ?', [id]);
      assert.deepEqual(rows(r, `read back ${label}`), [[s.id, ack ?? 'default']], `${label}: own write not visible`);
      assert.ok(r.body.index >= w.index, `${label}: read index ${r.body.index} < write index ${w.index}`);
    }
  }
});

it('concurrent clients interleaving 600 writes through master and both slaves end with equal checksums', async () => {
  const { nodes } = cluster();
  await ddl('CREATE TABLE conc (id INTEGER PRIMARY KEY, client INTEGER NOT NULL, seq INTEGER NOT NULL, r INTEGER, v TEXT, UNIQUE(client, seq))');
  const CLIENTS = 10;
  const PER_CLIENT = 60;
  const indexes: number[] = [];
  let expectedRows = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let seq = 0; seq < PER_CLIENT; seq++) {
        const node = nodes[(client + seq) % nodes.length]!;
        const what = `client ${client} write ${seq} via ${node.label()}`;
        let body;
        if (seq % 10 === 9) {
          body = ok(await exec(node, "UPDATE conc SET v = v || '+', r = random() WHERE client = ? AND seq = ?", [client, seq - 1]), what);
          assert.equal(body.results[0].changes, 1, what);
        } else if (seq % 20 === 14) {
          body = ok(await exec(node, 'DELETE FROM conc WHERE client = :client AND seq = :seq', { client, seq: seq - 1 }), what);
          assert.equal(body.results[0].changes, 1, what);
          expectedRows--;
        } else {
          body = ok(await exec(node, 'INSERT INTO conc(client, seq, r, v) VALUES (?, ?, random(), ?)', [client, seq, `c${client}s${seq}`]), what);
          expectedRows++;
        }
        indexes.push(body.index as number);
      }
    }),
  );
  assert.equal(indexes.length, CLIENTS * PER_CLIENT);
  assert.equal(new Set(indexes).size, indexes.length, 'every write got its own log index');
  await waitForIndex(nodes, Math.max(...indexes));
  const sum = await assertSameChecksums(nodes);
  assert.match(sum.tables.conc, /^[0-9a-f]+$/);
  await assertRowsEverywhere('SELECT count(*) FROM conc', [[expectedRows]]);
  // Same content in the same order, random() included.
  const all = await rowsEverywhere('SELECT id, client, seq, r, v FROM conc ORDER BY id');
  all.forEach((r, i) => assert.deepEqual(r, all[0], `conc differs on ${nodes[i]!.label()}`));
});

it("DEFAULT CURRENT_TIMESTAMP, random(), randomblob(8), datetime('now') are identical on every replica", async () => {
  const { nodes } = cluster();
  await ddl(
    'CREATE TABLE det (id INTEGER PRIMARY KEY, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, r INTEGER, b BLOB, dt TEXT, via INTEGER)',
  );
  let last = 0;
  for (const n of [...nodes, ...nodes]) {
    const w = ok(await exec(n, "INSERT INTO det(r, b, dt, via) VALUES (random(), randomblob(8), datetime('now'), ?)", [n.id]));
    last = w.index;
  }
  const multi = ok(
    await exec(nodes[1]!, "INSERT INTO det(r, b, dt, via) SELECT random(), randomblob(8), datetime('now'), 9 FROM (VALUES (1), (2), (3))"),
  );
  assert.equal(multi.results[0].changes, 3);
  last = Math.max(last, multi.index);
  await waitForIndex(nodes, last);

  const all = await rowsEverywhere('SELECT id, created_at, r, hex(b), dt, via FROM det ORDER BY id');
  all.forEach((r, i) => assert.deepEqual(r, all[0], `det differs on ${nodes[i]!.label()}`));
  const data = all[0]!;
  assert.equal(data.length, nodes.length * 2 + 3);
  const now = Date.now();
  for (const [, createdAt, r, hexb, dt] of data) {
    assert.match(String(createdAt), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$/);
    const t = Date.parse(`${String(createdAt).replace(' ', 'T')}Z`);
    assert.ok(Math.abs(now - t) < 10 * 60_000, `created_at ${String(createdAt)} is not near the current time`);
    assert.equal(dt, createdAt, "datetime('now') and CURRENT_TIMESTAMP of one write should agree");
    assert.equal(typeof r, 'number');
    assert.match(String(hexb), /^[0-9A-F]{16}$/);
  }
  assert.equal(new Set(data.map((row) => row[2])).size, data.length, 'random() repeated a value');
  assert.equal(new Set(data.map((row) => row[3])).size, data.length, 'randomblob(8) repeated a value');
  await assertSameChecksums(nodes);
});

it('a read past --max-rows inside a Hrana write transaction is evaluated in full on the master, as the slaves replay it', async () => {
  const { master, nodes } = cluster();
  await ddl('CREATE TABLE cut (id INTEGER PRIMARY KEY, v)');
  const rowsPast = 'WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<100010)';
  const tx = async (read: string, write: string) => {
    const r = await post(`${master.url}/v2/pipeline`, {
      requests: [
        { type: 'execute', stmt: { sql: 'BEGIN' } },
        { type: 'execute', stmt: { sql: `${rowsPast} ${read}` } },
        { type: 'execute', stmt: { sql: write } },
        { type: 'execute', stmt: { sql: 'COMMIT' } },
        { type: 'close' },
      ],
    });
    assert.equal(r.status, 200, r.text.slice(0, 500));
    return r.body.results as { type: string; response?: { result: { rows: unknown[] } }; error?: { message: string } }[];
  };
  // The random generator advances once per row: the master draws for all 100010 rows, as each slave will.
  const drawn = await tx('SELECT random() FROM c', 'INSERT INTO cut(v) VALUES (random())');
  assert.deepEqual(drawn.map((x) => x.type), ['ok', 'ok', 'ok', 'ok', 'ok']);
  assert.equal(drawn[1]!.response!.result.rows.length, 100_000, 'the client still gets --max-rows rows');
  // An error past the cut fails the statement here too (before, only the slaves met it, and stopped).
  const failing = await tx('SELECT CASE WHEN n > 100005 THEN json(char(123)) ELSE n END FROM c', 'INSERT INTO cut(v) VALUES (1)');
  assert.deepEqual(failing.map((x) => x.type), ['ok', 'error', 'ok', 'ok', 'ok']);
  assert.match(failing[1]!.error!.message, /malformed JSON/);
  const last = ok(await exec(master, "INSERT INTO cut(v) VALUES ('after')"));
  await waitForIndex(nodes, last.index);
  const all = await rowsEverywhere('SELECT id, v FROM cut ORDER BY id');
  all.forEach((r, i) => assert.deepEqual(r, all[0], `cut differs on ${nodes[i]!.label()}`));
  assert.equal(all[0]!.length, 3);
  await assertSameChecksums(nodes);
});

it('last_insert_rowid() and changes() in SQL count from the start of each request: the same on every replica, also after a request that failed on the master', async () => {
  const { master, nodes } = cluster();
  await ddl('CREATE TABLE lr (id INTEGER PRIMARY KEY, v NOT NULL)');
  await ddl('CREATE TABLE lr_child (id INTEGER PRIMARY KEY, parent INTEGER, n INTEGER)');
  // Within one request they follow its statements, as SQLite's do.
  ok(await post(master.url, { command: 'exec', transaction: true, queries: ['INSERT INTO lr(id, v) VALUES (500, 1)', 'INSERT INTO lr_child(parent, n) VALUES (last_insert_rowid(), changes())'] }));
  // A request that fails on the master only: its insert of 777 is rolled back, SQLite's counters are not.
  const failed = await post(master.url, { command: 'exec', transaction: true, queries: ['INSERT INTO lr(id, v) VALUES (777, 1)', 'INSERT INTO lr(v) VALUES (NULL)'] });
  assertError(failed, 409, 'CONSTRAINT');
  ok(await exec(master, 'UPDATE lr SET v = v + 1'));
  // A new request starts at 0, on the master as on the slaves (before: 777 and 1 here, the log's index and 1 there).
  const w = ok(await exec(nodes[1]!, 'INSERT INTO lr_child(parent, n) VALUES (last_insert_rowid(), changes())'));
  await waitForIndex(nodes, w.index);
  await assertRowsEverywhere('SELECT id, parent, n FROM lr_child ORDER BY id', [[1, 500, 1], [2, 0, 0]]);
  // The answer's own fields keep reporting what SQLite gives the client (the last insert).
  assert.equal(w.results[0].last_insert_rowid, 2);
  await assertSameChecksums(nodes);
});

it("'now' given as a blob or with a NUL after it is the entry's time too, not each node's clock", async () => {
  const { nodes } = cluster();
  await ddl('CREATE TABLE det_blob (id INTEGER PRIMARY KEY, a TEXT, b TEXT, c TEXT, d TEXT)');
  const w = ok(
    await exec(nodes[2]!, "INSERT INTO det_blob(a, b, c, d) VALUES (julianday(x'6e6f77'), strftime('%Y-%m-%d %H:%M:%f', CAST('NOW' AS BLOB)), datetime('now' || char(0)), strftime('%Y-%m-%d %H:%M:%f', 'now'))"),
  );
  await waitForIndex(nodes, w.index);
  const all = await rowsEverywhere('SELECT a, b, c, d, julianday(d) FROM det_blob');
  all.forEach((r, i) => assert.deepEqual(r, all[0], `det_blob differs on ${nodes[i]!.label()}`));
  const [a, b, c, d, jd] = all[0]![0]!;
  assert.equal(b, d, 'a blob now is the entry time');
  assert.equal(c, String(d).slice(0, 19));
  assert.equal(Number(a), jd);
});

it('an INSERT that would leave the largest rowid is refused: SQLite would pick later rowids at random on each replica', async () => {
  const { master, nodes } = cluster();
  const MAX = '9223372036854775807';
  await ddl('CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT)');
  await ddl('CREATE TABLE big_k (k TEXT PRIMARY KEY, v TEXT)'); // rowid table, rowid not named
  await ddl('CREATE TABLE big_wr (id INTEGER PRIMARY KEY, v TEXT) WITHOUT ROWID');
  const refused = (reply: Awaited<ReturnType<typeof exec>>, what: string, statement = 0) => {
    assertError(reply, 400, 'SQL_ERROR', what);
    assert.match(reply.body.error.message, /largest rowid/, what);
    assert.equal(reply.body.error.statement, statement, what);
  };
  refused(await exec(master, `INSERT INTO big VALUES (${MAX}, 'max')`), 'the largest rowid, on the master');
  refused(await exec(master, `INSERT INTO 'big' VALUES (${MAX}, 'max')`), "a table named by a string (SQLite's reading, not the parser's)");
  refused(await exec(nodes[1]!, `INSERT INTO main."big" (id, v) VALUES (1, 'a'), (${MAX}, 'b')`), 'two rows, the second the largest, through a slave');
  ok(await exec(master, `INSERT INTO big VALUES (${MAX} - 1, 'almost')`), 'one below it');
  // The next rowid SQLite assigns is the largest: refused before anything picks at random.
  refused(await exec(nodes[2]!, "INSERT INTO big(v) VALUES ('next')"), 'the next automatic rowid');
  refused(
    await post(master.url, { command: 'exec', transaction: true, queries: ["INSERT INTO big_k VALUES ('a', 'x')", `INSERT OR REPLACE INTO big(id, v) VALUES (${MAX}, 'r')`] }),
    'an atomic batch whose second statement leaves it',
    1,
  );
  // A table that came to hold it otherwise (an UPDATE is not refused) takes no INSERT until the row goes.
  ok(await exec(master, `UPDATE big SET id = ${MAX} WHERE v = 'almost'`), 'an UPDATE to the largest rowid');
  refused(await exec(master, "INSERT INTO big(v) VALUES ('random')"), 'an INSERT into a table that holds it');
  ok(await exec(master, `DELETE FROM big WHERE id = ${MAX}`));
  const after = ok(await exec(master, "INSERT INTO big(v) VALUES ('fine')"), 'an INSERT once the row is gone');
  // A WITHOUT ROWID table has no rowid to pick; an implicit-rowid table is checked too.
  ok(await exec(master, `INSERT INTO big_wr VALUES (${MAX}, 'ok')`), 'WITHOUT ROWID');
  ok(await exec(master, "INSERT INTO big_k VALUES ('b', 'y')"), 'implicit rowid');
  // A table a trigger inserts into is checked after every write: an UPDATE that would put the
  // largest rowid there is refused too (the next trigger insert would pick at random).
  await ddl('CREATE TABLE big_src (id INTEGER PRIMARY KEY, v TEXT)');
  await ddl('CREATE TABLE big_audit (id INTEGER PRIMARY KEY, what TEXT)');
  await ddl('CREATE TRIGGER big_src_audit AFTER INSERT ON big_src BEGIN INSERT INTO big_audit(what) VALUES (new.v); END');
  ok(await exec(master, "INSERT INTO big_src(v) VALUES ('s1')"), 'a write whose trigger inserts');
  const byTrigger = await exec(nodes[1]!, `UPDATE big_audit SET id = ${MAX} WHERE id = 1`);
  refused(byTrigger, 'an UPDATE of a table a trigger inserts into');
  assert.match(byTrigger.body.error.message, /table "big_audit", which a trigger inserts into/);
  ok(await exec(master, "INSERT INTO big_src(v) VALUES ('s2')"), 'the trigger table still takes rows');
  // A REPLACE that deletes the row holding it would draw the new rowid at random first: refused before it runs.
  await ddl('CREATE TABLE big_m (id INTEGER PRIMARY KEY, u UNIQUE, v)');
  ok(await exec(master, "INSERT INTO big_m VALUES (1, 'k', 'old')"));
  ok(await exec(master, `UPDATE big_m SET id = ${MAX} WHERE u = 'k'`));
  const replace = await exec(master, "INSERT OR REPLACE INTO big_m(u, v) VALUES ('k', 'new')");
  refused(replace, 'a REPLACE of the row that holds it');
  assert.match(replace.body.error.message, /holds the largest rowid/);
  // Virtual tables draw at random too: FTS5 and R*Tree keep the rowids in shadow tables.
  await ddl('CREATE VIRTUAL TABLE big_fts USING fts5(x)');
  refused(await exec(master, `INSERT INTO big_fts(rowid, x) VALUES (${MAX}, 'hello')`), 'FTS5');
  ok(await exec(master, "INSERT INTO big_fts(x) VALUES ('world')"), 'FTS5, an automatic rowid');
  await ddl('CREATE VIRTUAL TABLE big_rt USING rtree(id, x0, x1)');
  refused(await exec(nodes[2]!, `INSERT INTO big_rt VALUES (${MAX}, 1, 2)`), 'R*Tree');
  // Over Hrana (libSQL): the statement fails and its transaction rolls back.
  const hrana = await post(`${master.url}/v2/pipeline`, {
    requests: [
      { type: 'execute', stmt: { sql: 'BEGIN' } },
      { type: 'execute', stmt: { sql: "INSERT INTO big_k VALUES ('h', 'in tx')" } },
      { type: 'execute', stmt: { sql: `INSERT INTO big VALUES (${MAX}, 'h')` } },
      { type: 'execute', stmt: { sql: 'COMMIT' } },
      { type: 'close' },
    ],
  });
  assert.equal(hrana.status, 200, hrana.text);
  const results = hrana.body.results as { type: string; error?: { message: string } }[];
  assert.deepEqual(results.map((r) => r.type), ['ok', 'ok', 'error', 'error', 'ok'], hrana.text);
  assert.match(results[2]!.error!.message, /largest rowid/);
  await waitForIndex(nodes, after.index);
  await assertRowsEverywhere('SELECT id, v FROM big ORDER BY id', [[1, 'fine']]);
  await assertRowsEverywhere('SELECT k, v FROM big_k ORDER BY k', [['b', 'y']]);
  await assertRowsEverywhere('SELECT id, what FROM big_audit ORDER BY id', [[1, 's1'], [2, 's2']]);
  await assertRowsEverywhere('SELECT rowid, x FROM big_fts', [[1, 'world']]);
  await assertRowsEverywhere('SELECT u, v FROM big_m', [['k', 'old']]);
  await assertSameChecksums(nodes);
});

it("date(), time(), julianday(), strftime(), unixepoch() of 'now' are identical; other dates are SQLite's", async () => {
  const { nodes } = cluster();
  await ddl('CREATE TABLE det2 (id INTEGER PRIMARY KEY, d TEXT, t TEXT, cd TEXT, ct TEXT, jd REAL, s TEXT, ue INTEGER, ue0 INTEGER)');
  // DESIGN §4: the date overrides are deterministic, so expression indexes still work.
  await ddl('CREATE INDEX det2_day ON det2(date(s))');
  let last = 0;
  for (const n of nodes) {
    const w = ok(
      await exec(
        n,
        "INSERT INTO det2(d, t, cd, ct, jd, s, ue, ue0) VALUES (date('now'), time('now'), CURRENT_DATE, CURRENT_TIME, julianday('now'), strftime('%Y-%m-%d %H:%M:%f', 'now'), unixepoch('now'), unixepoch())",
      ),
      `insert via ${n.label()}`,
    );
    last = w.index;
  }
  await waitForIndex(nodes, last);
  const all = await rowsEverywhere('SELECT id, d, t, cd, ct, jd, s, ue, ue0 FROM det2 ORDER BY id');
  all.forEach((r, i) => assert.deepEqual(r, all[0], `det2 differs on ${nodes[i]!.label()}`));
  for (const [, d, t, cd, ct, , s, ue, ue0] of all[0]!) {
    assert.equal(d, cd);
    assert.equal(t, ct);
    assert.equal(String(s).slice(0, 10), d);
    assert.equal(ue, ue0);
    assert.ok(Math.abs(Number(ue) * 1000 - Date.now()) < 10 * 60_000, `unixepoch ${String(ue)} not near now`);
  }
  for (const n of nodes) {
    assert.deepEqual(
      rows(await query(n, "SELECT date('2020-01-02', '+1 day'), datetime(0, 'unixepoch'), strftime('%Y', '1999-05-06')")),
      [['2020-01-03', '1970-01-01 00:00:00', '1999']],
      `fixed dates on ${n.label()}`,
    );
  }
  await assertSameChecksums(nodes);
});

it('params: positional ?, ?NNN and named :name, @name, $name, through master and slaves', async () => {
  const { master, slaves, nodes } = cluster();
  const [s1, s2] = slaves as [TestNode, TestNode];
  await ddl('CREATE TABLE params_t (id INTEGER PRIMARY KEY, a TEXT, b INTEGER, c REAL, n)');
  ok(await exec(master, 'INSERT INTO params_t(a, b) VALUES (?, ?)', ['pos', 1]), '?');
  ok(await exec(s1, 'INSERT INTO params_t(a, b) VALUES (?2, ?1)', [2, 'numbered']), '?NNN');
  ok(await exec(s2, 'INSERT INTO params_t(a, b) VALUES (:a, :b)', { a: 'colon', b: 3 }), ':name');
  ok(await exec(master, 'INSERT INTO params_t(a, b) VALUES (@a, @b)', { a: 'at', b: 4 }), '@name');
  let w = ok(await exec(s1, 'INSERT INTO params_t(a, b) VALUES ($a, $b)', { a: 'dollar', b: 5 }), '$name');
  w = ok(await exec(s2, 'INSERT INTO params_t(a, b, c, n) VALUES (?, ?, ?, ?)', ["it's", 6, 1.5, null]), 'types');
  await waitForIndex(nodes, w.index);
  await assertRowsEverywhere(
    'SELECT a, b, c, n FROM params_t WHERE b >= :min ORDER BY b',
    [
      ['pos', 1, null, null],
      ['numbered', 2, null, null],
      ['colon', 3, null, null],
      ['at', 4, null, null],
      ['dollar', 5, null, null],
      ["it's", 6, 1.5, null],
    ],
    { min: 1 },
  );
  for (const n of nodes) {
    assert.deepEqual(rows(await query(n, 'SELECT b FROM params_t WHERE a = ?', ['dollar'])), [[5]]);
    assert.deepEqual(rows(await query(n, 'SELECT b FROM params_t WHERE a = $a OR a = @b', { a: 'at', b: 'pos' })).length, 2);
  }
});

it('multi-statement text runs in order as one write, and atomically', async () => {
  const { master, slaves, nodes } = cluster();
  const [s1] = slaves as [TestNode, TestNode];
  await ddl('CREATE TABLE ms (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  const w = ok(
    await exec(s1, "INSERT INTO ms(v) VALUES ('a'); INSERT INTO ms(v) VALUES ('b'); UPDATE ms SET v = v || '!' WHERE v = 'a'"),
    'three statements via slave',
  );
  assert.equal(w.results.length, 3);
  assert.equal(w.results[2].changes, 1);
  await assertRowsEverywhere('SELECT id, v FROM ms ORDER BY id', [
    [1, 'a!'],
    [2, 'b'],
  ]);

  // Schema and data together on the master; the same text on a slave is schema, so refused.
  const w2 = ok(await exec(master, 'CREATE TABLE ms2 (x); INSERT INTO ms2 VALUES (1); INSERT INTO ms2 VALUES (2)'), 'DDL+DML');
  await waitForIndex(nodes, w2.index);
  await assertRowsEverywhere('SELECT x FROM ms2 ORDER BY x', [[1], [2]]);
  assertError(await exec(s1, 'INSERT INTO ms2 VALUES (3); CREATE TABLE ms3 (x)'), 403, 'SCHEMA_ON_SLAVE', 'DML+DDL on slave');

  // A failure in the second statement leaves the first unapplied, everywhere.
  const before = await checksums(nodes);
  for (const n of nodes) {
    const r = await exec(n, "INSERT INTO ms(v) VALUES ('c'); INSERT INTO ms(v) VALUES (NULL)");
    assertError(r, 409, 'CONSTRAINT', `failing multi-statement via ${n.label()}`);
  }
  assert.deepEqual(await checksums(nodes), before);
  await assertRowsEverywhere("SELECT count(*) FROM ms WHERE v = 'c'", [[0]]);

  // Several reads in one text.
  for (const n of nodes) {
    const body = ok(await query(n, 'SELECT 1 AS one; SELECT v FROM ms ORDER BY id'));
    assert.equal(body.results.length, 2);
    assert.deepEqual(body.results[0], { columns: ['one'], rows: [[1]] });
    assert.deepEqual(body.results[1].rows, [['a!'], ['b']]);
  }
});

/** Writes and commits the master counted in sqlfleet_commit_group_writes (its /metrics). */
async function commitGroups(node: TestNode): Promise<{ writes: number; commits: number }> {
  const text = (await get(`${node.url}/metrics`)).text;
  const num = (name: string) => Number(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { writes: num('sqlfleet_commit_group_writes_sum'), commits: num('sqlfleet_commit_group_writes_count') };
}

it('group commit: concurrent writes share commits, yet each is its own entry and a failing one rolls back alone', async () => {
  const { master, nodes } = cluster();
  await ddl('CREATE TABLE grp (id INTEGER PRIMARY KEY, k TEXT UNIQUE, n INTEGER)');
  ok(await exec(master, "INSERT INTO grp(k, n) VALUES ('taken', 0)"));
  const before = await commitGroups(master);
  let expected = 1;
  // Every third write breaks UNIQUE, half of those in a second statement after one that worked.
  const body = (round: number, i: number) =>
    i % 3 !== 2
      ? { query: 'INSERT INTO grp(k, n) VALUES (?, ?)', params: [`r${round}w${i}`, i] }
      : i % 2 === 0
        ? { query: "INSERT INTO grp(k, n) VALUES ('taken', ?)", params: [i] }
        : { queries: [{ query: 'INSERT INTO grp(k, n) VALUES (?, ?)', params: [`r${round}half${i}`, i] }, "INSERT INTO grp(k, n) VALUES ('taken', 1)"], transaction: true };
  for (let round = 0; round < 5; round++) {
    const from = (await status(master)).applied_index as number;
    const replies = await Promise.all(Array.from({ length: 48 }, (_, i) => post(master.url, body(round, i))));
    const indexes: number[] = [];
    replies.forEach((r, i) => {
      if (i % 3 === 2) assertError(r, 409, 'CONSTRAINT', `round ${round} write ${i}`);
      else indexes.push(ok(r, `round ${round} write ${i}`).index as number);
    });
    expected += indexes.length;
    // Failed writes took no index: the good ones hold exactly the next indexes.
    assert.deepEqual([...indexes].sort((a, b) => a - b), Array.from({ length: indexes.length }, (_, k) => from + 1 + k), `round ${round}: indexes`);
    const g = await commitGroups(master);
    if (g.commits - before.commits < g.writes - before.writes) break; // some commit carried several writes
  }
  const after = await commitGroups(master);
  assert.ok(after.commits - before.commits < after.writes - before.writes, `no commit carried two writes: ${JSON.stringify({ before, after })}`);
  await waitForIndex(nodes, (await status(master)).applied_index);
  await assertRowsEverywhere('SELECT count(*) FROM grp', [[expected]]);
  await assertRowsEverywhere("SELECT count(*) FROM grp WHERE k LIKE '%half%'", [[0]]);
  await assertSameChecksums(nodes);
});

it('WAL checkpoints run off the commit path: written pages reach every database file with no further write', async () => {
  const { master, nodes } = cluster();
  await ddl('CREATE TABLE ckpt (id INTEGER PRIMARY KEY, b BLOB)');
  const files = nodes.map((n) => join(n.spec.dataDir, `node-${n.id}.db`));
  const before = files.map((f) => statSync(f).size);
  // 40 writes of 64 KiB: ~650 pages, fewer than the 1000 at which SQLite's own checkpoint
  // (inside a commit) would copy them; only a checkpoint between commits can.
  let index = 0;
  for (let i = 0; i < 40; i++) index = ok(await exec(master, 'INSERT INTO ckpt(b) VALUES (zeroblob(65536))'), `write ${i}`).index;
  await waitForIndex(nodes, index);
  const grown = (await waitFor(
    () => {
      const sizes = files.map((f) => statSync(f).size);
      return sizes.every((s, i) => s - before[i]! >= 40 * 65536) && sizes;
    },
    { timeoutMs: 5000, message: 'database files holding the 40 blobs' },
  ).catch(() => files.map((f) => statSync(f).size))) as number[];
  grown.forEach((s, i) => assert.ok(s - before[i]! >= 40 * 65536, `${nodes[i]!.label()}: file grew ${s - before[i]!} bytes, WAL ${statSync(`${files[i]}-wal`).size}`));
  await assertRowsEverywhere('SELECT count(*), sum(length(b)) FROM ckpt', [[40, 40 * 65536]]);
});

it('a transaction batch that fails half-way leaves every node unchanged and answers 409 CONSTRAINT', async () => {
  const { master, slaves, nodes } = cluster();
  await ddl('CREATE TABLE uniq (id INTEGER PRIMARY KEY, k TEXT UNIQUE)');
  ok(await exec(master, "INSERT INTO uniq(k) VALUES ('k1')"));

  const good = ok(
    await post(slaves[0]!.url, {
      queries: ["INSERT INTO uniq(k) VALUES ('b1')", { query: 'INSERT INTO uniq(k) VALUES (?)', params: ['b2'] }, { query: 'SELECT count(*) FROM uniq' }],
      transaction: true,
    }),
    'good batch',
  );
  assert.equal(good.results.length, 3);
  assert.deepEqual(good.results[2].rows, [[3]], 'a read inside the batch sees the batch writes');
  await waitForIndex(nodes, good.index);
  await assertRowsEverywhere('SELECT k FROM uniq ORDER BY id', [['k1'], ['b1'], ['b2']]);

  const before = await checksums(nodes);
  const indexBefore = await Promise.all(nodes.map(async (n) => (await status(n)).applied_index));
  for (const n of nodes) {
    const r = await post(n.url, {
      command: 'exec',
      queries: [
        "INSERT INTO uniq(k) VALUES ('n1')",
        { query: 'INSERT INTO uniq(k) VALUES (?)', params: ['n2'] },
        { query: 'INSERT INTO uniq(k) VALUES (:k)', params: { k: 'k1' } },
        "INSERT INTO uniq(k) VALUES ('n3')",
      ],
      transaction: true,
    });
    assertError(r, 409, 'CONSTRAINT', `failing batch via ${n.label()}`);
  }
  assert.deepEqual(await checksums(nodes), before, 'a failed batch changed a node');
  const indexAfter = await Promise.all(nodes.map(async (n) => (await status(n)).applied_index));
  assert.deepEqual(indexAfter, indexBefore, 'a failed batch moved the log index');
  await assertRowsEverywhere("SELECT count(*) FROM uniq WHERE k LIKE 'n%'", [[0]]);
});

it('reads with "command":"query" are answered by the node that gets them', async () => {
  const { nodes } = cluster();
  for (const n of nodes) {
    const body = ok(await query(n, 'SELECT count(*) AS c FROM users'), `read on ${n.label()}`);
    assert.equal(body.node, n.id);
    assert.equal(body.role, n.role);
    assert.equal(typeof body.index, 'number');
    assert.deepEqual(body.results[0].columns, ['c']);
    for (const sql of [
      'WITH x AS (SELECT 1 AS v) SELECT v FROM x',
      'EXPLAIN QUERY PLAN SELECT * FROM users',
      'PRAGMA table_info(users)',
      // Parser gaps (DESIGN §3): valid SQLite that sql-parser-cst does not parse.
      'SELECT AVG(ALL id) FROM users',
      'SELECT 1 WHERE 1 IN ()',
    ]) {
      ok(await query(n, sql), `${sql} on ${n.label()}`);
    }
  }
});

it('a write whose text the parser cannot parse is still classified by SQLite and replicated', async () => {
  const { slaves, nodes } = cluster();
  await ddl('CREATE TABLE gap (x)');
  const w = ok(await exec(slaves[1]!, 'INSERT INTO gap(x) SELECT 1 WHERE 1 NOT IN ()'), 'parser-gap write via slave');
  assert.equal(w.results[0].changes, 1);
  await waitForIndex(nodes, w.index);
  await assertRowsEverywhere('SELECT x FROM gap', [[1]]);
  assertError(await query(slaves[0]!, 'INSERT INTO gap(x) SELECT 2 WHERE 1 NOT IN ()'), 400, 'READ_ONLY_COMMAND');
});

it('a write sent as "command":"query" is refused 400 READ_ONLY_COMMAND on every node', async () => {
  const { nodes } = cluster();
  const before = await checksums(nodes);
  for (const n of nodes) {
    for (const sql of [
      "INSERT INTO users(username) VALUES ('ro')",
      "UPDATE users SET email = 'x'",
      'DELETE FROM users',
      "REPLACE INTO users(id, username) VALUES (1, 'ro')",
      "WITH v AS (SELECT 'ro2' AS u) INSERT INTO users(username) SELECT u FROM v",
    ]) {
      assertError(await query(n, sql), 400, 'READ_ONLY_COMMAND', `${sql} as query on ${n.label()}`);
    }
  }
  assert.deepEqual(await checksums(nodes), before);
});

it('the command is inferred when omitted', async () => {
  const { slaves, nodes } = cluster();
  await ddl('CREATE TABLE inferred (v TEXT)');
  const w = ok(await post(slaves[0]!.url, { query: "INSERT INTO inferred VALUES ('x')" }), 'write without command');
  await waitForIndex(nodes, w.index);
  for (const n of nodes) {
    assert.deepEqual(rows(await post(n.url, { query: 'SELECT v FROM inferred' })), [['x']]);
  }
});

it('GET /health, /status and /checksum have the documented shapes', async () => {
  const { master, slaves, nodes } = cluster();
  for (const n of nodes) {
    const h = await get(`${n.url}/health`);
    assert.equal(h.status, 200);
    assert.equal(h.body?.ok, true);
  }

  const ms = await status(master);
  assert.equal(ms.node, 0);
  assert.equal(ms.role, 'master');
  assert.equal(ms.url, master.url);
  assert.equal(typeof ms.applied_index, 'number');
  assert.ok(Array.isArray(ms.nodes));
  assert.deepEqual(
    ms.nodes.map((x: { id: number }) => x.id).sort(),
    nodes.map((n) => n.id),
  );
  for (const entry of ms.nodes) {
    const n = nodes.find((x) => x.id === entry.id)!;
    assert.equal(entry.url, n.url, `url of node ${entry.id}`);
    assert.equal(entry.role, n.role, `role of node ${entry.id}`);
    assert.equal(entry.state, 'up', `state of node ${entry.id}`);
    assert.equal(typeof entry.applied_index, 'number');
    assert.equal(typeof entry.lag, 'number');
    assert.equal(typeof entry.last_seen_ms, 'number');
    assert.ok(entry.lag >= 0);
  }

  for (const s of slaves) {
    const ss = await status(s);
    assert.equal(ss.node, s.id);
    assert.equal(ss.role, 'slave');
    assert.equal(ss.url, s.url);
    assert.equal(ss.master, master.url);
    assert.equal(typeof ss.applied_index, 'number');
    assert.ok(Array.isArray(ss.nodes));
  }

  const idx = (await status(master)).applied_index;
  await waitForIndex(nodes, idx);
  const sum = await assertSameChecksums(nodes);
  assert.equal(typeof sum.index, 'number');
  assert.ok(sum.index >= idx);
  assert.match(sum.db, /^[0-9a-f]+$/);
  assert.equal(typeof sum.tables, 'object');
  for (const t of ['users', 'crud', 'conc', 'det', 'uniq']) assert.match(sum.tables[t], /^[0-9a-f]+$/, `digest of ${t}`);
  for (const t of Object.keys(sum.tables)) {
    assert.ok(!t.startsWith('_sqlfleet_') && !t.startsWith('sqlite_'), `internal table ${t} in /checksum`);
  }
  // Different tables give different digests.
  assert.notEqual(sum.tables.crud, sum.tables.conc);
});
