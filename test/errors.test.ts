// Every error code of DESIGN §2 that issue 2 covers, produced against real nodes.
// All requests before the last two tests fail, so the data must be exactly as seeded.

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
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
  waitForIndex,
  useCluster,
  type TestNode,
} from './helpers/cluster.js';

const MAX_BODY = 16 * 1024;
const READ_WAIT_MS = 300;

let seeded: any[] = [];
const { it, cluster } = useCluster({ slaves: 2, extraArgs: ['--max-body', String(MAX_BODY), '--read-wait', String(READ_WAIT_MS)] }, async (c) => {
  const { master, nodes } = c;
  ok(await exec(master, 'CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT NOT NULL, age INTEGER CHECK (age >= 0))'));
  const w = ok(await exec(master, "INSERT INTO users(username, email, age) VALUES ('ana', 'ana@example.com', 30), ('bo', 'bo@example.com', 40)"));
  await waitForIndex(nodes, w.index);
  seeded = await checksums(nodes);
});

/** Posts `body` to every node and asserts each answer is `status` / `code`. */
async function expectEverywhere(body: unknown, statusCode: number, code: string, nodes: readonly TestNode[] = cluster().nodes): Promise<void> {
  for (const n of nodes) {
    const r = await post(n.url, body);
    assertError(r, statusCode, code, `${typeof body === 'string' ? body.slice(0, 80) : JSON.stringify(body).slice(0, 120)} on ${n.label()}`);
  }
}

it('BAD_REQUEST: malformed JSON, missing or empty query, wrong types, unknown command', async () => {
  const bad: unknown[] = [
    '{"command": "exec", "query": ',
    'not json at all',
    '',
    '[1, 2]',
    'null',
    '"SELECT 1"',
    { command: 'exec' },
    { command: 'query' },
    {},
    { command: 'exec', query: '' },
    { command: 'exec', query: '   ' },
    { command: 'exec', query: 42 },
    { command: 'exec', query: ['SELECT 1'] },
    { command: 'exec', query: null },
    { command: 42, query: 'SELECT 1' },
    { command: 'exec', query: 'SELECT ?', params: 'x' },
    { command: 'exec', query: 'SELECT ?', params: 7 },
    { command: 'exec', queries: 'SELECT 1' },
    { command: 'exec', queries: [] },
    { command: 'exec', queries: [42] },
    { command: 'exec', queries: [{ params: [1] }] },
    { command: 'exec', queries: ['SELECT 1'], transaction: 'yes' },
    { command: 'query', query: 'SELECT 1', min_index: 'soon' },
    { command: 'exec', query: "INSERT INTO users(username, email) VALUES ('x', 'x')", ack: 'everyone' },
    { command: 'query', query: 'SELECT 1', consistency: 'eventual-ish' },
    { command: 'drop', query: 'SELECT 1' },
    { command: 'EXECUTE', query: 'SELECT 1' },
  ];
  for (const body of bad) await expectEverywhere(body, 400, 'BAD_REQUEST');
});

it('SQL_SYNTAX: text that does not parse, with SQLite or parser detail in the message', async () => {
  for (const sql of ['SELEC 1', 'INSERT INTO users VALUES (', 'SELECT * FROM', 'CREATE TABLE (x)']) {
    for (const n of cluster().nodes) {
      const r = await exec(n, sql);
      assertError(r, 400, 'SQL_SYNTAX', `${sql} on ${n.label()}`);
      assert.ok(r.body.error.message.length > 5, `message too thin: ${r.text}`);
    }
  }
  // A parameterized statement parses (paramTypes); a typo next to it still does not.
  assertError(await query(cluster().slaves[0]!, 'SELECT * FORM users WHERE id = ?', [1]), 400, 'SQL_SYNTAX');
});

it('SQL_ERROR: SQLite refuses it (no such table / column)', async () => {
  for (const n of cluster().nodes) {
    let r = await query(n, 'SELECT * FROM no_such_table');
    assertError(r, 400, 'SQL_ERROR', `read on ${n.label()}`);
    assert.match(r.body.error.message, /no such table/);
    r = await exec(n, 'INSERT INTO no_such_table VALUES (1)');
    assertError(r, 400, 'SQL_ERROR', `write on ${n.label()}`);
    assert.match(r.body.error.message, /no such table/);
    r = await exec(n, "UPDATE users SET nope = 1 WHERE username = 'ana'");
    assertError(r, 400, 'SQL_ERROR', `bad column on ${n.label()}`);
    assert.match(r.body.error.message, /no such column/);
  }
});

it('READ_ONLY_COMMAND: a write sent as a query', async () => {
  await expectEverywhere({ command: 'query', query: "INSERT INTO users(username, email) VALUES ('ro', 'ro')" }, 400, 'READ_ONLY_COMMAND');
  await expectEverywhere({ command: 'query', query: "SELECT 1; DELETE FROM users WHERE username = 'ana'" }, 400, 'READ_ONLY_COMMAND');
});

it('TRANSACTION_CONTROL: BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE alone', async () => {
  for (const sql of ['BEGIN', 'BEGIN IMMEDIATE', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT sp', 'RELEASE sp']) {
    await expectEverywhere({ command: 'exec', query: sql }, 400, 'TRANSACTION_CONTROL');
  }
});

it('CONSTRAINT: UNIQUE, NOT NULL and CHECK violations answer 409 on every node', async () => {
  await expectEverywhere({ command: 'exec', query: "INSERT INTO users(username, email) VALUES ('ana', 'dup@example.com')" }, 409, 'CONSTRAINT');
  await expectEverywhere({ command: 'exec', query: 'INSERT INTO users(username, email) VALUES (?, ?)', params: ['nn', null] }, 409, 'CONSTRAINT');
  await expectEverywhere({ command: 'exec', query: "UPDATE users SET age = -1 WHERE username = 'bo'" }, 409, 'CONSTRAINT');
  await expectEverywhere(
    { queries: ["INSERT INTO users(username, email) VALUES ('t1', 't1')", "INSERT INTO users(username, email) VALUES ('t1', 't2')"], transaction: true },
    409,
    'CONSTRAINT',
  );
});

it('SCHEMA_ON_SLAVE: DDL on a slave, naming the master', async () => {
  for (const s of cluster().slaves) {
    const r = await exec(s, 'CREATE TABLE IF NOT EXISTS t_slave (x)');
    assertError(r, 403, 'SCHEMA_ON_SLAVE', s.label());
    assert.equal(r.body.error.master, cluster().master.url);
    assert.ok(r.body.error.message.length > 0);
  }
});

it('FORBIDDEN_STATEMENT: ATTACH, DETACH, load_extension, VACUUM INTO, internal tables, state PRAGMAs, TEMP objects', async () => {
  const attached = join(cluster().dataDir, 'attached.db');
  const vacuumed = join(cluster().dataDir, 'vacuumed.db');
  const forbidden: Array<{ command?: string; query: string }> = [
    { query: `ATTACH DATABASE '${attached}' AS other` },
    { query: 'DETACH DATABASE other' },
    { command: 'query', query: "SELECT load_extension('/nonexistent/ext')" },
    { query: "SELECT load_extension('/nonexistent/ext')" },
    { command: 'query', query: "SELECT 1 FROM users WHERE load_extension('x') IS NULL" },
    { query: `VACUUM INTO '${vacuumed}'` },
    { query: 'INSERT INTO _sqlfleet_log DEFAULT VALUES' },
    { query: 'DELETE FROM _sqlfleet_log' },
    { query: 'DROP TABLE _sqlfleet_log' },
    { query: 'PRAGMA journal_mode=DELETE' },
    { query: 'CREATE TEMP TABLE scratch (x)' },
    { query: 'CREATE TEMPORARY VIEW tv AS SELECT 1' },
    { query: "INSERT INTO users(username, email) VALUES ('ok', 'ok'); ATTACH DATABASE ':memory:' AS m" },
  ];
  // Bytes 18-19 of a SQLite file header are its read/write format versions: 2 means WAL.
  const journalMode = (): number[][] =>
    cluster().nodes.map((n) => [...readFileSync(join(cluster().dataDir, `node-${n.id}.db`)).subarray(18, 20)]);
  const modeBefore = journalMode();
  for (const body of forbidden) await expectEverywhere({ command: 'exec', ...body }, 403, 'FORBIDDEN_STATEMENT');
  assert.ok(!existsSync(attached), 'ATTACH created a file');
  assert.ok(!existsSync(vacuumed), 'VACUUM INTO created a file');
  assert.deepEqual(journalMode(), modeBefore, 'journal_mode changed');
});

it('is_master: true from a client is refused 403; false changes nothing', async () => {
  for (const n of cluster().nodes) {
    const r = await post(n.url, { command: 'exec', query: "INSERT INTO users(username, email) VALUES ('im', 'im')", is_master: true });
    assertError(r, 403, 'FORBIDDEN', `is_master:true on ${n.label()}`);
    const read = await post(n.url, { command: 'query', query: 'SELECT count(*) FROM users', is_master: false });
    assert.deepEqual(rows(read), [[2]], `is_master:false read on ${n.label()}`);
  }
});

it('UNAUTHORIZED: internal endpoints without or with a wrong cluster token', async () => {
  const { master, slaves, dataDir } = cluster();
  const token = readFileSync(join(dataDir, 'cluster.token'), 'utf8').trim();
  assert.ok(token.length >= 16, 'cluster token too short');
  const targets: Array<[TestNode, string]> = [
    [master, '/internal/heartbeat'],
    ...slaves.map((s): [TestNode, string] => [s, '/internal/append']),
  ];
  const body = { from: 99, epoch: 1, entries: [], url: 'http://127.0.0.1:1', applied_index: 0 };
  const variants: Array<Record<string, string>> = [
    {},
    { authorization: 'Bearer wrong-token' },
    { authorization: `Bearer ${token}x` },
    { authorization: token },
  ];
  for (const [n, path] of targets) {
    for (const headers of variants) {
      const r = await post(`${n.url}${path}`, body, { headers });
      assertError(r, 401, 'UNAUTHORIZED', `${path} on ${n.label()} with ${JSON.stringify(headers)}`);
    }
  }
  // The right token gets past authentication (whatever the endpoint then says about this body).
  const r = await post(`${slaves[0]!.url}/internal/append`, { nonsense: true }, { headers: { authorization: `Bearer ${token}` } });
  assert.notEqual(r.status, 401, `right token refused: ${r.text}`);
  assert.ok(!r.text.includes('    at '), `stack trace: ${r.text}`);
});

it('PAYLOAD_TOO_LARGE: a body over --max-body', async () => {
  const big = 'x'.repeat(MAX_BODY * 2);
  await expectEverywhere({ command: 'exec', query: 'INSERT INTO users(username, email) VALUES (?, ?)', params: ['big', big] }, 413, 'PAYLOAD_TOO_LARGE');
  // Just under the limit is fine (read only, so the seeded data stays as it is).
  const fits = 'y'.repeat(MAX_BODY - 200);
  for (const n of cluster().nodes) {
    assert.deepEqual(rows(await query(n, 'SELECT length(?)', [fits])), [[fits.length]]);
  }
});

it('TIMEOUT: a read with min_index far ahead answers 504 after --read-wait', async () => {
  const { nodes } = cluster();
  for (const n of nodes) {
    const idx = (await status(n)).applied_index as number;
    const r = await post(n.url, { command: 'query', query: 'SELECT 1', min_index: idx + 1_000_000 });
    assertError(r, 504, 'TIMEOUT', `min_index on ${n.label()}`);
    // A slave waits for replication up to --read-wait (the master may know at once it never will).
    if (n.role === 'slave') assert.ok(r.ms >= READ_WAIT_MS * 0.8, `answered after ${r.ms} ms, before --read-wait ${READ_WAIT_MS}`);
    assert.ok(r.ms < 5_000, `answered after ${r.ms} ms`);
    // A min_index already reached is answered at once.
    assert.deepEqual(rows(await post(n.url, { command: 'query', query: 'SELECT 1', min_index: idx })), [[1]]);
  }
});

it('unknown routes answer JSON errors without stack traces', async () => {
  for (const n of cluster().nodes) {
    const r = await get(`${n.url}/no/such/route`);
    assert.equal(r.status, 404);
    assert.equal(r.body?.ok, false);
    assert.ok(!r.text.includes('    at '));
  }
});

it('after all the bad requests nothing changed, every node serves, writes work and checksums agree', async () => {
  const { master, slaves, nodes } = cluster();
  assert.deepEqual(await checksums(nodes), seeded, 'a refused request changed a node');
  for (const n of nodes) assert.equal((await get(`${n.url}/health`)).status, 200);
  ok(await exec(master, "INSERT INTO users(username, email) VALUES ('after1', 'a1')"));
  const w = ok(await exec(slaves[1]!, "INSERT INTO users(username, email) VALUES ('after2', 'a2')"));
  await waitForIndex(nodes, w.index);
  const sum = await assertSameChecksums(nodes);
  assert.notDeepEqual(sum, seeded[0]);
  for (const n of nodes) assert.deepEqual(rows(await query(n, 'SELECT count(*) FROM users')), [[4]]);
});

// Destructive: kills the master, so it runs last.
it('MASTER_UNAVAILABLE: a write to a slave after SIGKILL of the master answers 503 quickly; reads still work', async () => {
  const { master, slaves } = cluster();
  await master.kill('SIGKILL');
  for (const s of slaves) {
    const r = await exec(s, "INSERT INTO users(username, email) VALUES ('orphan', 'o')");
    assertError(r, 503, 'MASTER_UNAVAILABLE', `write on ${s.label()}`);
    assert.ok(r.ms < 2_500, `MASTER_UNAVAILABLE took ${Math.round(r.ms)} ms`);
    const strong = await post(s.url, { command: 'query', query: 'SELECT 1', consistency: 'strong' });
    assertError(strong, 503, 'MASTER_UNAVAILABLE', `strong read on ${s.label()}`);
    assert.ok(strong.ms < 2_500, `strong read took ${Math.round(strong.ms)} ms`);
    // Local reads do not need the master.
    assert.deepEqual(rows(await query(s, 'SELECT count(*) FROM users')), [[4]], `local read on ${s.label()}`);
  }
});
