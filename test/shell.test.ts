// Issue 7.5: the terminal shell (scripts/shell.ts). Statements are piped into it on stdin
// against a real cluster; we read the printed tables and "CODE: message" error lines.

import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { formatTable, loadHistory, saveHistory, splitStatements } from '../scripts/shell.js';
import { REPO_ROOT, clusterTest, runProcess, startCluster, tempDir, waitForIndex, type Cluster, type ProcessRun } from './helpers/cluster.js';

let c: Cluster | undefined;
const it = clusterTest(() => c);
const cluster = (): Cluster => {
  assert.ok(c, 'cluster not started');
  return c;
};
const historyDir = tempDir('sqlfleet-shell-');

before(async () => {
  c = await startCluster({ slaves: 1 });
});

after(async () => {
  await c?.stop();
  rmSync(historyDir, { recursive: true, force: true });
});

/** Runs the shell with `args`, writes `input` to its stdin and closes it. */
function shell(args: string[], input: string, viaNpm = false): Promise<ProcessRun> {
  const cmd = viaNpm ? 'npm' : process.execPath;
  const argv = viaNpm ? ['run', '-s', 'shell', '--', ...args] : ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'shell.ts'), ...args];
  return runProcess(cmd, argv, { input, env: { SQLFLEET_HISTORY: join(historyDir, 'history') }, timeoutMs: 30_000 });
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}

test('statements end at ";" outside quotes, identifiers and comments; triggers at END;', () => {
  assert.deepEqual(splitStatements('SELECT 1; SELECT 2'), { statements: ['SELECT 1;'], rest: ' SELECT 2' });
  assert.deepEqual(splitStatements("INSERT INTO t VALUES ('a;b', \"c;\", [d;]); -- x;\n"), {
    statements: ["INSERT INTO t VALUES ('a;b', \"c;\", [d;]);"],
    rest: '',
  });
  assert.deepEqual(splitStatements("SELECT 'it''s;\n"), { statements: [], rest: "SELECT 'it''s;\n" });
  assert.deepEqual(splitStatements('/* ; */ ;;  -- only comments;\n'), { statements: [], rest: '' });
  const trigger = 'CREATE TRIGGER tr AFTER INSERT ON t BEGIN\n  INSERT INTO u VALUES (1);\n';
  assert.deepEqual(splitStatements(trigger), { statements: [], rest: trigger });
  assert.deepEqual(splitStatements(`${trigger}END;`).statements, [`${trigger}END;`]);
});

test('tables are aligned, numbers right-aligned, NULL shown', () => {
  assert.equal(
    formatTable(['id', 'name', 'n'], [[1, 'ana', null], [10, 'a\nb', 2.5]]),
    ['+----+------+------+', '| id | name | n    |', '+----+------+------+', '|  1 | ana  | NULL |', '| 10 | a\\nb |  2.5 |', '+----+------+------+'].join('\n'),
  );
});

test('history round-trips through its file, oldest line first', () => {
  const file = join(historyDir, 'roundtrip');
  assert.deepEqual(loadHistory(file), []);
  saveHistory(file, ['SELECT 2;', 'SELECT 1;']);
  assert.deepEqual(loadHistory(file), ['SELECT 2;', 'SELECT 1;']);
});

it('piped statements on the master: multi-line SQL, tables, dot-commands and errors', async () => {
  const { master } = cluster();
  const input = [
    'CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT);',
    "INSERT INTO users(username, email)",
    "  VALUES ('ana', 'a;x@example.com');   -- ';' inside quotes does not end it",
    'SELECT id, username, email',
    '  FROM users;',
    '.tables',
    '.schema users',
    'SELEC 1;',
    'SELECT 9007199254740993 AS big',
    '',
  ].join('\n');
  const r = await shell([master.url], input);
  assert.deepEqual(lines(r.stdout), [
    '0 rows affected (index 1, replicated to [1])',
    '1 row affected (index 2, replicated to [1])',
    '+----+----------+-----------------+',
    '| id | username | email           |',
    '+----+----------+-----------------+',
    '|  1 | ana      | a;x@example.com |',
    '+----+----------+-----------------+',
    'users',
    'CREATE TABLE users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT);',
    // The last statement had no ';': run at end of input, as sqlite3 does; the integer stays exact.
    '+------------------+',
    '| big              |',
    '+------------------+',
    '| 9007199254740993 |',
    '+------------------+',
  ], r.stdout);
  assert.equal(lines(r.stderr).length, 1, r.stderr);
  assert.match(r.stderr, /^SQL_SYNTAX: near "SELEC": syntax error/);
  assert.equal(r.code, 1, 'piped input with a failure exits 1');
});

it('on a slave: writes are forwarded, schema changes refused with their code, .status lists the nodes', async () => {
  const { master, slaves, nodes } = cluster();
  await waitForIndex(nodes, 2);
  const slave = slaves[0]!;
  const input = [
    "INSERT INTO users(username) VALUES ('bob');",
    "INSERT INTO users(username) VALUES ('bob');",
    'CREATE TABLE t (a);',
    'SELECT username FROM users ORDER BY id;',
    '.status',
    '.nope',
  ].join('\n');
  const r = await shell([slave.url], input);
  const out = lines(r.stdout);
  assert.equal(out[0], '1 row affected (index 3, replicated to [1])');
  assert.deepEqual(out.slice(1, 6), ['+----------+', '| username |', '+----------+', '| ana      |', '| bob      |']);
  assert.equal(out[7], `node 1 (slave) at ${slave.url}, applied index 3, master ${master.url}`);
  const table = out.slice(8).join('\n');
  assert.match(table, /\| id \| role\s+\| url\s+\| state \| applied \| lag \| data check\s+\|/);
  // Other nodes' indexes on a slave come from its last heartbeat answer and may lag by one beat.
  for (const n of nodes) assert.match(table, new RegExp(`\\|\\s+${n.id} \\| ${n.role}\\s+\\| ${n.url.replace(/\./g, '\\.')} \\| up\\s+\\|\\s+\\d+ \\|`));
  const errors = lines(r.stderr);
  assert.equal(errors.length, 3, r.stderr);
  assert.match(errors[0]!, /^CONSTRAINT: UNIQUE constraint failed: users\.username/);
  assert.match(errors[1]!, new RegExp(`^SCHEMA_ON_SLAVE: .*${master.url.replace(/\./g, '\\.')}`));
  assert.match(errors[2]!, /^BAD_COMMAND: unknown command "\.nope"/);
  assert.equal(r.code, 1);
});

it('npm run shell -- :port: a clean piped session exits 0; .quit stops reading', async () => {
  const r = await shell([`:${new URL(cluster().master.url).port}`], 'SELECT count(*) AS n FROM users;\n.quit\nSELECT 1;\n', true);
  assert.deepEqual(lines(r.stdout), ['+---+', '| n |', '+---+', '| 2 |', '+---+']);
  assert.equal(r.stderr, '');
  assert.equal(r.code, 0);
});

it('an unreachable node is reported as UNREACHABLE, not a stack trace', async () => {
  const port = await new Promise<number>((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const p = (srv.address() as { port: number }).port;
      srv.close(() => resolve(p));
    });
  });
  const r = await shell([`http://127.0.0.1:${port}`, '--timeout', '2000'], 'SELECT 1;\n');
  assert.match(r.stderr, new RegExp(`^UNREACHABLE: cannot reach http://127\\.0\\.0\\.1:${port}: ECONNREFUSED\\n$`));
  assert.equal(r.stdout, '');
  assert.equal(r.code, 1);
});
