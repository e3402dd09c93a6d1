// SQLite's legacy double-quoted-string rule (src/sql/dqs.ts), checked against a real SQLite:
// what the rewrite produces must run and mean what SQLite with DQS on would mean.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { legacyStrings, valuesLiterals } from '../src/sql/dqs.js';

const db = new Database(':memory:');
db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, "odd ""col""" TEXT)');
const check = (sql: string): string | null => {
  try {
    db.prepare(sql);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
};
const run = (sql: string) => legacyStrings(sql, check);

test('unresolvable double-quoted names become string literals; resolvable ones stay names', () => {
  assert.equal(run('INSERT INTO t(name) VALUES("fiona")'), "INSERT INTO t(name) VALUES('fiona')");
  assert.equal(run('SELECT "name", "nope" FROM t WHERE "name" = "x"'), "SELECT \"name\", 'nope' FROM t WHERE \"name\" = 'x'");
  assert.equal(run('SELECT "odd ""col""" FROM t'), 'SELECT "odd ""col""" FROM t');
  assert.equal(run(`INSERT INTO t(name) VALUES("it's")`), "INSERT INTO t(name) VALUES('it''s')");
});

test('text without double quotes, or that prepares as is, is returned unchanged', () => {
  const s = "SELECT name FROM t WHERE name = 'a\"b'";
  assert.equal(run(s), s);
  assert.equal(run('SELECT "id" FROM "t"'), 'SELECT "id" FROM "t"');
});

test('a real unknown column keeps SQLite\'s error; a missing table falls back to VALUES rows only', () => {
  // SQLite stops at the unquoted unknown column: the statement fails as it would with DQS on.
  assert.match(String(check(run('SELECT nope FROM t WHERE "x" = 1'))), /no such column: nope/);
  assert.equal(run('INSERT INTO later(a) VALUES("v", (SELECT "c" FROM u)) '), "INSERT INTO later(a) VALUES('v', (SELECT \"c\" FROM u)) ");
  assert.equal(valuesLiterals('INSERT INTO x VALUES("a"), ("b") ON CONFLICT DO UPDATE SET y = "z"'), "INSERT INTO x VALUES('a'), ('b') ON CONFLICT DO UPDATE SET y = \"z\"");
});
