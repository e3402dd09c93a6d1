// Issue 5 hardening: client authentication (--auth users file, roles read < write < admin,
// HTTP Basic and Bearer tokens), identity forwarded by slaves, secure defaults (a
// non-loopback --host needs --auth or --insecure) and the cluster token file's mode.

import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { TestNode, assertError, checksums, clusterTest, ok, tempDir, useCluster, waitForIndex, type Reply } from './helpers/cluster.js';
import { PATIENT, READY_TIMEOUT_MS, basic, bearer, runCli, send } from './helpers/hardening.js';

const PW = { reader: 'r3ad-only pass', writer: 'wr1te:with colon', admin: 'adm1n-ünïcode' } as const;

let root = '';
let usersFile = '';
const creds = {
  hashes: {} as Record<keyof typeof PW, string>,
  adminToken: '',
  adminEntry: '',
  writerToken: '',
  writerEntry: '',
};

const { cluster, current } = useCluster(async () => {
  root = tempDir('sqlfleet-auth-');
  const [reader, writer, admin, adminTok, writerTok] = await Promise.all([
    hashPassword(PW.reader),
    hashPassword(PW.writer),
    hashPassword(PW.admin),
    newToken(),
    newToken(),
  ]);
  creds.hashes = { reader, writer, admin };
  creds.adminToken = adminTok.token;
  creds.adminEntry = adminTok.tokens_entry;
  creds.writerToken = writerTok.token;
  creds.writerEntry = writerTok.tokens_entry;
  usersFile = join(root, 'users.json');
  writeFileSync(
    usersFile,
    JSON.stringify({
      users: [
        { username: 'reader', password: reader, role: 'read' },
        { username: 'writer', password: writer, tokens: [writerTok.tokens_entry], role: 'write' },
        { username: 'admin', password: admin, tokens: [adminTok.tokens_entry], role: 'admin' },
      ],
    }),
  );
  const dataDir = join(root, 'data');
  mkdirSync(dataDir);
  // --log-level debug: a successful write's audit line (user, SQL) is logged at debug only.
  return { slaves: 1, dataDir, extraArgs: ['--auth', usersFile, '--log-level', 'debug'], headers: bearer(creds.adminToken), ...PATIENT };
});
const it = clusterTest(current, undefined, { timeout: 90_000, logLines: 40 });
const master = () => cluster().master;
const slave = () => cluster().slaves[0]!;
const asReader = () => basic('reader', PW.reader);
const asWriter = () => basic('writer', PW.writer);
const asAdmin = () => bearer(creds.adminToken);
const clusterToken = (): string => readFileSync(join(cluster().dataDir, 'cluster.token'), 'utf8').trim();

/** POST / with a JSON body and headers. */
const sql = (url: string, query: string, headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Promise<Reply> =>
  send(url, { body: { query, ...extra }, headers });

async function hashPassword(pw: string): Promise<string> {
  const r = await runCli(['hash-password'], { stdin: `${pw}\n` });
  assert.equal(r.code, 0, `hash-password exited ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

async function newToken(): Promise<{ token: string; tokens_entry: string }> {
  const r = await runCli(['new-token']);
  assert.equal(r.code, 0, `new-token exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim());
}

after(async () => {
  if (root) rmSync(root, { recursive: true, force: true });
});

it('hash-password (stdin) and new-token give users-file entries; nothing in plain text', async () => {
  for (const [user, h] of Object.entries(creds.hashes)) {
    assert.match(h, /^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/, `${user} hash: ${h}`);
    assert.ok(!h.includes(PW[user as keyof typeof PW]), 'the hash contains the password');
  }
  assert.notEqual(creds.hashes.reader, await hashPassword(PW.reader), 'hashes are salted');
  assert.match(creds.adminEntry, /^sha256:[0-9a-f]{64}$/);
  assert.ok(creds.adminToken.length >= 24 && !creds.adminEntry.includes(creds.adminToken));
  assert.notEqual(creds.adminToken, creds.writerToken);
  const empty = await runCli(['hash-password'], { stdin: '' });
  assert.notEqual(empty.code, 0, 'hash-password accepted an empty password');
});

it('admin (Bearer token): DDL 200 on the master; DDL on the slave is still SCHEMA_ON_SLAVE', async () => {
  const r = ok(await sql(master().url, 'CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT, who TEXT)', asAdmin()), 'admin DDL');
  await waitForIndex(cluster().nodes, r.index, 20_000);
  assertError(await sql(slave().url, 'CREATE TABLE other (a)', asAdmin()), 403, 'SCHEMA_ON_SLAVE', 'admin DDL on the slave');
  // The admin's password works as well as the token.
  ok(await sql(master().url, 'CREATE INDEX items_v ON items (v)', basic('admin', PW.admin)), 'admin DDL with Basic');
});

it('no credentials: 401 with a WWW-Authenticate: Basic challenge, on master and slave', async () => {
  for (const n of cluster().nodes) {
    for (const r of [await sql(n.url, 'SELECT 1'), await sql(n.url, "INSERT INTO items(v) VALUES ('anon')")]) {
      assertError(r, 401, 'UNAUTHORIZED', `${n.label()} without credentials`);
      const challenge = r.headers.get('www-authenticate') ?? '';
      assert.match(challenge, /^Basic\b/, `${n.label()} WWW-Authenticate: "${challenge}"`);
    }
  }
});

it('/status, /checksum and /metrics need credentials; /health is open', async () => {
  for (const n of cluster().nodes) {
    for (const path of ['/status', '/checksum', '/metrics']) {
      const r = await send(`${n.url}${path}`);
      assertError(r, 401, 'UNAUTHORIZED', `${n.label()} GET ${path} without credentials`);
      assert.match(r.headers.get('www-authenticate') ?? '', /^Basic\b/);
      const withRead = await send(`${n.url}${path}`, { headers: asReader() });
      assert.equal(withRead.status, 200, `${n.label()} GET ${path} as reader: ${withRead.text.slice(0, 200)}`);
    }
    const h = await send(`${n.url}/health`);
    assert.equal(h.status, 200, `${n.label()} /health without credentials: ${h.text}`);
  }
});

it('wrong credentials: 401 (password, user, token, malformed headers, the stored digest)', async () => {
  const wrong: Array<[string, Record<string, string>]> = [
    ['wrong password', basic('reader', 'not-the-password')],
    ['password of another user', basic('reader', PW.writer)],
    ['unknown user', basic('mallory', PW.reader)],
    ['empty password', basic('reader', '')],
    ['the stored hash as password', basic('reader', creds.hashes.reader)],
    ['wrong token', bearer('not-a-token')],
    ['the stored sha256 entry as token', bearer(creds.adminEntry)],
    ['the token hex digest as token', bearer(creds.adminEntry.slice('sha256:'.length))],
    ['the token with one more character', bearer(`${creds.adminToken}x`)],
    ['Basic without a colon', { authorization: `Basic ${Buffer.from('reader').toString('base64')}` }],
    ['Basic with garbage', { authorization: 'Basic !!!not base64!!!' }],
    ['unknown scheme', { authorization: `Digest username="reader"` }],
    ['bare token, no scheme', { authorization: creds.adminToken }],
    ['empty Bearer', { authorization: 'Bearer' }],
  ];
  for (const [what, headers] of wrong) {
    for (const n of cluster().nodes) {
      assertError(await sql(n.url, 'SELECT 1', headers), 401, 'UNAUTHORIZED', `${what} on ${n.label()}`);
    }
  }
});

it('read role (Basic): reads 200 on both nodes; writes and DDL 403 FORBIDDEN; nothing written', async () => {
  const before = await checksums(cluster().nodes);
  for (const n of cluster().nodes) {
    ok(await sql(n.url, 'SELECT count(*) FROM items', asReader()), `reader read on ${n.label()}`);
    ok(await sql(n.url, 'SELECT 1', asReader(), { consistency: 'strong' }), `reader strong read on ${n.label()}`);
    for (const write of ["INSERT INTO items(v) VALUES ('by reader')", "UPDATE items SET v = 'r'", 'DELETE FROM items']) {
      assertError(await sql(n.url, write, asReader()), 403, 'FORBIDDEN', `reader "${write}" on ${n.label()}`);
    }
    assertError(await send(n.url, { body: { queries: ['SELECT 1', "INSERT INTO items(v) VALUES ('x')"] }, headers: asReader() }), 403, 'FORBIDDEN', `reader batch on ${n.label()}`);
  }
  assertError(await sql(master().url, 'CREATE TABLE by_reader (a)', asReader()), 403, 'FORBIDDEN', 'reader DDL');
  assertError(await sql(master().url, 'DROP TABLE items', asReader()), 403, 'FORBIDDEN', 'reader DROP');
  assert.deepEqual(await checksums(cluster().nodes), before, 'a refused request changed a replica');
});

it('write role: writes 200 on the master and via the slave (forwarded with identity); DDL 403', async () => {
  const w1 = ok(await sql(master().url, "INSERT INTO items(v, who) VALUES ('m-basic', 'writer')", asWriter()), 'writer on master (Basic)');
  const w2 = ok(await sql(master().url, "INSERT INTO items(v, who) VALUES ('m-bearer', 'writer')", bearer(creds.writerToken)), 'writer on master (Bearer)');
  assert.ok(w2.index > w1.index);
  const marker = `via-slave-${Date.now()}`;
  const fw = ok(await sql(slave().url, `INSERT INTO items(v, who) VALUES ('${marker}', 'writer')`, asWriter()), 'writer via slave');
  assert.ok(typeof fw.forwarded_to === 'string' && fw.forwarded_to.length > 0, `not forwarded: ${JSON.stringify(fw)}`);
  assert.equal(fw.node, 1);
  // Answered once applied on the slave: it reads its own write there.
  const back = ok(await sql(slave().url, `SELECT count(*) FROM items WHERE v = '${marker}'`, asReader()), 'read back on slave');
  assert.deepEqual(back.results[0].rows, [[1]]);
  // The master executed it as "writer", not as the cluster.
  const line = master()
    .logs()
    .split('\n')
    .filter((l) => l.startsWith('{') && l.includes(marker))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((o) => o.status === 200 || o.index !== undefined);
  assert.ok(line, `no master log line for the forwarded write:\n${master().tail(30)}`);
  assert.equal(line.user, 'writer', `master log: ${JSON.stringify(line)}`);
  for (const n of cluster().nodes) {
    assertError(await sql(n.url, 'CREATE TABLE by_writer (a)', asWriter()), 403, 'FORBIDDEN', `writer DDL on ${n.label()}`);
  }
  assertError(await sql(master().url, 'ALTER TABLE items ADD COLUMN z', bearer(creds.writerToken)), 403, 'FORBIDDEN', 'writer ALTER');
  await waitForIndex(cluster().nodes, fw.index, 20_000);
  const sums = await checksums(cluster().nodes);
  assert.deepEqual(sums[1], sums[0], 'replicas differ after the writes');
});

it('the master checks a forwarded identity (cluster token + x-sqlfleet-user)', async () => {
  const token = clusterToken();
  const write = "INSERT INTO items(v) VALUES ('forwarded')";
  const asNode = (user: string) => ({ ...bearer(token), 'x-sqlfleet-user': user });
  assertError(await sql(master().url, write, asNode('reader')), 403, 'FORBIDDEN', 'forwarded as reader');
  assertError(await sql(master().url, write, asNode('mallory')), 403, 'FORBIDDEN', 'forwarded as an unknown user');
  assertError(await sql(master().url, 'CREATE TABLE fwd (a)', asNode('writer')), 403, 'FORBIDDEN', 'forwarded DDL as writer');
  // The header means nothing without the cluster token.
  assertError(await sql(master().url, write, { 'x-sqlfleet-user': 'admin' }), 401, 'UNAUTHORIZED', 'x-sqlfleet-user without a token');
  assertError(await sql(master().url, write, { ...bearer('wrong'), 'x-sqlfleet-user': 'admin' }), 401, 'UNAUTHORIZED', 'x-sqlfleet-user with a wrong token');
  assertError(await sql(master().url, write, { ...asReader(), 'x-sqlfleet-user': 'admin' }), 403, 'FORBIDDEN', 'reader claiming admin');
  ok(await sql(master().url, write, asNode('writer')), 'forwarded as writer');
});

it('DELETE /nodes/:id and POST /nodes/:id/resync need admin', async () => {
  const del = (id: number, headers: Record<string, string>) => send(`${master().url}/nodes/${id}`, { method: 'DELETE', headers });
  const resync = (id: number, headers: Record<string, string>) => send(`${master().url}/nodes/${id}/resync`, { method: 'POST', headers });
  assertError(await del(1, {}), 401, 'UNAUTHORIZED', 'DELETE without credentials');
  assertError(await del(1, asWriter()), 403, 'FORBIDDEN', 'DELETE as writer');
  assertError(await del(1, bearer(creds.writerToken)), 403, 'FORBIDDEN', 'DELETE as writer (token)');
  assertError(await del(1, asReader()), 403, 'FORBIDDEN', 'DELETE as reader');
  assertError(await resync(1, asWriter()), 403, 'FORBIDDEN', 'resync as writer');
  assertError(await resync(1, {}), 401, 'UNAUTHORIZED', 'resync without credentials');
  // An admin passes the check: an id that is not a member is 404 (and node 1 stays).
  assertError(await del(99, asAdmin()), 404, 'NOT_FOUND', 'DELETE of a non-member as admin');
  const s = await send(`${master().url}/status`, { headers: asAdmin() });
  assert.ok((s.body.nodes as Array<{ id: number }>).some((n) => n.id === 1), `node 1 removed: ${s.text}`);
});

it('the cluster token file is mode 0600', async () => {
  const mode = statSync(join(cluster().dataDir, 'cluster.token')).mode & 0o777;
  assert.equal(mode, 0o600, `cluster.token mode is ${mode.toString(8)}`);
});

it('a users file with a plain-text password (or other mistakes) refuses to start', async () => {
  const write = (name: string, doc: unknown): string => {
    const f = join(root, name);
    writeFileSync(f, typeof doc === 'string' ? doc : JSON.stringify(doc));
    return f;
  };
  const cases: Array<[string, string, RegExp]> = [
    ['plain-text password', write('plain.json', { users: [{ username: 'ana', password: 'hunter2', role: 'admin' }] }), /plain text|scrypt/i],
    ['plain-text token', write('plain-token.json', { users: [{ username: 'ana', tokens: ['my-token'], role: 'admin' }] }), /tokens|sha256/i],
    ['unknown role', write('role.json', { users: [{ username: 'ana', password: creds.hashes.admin, role: 'root' }] }), /role/i],
    ['not JSON', write('broken.json', '{"users": ['), /--auth/],
    ['missing file', join(root, 'does-not-exist.json'), /--auth|ENOENT|no such file/i],
  ];
  const runs = await Promise.all(
    cases.map(([, file], i) => runCli(['master', '0', '--port', '0', '--data-dir', join(root, `refuse-${i}`), '--auth', file])),
  );
  runs.forEach((r, i) => {
    const [what, , message] = cases[i]!;
    assert.equal(r.started, false, `${what}: the node started\n${r.stdout}`);
    assert.equal(r.timedOut, false, `${what}: neither started nor exited\n${r.stdout}\n${r.stderr}`);
    assert.notEqual(r.code, 0, `${what}: exit code ${r.code}`);
    assert.match(r.stderr, message, `${what}: stderr does not name the problem: ${r.stderr}`);
  });
  assert.match(runs[0]!.stderr, /password/i);
});

it('--host 0.0.0.0 without --auth refuses to start and says why (--auth)', async () => {
  const r = await runCli(['master', '0', '--host', '0.0.0.0', '--port', '0', '--data-dir', join(root, 'open')]);
  assert.equal(r.started, false, `it started:\n${r.stdout}`);
  assert.notEqual(r.code, 0, `exit code ${r.code}`);
  assert.ok(r.stderr.includes('--auth'), `message does not mention --auth: ${r.stderr}`);
  assert.match(r.stderr, /--insecure/, `message does not mention --insecure: ${r.stderr}`);
});

it('--host 0.0.0.0 with --insecure starts (bound to 0.0.0.0, reached on 127.0.0.1)', async () => {
  const node = new TestNode({ role: 'master', id: 0, numSlaves: 0, readyTimeoutMs: READY_TIMEOUT_MS, dataDir: join(root, 'insecure'), extraArgs: ['--host', '0.0.0.0', '--insecure'] });
  try {
    await node.launch();
    assert.match(node.printedUrl, /^http:\/\/0\.0\.0\.0:\d+$/, `printed url ${node.printedUrl}`);
    assert.match(node.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const h = await send(`${node.url}/health`);
    assert.equal(h.status, 200, h.text);
    ok(await sql(node.url, 'SELECT 1'), 'read without credentials on an --insecure node');
  } catch (e) {
    process.stderr.write(node.tail(40));
    throw e;
  } finally {
    await node.kill();
  }
});

it('--host 0.0.0.0 with --auth starts and still demands credentials', async () => {
  const node = new TestNode({ role: 'master', id: 0, numSlaves: 0, readyTimeoutMs: READY_TIMEOUT_MS, dataDir: join(root, 'open-auth'), extraArgs: ['--host', '0.0.0.0', '--auth', usersFile] });
  try {
    await node.launch();
    assertError(await sql(node.url, 'SELECT 1'), 401, 'UNAUTHORIZED', 'no credentials on 0.0.0.0');
    ok(await sql(node.url, 'SELECT 1', asReader()), 'reader on 0.0.0.0');
  } catch (e) {
    process.stderr.write(node.tail(40));
    throw e;
  } finally {
    await node.kill();
  }
});
