// The shell and show-all against nodes started with --auth, and in pipes (issue 32, items 9
// and 15): `npm run shell` takes --user/--password/--token and http://user:pw@host like the
// other tools; `show-all | head -5` ends quietly; the shell exits 1 when a piped statement failed.
import assert from 'node:assert/strict';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { hashPassword, newToken } from '../src/auth/users.js';
import { credentials, normalizeUrl } from '../scripts/shell.js';
import { clusterTest, ok, post, runProcess, startCluster, tempDir, type Cluster, type ProcessRun } from './helpers/cluster.js';

let c: Cluster | undefined;
const it = clusterTest(() => c, undefined, { timeout: 90_000 });
const dir = tempDir('sqlfleet-shell-auth-');
const token = newToken();
const basic = `Basic ${Buffer.from('ana:s3cret pw').toString('base64')}`;

before(async () => {
  const users = join(dir, 'users.json');
  writeFileSync(users, JSON.stringify({ users: [{ username: 'ana', password: await hashPassword('s3cret pw'), tokens: [token.stored], role: 'admin' }] }));
  c = await startCluster({ slaves: 1, extraArgs: ['--auth', users], headers: { authorization: basic } });
});

after(async () => {
  await c?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** Runs `sh -c script` in the repository with a 60 s deadline. */
function sh(script: string, input = '', env: Record<string, string> = {}): Promise<ProcessRun> {
  return runProcess('sh', ['-c', script], { input, env: { SQLFLEET_HISTORY: join(dir, 'history'), ...env }, timeoutMs: 60_000 });
}

const shellCmd = (args: string) => `"${process.execPath}" --import tsx scripts/shell.ts --timeout 30000 ${args}`;

it('credentials: --user NAME:PASSWORD, --user with --password, --token, user:pw@ in the URL', async () => {
  assert.equal(credentials({ user: 'ana:s3cret pw' }), basic);
  assert.equal(credentials({ user: 'ana', password: 's3cret pw' }), basic);
  assert.equal(credentials({ token: 'T' }), 'Bearer T');
  assert.equal(credentials({}), undefined);
  assert.throws(() => credentials({ user: 'ana' }), /no password for user ana/);
  assert.deepEqual(normalizeUrl('https://ana@h:1'), { url: 'https://h:1', authorization: `Basic ${Buffer.from('ana:').toString('base64')}` });
  assert.throws(() => credentials({ user: 'ana:x', token: 'T' }), /not both/);
  assert.deepEqual(normalizeUrl('http://ana:s3cret%20pw@127.0.0.1:8080/'), { url: 'http://127.0.0.1:8080', authorization: basic });
  assert.deepEqual(normalizeUrl(':8081'), { url: 'http://127.0.0.1:8081' });
});

it('a node with --auth: the shell answers with every way of giving credentials, and refuses without', async () => {
  const url = new URL(c!.master.url);
  ok(await post(c!.master.url, { command: 'exec', query: 'CREATE TABLE IF NOT EXISTS t (x INTEGER)' }, { headers: { authorization: basic } }), 'create');
  const input = 'INSERT INTO t VALUES (1);\nSELECT count(*) AS n FROM t;\n';
  const ways: [string, string, Record<string, string>][] = [
    ['--user NAME:PASSWORD', shellCmd(`${url.href} --user 'ana:s3cret pw'`), {}],
    ['--user and --password', shellCmd(`${url.href} --user ana --password 's3cret pw'`), {}],
    ['--token', shellCmd(`${url.href} --token ${token.token}`), {}],
    ['user:pw@ in the URL', shellCmd(`'http://ana:s3cret%20pw@${url.host}'`), {}],
  ];
  for (const [how, cmd, env] of ways) {
    const r = await sh(cmd, input, env);
    assert.equal(r.code, 0, `${how}: ${r.stderr}`);
    assert.match(r.stdout, /1 row affected/, how);
    assert.doesNotMatch(r.stderr, /UNAUTHORIZED/, how);
  }
  const none = await sh(shellCmd(url.href), input);
  assert.equal(none.code, 1, 'a piped statement failed: exit status 1');
  assert.match(none.stderr, /^UNAUTHORIZED: /m);
});

it('show-all | head -5 and shell | head -2 end without an EPIPE error', async () => {
  // Enough output that show-all is still writing when head has gone.
  const rows = Array.from({ length: 400 }, (_, i) => [i, `row ${i} ${'x'.repeat(200)}`]);
  ok(await post(c!.master.url, { command: 'exec', query: 'CREATE TABLE IF NOT EXISTS big (id INTEGER PRIMARY KEY, v TEXT)' }, { headers: { authorization: basic } }), 'create big');
  ok(await post(c!.master.url, { queries: rows.map((p) => ({ query: 'INSERT OR REPLACE INTO big VALUES (?, ?)', params: p })), transaction: true }, { headers: { authorization: basic } }), 'fill big');
  const show = await sh(`npm run -s show-all -- --master-url ${c!.master.url} --user 'ana:s3cret pw' --max-rows 1000 | head -5`);
  assert.equal(show.code, 0, show.stderr);
  assert.equal(show.stdout.split('\n').length, 6, show.stdout + show.stderr);
  assert.doesNotMatch(show.stderr, /EPIPE|Error/, show.stderr);
  const q = Array.from({ length: 20 }, () => 'SELECT * FROM big;').join('\n');
  const shell = await sh(`${shellCmd(`${c!.master.url} --user 'ana:s3cret pw'`)} | head -2`, `${q}\n`);
  assert.doesNotMatch(shell.stderr, /EPIPE|Error/, shell.stderr);
});

it('show-all without credentials says the master refused them, not that it cannot be reached', async () => {
  const run = await sh(`"${process.execPath}" --import tsx scripts/show-all.ts --master-url ${c!.master.url}`);
  assert.equal(run.code, 1);
  const verdict = run.stdout.trimEnd().split('\n').pop() ?? '';
  assert.match(verdict, /^UNKNOWN: the master at \S+ refused: HTTP 401 UNAUTHORIZED .*\(give --user NAME:PASSWORD or --token\)$/);
  assert.doesNotMatch(verdict, /cannot reach/);
});

it('an API token never starts with "-", which a command line would read as an option', async () => {
  // base64url starts with '-' once in 64: this test ran into it as "--token argument is ambiguous".
  for (let i = 0; i < 5000; i++) assert.ok(!newToken().token.startsWith('-'));
});
