// rqlite's API under --auth (roles are the executor's: read < write < admin, load needs
// admin, a slave forwards with the user's identity), then rqlite's freshness and readiness
// once the master is gone.
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { after } from 'node:test';
import { hashPassword } from '../src/auth/users.js';
import { get, request, tempDir, useCluster, waitFor } from './helpers/cluster.js';
import { basic } from './helpers/hardening.js';

const rqlite = createRequire(import.meta.url)('rqlite-js') as {
  DataApiClient: new (
    hosts: string,
    options?: { authentication?: { username: string; password: string } },
  ) => {
    execute(sql: unknown, options?: Record<string, unknown>): Promise<{ hasError(): boolean; getFirstError(): Error | undefined }>;
    query(sql: unknown, options?: Record<string, unknown>): Promise<{ toArray(): Record<string, unknown>[] }>;
  };
};

const PW = { reader: 'r-secret', writer: 'w-secret', admin: 'a-secret' };
const as = (user: keyof typeof PW) => ({ authentication: { username: user, password: PW[user] } });
let root = '';

const { cluster, it } = useCluster(async () => {
  root = tempDir('sqlfleet-rqlite-auth-');
  const users = await Promise.all((['reader', 'writer', 'admin'] as const).map(async (u) => ({ username: u, password: await hashPassword(PW[u]), role: ({ reader: 'read', writer: 'write', admin: 'admin' } as const)[u] })));
  const file = join(root, 'users.json');
  writeFileSync(file, JSON.stringify({ users }));
  mkdirSync(join(root, 'data'));
  return { slaves: 1, dataDir: join(root, 'data'), extraArgs: ['--auth', file], headers: basic('admin', PW.admin) };
});
after(() => rmSync(root, { recursive: true, force: true }));

it('roles: reader reads, writer writes via the slave, schema and load need admin', async () => {
  const { master, slaves } = cluster();
  const slave = slaves[0]!;
  const admin = new rqlite.DataApiClient(slave.url, as('admin'));
  const r = await admin.execute('CREATE TABLE a (v TEXT)');
  assert.equal(r.hasError(), false, String(r.getFirstError()));
  const w = await new rqlite.DataApiClient(slave.url, as('writer')).execute([['INSERT INTO a VALUES(?)', 'w']]);
  assert.equal(w.hasError(), false, String(w.getFirstError()));
  const q = await new rqlite.DataApiClient(slave.url, as('reader')).query('SELECT v FROM a', { level: 'linearizable' });
  assert.deepEqual(q.toArray(), [{ v: 'w' }]);
  // The role check is the executor's: an HTTP 403, not a statement error.
  const denied = await request(`${slave.url}/db/execute`, { method: 'POST', body: '["INSERT INTO a VALUES(1)"]', headers: basic('reader', PW.reader) });
  assert.equal(denied.status, 403, denied.text);
  const ddl = await request(`${slave.url}/db/execute`, { method: 'POST', body: '["DROP TABLE a"]', headers: basic('writer', PW.writer) });
  assert.equal(ddl.status, 403, ddl.text);
  const anon = await get(`${master.url}/db/backup`, { headers: {} });
  assert.equal(anon.status, 401);
  const backup = await fetch(`${master.url}/db/backup`, { headers: basic('reader', PW.reader) });
  const file = new Uint8Array(await backup.arrayBuffer());
  assert.equal(backup.status, 200);
  for (const node of [master, slave]) {
    const l = await request(`${node.url}/db/load`, { method: 'POST', body: file, contentType: 'application/octet-stream', headers: basic('writer', PW.writer) });
    assert.equal(l.status, 403, `writer load on ${node.id}: ${l.text}`);
  }
  // An admin's load through the slave is checked on the master with the admin's identity.
  const l = await request(`${slave.url}/db/load`, { method: 'POST', body: file, contentType: 'application/octet-stream', headers: basic('admin', PW.admin) });
  assert.equal(l.status, 200, l.text);
});

it('with the master gone: freshness says stale read, level=none still answers, /readyz is 503', async () => {
  const { master, slaves } = cluster();
  const slave = slaves[0]!;
  const h = basic('reader', PW.reader);
  const q = encodeURIComponent('SELECT count(*) FROM a');
  const fresh = await get(`${slave.url}/db/query?level=none&freshness=1s&q=${q}`, { headers: h });
  assert.deepEqual(fresh.body.results[0].values, [[1]], fresh.text);
  await master.kill('SIGKILL');
  await waitFor(async () => (await get(`${slave.url}/status`, { headers: h })).body.master_reachable === false, { timeoutMs: 15_000 });
  const stale = await get(`${slave.url}/db/query?level=none&freshness=1s&q=${q}`, { headers: h });
  assert.equal(stale.status, 200);
  assert.deepEqual(stale.body, { error: 'stale read' });
  const none = await get(`${slave.url}/db/query?level=none&q=${q}`, { headers: h });
  assert.deepEqual(none.body.results[0].values, [[1]]);
  const weak = await get(`${slave.url}/db/query?q=${q}`, { headers: h });
  assert.equal(weak.status, 503, weak.text);
  const ready = await get(`${slave.url}/readyz`);
  assert.equal(ready.status, 503);
  assert.match(ready.text, /leader not contactable/);
});
