// Issue 30: what rqlite-js's own integration suite expects of a load and of DDL, the same
// through a slave; queued writes (/db/execute?queue, &wait) under load and across a
// SIGKILL of the master; Idempotency-Key on /db/* writes.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe } from 'node:test';
import { exec, post, query, request, rows, useCluster, waitFor, type TestNode } from './helpers/cluster.js';
import { hardKill, relaunch } from './helpers/load.js';

const rqlite = createRequire(import.meta.url)('rqlite-js') as {
  DataApiClient: new (hosts: string) => { execute(sql: unknown, options?: Record<string, unknown>): Promise<any>; query(sql: unknown, options?: Record<string, unknown>): Promise<any> };
  BackupApiClient: new (hosts: string) => { load(data: Buffer | string, fmt?: string): Promise<NodeJS.ReadableStream> };
};

async function streamText(s: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

const rq = (n: TestNode, path: string, body: unknown, headers: Record<string, string> = {}) =>
  request(`${n.url}${path}`, { method: 'POST', body: JSON.stringify(body), headers });

describe('rqlite fidelity', () => {
  const { cluster, it } = useCluster({ slaves: 1 });

  for (const via of ['master', 'slave'] as const) {
    it(`a SQL-text load with double-quoted strings answers its statements' results (via the ${via})`, async () => {
      const node = via === 'master' ? cluster().master : cluster().slaves[0]!;
      const backup = new rqlite.BackupApiClient(node.url);
      const table = `fooRestore_${via}`;
      const sql = [`CREATE TABLE ${table} (id integer not null primary key, name text)`, `INSERT INTO ${table}(name) VALUES("fiona")`, `INSERT INTO ${table}(name) VALUES("justin")`].join(';');
      const text = await streamText(await backup.load(Buffer.from(sql)));
      const body = JSON.parse(text);
      assert.equal(body.results?.length, 3, text);
      assert.equal(body.results[0].error, undefined, text);
      assert.equal(body.results[1].rows_affected, 1, text);
      assert.equal(body.results[2].last_insert_id, 2, text);
      const data = new rqlite.DataApiClient(node.url);
      const r = await data.query(`SELECT id, name FROM ${table} WHERE name="fiona"`, { level: 'strong' });
      assert.equal(r.getFirstError(), undefined);
      assert.equal(r.get(0).get('id'), 1);
      assert.equal(r.get(0).get('name'), 'fiona');
    });

    it(`DROP TABLE answers rows_affected as sqlite3_changes() would: the last INSERT/UPDATE/DELETE's count (via the ${via})`, async () => {
      const node = via === 'master' ? cluster().master : cluster().slaves[0]!;
      const data = new rqlite.DataApiClient(node.url);
      const t = `foo_${via}`;
      assert.equal((await data.execute(`CREATE TABLE ${t} (id integer not null primary key, name text)`)).getFirstError(), undefined);
      const ins = await data.execute([`INSERT INTO ${t}(name) VALUES("fiona")`, `INSERT INTO ${t}(name) VALUES("justin")`], { transaction: true });
      assert.equal(ins.get(0).getRowsAffected(), 1);
      const del = await data.execute(`DELETE FROM ${t} WHERE name = "justin"`);
      assert.equal(del.get(0).getRowsAffected(), 1);
      const drop = await data.execute(`DROP TABLE ${t}`);
      assert.equal(drop.getFirstError(), undefined);
      assert.equal(drop.get(0).getRowsAffected(), 1, 'DDL leaves sqlite3_changes() at the last DML count');
    });
  }

  it('queued writes: answered at once with increasing sequence numbers, applied in the background; &wait returns once applied', async () => {
    const { master, slaves } = cluster();
    const slave = slaves[0]!;
    assert.equal((await exec(master, 'CREATE TABLE q (id INTEGER PRIMARY KEY, who TEXT)')).status, 200);
    const seqs: number[] = [];
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 300; i++) {
      const node = i % 2 ? slave : master;
      sends.push(
        rq(node, '/db/execute?queue', [['INSERT INTO q(who) VALUES(?)', `n${node.id}-${i}`]]).then((r) => {
          assert.equal(r.status, 200, r.text);
          assert.deepEqual(r.body.results, []);
          assert.equal(typeof r.body.sequence_number, 'number', r.text);
          if (node === master) seqs.push(r.body.sequence_number);
        }),
      );
    }
    await Promise.all(sends);
    const sorted = [...seqs].sort((a, b) => a - b);
    assert.equal(new Set(seqs).size, seqs.length, 'sequence numbers are unique');
    // A wait on each node: every request queued there before it is applied when it returns.
    for (const node of [master, slave]) {
      const w = await rq(node, '/db/execute?queue&wait', [['INSERT INTO q(who) VALUES(?)', `wait-${node.id}`]]);
      assert.equal(w.status, 200, w.text);
      assert.equal(w.body.results?.[0]?.rows_affected, 1, w.text);
      assert.ok(w.body.sequence_number > (node === master ? sorted[sorted.length - 1]! : 0), w.text);
    }
    assert.deepEqual(rows(await query(master, 'SELECT count(*) FROM q')), [[302]]);
    // One entry per flush, not one per request: the log grew by far less than 302.
    const idx = (await (await fetch(`${master.url}/status`)).json()) as { applied_index: number };
    assert.ok(idx.applied_index < 150, `302 queued inserts took ${idx.applied_index} log entries`);
  });

  it('a failing queued request does not take the others of its flush with it; &wait reports its error', async () => {
    const { master } = cluster();
    const good = rq(master, '/db/execute?queue', [['INSERT INTO q(who) VALUES(?)', 'good-1']]);
    const badWait = rq(master, '/db/execute?queue&wait', [['INSERT INTO q(id, who) VALUES(1, ?)', 'duplicate id']]);
    const good2 = rq(master, '/db/execute?queue&wait', [['INSERT INTO q(who) VALUES(?)', 'good-2']]);
    assert.equal((await good).status, 200);
    const bad = await badWait;
    assert.equal(bad.status, 200, bad.text);
    assert.match(String(bad.body.results?.[0]?.error), /UNIQUE constraint failed/, bad.text);
    assert.equal((await good2).status, 200);
    assert.deepEqual(rows(await query(master, "SELECT count(*) FROM q WHERE who IN ('good-1', 'good-2')")), [[2]]);
  });

  it('integer parameters beyond 2^53 stay exact through /db/execute, via the master and a slave', async () => {
    const { master, slaves } = cluster();
    assert.equal((await exec(master, 'CREATE TABLE big (id INTEGER PRIMARY KEY, n INTEGER)')).status, 200);
    for (const [i, node] of [master, slaves[0]!].entries()) {
      const v = 9007199254740993n + BigInt(i * 2);
      const r = await request(`${node.url}/db/execute`, { method: 'POST', body: `[["INSERT INTO big(id, n) VALUES(?, ?)", ${i + 1}, ${v}]]` });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.results?.[0]?.error, undefined, r.text);
      assert.deepEqual(rows(await query(master, 'SELECT CAST(n AS TEXT) FROM big WHERE id = ?', [i + 1])), [[String(v)]]);
    }
  });

  it('Idempotency-Key on /db/execute: a retry is not applied twice', async () => {
    const { master, slaves } = cluster();
    for (const node of [master, slaves[0]!]) {
      const key = `rq-key-${node.id}-${Date.now()}`;
      const first = await rq(node, '/db/execute', [['INSERT INTO q(who) VALUES(?)', key]], { 'idempotency-key': key });
      const again = await rq(node, '/db/execute', [['INSERT INTO q(who) VALUES(?)', key]], { 'idempotency-key': key });
      assert.equal(first.status, 200, first.text);
      assert.equal(again.status, 200, again.text);
      assert.deepEqual(rows(await query(master, 'SELECT count(*) FROM q WHERE who = ?', [key])), [[1]]);
    }
  });

  it('queued writes and SIGKILL of the master: what a wait returned survives; nothing applied twice', async () => {
    const { master, slaves } = cluster();
    assert.equal((await exec(master, 'CREATE TABLE qk (id INTEGER PRIMARY KEY, tag TEXT UNIQUE)')).status, 200);
    for (let i = 0; i < 100; i++) {
      const r = await rq(master, '/db/execute?queue', [['INSERT INTO qk(tag) VALUES(?)', `before-${i}`]]);
      assert.equal(r.status, 200, r.text);
    }
    const w = await rq(master, '/db/execute?queue&wait', [['INSERT INTO qk(tag) VALUES(?)', 'waited']]);
    assert.equal(w.status, 200, w.text);
    // Queued after the wait and maybe never flushed: the kill may lose these (documented).
    for (let i = 0; i < 20; i++) void rq(master, '/db/execute?queue', [['INSERT INTO qk(tag) VALUES(?)', `after-${i}`]]).catch(() => undefined);
    await hardKill(master);
    await relaunch(master);
    await waitFor(async () => {
      const r = await query(slaves[0]!, "SELECT count(*) FROM qk WHERE tag LIKE 'before-%' OR tag = 'waited'");
      assert.deepEqual(rows(r), [[101]]);
      return true;
    }, { timeoutMs: 20_000, intervalMs: 200, message: 'every request queued before the returned wait, on the slave' });
    assert.deepEqual(rows(await query(master, "SELECT count(*) FROM qk WHERE tag LIKE 'before-%' OR tag = 'waited'")), [[101]]);
  });
});
