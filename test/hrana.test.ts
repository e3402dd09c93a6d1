// libSQL's protocol (Hrana, DESIGN §8) with the real @libsql/client over http:// and ws://,
// via the master and via a slave: execute, batch, value types, errors, interactive
// transactions (commit, rollback, savepoints, concurrent read-modify-write), determinism of
// random() inside a transaction, and --tx-timeout freeing the writer.
import assert from 'node:assert/strict';
import { createClient, type Client } from '@libsql/client';
import { after } from 'node:test';
import { assertSameChecksums, exec, metricSum, rows, query, useCluster, waitFor, waitForIndex } from './helpers/cluster.js';

const { cluster, it } = useCluster({ slaves: 1, extraArgs: ['--tx-timeout', '1500', '--stream-idle', '3000'] });
const clients: Client[] = [];
after(() => clients.forEach((c) => c.close()));

function client(url: string, scheme: 'http' | 'ws'): Client {
  const c = createClient({ url: scheme === 'ws' ? url.replace(/^http/, 'ws') : url });
  clients.push(c);
  return c;
}

async function all<T>(fn: (c: Client, where: string) => Promise<T>): Promise<void> {
  const { master, slaves } = cluster();
  for (const [node, name] of [[master, 'master'], [slaves[0]!, 'slave']] as const) {
    for (const scheme of ['http', 'ws'] as const) await fn(client(node.url, scheme), `${name} over ${scheme}`);
  }
}

it('execute and batch with every value type, via master and slave, over http and ws', async () => {
  const { master } = cluster();
  await exec(master, 'CREATE TABLE vals(id INTEGER PRIMARY KEY, i INTEGER, f REAL, t TEXT, b BLOB, n)');
  let k = 0;
  await all(async (c, where) => {
    k++;
    const big = 9007199254740993n;
    const ins = await c.execute({ sql: 'INSERT INTO vals(id, i, f, t, b, n) VALUES (?, ?, ?, ?, ?, ?)', args: [k, big, 1.5, `héllo ${where}`, new Uint8Array([0, 1, 255]), null] });
    assert.equal(ins.rowsAffected, 1, where);
    assert.equal(ins.lastInsertRowid, BigInt(k), where);
    const c2 = createClient({ url: cluster().master.url, intMode: 'bigint' });
    clients.push(c2);
    const r = await c2.execute({ sql: 'SELECT i, f, t, b, n, typeof(i) AS ti, typeof(f) AS tf FROM vals WHERE id = :id', args: { id: k } });
    assert.deepEqual(r.columns, ['i', 'f', 't', 'b', 'n', 'ti', 'tf']);
    const row = r.rows[0]!;
    assert.equal(row.i, big, where);
    assert.equal(row.f, 1.5);
    assert.equal(row.t, `héllo ${where}`);
    assert.deepEqual(new Uint8Array(row.b as ArrayBuffer), new Uint8Array([0, 1, 255]));
    assert.equal(row.n, null);
    assert.equal(row.ti, 'integer');
    assert.equal(row.tf, 'real');
    // The slave reads its own replica: the write is there when the answer came.
    const local = await c.execute({ sql: 'SELECT t FROM vals WHERE id = ?', args: [k] });
    assert.equal(local.rows[0]?.t, `héllo ${where}`, where);
    const b = await c.batch(
      [
        { sql: 'INSERT INTO vals(id, i) VALUES (?, ?)', args: [100 + k, 1] },
        { sql: 'UPDATE vals SET i = i + 1 WHERE id = ?', args: [100 + k] },
        { sql: 'SELECT i FROM vals WHERE id = ?', args: [100 + k] },
      ],
      'write',
    );
    assert.equal(b.length, 3);
    assert.equal(b[2]!.rows[0]!.i, 2, where);
    const reads = await c.batch(['SELECT count(*) AS n FROM vals', 'SELECT 1 AS one'], 'read');
    assert.ok(Number(reads[0]!.rows[0]!.n) >= 2 * k, where);
  });
  await waitForIndex(cluster().nodes, Number((await query(master, 'SELECT 1')).body.index));
  await assertSameChecksums(cluster().nodes);
});

it('errors carry SQLite codes; a failing batch changes nothing', async () => {
  const { master } = cluster();
  await exec(master, 'CREATE TABLE u(name TEXT UNIQUE)');
  await all(async (c, where) => {
    await c.execute({ sql: 'INSERT OR IGNORE INTO u VALUES (?)', args: ['dup'] });
    await assert.rejects(c.execute({ sql: 'INSERT INTO u VALUES (?)', args: ['dup'] }), (e: { code?: string }) => {
      assert.match(String(e.code), /^SQLITE_CONSTRAINT/, where);
      return true;
    });
    await assert.rejects(c.execute('SELECT * FROM nope'), /no such table/, where);
    await assert.rejects(c.batch([{ sql: 'INSERT INTO u VALUES (?)', args: [`b-${where}`] }, { sql: 'INSERT INTO u VALUES (?)', args: ['dup'] }], 'write'), /UNIQUE/, where);
    const r = await c.execute({ sql: 'SELECT count(*) AS n FROM u WHERE name = ?', args: [`b-${where}`] });
    assert.equal(r.rows[0]!.n, 0, where);
  });
});

it('interactive transactions: commit, rollback, savepoints', async () => {
  const { master } = cluster();
  await exec(master, 'CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INTEGER)');
  let k = 0;
  await all(async (c, where) => {
    k++;
    const tx = await c.transaction('write');
    await tx.execute({ sql: 'INSERT INTO acct VALUES (?, 10)', args: [k] });
    const r = await tx.execute({ sql: 'SELECT bal FROM acct WHERE id = ?', args: [k] });
    assert.equal(r.rows[0]!.bal, 10, where);
    await tx.execute('SAVEPOINT sp');
    await tx.execute({ sql: 'UPDATE acct SET bal = 99 WHERE id = ?', args: [k] });
    await tx.execute('ROLLBACK TO sp');
    await tx.execute({ sql: 'UPDATE acct SET bal = bal + 5 WHERE id = ?', args: [k] });
    await tx.commit();
    const after = await c.execute({ sql: 'SELECT bal FROM acct WHERE id = ?', args: [k] });
    assert.equal(after.rows[0]!.bal, 15, where);

    const tx2 = await c.transaction('write');
    await tx2.execute({ sql: 'UPDATE acct SET bal = 0 WHERE id = ?', args: [k] });
    await tx2.rollback();
    const kept = await c.execute({ sql: 'SELECT bal FROM acct WHERE id = ?', args: [k] });
    assert.equal(kept.rows[0]!.bal, 15, where);
  });
  await waitForIndex(cluster().nodes, Number((await query(master, 'SELECT 1')).body.index));
  await assertSameChecksums(cluster().nodes);
});

it('concurrent read-modify-write transactions from several clients lose no update', async () => {
  const { master, slaves } = cluster();
  await exec(master, 'CREATE TABLE counter(id INTEGER PRIMARY KEY, n INTEGER)');
  await exec(master, 'INSERT INTO counter VALUES (1, 0)');
  const cs = [master, slaves[0]!].flatMap((n) => [client(n.url, 'http'), client(n.url, 'ws')]);
  const per = 10;
  await Promise.all(
    cs.map(async (c) => {
      for (let i = 0; i < per; i++) {
        const tx = await c.transaction('write');
        const r = await tx.execute('SELECT n FROM counter WHERE id = 1');
        await tx.execute({ sql: 'UPDATE counter SET n = ? WHERE id = 1', args: [Number(r.rows[0]!.n) + 1] });
        await tx.commit();
      }
    }),
  );
  assert.deepEqual(rows(await query(master, 'SELECT n FROM counter')), [[cs.length * per]]);
  await waitForIndex(cluster().nodes, Number((await query(master, 'SELECT 1')).body.index));
  await assertSameChecksums(cluster().nodes);
});

it('random() and the clock inside a transaction (reads included) replay identically on the replicas', async () => {
  const { master } = cluster();
  await exec(master, 'CREATE TABLE rnd(id INTEGER PRIMARY KEY, r INTEGER, b BLOB, at TEXT)');
  const c = createClient({ url: master.url, intMode: 'bigint' });
  clients.push(c);
  const tx = await c.transaction('write');
  await tx.execute('SELECT random(), randomblob(16)'); // a read that draws: replicas must draw it too
  await assert.rejects(tx.execute('INSERT INTO rnd(id, r) VALUES (1, random()), (1, random())')); // fails, after drawing
  await tx.execute("INSERT INTO rnd(r, b, at) VALUES (random(), randomblob(8), datetime('now'))");
  await tx.execute("INSERT INTO rnd(r, b, at) SELECT random(), randomblob(8), CURRENT_TIMESTAMP FROM rnd");
  await tx.commit();
  await waitForIndex(cluster().nodes, Number((await query(master, 'SELECT 1')).body.index));
  const sums = await assertSameChecksums(cluster().nodes);
  assert.ok(sums);
});

it('an abandoned transaction is rolled back after --tx-timeout and the writer is free again', async () => {
  const { master, slaves } = cluster();
  await exec(master, 'CREATE TABLE ab(x)');
  for (const node of [master, slaves[0]!]) {
    const c = client(node.url, 'http');
    const tx = await c.transaction('write');
    await tx.execute("INSERT INTO ab VALUES ('never')");
    // The client vanishes: nothing more on this stream. Writes from others wait, then go through.
    const started = Date.now();
    const w = await exec(master, "INSERT INTO ab VALUES ('other')");
    assert.equal(w.status, 200);
    assert.ok(Date.now() - started < 5000, 'the writer was freed by --tx-timeout');
    await assert.rejects(tx.commit(), /TRANSACTION_TIMEOUT|timed? ?out|expired|--tx-timeout/i);
    tx.close();
  }
  assert.deepEqual(rows(await query(master, "SELECT count(*) FROM ab WHERE x = 'never'")), [[0]]);
  const text = await (await fetch(`${master.url}/metrics`)).text();
  assert.ok(metricSum(text, 'sqlfleet_transactions_total', { outcome: 'timeout' }) >= 2, 'timeouts are counted');
  assert.ok(metricSum(text, 'sqlfleet_transactions_total', { outcome: 'commit' }) >= 1, 'commits are counted');
  assert.ok(text.includes('sqlfleet_hrana_streams'), 'open streams are a gauge');
  await waitFor(async () => (await query(slaves[0]!, 'SELECT count(*) FROM ab')).body.results?.[0]?.rows?.[0]?.[0] === 2);
});

it('the wire protocol: v2/v3 pipeline, batons, cursor, describe, sequence, stored SQL, autocommit, value encoding', async () => {
  const { master, slaves } = cluster();
  for (const node of [master, slaves[0]!]) {
    assert.equal((await fetch(`${node.url}/v3`)).status, 200);
    assert.equal((await fetch(`${node.url}/v2`)).status, 200);
    const pipe = async (path: string, body: unknown) => {
      const res = await fetch(`${node.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
      return { status: res.status, body: (await res.json()) as any };
    };
    const a = await pipe('/v3/pipeline', {
      baton: null,
      requests: [
        { type: 'store_sql', sql_id: 1, sql: 'SELECT ? AS i, ? AS f, ? AS t, ? AS b, ? AS n' },
        { type: 'execute', stmt: { sql_id: 1, args: [{ type: 'integer', value: '-9223372036854775808' }, { type: 'float', value: 2.5 }, { type: 'text', value: 'é' }, { type: 'blob', base64: 'AAH/' }, { type: 'null' }], named_args: [] } },
        { type: 'execute', stmt: { sql: 'SELECT :x AS x, 1.0 AS one', named_args: [{ name: ':x', value: { type: 'integer', value: '7' } }] } },
        { type: 'describe', sql: 'SELECT name FROM sqlite_schema WHERE type = ? AND name = :n' },
        { type: 'sequence', sql: 'SELECT 1; SELECT 2' },
        { type: 'get_autocommit' },
        { type: 'close_sql', sql_id: 1 },
        { type: 'execute', stmt: { sql_id: 1 } },
        { type: 'execute', stmt: { sql: 'SELEC nonsense' } },
      ],
    });
    assert.equal(a.status, 200);
    const r = a.body.results;
    assert.equal(r[0].type, 'ok');
    assert.deepEqual(r[1].response.result.rows[0], [
      { type: 'integer', value: '-9223372036854775808' },
      { type: 'float', value: 2.5 },
      { type: 'text', value: 'é' },
      { type: 'blob', base64: 'AAH/' },
      { type: 'null' },
    ]);
    assert.deepEqual(r[2].response.result.rows[0], [{ type: 'integer', value: '7' }, { type: 'float', value: 1 }]);
    assert.deepEqual(r[3].response.result.params, [{ name: null }, { name: ':n' }]);
    assert.equal(r[3].response.result.is_readonly, true);
    assert.deepEqual(r[4].response, { type: 'sequence' });
    assert.deepEqual(r[5].response, { type: 'get_autocommit', is_autocommit: true });
    assert.equal(r[7].type, 'error');
    assert.equal(r[8].type, 'error');
    assert.equal(r[8].error.code, 'SQL_PARSE_ERROR');
    assert.equal(typeof a.body.baton, 'string');

    // The baton carries the stream (and its transaction) to the next request; a used baton is refused.
    const b = await pipe('/v2/pipeline', { baton: a.body.baton, requests: [{ type: 'execute', stmt: { sql: 'BEGIN' } }, { type: 'get_autocommit' }] });
    assert.equal(b.body.results[1].response.is_autocommit, false);
    assert.equal((await pipe('/v2/pipeline', { baton: a.body.baton, requests: [] })).status, 400);
    const cur = await fetch(`${node.url}/v3/cursor`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ baton: b.body.baton, batch: { steps: [{ stmt: { sql: 'SELECT 1 AS a UNION ALL SELECT 2' } }, { stmt: { sql: 'SELECT * FROM nope' } }, { condition: { type: 'error', step: 1 }, stmt: { sql: 'ROLLBACK' } }, { condition: { type: 'is_autocommit' }, stmt: { sql: 'SELECT 3' } }] } }),
    });
    const lines = (await cur.text()).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(typeof lines[0].baton, 'string');
    assert.deepEqual(lines.slice(1).map((l) => l.type), ['step_begin', 'row', 'row', 'step_end', 'step_error', 'step_begin', 'step_end', 'step_begin', 'row', 'step_end']);
    const closed = await pipe('/v2/pipeline', { baton: lines[0].baton, requests: [{ type: 'close' }] });
    assert.equal(closed.body.baton, null);
  }
});

it('an idle stream expires after --stream-idle: its baton is refused and its read snapshot is gone', async () => {
  const { slaves } = cluster();
  const url = `${slaves[0]!.url}/v2/pipeline`;
  const post = async (body: unknown) => {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, body: (await res.json()) as any };
  };
  const a = await post({ baton: null, requests: [{ type: 'execute', stmt: { sql: 'BEGIN TRANSACTION READONLY' } }, { type: 'execute', stmt: { sql: 'SELECT 1' } }] });
  assert.equal(a.body.results[1].type, 'ok');
  const before = await (await fetch(`${slaves[0]!.url}/metrics`)).text();
  assert.ok(metricSum(before, 'sqlfleet_hrana_streams') >= 1);
  await new Promise((r) => setTimeout(r, 4500)); // --stream-idle 3000 (and --tx-timeout 1500 ends the snapshot first)
  const b = await post({ baton: a.body.baton, requests: [{ type: 'execute', stmt: { sql: 'SELECT 1' } }] });
  assert.equal(b.status, 400);
  assert.equal(b.body.code, 'STREAM_EXPIRED');
});
