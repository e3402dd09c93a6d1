// Values and names through master and slave (issue 32, items 5, 6 and 10): integers
// beyond 2^53 stay exact in parameters and in answers forwarded by a slave; `?NNN` with
// gaps binds as SQLite binds it; internal tables are named in the schema catalog (as the
// README says) but their contents cannot be read or written.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseExact } from '../src/json.js';
import { REPO_ROOT, assertError, assertSameChecksums, exec, ok, post, rows, status, useCluster, waitForIndex } from './helpers/cluster.js';

const { cluster, it } = useCluster({ slaves: 1, readyTimeoutMs: 30_000 }, async (c) => {
  ok(await exec(c.master, 'CREATE TABLE big(k TEXT PRIMARY KEY, n INTEGER)'), 'create big');
  ok(await exec(c.master, 'CREATE TABLE r(id INTEGER PRIMARY KEY, v TEXT)'), 'create r');
});
const master = () => cluster().master;
const slave = () => cluster().slaves[0]!;

/** POSTs a JSON text written by hand (JSON.stringify cannot write a bigint). */
const raw = (url: string, text: string) => post(url, text);

// ---- item 5: integers beyond 2^53 --------------------------------------------------------

it('parseExact: integers beyond 2^53 as BigInt, everything else as JSON.parse', async () => {
  assert.deepEqual(parseExact('{"a":[9007199254740993,-9223372036854775808,9007199254740991,1.5,"9007199254740993"]}'), {
    a: [9007199254740993n, -9223372036854775808n, 9007199254740991, 1.5, '9007199254740993'],
  });
  // Beyond 64 bits SQLite reads a literal as REAL; fractions and exponents stay numbers.
  assert.deepEqual(parseExact('[9223372036854775808, 12345678901234567.5, 1.12345678901234567, 1e17, "a\\"12345678901234567"]'), [
    9223372036854775808, 12345678901234567.5, 1.12345678901234567, 1e17, 'a"12345678901234567',
  ]);
  assert.throws(() => parseExact('{"a": 12345678901234567'), SyntaxError);
});

it('RETURNING and last_insert_rowid beyond 2^53 are exact through a slave (forwarded) as on the master', async () => {
  for (const [node, k, n] of [[master(), 'm', '9007199254740995'], [slave(), 's', '9007199254740997']] as const) {
    const w = await raw(node.url, `{"query":"INSERT INTO big(k, n) VALUES ('${k}', ${n}) RETURNING n"}`);
    ok(w, `insert on ${node.label()}`);
    assert.match(w.text, new RegExp(`"rows":\\[\\[${n}\\]\\]`), w.text);
    const id = BigInt(n) + 100n;
    const r = await raw(node.url, `{"query":"INSERT INTO r(id, v) VALUES (${id}, 'x')"}`);
    assert.match(r.text, new RegExp(`"last_insert_rowid":${id}\\b`), r.text);
  }
});

it('parameters beyond 2^53 are bound exactly (positional and named, sent to master or slave)', async () => {
  const cases = [
    ['p1', '9007199254740993', `{"query":"INSERT INTO big(k, n) VALUES (?, ?)","params":["p1", 9007199254740993]}`],
    ['p2', '-9223372036854775808', `{"query":"INSERT INTO big(k, n) VALUES (:k, :n)","params":{":k":"p2",":n":-9223372036854775808}}`],
    ['p3', '9223372036854775807', `{"queries":[{"query":"INSERT INTO big(k, n) VALUES (?, ?)","params":["p3", 9223372036854775807]}],"transaction":true}`],
  ] as const;
  for (const [i, [k, n, body]] of cases.entries()) ok(await raw((i % 2 ? slave() : master()).url, body), k);
  const { applied_index } = await status(master());
  await waitForIndex(cluster().nodes, applied_index);
  for (const node of cluster().nodes) {
    const r = await raw(node.url, `{"query":"SELECT k, CAST(n AS TEXT), typeof(n) FROM big WHERE k IN ('p1','p2','p3') ORDER BY k"}`);
    assert.deepEqual(rows(r), cases.map(([k, n]) => [k, n, 'integer']), node.label());
    // A read binds exactly too (the value is compared, not rounded to a neighbour).
    const q = await raw(node.url, `{"query":"SELECT k FROM big WHERE n = ?","params":[9007199254740993]}`);
    assert.deepEqual(rows(q), [['p1']], node.label());
  }
  // Past 64 bits the literal is REAL, as SQLite reads it.
  assert.deepEqual(rows(await raw(master().url, '{"query":"SELECT typeof(?)","params":[9223372036854775808]}')), [['real']]);
  await assertSameChecksums(cluster().nodes);
});

// ---- item 6: ?NNN with gaps ----------------------------------------------------------------

it('?NNN with gaps binds as SQLite does: slot N takes params[N-1], a plain ? the next slot', async () => {
  for (const node of [master(), slave()]) {
    assert.deepEqual(rows(await post(node.url, { query: 'SELECT ?2', params: [1, 2] })), [[2]], node.label());
    assert.deepEqual(rows(await post(node.url, { query: 'SELECT ?3, ?1', params: [1, 2, 3] })), [[3, 1]]);
    assert.deepEqual(rows(await post(node.url, { query: 'SELECT ?, ?5, ?', params: [1, 2, 3, 4, 5, 6] })), [[1, 5, 6]]);
    assert.deepEqual(rows(await post(node.url, { query: 'SELECT ?1, ?1, ?2', params: ['a', 'b'] })), [['a', 'a', 'b']]);
    assert.deepEqual(rows(await post(node.url, { query: "SELECT '?9', ?", params: ['x'] })), [['?9', 'x']]);
    assertError(await post(node.url, { query: 'SELECT ?3', params: [1] }), 400, 'BAD_REQUEST', 'too few values');
  }
  ok(await post(slave().url, { query: 'INSERT INTO big(k, n) VALUES (?3, ?1)', params: [7, 'unused', 'gap'] }), 'write with a gap, forwarded');
  await waitForIndex(cluster().nodes, (await status(master())).applied_index);
  for (const node of cluster().nodes) assert.deepEqual(rows(await post(node.url, { query: "SELECT n FROM big WHERE k = 'gap'" })), [[7]]);
});

// ---- item 10: internal tables ----------------------------------------------------------------

it('internal tables: named in sqlite_schema and PRAGMA table_list (as the README says), their contents refused', async () => {
  const names = rows(await post(slave().url, { query: "SELECT name FROM sqlite_schema WHERE type = 'table' AND name LIKE '\\_sqlfleet\\_%' ESCAPE '\\'" })).map((r) => r[0]);
  assert.ok(names.includes('_sqlfleet_log'), String(names));
  assert.ok(rows(await post(master().url, { query: 'PRAGMA table_list' })).some((r) => String(r[1]).startsWith('_sqlfleet_')));
  for (const sql of [
    'SELECT * FROM _sqlfleet_log',
    'SELECT * FROM "_SQLFLEET_LOG"',
    'SELECT * FROM main._sqlfleet_meta',
    "SELECT * FROM '_sqlfleet_idem'",
    "SELECT * FROM pragma_table_info('_sqlfleet_log')",
    'SELECT count(*) FROM [_sqlfleet_log] WHERE 1 IN (' + Array.from({ length: 2000 }, (_, i) => i).join(',') + ')', // past the parse limits
    'CREATE VIEW v AS SELECT * FROM _sqlfleet_log',
    'CREATE TRIGGER tr AFTER INSERT ON r BEGIN DELETE FROM _sqlfleet_idem; END',
    'DELETE FROM _sqlfleet_log',
  ]) {
    assertError(await post(master().url, { query: sql }), 403, 'FORBIDDEN_STATEMENT', sql.slice(0, 50));
  }
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  assert.doesNotMatch(readme, /_sqlfleet_\*` tables are invisible/, 'README must not say the catalog hides them');
  assert.match(readme, /`_sqlfleet_\*` tables[^.]*sqlite_schema/);
});
