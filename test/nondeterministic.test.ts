// SQL whose result depends on the node (its clock at read time, its connection's history, its
// file's layout) is refused before it runs, on the master and through a slave; its harmless
// neighbours still run, and the replicas stay identical. A master and two slaves as real processes.

import assert from 'node:assert/strict';
import { assertError, assertSameChecksums, exec, ok, query, rows, status, useCluster, waitForIndex } from './helpers/cluster.js';

const { it, cluster } = useCluster({ slaves: 2 });

/** Sends `sql` to the master and to each slave: each answers 403 FORBIDDEN_STATEMENT matching `reason`, and nothing is applied. */
async function refusedEverywhere(sql: string, reason: RegExp): Promise<void> {
  const { master, nodes } = cluster();
  const before = await assertSameChecksums(nodes);
  const index = (await status(master)).applied_index;
  for (const n of nodes) {
    const reply = await exec(n, sql);
    assertError(reply, 403, 'FORBIDDEN_STATEMENT', `${sql} on ${n.label()}`);
    assert.match(reply.body.error.message, reason, `${sql} on ${n.label()}`);
  }
  assert.equal((await status(master)).applied_index, index, `${sql}: the master's log moved`);
  assert.deepEqual(await assertSameChecksums(nodes), before, `${sql}: something was applied`);
}

it('setup: a table to write into', async () => {
  ok(await exec(cluster().master, 'CREATE TABLE t1 (id INTEGER PRIMARY KEY, a)'), 'CREATE TABLE t1');
});

it("a VIRTUAL generated column on the clock or random is refused: reads and /checksum would fail on every node", async () => {
  await refusedEverywhere(
    "CREATE TABLE g (id INTEGER PRIMARY KEY, v, t AS (strftime('%Y-%m-%d %H:%M:%f','now')) VIRTUAL)",
    /^strftime\(\) in a VIRTUAL generated column is not allowed: .*STORED/,
  );
  await refusedEverywhere('CREATE TABLE g (id INTEGER PRIMARY KEY, v, t AS (date(v)))', /^date\(\) in a VIRTUAL generated column/);
  await refusedEverywhere('CREATE TABLE g (id INTEGER PRIMARY KEY, v, t AS (random()) VIRTUAL)', /^random\(\) in a VIRTUAL/);
  await refusedEverywhere("ALTER TABLE t1 ADD COLUMN t AS (datetime('now'))", /^datetime\(\) in a VIRTUAL generated column/);
  // CURRENT_TIMESTAMP makes SQLite refuse the whole schema on the read connections, STORED too.
  await refusedEverywhere('CREATE TABLE g (id INTEGER PRIMARY KEY, v, t AS (CURRENT_TIMESTAMP) STORED)', /^CURRENT_TIMESTAMP in a generated column/);
  await refusedEverywhere('CREATE INDEX t1_now ON t1(a) WHERE a > CURRENT_DATE', /^CURRENT_DATE in an index/);
  await refusedEverywhere("CREATE INDEX t1_now ON t1(a, date('now'))", /^date\(\) of no column in an index/);
  for (const n of cluster().nodes) {
    assert.deepEqual(rows(await query(n, "SELECT count(*) FROM sqlite_schema WHERE name IN ('g', 't1_now')")), [[0]], n.label());
  }
});

it("total_changes() in a write is refused (each node counts its own connection's changes); a plain read keeps it", async () => {
  await refusedEverywhere('INSERT INTO t1(a) VALUES (total_changes())', /^total_changes\(\) is not allowed in a write/);
  await refusedEverywhere('UPDATE t1 SET a = total_changes()', /^total_changes\(\)/);
  for (const n of cluster().nodes) {
    const r = rows(await query(n, 'SELECT total_changes()'), `SELECT total_changes() on ${n.label()}`);
    assert.equal(typeof r[0]![0], 'number', n.label());
  }
});

it("the file's layout read into a write is refused; reads of it stay allowed", async () => {
  ok(await exec(cluster().master, 'CREATE TABLE pg (pages, free, stat)'), 'CREATE TABLE pg');
  await refusedEverywhere(
    'INSERT INTO pg SELECT (SELECT page_count FROM pragma_page_count()), (SELECT freelist_count FROM pragma_freelist_count()), (SELECT count(*) FROM dbstat)',
    /^pragma_page_count is not allowed in a write or schema statement/,
  );
  await refusedEverywhere('INSERT INTO pg(stat) SELECT count(*) FROM dbstat', /^dbstat is not allowed in a write/);
  await refusedEverywhere('INSERT INTO pg(pages) SELECT data_version FROM pragma_data_version', /^pragma_data_version/);
  await refusedEverywhere('CREATE VIEW layout AS SELECT * FROM pragma_page_count', /^pragma_page_count/);
  for (const n of cluster().nodes) {
    const r = rows(await query(n, 'SELECT page_count, (SELECT count(*) FROM dbstat) FROM pragma_page_count()'), n.label());
    assert.ok(Number(r[0]![0]) > 0, `${n.label()}: page_count ${JSON.stringify(r)}`);
  }
  // Schema pragmas are the same on every replica: allowed in writes.
  ok(await exec(cluster().master, "INSERT INTO pg(stat) SELECT count(*) FROM pragma_table_info('pg')"), 'pragma_table_info in a write');
});

it('VACUUM is refused with what to do instead, not SQLite\'s "cannot VACUUM from within a transaction"', async () => {
  await refusedEverywhere('VACUUM', /^VACUUM is not allowed: .*npm run backup/);
});

it("the allowed neighbours run and replicate: a STORED column on 'now', DEFAULT, CHECK, date(s) index", async () => {
  const { master, nodes } = cluster();
  ok(
    await exec(
      master,
      "CREATE TABLE g (id INTEGER PRIMARY KEY, v, t AS (strftime('%Y-%m-%d %H:%M:%f','now')) STORED, d DEFAULT CURRENT_TIMESTAMP, c CHECK (c IS NULL OR c < date('now')), u AS (upper(v)))",
    ),
    'CREATE TABLE g with a STORED column',
  );
  ok(await exec(master, 'CREATE INDEX g_day ON g(date(t))'), 'CREATE INDEX on date(t)');
  const body = ok(await exec(master, "INSERT INTO g(v) VALUES ('a'), ('b')"), 'INSERT INTO g');
  await waitForIndex(nodes, body.index);
  const all = await Promise.all(nodes.map(async (n) => rows(await query(n, 'SELECT id, v, t, d, u FROM g ORDER BY id'), `SELECT g on ${n.label()}`)));
  assert.equal(all[0]!.length, 2);
  all.forEach((r, i) => assert.deepEqual(r, all[0], `g differs on ${nodes[i]!.label()}`));
  for (const n of nodes) ok(await query(n, 'PRAGMA integrity_check'), `integrity_check on ${n.label()}`);
  await assertSameChecksums(nodes);
});
