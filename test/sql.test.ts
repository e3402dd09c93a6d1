// Tests for src/sql: the splitter, the CST classifier, the SQLite fallback and the caches.
// The probe is a real better-sqlite3 connection, so the fallback is checked against SQLite.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import type { Statement } from 'sql-parser-cst';
import { createClassifier, shapeOf } from '../src/sql/classify.js';
import { insertTargetOf, insertTargetsIn } from '../src/sql/targets.js';
import { classifyStatement } from '../src/sql/cst.js';
import { Lru } from '../src/sql/lru.js';
import { READ_ONLY_PRAGMAS, SCHEMA_PRAGMAS } from '../src/sql/pragma.js';
import { splitStatements, tokens } from '../src/sql/split.js';
import type { SqliteProbe, StatementClass } from '../src/sql/types.js';
import { isSqlfleetError, type ErrorCode } from '../src/errors.js';

const db = new Database(':memory:');
db.exec(`
  CREATE TABLE t(x);
  CREATE TABLE u(x);
  CREATE TABLE users(id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT);
  CREATE INDEX i ON t(x);
`);
let probeCalls = 0;
const probe: SqliteProbe = (sql) => {
  probeCalls++;
  return { readonly: db.prepare(sql).readonly };
};
const fresh = () => createClassifier({ probe });

function expectKind(sql: string, kind: StatementClass, reason?: RegExp): void {
  const c = fresh().classify(sql);
  assert.equal(c.kind, kind, `${sql} -> ${JSON.stringify(c.statements)}`);
  if (reason) assert.match(c.statements.map((s) => s.reason).join(' | '), reason);
}

function expectError(sql: string, code: ErrorCode, message?: RegExp): Error {
  let caught: unknown;
  try {
    fresh().classify(sql);
  } catch (e) {
    caught = e;
  }
  assert.ok(isSqlfleetError(caught, code), `${sql}: expected ${code}, got ${String(caught)}`);
  if (message) assert.match(caught.message, message);
  return caught;
}

// Parser-handled reads: reason is the CST type, the probe is never asked.
const reads: [string, string][] = [
  ['PRAGMA journal_mode', 'pragma_stmt'],
  // Node-local values are fine in reads: nothing stores them.
  ['SELECT total_changes()', 'select_stmt'],
  ['SELECT * FROM pragma_page_count(), pragma_freelist_count, pragma_data_version', 'select_stmt'],
  ["SELECT name, sum(pgsize) FROM dbstat WHERE name = 't' GROUP BY name", 'select_stmt'],
  ['WITH n AS (SELECT total_changes() AS c) SELECT c FROM n', 'select_stmt'],
  ['EXPLAIN INSERT INTO t VALUES (total_changes())', 'explain_stmt'],
  ['SELECT 1', 'select_stmt'],
  ['SELECT * FROM t WHERE x = ?', 'select_stmt'],
  ['SELECT 1 UNION ALL SELECT 2', 'compound_select_stmt'],
  ['WITH a AS (SELECT 1 AS v) SELECT v FROM a', 'select_stmt'],
  ['WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 5) SELECT n FROM c', 'select_stmt'],
  ['VALUES (1), (2)', 'select_stmt'],
  ['EXPLAIN SELECT * FROM t', 'explain_stmt'],
  ['EXPLAIN QUERY PLAN SELECT * FROM t WHERE x = 1', 'explain_stmt'],
  ['EXPLAIN INSERT INTO t VALUES (1)', 'explain_stmt'],
  ['SELECT * FROM sqlite_master', 'select_stmt'],
  ["SELECT name FROM sqlite_schema WHERE type = 'table'", 'select_stmt'],
  ["SELECT * FROM pragma_table_info('t')", 'select_stmt'],
  ["SELECT ';' AS semi, '_sqlfleet_log' AS s, x FROM t", 'select_stmt'],
  ['SELECT x FROM t /* _sqlfleet_log ; */ WHERE x > 0 -- _sqlfleet_log', 'select_stmt'],
  ['SELECT count(*) FROM t JOIN u ON t.x = u.x GROUP BY t.x HAVING count(*) > 1', 'select_stmt'],
  ['SELECT row_number() OVER (PARTITION BY x ORDER BY x) FROM t', 'select_stmt'],
  ['PRAGMA table_info(t)', 'pragma_stmt'],
  ['PRAGMA table_info = t', 'pragma_stmt'],
  ['PRAGMA main.table_xinfo(users)', 'pragma_stmt'],
  ['PRAGMA index_list(t)', 'pragma_stmt'],
  ['PRAGMA index_info(i)', 'pragma_stmt'],
  ['PRAGMA index_xinfo(i)', 'pragma_stmt'],
  ['PRAGMA foreign_key_list(t)', 'pragma_stmt'],
  ['PRAGMA foreign_key_check', 'pragma_stmt'],
  ['PRAGMA user_version', 'pragma_stmt'],
  ['PRAGMA schema_version', 'pragma_stmt'],
  ['PRAGMA application_id', 'pragma_stmt'],
  ['PRAGMA page_size', 'pragma_stmt'],
  ['PRAGMA encoding', 'pragma_stmt'],
  ['PRAGMA foreign_keys', 'pragma_stmt'],
  ['PRAGMA page_count', 'pragma_stmt'],
  ['PRAGMA freelist_count', 'pragma_stmt'],
  ['PRAGMA compile_options', 'pragma_stmt'],
  ['PRAGMA function_list', 'pragma_stmt'],
  ['PRAGMA table_list', 'pragma_stmt'],
  ['PRAGMA integrity_check', 'pragma_stmt'],
  ['PRAGMA quick_check(10)', 'pragma_stmt'],
  ['PRAGMA collation_list', 'pragma_stmt'],
  ['PRAGMA pragma_list', 'pragma_stmt'],
  ['PRAGMA data_version', 'pragma_stmt'],
];
for (const [sql, type] of reads) {
  test(`read: ${sql}`, () => {
    const before = probeCalls;
    const c = fresh().classify(sql);
    assert.equal(c.kind, 'read');
    assert.equal(c.statements[0]!.reason, type);
    assert.equal(probeCalls, before, 'parsed statements must not be probed');
  });
}

const writes: string[] = [
  'INSERT INTO t VALUES (1)',
  'INSERT INTO users(username) VALUES (?)',
  'REPLACE INTO t VALUES (1)',
  'INSERT OR REPLACE INTO t VALUES (1)',
  "INSERT OR IGNORE INTO users(username) VALUES ('a')",
  'UPDATE t SET x = x + 1 WHERE x > ?',
  'UPDATE OR ROLLBACK t SET x = 1',
  'DELETE FROM t WHERE x = :x',
  "INSERT INTO users(id, username) VALUES (1, 'a') ON CONFLICT(id) DO UPDATE SET username = excluded.username",
  "INSERT INTO users(username) VALUES ('b') ON CONFLICT DO NOTHING",
  'INSERT INTO t VALUES (1) RETURNING x',
  'DELETE FROM t RETURNING *',
  'UPDATE t SET x = 2 RETURNING x',
  'WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a',
  'WITH a AS (SELECT 1) UPDATE t SET x = (SELECT * FROM a)',
  'WITH a AS (SELECT 1) DELETE FROM t WHERE x IN (SELECT * FROM a)',
  'INSERT INTO t DEFAULT VALUES',
  'INSERT INTO t SELECT name FROM sqlite_master',
  'UPDATE t SET x = u.x FROM u WHERE u.x = t.x',
];
for (const sql of writes) test(`write: ${sql}`, () => expectKind(sql, 'write', /^(insert|update|delete)_stmt$/));

const schemas: string[] = [
  'CREATE TABLE a(x INTEGER PRIMARY KEY, y TEXT NOT NULL)',
  'CREATE TABLE IF NOT EXISTS a(x) STRICT',
  'CREATE TABLE a AS SELECT * FROM t',
  'CREATE TABLE main.a(x)',
  'CREATE INDEX i2 ON t(x)',
  'CREATE UNIQUE INDEX IF NOT EXISTS i3 ON users(email) WHERE email IS NOT NULL',
  'DROP INDEX i',
  'CREATE VIEW v AS SELECT x FROM t',
  'DROP VIEW IF EXISTS v',
  'CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE u SET x = new.x; END',
  'DROP TRIGGER tr',
  'CREATE VIRTUAL TABLE f USING fts5(body)',
  // Computed on write by the writer (with its deterministic clock) and stored: the same everywhere.
  "CREATE TABLE g(id INTEGER PRIMARY KEY, v, t AS (strftime('%Y-%m-%d %H:%M:%f', 'now')) STORED)",
  'CREATE TABLE g(id INTEGER PRIMARY KEY, v, t GENERATED ALWAYS AS (datetime(v)) STORED)',
  'CREATE TABLE g(id INTEGER PRIMARY KEY, v, t AS (upper(v)) VIRTUAL, u AS (v * 2))',
  "CREATE TABLE c(v CHECK (v < date('now')), w CHECK (w < CURRENT_DATE), d DEFAULT CURRENT_TIMESTAMP, e DEFAULT (datetime('now')))",
  'CREATE INDEX det2_day ON t(date(x))',
  "CREATE INDEX i4 ON t(x) WHERE julianday(x, '+1 day') > 0",
  'CREATE TRIGGER tr AFTER INSERT ON t BEGIN UPDATE u SET x = CURRENT_TIMESTAMP; END',
  "CREATE VIEW v AS SELECT date('now') AS d, CURRENT_TIME AS t, random() AS r",
  'ALTER TABLE t ADD COLUMN g AS (upper(x))',
  'ALTER TABLE t ADD COLUMN y TEXT',
  'ALTER TABLE t RENAME TO t2',
  'ALTER TABLE t RENAME COLUMN x TO z',
  'ALTER TABLE t DROP COLUMN x',
  'DROP TABLE t',
  'DROP TABLE IF EXISTS main.t',
  'REINDEX',
  'REINDEX t',
  'ANALYZE',
  'ANALYZE t',
  'PRAGMA user_version = 3',
  'PRAGMA application_id = 42',
  'PRAGMA main.user_version = 4',
  'PRAGMA user_version(5)',
];
for (const sql of schemas) test(`schema: ${sql}`, () => expectKind(sql, 'schema'));

const transactions: string[] = [
  'BEGIN',
  'BEGIN IMMEDIATE TRANSACTION',
  'BEGIN EXCLUSIVE',
  'COMMIT',
  'END TRANSACTION',
  'ROLLBACK',
  'ROLLBACK TO sp',
  'SAVEPOINT sp',
  'RELEASE sp',
  'RELEASE SAVEPOINT sp',
];
for (const sql of transactions) {
  const word = sql.split(' ')[0]!;
  test(`transaction: ${sql}`, () => expectKind(sql, 'transaction', new RegExp(`^${word} is transaction control`)));
}

const forbidden: [string, RegExp][] = [
  ["ATTACH DATABASE '/tmp/x.db' AS other", /^ATTACH is not allowed/],
  ["ATTACH ':memory:' AS m", /^ATTACH/],
  ['DETACH other', /^DETACH/],
  ['DETACH DATABASE other', /^DETACH/],
  ["EXPLAIN ATTACH 'x' AS y", /^ATTACH/],
  ["SELECT load_extension('/tmp/evil.so')", /load_extension/],
  ["SELECT * FROM t WHERE x = load_extension('a')", /load_extension/],
  ["SELECT * FROM t WHERE x IN (SELECT load_extension('a', 'b'))", /load_extension/],
  ["INSERT INTO t VALUES (load_extension('a'))", /load_extension/],
  ["UPDATE t SET x = LOAD_EXTENSION('a')", /load_extension/],
  ["WITH a AS (SELECT load_extension('x')) SELECT * FROM a", /load_extension/],
  [`SELECT "load_extension"('x')`, /load_extension/],
  ["CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT load_extension('x'); END", /load_extension/],
  ["CREATE VIEW v AS SELECT load_extension('x')", /load_extension/],
  ["SELECT max(ALL x), load_extension('a') FROM t", /load_extension/], // parser gap
  ['VACUUM', /^VACUUM is not allowed: .*cannot VACUUM.*npm run backup/],
  ['VACUUM main', /^VACUUM is not allowed/],
  ["VACUUM INTO '/tmp/copy.db'", /^VACUUM INTO/],
  // A VIRTUAL generated column is computed at every read, by connections without the writer's overrides.
  ["CREATE TABLE g(id INTEGER PRIMARY KEY, v, t AS (strftime('%Y-%m-%d %H:%M:%f','now')) VIRTUAL)", /^strftime\(\) in a VIRTUAL generated column is not allowed: .*STORED/],
  ['CREATE TABLE g(v, t AS (date(v)))', /^date\(\) in a VIRTUAL generated column/], // VIRTUAL by default; v may hold 'now'
  ['CREATE TABLE g(v, t GENERATED ALWAYS AS (upper(v) || datetime()) VIRTUAL)', /^datetime\(\) in a VIRTUAL/],
  ["CREATE TABLE g(v, t AS (julianday(v, 'localtime')))", /^julianday\(\) in a VIRTUAL/],
  ["CREATE TABLE g(v, t AS (TIME('now')), u AS (unixepoch()), w AS (timediff(v, 'now')))", /^time\(\) in a VIRTUAL/],
  ['CREATE TABLE g(v, t AS (random() % 10))', /^random\(\) in a VIRTUAL generated column .*random number/],
  ['CREATE TABLE g(v, t AS (hex(randomblob(4))))', /^randomblob\(\) in a VIRTUAL/],
  ["ALTER TABLE t ADD COLUMN d AS (date('now'))", /^date\(\) in a VIRTUAL generated column/],
  ['ALTER TABLE t ADD COLUMN d AS (CURRENT_DATE) VIRTUAL', /^CURRENT_DATE in a generated column/],
  // CURRENT_* there makes SQLite refuse the whole schema ("malformed database schema") on plain connections.
  ['CREATE TABLE g(v, t AS (CURRENT_TIMESTAMP) STORED)', /^CURRENT_TIMESTAMP in a generated column is not allowed: .*datetime\('now'\)/],
  ['CREATE INDEX i5 ON t(x, current_time)', /^CURRENT_TIME in an index is not allowed: .*time\('now'\)/],
  ['CREATE INDEX i5 ON t(x) WHERE x > CURRENT_DATE', /^CURRENT_DATE in an index/],
  // An index expression on the clock: integrity_check (and restoring a backup) fails outside the writer.
  ["CREATE INDEX i5 ON t(x, date('now'))", /^date\(\) of no column in an index is not allowed/],
  ["CREATE INDEX i5 ON t(x) WHERE x > julianday() - 1", /^julianday\(\) of no column in an index/],
  // Node-local values inside writes and schema statements: each replica would store its own.
  ['INSERT INTO t(x) VALUES (total_changes())', /^total_changes\(\) is not allowed in a write or schema statement: .*plain SELECT/],
  ['UPDATE t SET x = TOTAL_CHANGES() + 1', /^total_changes\(\)/],
  ['WITH n AS (SELECT total_changes() AS c) INSERT INTO t SELECT c FROM n', /^total_changes\(\)/],
  ['CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u VALUES (total_changes()); END', /^total_changes\(\)/],
  ['CREATE VIEW v AS SELECT total_changes() AS c', /^total_changes\(\)/],
  ['CREATE TABLE a AS SELECT total_changes() AS c', /^total_changes\(\)/],
  [
    'INSERT INTO t SELECT (SELECT page_count FROM pragma_page_count()) + (SELECT freelist_count FROM pragma_freelist_count()) + (SELECT count(*) FROM dbstat)',
    /^pragma_page_count is not allowed in a write or schema statement: .*file layout/,
  ],
  ['INSERT INTO t SELECT freelist_count FROM pragma_freelist_count', /^pragma_freelist_count is not allowed in a write/],
  ['INSERT INTO t SELECT count(*) FROM dbstat', /^dbstat is not allowed in a write/],
  ["INSERT INTO t SELECT pgsize FROM main.dbstat WHERE name = 't'", /^dbstat is not allowed in a write/],
  ["INSERT INTO t SELECT count(*) FROM dbstat('main')", /^dbstat is not allowed in a write/],
  ['UPDATE t SET x = (SELECT data_version FROM pragma_data_version)', /^pragma_data_version is not allowed/],
  ['DELETE FROM t WHERE x < (SELECT schema_version FROM pragma_schema_version)', /^pragma_schema_version is not allowed/],
  ['INSERT INTO t SELECT page_size FROM pragma_page_size', /^pragma_page_size/],
  ['INSERT INTO t SELECT * FROM pragma_integrity_check', /^pragma_integrity_check/],
  ['INSERT INTO t SELECT * FROM pragma_journal_mode', /^pragma_journal_mode/],
  ['INSERT INTO t SELECT * FROM pragma_compile_options', /^pragma_compile_options/],
  ['INSERT INTO t SELECT name FROM pragma_table_list', /^pragma_table_list/], // lists the node's internal tables
  ['CREATE VIEW v AS SELECT * FROM pragma_page_count', /^pragma_page_count is not allowed in a write or schema statement/],
  ['CREATE TRIGGER tr AFTER INSERT ON t BEGIN INSERT INTO u SELECT count(*) FROM dbstat; END', /^dbstat/],
  ["VACUUM main INTO '/tmp/copy.db'", /^VACUUM INTO/],
  ['CREATE TEMP TABLE a(x)', /^TEMP/],
  ['CREATE TEMPORARY TABLE a(x)', /^TEMP/],
  ['CREATE TEMP VIEW v AS SELECT 1', /^TEMP/],
  ['CREATE TEMPORARY VIEW v AS SELECT 1', /^TEMP/],
  ['CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END', /^TEMP/],
  ['CREATE TABLE temp.a(x)', /^TEMP/],
  ['CREATE TABLE TEMP.a(x)', /^TEMP/],
  ['CREATE VIEW temp.v AS SELECT 1', /^TEMP/],
  ['CREATE INDEX temp.i9 ON t(x)', /^TEMP/],
  ['CREATE TRIGGER temp.tr AFTER INSERT ON t BEGIN SELECT 1; END', /^TEMP/],
  ['CREATE TEMP TABLE a AS SELECT x FROM t WHERE x IN ()', /^TEMP/], // parser gap
  ["CREATE TABLE 'temp'.a(x)", /^TEMP/], // parser gap: string as schema name
  ['SELECT * FROM _sqlfleet_log', /_sqlfleet_log is an internal sqlfleet table/],
  ['SELECT * FROM t JOIN _sqlfleet_log l ON l.id = t.x', /_sqlfleet_log is an internal/],
  ['SELECT * FROM t WHERE x IN (SELECT idx FROM _sqlfleet_applied)', /_sqlfleet_applied is an internal/],
  ['INSERT INTO _sqlfleet_log VALUES (1)', /_sqlfleet_log is an internal/],
  ['UPDATE _sqlfleet_log SET x = 1', /_sqlfleet_log is an internal/],
  ['DELETE FROM _sqlfleet_meta', /_sqlfleet_meta is an internal/],
  ['DROP TABLE _sqlfleet_log', /_sqlfleet_log is an internal/],
  ['ALTER TABLE _sqlfleet_log ADD COLUMN y', /_sqlfleet_log is an internal/],
  ['CREATE INDEX i8 ON _sqlfleet_log(x)', /_sqlfleet_log is an internal/],
  ['CREATE TRIGGER tr AFTER INSERT ON t BEGIN DELETE FROM _sqlfleet_log; END', /_sqlfleet_log is an internal/],
  ['SELECT * FROM "_SQLFLEET_LOG"', /_SQLFLEET_LOG is an internal/],
  ['SELECT * FROM [_sqlfleet_x]', /_sqlfleet_x is an internal/],
  ['SELECT * FROM `_Sqlfleet_y`', /_Sqlfleet_y is an internal/],
  ['SELECT * FROM main._sqlfleet_log', /_sqlfleet_log is an internal/],
  ['SELECT _sqlfleet_x FROM t', /_sqlfleet_x is an internal/],
  ["SELECT * FROM '_sqlfleet_log'", /_sqlfleet_log is an internal/], // SQLite reads the string as a name
  ['SELECT avg(ALL x) FROM _sqlfleet_log', /_sqlfleet_log is an internal/], // parser gap
  ['PRAGMA table_info(_sqlfleet_log)', /_sqlfleet_log/],
  ["PRAGMA table_info('_sqlfleet_log')", /_sqlfleet_log/],
  ["SELECT * FROM pragma_table_info('_sqlfleet_log')", /_sqlfleet_log is an internal/],
  ['PRAGMA journal_mode = DELETE', /^PRAGMA journal_mode with a value is not allowed/],
  ['PRAGMA main.journal_mode = WAL', /^PRAGMA journal_mode/],
  ['PRAGMA wal_checkpoint(TRUNCATE)', /^PRAGMA wal_checkpoint/],
  ['PRAGMA wal_checkpoint', /^PRAGMA wal_checkpoint/],
  ['PRAGMA writable_schema = 1', /^PRAGMA writable_schema/],
  ['PRAGMA writable_schema = ON', /^PRAGMA writable_schema/],
  ['PRAGMA synchronous = OFF', /^PRAGMA synchronous/],
  ['PRAGMA foreign_keys = 0', /^PRAGMA foreign_keys with a value/],
  ['PRAGMA foreign_keys = OFF', /^PRAGMA foreign_keys with a value/],
  ['PRAGMA foreign_keys(0)', /^PRAGMA foreign_keys with a value/],
  ['PRAGMA query_only = 0', /^PRAGMA query_only/],
  ['PRAGMA database_list', /^PRAGMA database_list/],
  ['SELECT * FROM pragma_database_list', /pragma_database_list .*file paths/],
  ['PRAGMA schema_version = 10', /^PRAGMA schema_version/],
  ["PRAGMA user_version = 'abc'", /integer/],
  ['PRAGMA temp.user_version = 1', /main database/],
  ['PRAGMA cache_size = -2000', /^PRAGMA cache_size/], // parser gap (negative number)
  ['PRAGMA temp_store = MEMORY', /^PRAGMA temp_store/],
  ['PRAGMA locking_mode = EXCLUSIVE', /^PRAGMA locking_mode/],
  ['PRAGMA case_sensitive_like = 1', /^PRAGMA case_sensitive_like/],
  ['EXPLAIN PRAGMA foreign_keys = 0', /^PRAGMA foreign_keys/],
  ["INSERT INTO sqlite_sequence VALUES ('t', 5)", /sqlite_sequence belongs to SQLite/],
  ['UPDATE sqlite_sequence SET seq = 0', /sqlite_sequence belongs to SQLite/],
  ['DELETE FROM sqlite_stat1', /sqlite_stat1 belongs to SQLite/],
  ['DROP TABLE sqlite_stat1', /sqlite_stat1 belongs to SQLite/],
  ["UPDATE sqlite_master SET sql = ''", /sqlite_master belongs to SQLite/],
  ['DELETE FROM sqlite_sequence WHERE name IN ()', /sqlite_sequence belongs to SQLite/], // parser gap
];
for (const [sql, reason] of forbidden) test(`forbidden: ${sql}`, () => expectKind(sql, 'forbidden', reason));

test('forbidden: a statement type the parser knows but sqlfleet does not', () => {
  const v = classifyStatement({ type: 'truncate_stmt' } as unknown as Statement);
  assert.deepEqual(v, { kind: 'forbidden', reason: 'truncate_stmt statements are not supported' });
});

// Parser gaps: valid SQLite the parser rejects; SQLite's prepare decides.
const gaps: [string, StatementClass, string][] = [
  ['SELECT AVG(ALL x) FROM t', 'read', 'sqlite:select'],
  ['SELECT 1 WHERE 1 IN ()', 'read', 'sqlite:select'],
  ["SELECT * FROM 't'", 'read', 'sqlite:select'],
  ['WITH a AS (SELECT 1) SELECT avg(ALL x) FROM t', 'read', 'sqlite:with'],
  ['EXPLAIN SELECT avg(ALL x) FROM t', 'read', 'sqlite:explain'],
  ['DELETE FROM t WHERE x IN ()', 'write', 'sqlite:delete'],
  ['UPDATE t SET x = 1 WHERE x IN ()', 'write', 'sqlite:update'],
  ["INSERT INTO 't' VALUES (1)", 'write', 'sqlite:insert'],
  ['WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a WHERE 1 IN ()', 'write', 'sqlite:with'],
  ["CREATE TABLE 'quoted'(x)", 'schema', 'sqlite:create'],
  ['CREATE TRIGGER tr AFTER INSERT ON t WHEN new.x IN () BEGIN SELECT 1; END', 'schema', 'sqlite:create'],
  ['PRAGMA table_info("t")', 'read', 'sqlite:pragma'],
  ['PRAGMA user_version = -5', 'schema', 'sqlite:pragma'],
];
for (const [sql, kind, reason] of gaps) {
  test(`parser gap (${kind}): ${sql}`, () => {
    const before = probeCalls;
    const c = fresh().classify(sql);
    assert.equal(c.kind, kind);
    assert.equal(c.statements[0]!.reason, reason);
    assert.equal(probeCalls, before + 1, 'the fallback asks SQLite once');
  });
}

test('a forbidden PRAGMA the parser rejects is refused without preparing it', () => {
  // SQLite runs flag PRAGMAs while preparing them, so the probe must never see this one.
  db.pragma('foreign_keys = ON');
  const before = probeCalls;
  expectKind('PRAGMA foreign_keys = -1', 'forbidden', /^PRAGMA foreign_keys/);
  assert.equal(probeCalls, before);
  assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
});

test('(SELECT 1) parses but is not SQLite: SQL_SYNTAX from the fallback', () => {
  expectError('(SELECT 1)', 'SQL_SYNTAX', /syntax error/);
});

test('syntax errors: SQL_SYNTAX with SQLite message and parser position', () => {
  expectError('SELEC 1', 'SQL_SYNTAX', /near "SELEC": syntax error.*line 1, column 1/);
  expectError('SELECT * FROM', 'SQL_SYNTAX', /incomplete input/);
  expectError("SELECT 'abc", 'SQL_SYNTAX', /unrecognized token/);
  expectError('CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1 END', 'SQL_SYNTAX', /incomplete input/);
  expectError('INSERT INTO t VALUES (1,', 'SQL_SYNTAX', /incomplete input/);
});

test('syntax error in a later statement reports its line and index', () => {
  const e = expectError('SELECT 1;\nSELECT 2;\n  SELECT * FRM t', 'SQL_SYNTAX', /line 3, column 12/);
  assert.ok(isSqlfleetError(e));
  assert.equal(e.details.statement, 2);
  // On the first line the column counts from the start of the text, not of the statement.
  expectError('SELECT 1; SELEC 2', 'SQL_SYNTAX', /line 1, column 11/);
  expectError('SELECT 1; SELECT *\n  FRM t', 'SQL_SYNTAX', /line 2, column 3/);
});

test('SQLite errors other than syntax are SQL_ERROR and are not cached', () => {
  const c = fresh();
  const sql = 'SELECT avg(ALL y) FROM later';
  assert.throws(() => c.classify(sql), (e) => isSqlfleetError(e, 'SQL_ERROR') && /no such table: later/.test(e.message));
  db.exec('CREATE TABLE later(y)');
  try {
    assert.equal(c.classify(sql).kind, 'read');
  } finally {
    db.exec('DROP TABLE later');
  }
});

test('empty texts are BAD_REQUEST', () => {
  for (const sql of ['', '   \n', ';;', ' ; ; ', '-- only a comment', '/* c */ ;']) {
    expectError(sql, 'BAD_REQUEST', /^query is empty$/);
  }
});

const paramSql = [
  'SELECT ?',
  'SELECT ?1, ?2',
  'SELECT :a',
  'SELECT @a',
  'SELECT $a',
  'INSERT INTO users(username, email) VALUES (:name, @email)',
  'SELECT * FROM t WHERE x = $x AND x > ?3',
];
for (const sql of paramSql) {
  test(`parameters parse without the fallback: ${sql}`, () => {
    const before = probeCalls;
    const c = fresh().classify(sql);
    assert.notEqual(c.statements[0]!.reason.slice(0, 7), 'sqlite:');
    assert.equal(probeCalls, before);
  });
}

test('multi-statement text takes the strictest class', () => {
  const cases: [string, StatementClass][] = [
    ['SELECT 1; SELECT 2', 'read'],
    ['SELECT 1; INSERT INTO t VALUES (1)', 'write'],
    ['INSERT INTO t VALUES (1); CREATE TABLE a(x); SELECT 1', 'schema'],
    ['BEGIN; INSERT INTO t VALUES (1); COMMIT', 'transaction'],
    ["SELECT 1; ATTACH 'x' AS y; BEGIN", 'forbidden'],
    ['SELECT avg(ALL x) FROM t; DELETE FROM t', 'write'],
  ];
  for (const [sql, kind] of cases) assert.equal(fresh().classify(sql).kind, kind, sql);
});

test('multi-statement: each statement keeps its own text and class', () => {
  const c = fresh().classify(' INSERT INTO t VALUES (1) ;\n-- note\nSELECT x FROM t;; ');
  assert.deepEqual(
    c.statements.map((s) => [s.sql, s.kind]),
    [
      ['INSERT INTO t VALUES (1)', 'write'],
      ['-- note\nSELECT x FROM t', 'read'],
    ],
  );
});

test('trigger bodies with ; and CASE ... END stay one statement', () => {
  const trigger =
    "CREATE TRIGGER tr AFTER INSERT ON t WHEN CASE WHEN new.x > 0 THEN 1 ELSE 0 END BEGIN " +
    "UPDATE u SET x = CASE WHEN new.x > 1 THEN 'a;b' ELSE 'c' END; INSERT INTO u VALUES (new.x); END";
  const c = fresh().classify(`${trigger}; SELECT 1`);
  assert.deepEqual(c.statements.map((s) => [s.sql, s.kind]), [[trigger, 'schema'], ['SELECT 1', 'read']]);
});

test('splitStatements: strings, identifiers and comments hide ;', () => {
  assert.deepEqual(splitStatements("SELECT 'a;''b'; SELECT 2"), ["SELECT 'a;''b'", 'SELECT 2']);
  assert.deepEqual(splitStatements('SELECT "a;""b", `c;d`, [e;f] FROM t; SELECT 1'), [
    'SELECT "a;""b", `c;d`, [e;f] FROM t',
    'SELECT 1',
  ]);
  assert.deepEqual(splitStatements('SELECT 1 -- ; no split\n, 2; /* ; */ SELECT 3'), [
    'SELECT 1 -- ; no split\n, 2',
    '/* ; */ SELECT 3',
  ]);
  assert.deepEqual(splitStatements("SELECT 'a;b"), ["SELECT 'a;b"]);
  assert.deepEqual(splitStatements(';;SELECT 1;;\n;'), ['SELECT 1']);
});

test('splitStatements: trigger detection', () => {
  const trig = 'CREATE TRIGGER tr AFTER UPDATE ON t BEGIN UPDATE t SET "end" = 1; UPDATE t SET end = 2; END';
  assert.deepEqual(splitStatements(`${trig};SELECT 1`), [trig, 'SELECT 1']);
  const temp = 'create temporary trigger tr after delete on t begin delete from u; end';
  assert.deepEqual(splitStatements(`${temp}; SELECT 1`), [temp, 'SELECT 1']);
  const explained = 'EXPLAIN QUERY PLAN CREATE TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; SELECT 2; END';
  assert.deepEqual(splitStatements(`${explained}; SELECT 3`), [explained, 'SELECT 3']);
  // The words inside a string do not start a trigger.
  assert.deepEqual(splitStatements("SELECT 'CREATE TRIGGER'; SELECT 2"), ["SELECT 'CREATE TRIGGER'", 'SELECT 2']);
});

test('tokens: types and unquoted values', () => {
  const toks = [...tokens(`SELECT "a""b", [c d], 'e''f', x'00', 1.5e3, ?2, :n, t.x -- c\n/* d */ <> ->>`)];
  assert.deepEqual(
    toks.map((t) => [t.type, t.value]),
    [
      ['word', 'SELECT'], ['ident', 'a"b'], ['punct', ','], ['ident', 'c d'], ['punct', ','],
      ['string', "e'f"], ['punct', ','], ['number', "x'00'"], ['punct', ','], ['number', '1.5e3'],
      ['punct', ','], ['param', '?2'], ['punct', ','], ['param', ':n'], ['punct', ','],
      ['word', 't'], ['punct', '.'], ['word', 'x'], ['punct', '<>'], ['punct', '->>'],
    ],
  );
});

test('cache: the same text returns the same frozen object', () => {
  const c = fresh();
  const a = c.classify('SELECT * FROM t WHERE x = ?');
  assert.equal(c.classify('SELECT * FROM t WHERE x = ?'), a);
  assert.ok(Object.isFrozen(a) && Object.isFrozen(a.statements) && Object.isFrozen(a.statements[0]));
});

test('cache: a parser-gap statement is probed once, also inside another text', () => {
  const c = fresh();
  const before = probeCalls;
  c.classify('SELECT total(ALL x) FROM t');
  c.classify('SELECT total(ALL x) FROM t');
  c.classify('SELECT 1; SELECT total(ALL x) FROM t');
  assert.equal(probeCalls, before + 1);
});

test('cache: least recently used entries are evicted at cacheSize', () => {
  const c = createClassifier({ probe, cacheSize: 2 });
  const before = probeCalls;
  for (const sql of ['SELECT avg(ALL x) FROM t', 'SELECT sum(ALL x) FROM t', 'SELECT min(ALL x) FROM t']) c.classify(sql);
  c.classify('SELECT avg(ALL x) FROM t'); // evicted: probed again
  c.classify('SELECT min(ALL x) FROM t'); // still cached
  assert.equal(probeCalls, before + 4);
});

test('cache: texts over maxCachedLength are classified but not kept', () => {
  const c = createClassifier({ probe, maxCachedLength: 10 });
  const before = probeCalls;
  c.classify('SELECT avg(ALL x) FROM t');
  c.classify('SELECT avg(ALL x) FROM t');
  assert.equal(probeCalls, before + 2);
});

test('Lru keeps a recently read entry and evicts the oldest unread one', () => {
  const lru = new Lru<string, number>(4);
  for (const [i, k] of ['a', 'b', 'c', 'd'].entries()) lru.set(k, i);
  assert.equal(lru.get('a'), 0);
  lru.set('e', 4);
  assert.equal(lru.size, 4);
  assert.equal(lru.get('b'), undefined);
  assert.equal(lru.get('a'), 0);
});

test('pragma allow-lists are exported for the store', () => {
  assert.ok(READ_ONLY_PRAGMAS.has('table_info') && READ_ONLY_PRAGMAS.has('user_version'));
  assert.ok(READ_ONLY_PRAGMAS.has('journal_mode') && !READ_ONLY_PRAGMAS.has('database_list'));
  assert.deepEqual([...SCHEMA_PRAGMAS].sort(), ['application_id', 'user_version']);
});

// ---- literal-free shapes: unique literal SQL parses once per shape ----

test('shapeOf lifts string and number literals, keeps identifiers and PRAGMAs', () => {
  assert.equal(shapeOf(`INSERT INTO t(x) VALUES ('a;b', 12, -3.5) -- note`), 'INSERT INTO t ( x ) VALUES ( ? , ? , - ? )');
  assert.equal(shapeOf(`SELECT "col" FROM t WHERE x = 'v'`), 'SELECT "col" FROM t WHERE x = ?');
  assert.equal(shapeOf('SELECT x FROM t'), null);
  assert.equal(shapeOf('PRAGMA user_version = 5'), null);
});

test('texts of one shape share its verdict without reparsing, and stay correct', () => {
  const c = fresh();
  const first = c.classify(`INSERT INTO t(x) VALUES ('first')`);
  assert.equal(first.kind, 'write');
  const parsesBefore = c.parses;
  for (let i = 0; i < 200; i++) {
    const r = c.classify(`INSERT INTO t(x) VALUES ('v${i}', ${i}) /* ${i} */`);
    assert.equal(r.kind, 'write');
    assert.equal(r.statements[0]!.sql, `INSERT INTO t(x) VALUES ('v${i}', ${i}) /* ${i} */`);
  }
  // The first text of the second shape parses (twice: text and shape); the rest reuse it.
  assert.ok(c.parses - parsesBefore <= 2, `parsed ${c.parses - parsesBefore} times for 200 texts of one shape`);
});

test('a string used as a table name never lets an internal table through a shape', () => {
  const c = fresh();
  assert.equal(c.classify(`SELECT * FROM 't'`).kind, 'read');
  assert.throws(() => c.classify(`SELECT * FROM 'nosuch'`), (e) => isSqlfleetError(e, 'SQL_ERROR'));
  assert.equal(c.classify(`SELECT * FROM '_sqlfleet_log'`).kind, 'forbidden');
  assert.equal(c.classify(`INSERT INTO 't' VALUES (1)`).kind, 'write');
  assert.equal(c.classify(`INSERT INTO '_sqlfleet_meta' VALUES (1)`).kind, 'forbidden');
  assert.equal(c.classify(`SELECT '_sqlfleet_log'`).kind, 'read');
  assert.equal(c.classify(`SELECT load_extension('a')`).kind, 'forbidden');
  assert.equal(c.classify(`SELECT load_extension('b')`).kind, 'forbidden');
});

// ---- bounded parsing (issue 32, items 3 and 4) ------------------------------------------

const list = (n: number, sep = ','): string => Array.from({ length: n }, (_, i) => String(i)).join(sep);

test('a statement past the parse limits is never given to the parser; SQLite classifies it', () => {
  const c = createClassifier({ probe, parseLimits: { maxLength: 100, maxDepth: 4, perText: 200 } });
  const before = c.parses;
  assert.equal(c.classify(`SELECT 1 WHERE 1 IN (${list(100)})`).kind, 'read');
  assert.equal(c.classify(`INSERT INTO t(x) VALUES ${list(100).split(',').map((v) => `(${v})`).join(',')}`).kind, 'write');
  assert.equal(c.classify('SELECT ((((((1))))))').kind, 'read');
  assert.equal(c.parses, before, 'no parse of a statement past maxLength or maxDepth');
  // The fallback's checks still refuse what must be refused.
  expectForbidden(c, `SELECT load_extension('x') WHERE 1 IN (${list(100)})`, /load_extension/);
  expectForbidden(c, `SELECT * FROM _sqlfleet_log WHERE 1 IN (${list(100)})`, /internal sqlfleet table/);
  expectForbidden(c, `ATTACH 'x.db' AS ((((((a))))))`, /ATTACH/);
  // perText: statements share one budget; the rest of the text goes to SQLite.
  const p0 = c.parses;
  const three = `SELECT ${list(30, '+')}; SELECT ${list(31, '-')}; SELECT ${list(32, '*')}`; // 86, 89, 92 characters
  assert.equal(c.classify(three).statements.length, 3);
  assert.equal(c.parses - p0, 2, 'the first statement and its shape spend the budget of 200; the others go to SQLite');
});

test('the fallback (statements past the parse limits, parser gaps) refuses node-local values too', () => {
  const c = createClassifier({ probe, parseLimits: { maxLength: 5, maxDepth: 1, perText: 5 } });
  const before = c.parses;
  expectForbidden(c, 'VACUUM', /^VACUUM is not allowed/);
  expectForbidden(c, "CREATE TABLE g(id INTEGER PRIMARY KEY, v, t AS (strftime('%Y-%m-%d %H:%M:%f','now')) VIRTUAL)", /^strftime\(\) in a VIRTUAL/);
  expectForbidden(c, "ALTER TABLE t ADD COLUMN d AS (upper(x) || date('now'))", /^date\(\) in a VIRTUAL/);
  expectForbidden(c, 'CREATE TABLE g(v, t AS (random()))', /^random\(\) in a VIRTUAL/);
  // Before SQLite's own (400) refusal of CURRENT_* there.
  expectForbidden(c, 'CREATE TABLE g(v, t AS (CURRENT_TIMESTAMP) STORED)', /^CURRENT_TIMESTAMP in a generated column/);
  expectForbidden(c, 'CREATE INDEX i5 ON t(x) WHERE x > current_date', /^CURRENT_DATE in an index/);
  expectForbidden(c, "CREATE INDEX i5 ON t(x, date('now'))", /^date\(\) of no column in an index/);
  expectForbidden(c, 'INSERT INTO t(x) VALUES (total_changes())', /^total_changes\(\)/);
  expectForbidden(c, 'WITH n AS (SELECT total_changes() AS c) INSERT INTO t SELECT c FROM n', /^total_changes\(\)/);
  expectForbidden(c, 'INSERT INTO t SELECT (SELECT page_count FROM pragma_page_count())', /^pragma_page_count is not allowed in a write/);
  expectForbidden(c, "INSERT INTO t SELECT count(*) FROM 'dbstat'", /^dbstat is not allowed in a write/);
  expectForbidden(c, 'CREATE VIEW v AS SELECT * FROM main.dbstat', /^dbstat is not allowed in a write/);
  for (const sql of [
    "CREATE TABLE g(id INTEGER PRIMARY KEY, v, t AS (strftime('%s', 'now')) STORED, u AS (upper(v)))",
    "CREATE TABLE c(v CHECK (v < date('now')), d DEFAULT CURRENT_TIMESTAMP)",
    'CREATE INDEX i5 ON t(date(x))',
    'SELECT total_changes()',
    'WITH n AS (SELECT total_changes() AS c) SELECT c FROM n',
    'SELECT * FROM pragma_page_count(), dbstat',
    "INSERT INTO t VALUES ('dbstat')",
    "INSERT INTO t SELECT name FROM pragma_table_info('u')",
  ]) {
    assert.notEqual(c.classify(sql).kind, 'forbidden', sql);
  }
  assert.equal(c.parses, before, 'all of them went the fallback way');
});

function expectForbidden(c: ReturnType<typeof createClassifier>, sql: string, reason: RegExp): void {
  const r = c.classify(sql);
  assert.equal(r.kind, 'forbidden', sql.slice(0, 60));
  assert.match(r.statements.map((s) => s.reason).join(' | '), reason);
}

test('the default limits: a 589 KB IN list is classified by SQLite in well under a second, not by the parser', () => {
  const c = fresh();
  const before = c.parses;
  const t0 = performance.now();
  assert.equal(c.classify(`SELECT 1 WHERE 1 IN (${list(100_000)})`).kind, 'read');
  assert.equal(c.parses, before);
  // Generous for a shared machine: the parser took 1.8-4.4 s here.
  assert.ok(performance.now() - t0 < 1500, `${Math.round(performance.now() - t0)} ms`);
});

test('long chained expressions are SQLite errors (400), not a stack overflow', () => {
  for (const sql of ['SELECT ' + Array(20_000).fill('1').join(' OR '), 'SELECT ' + Array(20_000).fill("'a'").join('||')]) {
    expectError(sql, 'SQL_ERROR', /Expression tree is too large/);
  }
});

test('classifyStatement walks a tree of any depth without recursion', () => {
  const lit = { type: 'number_literal', text: '1', value: 1 };
  let expr: Record<string, unknown> = lit;
  for (let i = 0; i < 100_000; i++) expr = { type: 'binary_expr', left: expr, operator: 'OR', right: lit };
  const stmt = { type: 'select_stmt', clauses: [{ type: 'select_clause', selectKw: { type: 'keyword', text: 'SELECT', name: 'SELECT' }, columns: { type: 'list_expr', items: [expr] } }] };
  assert.deepEqual(classifyStatement(stmt as unknown as Statement), { kind: 'read', reason: 'select_stmt' });
  const bad = { ...stmt, clauses: [{ ...stmt.clauses[0], columns: { type: 'list_expr', items: [{ type: 'binary_expr', left: expr, operator: 'OR', right: { type: 'identifier', name: '_sqlfleet_log', text: '_sqlfleet_log' } }] } }] };
  assert.equal(classifyStatement(bad as unknown as Statement).kind, 'forbidden');
});

test("an INSERT names its table (into): the master's largest-rowid check needs it; the shape cache keeps it", () => {
  const c = fresh();
  const into = (sql: string) => c.classify(sql).statements.map((s) => s.into);
  assert.deepEqual(into('INSERT INTO t VALUES (1)'), [{ name: 't' }]);
  assert.deepEqual(into('INSERT INTO t VALUES (2)'), [{ name: 't' }], 'a text answered from its shape');
  assert.deepEqual(into('insert or replace into main."Users"(id) values (3)'), [{ schema: 'main', name: 'Users' }]);
  assert.deepEqual(into('REPLACE INTO u(x) VALUES (?)'), [{ name: 'u' }]);
  assert.deepEqual(into("INSERT INTO 't' VALUES (4)"), [{ name: 't' }], 'a string as the table name');
  assert.deepEqual(into('WITH n(v) AS (VALUES (1)) INSERT INTO t SELECT v FROM n RETURNING x'), [{ name: 't' }]);
  assert.deepEqual(into('INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING; UPDATE u SET x = 1; SELECT 1'), [{ name: 't' }, undefined, undefined]);
  // Read from the tokens where the parser cannot read the statement.
  assert.deepEqual(insertTargetOf('insert or replace into main."T x"(a) values (1)'), { schema: 'main', name: 'T x' });
  assert.deepEqual(insertTargetOf('REPLACE INTO [u] VALUES (1)'), { name: 'u' });
  assert.deepEqual(insertTargetOf('INSERT INTO `v`.w DEFAULT VALUES'), { schema: 'v', name: 'w' });
  assert.equal(insertTargetOf('WITH n AS (SELECT 1) INSERT INTO t SELECT * FROM n'), undefined);
  assert.equal(insertTargetOf('UPDATE t SET x = 1'), undefined);
  // Every table a trigger's body inserts into, once each; AFTER INSERT ON is not one.
  assert.deepEqual(
    insertTargetsIn("CREATE TRIGGER tr AFTER INSERT ON a BEGIN INSERT INTO b(x) VALUES (new.x); INSERT OR REPLACE INTO main.c SELECT replace(x, 'a', 'b') FROM a; REPLACE INTO B VALUES (1); UPDATE d SET y = 1; END"),
    [{ name: 'b' }, { schema: 'main', name: 'c' }],
  );
});

test("a pragma function's table in a string is never judged by another text's shape: the internal tables stay hidden", () => {
  const c = fresh();
  assert.equal(c.classify("SELECT * FROM pragma_table_info('t')").kind, 'read');
  // Same shape (strings lifted), another verdict: before, the cached read came back.
  assert.equal(c.classify("SELECT * FROM pragma_table_info('_sqlfleet_log')").kind, 'forbidden');
  assert.equal(c.classify("SELECT name FROM pragma_index_list('_sqlfleet_log')").kind, 'forbidden');
});
