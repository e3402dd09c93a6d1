// Change capture in the store (DESIGN §9): the events a master records while writing are
// the ones a replica records while applying the same entries, statement class by
// statement class; schema changes are events; capture none leaves no trace.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Store } from '../src/store/store.js';
import type { CaptureSpec } from '../src/store/changes.js';
import type { Entry, Stmt } from '../src/store/types.js';
import { tempStores } from './helpers/stores.js';

const stores = tempStores('sqlfleet-changes-');
const open = (capture: CaptureSpec): Store => stores.open(stores.path(), { capture });

const hooks = { check: () => {}, onCommit: () => {} };
const w = (s: Store, ...stmts: (string | Stmt)[]) => s.write(stmts.map((x) => (typeof x === 'string' ? { sql: x } : x)), 1, undefined, hooks);
const events = (s: Store) => s.changes.read(0, -1, 10_000).map((e) => JSON.parse(e.json) as Record<string, unknown>);
const texts = (s: Store) => s.changes.read(0, -1, 10_000).map((e) => e.json);
/** A replica of `m` with the same capture: applies m's log. */
function replica(m: Store, capture: CaptureSpec): Store {
  const r = open(capture);
  const entries = m.entriesJson(1, 100_000).map((x) => JSON.parse(x.json) as Entry);
  r.apply(entries);
  return r;
}

test('every statement class gives its row events, identical on a replica', async () => {
  const m = open('all');
  await w(m, 'CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER, b BLOB)', 'CREATE TABLE c (id INTEGER PRIMARY KEY, pid INTEGER REFERENCES p(id) ON DELETE CASCADE ON UPDATE CASCADE)');
  await w(m, 'CREATE TABLE audit (msg TEXT)', "CREATE TRIGGER pa AFTER UPDATE ON p BEGIN INSERT INTO audit VALUES ('upd ' || NEW.id); END");
  await w(m, { sql: 'INSERT INTO p (id, name, n, b) VALUES (1, ?, 9007199254740993, ?)', params: ['ana', 'x'] });
  await w(m, "UPDATE p SET b = x'00ff' WHERE id = 1", 'INSERT INTO c VALUES (10, 1), (11, 1)');
  await w(m, "INSERT INTO p (id, name) VALUES (1, 'ana') ON CONFLICT(id) DO UPDATE SET n = 1 RETURNING id");
  await w(m, 'UPDATE p SET id = 2 WHERE id = 1');
  await w(m, 'DELETE FROM p WHERE id = 2');
  await w(m, "REPLACE INTO p (id, name) VALUES (5, 'bo')");
  await w(m, 'CREATE TABLE nok (x, y)', 'INSERT INTO nok VALUES (1, 2.5)', 'ALTER TABLE nok DROP COLUMN y', 'INSERT INTO nok VALUES (3)');
  const ev = events(m);
  const brief = ev.map((e) => `${e.index}.${e.pos} ${e.table} ${e.op}`);
  assert.deepEqual(brief, [
    '1.0 p schema',
    '1.1 c schema',
    '2.0 audit schema',
    '2.1 p schema',
    '3.0 p insert',
    '4.0 p update',
    '4.1 audit insert',
    '4.2 c insert',
    '4.3 c insert',
    '5.0 p update',
    '5.1 audit insert',
    '6.0 c update',
    '6.1 c update',
    '6.2 p update',
    '6.3 audit insert',
    '7.0 c delete',
    '7.1 c delete',
    '7.2 p delete',
    '8.0 p insert',
    '9.0 nok schema',
    '9.1 nok insert',
    '9.2 nok schema',
    '9.3 nok insert',
  ]);
  assert.deepEqual(ev[4].key, { id: 1 });
  assert.equal(ev[4].before, null);
  assert.ok(texts(m)[4].includes('"n":9007199254740993'), 'a 64-bit integer is exact in the JSON text');
  assert.deepEqual(ev[5].after, { id: 1, name: 'ana', n: 9007199254740993, b: Buffer.from([0, 255]).toString('base64') });
  assert.deepEqual(ev[5].before, { id: 1, name: 'ana', n: 9007199254740993, b: 'x' });
  assert.deepEqual([ev[13].key, (ev[13].before as { id: number }).id], [{ id: 2 }, 1], 'an update of the key: key is the new one, before the old row');
  assert.deepEqual([ev[11].before, ev[11].after], [{ id: 10, pid: 1 }, { id: 10, pid: 2 }], 'a cascade is captured');
  assert.equal(ev[0].sql, 'CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER, b BLOB)');
  assert.equal(ev[21].sql, 'ALTER TABLE nok DROP COLUMN y');
  assert.deepEqual(ev[22].after, { x: 3 });
  assert.equal(typeof ev[0].ts, 'string');
  assert.deepEqual(texts(replica(m, 'all')), texts(m), 'a replica records the same events, byte for byte');
});

test('a table list captures only those tables; none records nothing and has no table', async () => {
  const m = open(['a']);
  await w(m, 'CREATE TABLE a (x)', 'CREATE TABLE b (x)');
  await w(m, 'INSERT INTO a VALUES (1)', 'INSERT INTO b VALUES (2)');
  assert.deepEqual(events(m).map((e) => `${e.table} ${e.op}`), ['a schema', 'a insert']);
  const n = open('none');
  await w(n, 'CREATE TABLE a (x)', 'INSERT INTO a VALUES (1)');
  assert.deepEqual(events(n), []);
  const r = await n.read([{ sql: "SELECT count(*) FROM sqlite_schema WHERE name LIKE '_sqlfleet_changes%'" }]);
  assert.deepEqual((r.results[0] as { rows: unknown[][] }).rows, [[0]]);
});

test('a failing write of a group leaves no events; the group commit keeps positions per entry', async () => {
  const m = open('all');
  await w(m, 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
  const outs = await Promise.allSettled([w(m, 'INSERT INTO t VALUES (1)'), w(m, 'INSERT INTO t VALUES (2)', 'INSERT INTO t VALUES (1)'), w(m, 'INSERT INTO t VALUES (3)', 'INSERT INTO t VALUES (4)')]);
  assert.deepEqual(outs.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
  assert.deepEqual(events(m).map((e) => `${e.index}.${e.pos} ${e.op} ${JSON.stringify(e.key)}`), ['1.0 schema null', '2.0 insert {"id":1}', '3.0 insert {"id":3}', '3.1 insert {"id":4}']);
  assert.deepEqual(texts(replica(m, 'all')), texts(m));
});

test('an interactive transaction: one index for all its events, the same on a replica', async () => {
  const m = open('all');
  await w(m, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v)');
  const tx = await m.beginTx(1000);
  tx.run({ sql: 'INSERT INTO t VALUES (1, 1)' });
  assert.throws(() => tx.run({ sql: 'INSERT INTO t VALUES (1, 2)' }));
  tx.run({ sql: 'ALTER TABLE t ADD COLUMN w' });
  tx.run({ sql: 'UPDATE t SET w = 5' });
  tx.commit(1, () => {});
  assert.deepEqual(events(m).map((e) => `${e.index}.${e.pos} ${e.op}`), ['1.0 schema', '2.0 insert', '2.1 schema', '2.2 update']);
  assert.deepEqual(texts(replica(m, 'all')), texts(m));
});

test('trim keeps the last entries and moves the oldest index', async () => {
  const m = stores.open(stores.path(), { capture: 'all', changesRetain: 3 });
  await w(m, 'CREATE TABLE t (x)');
  for (let i = 0; i < 9; i++) await w(m, { sql: 'INSERT INTO t VALUES (?)', params: [i] });
  assert.equal(m.changes.oldest(), 1);
  m.changes.trim(m.appliedIndex);
  assert.equal(m.changes.oldest(), 8);
  assert.deepEqual(m.changes.read(0, -1, 100).map((e) => e.index), [8, 9, 10]);
});
