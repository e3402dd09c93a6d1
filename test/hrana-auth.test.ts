// Hrana under --auth (DESIGN §8): @libsql/client's authToken is an API token of --auth,
// over HTTP (Authorization: Bearer) and WebSocket (hello's jwt); roles apply, a slave relays
// a writer's transaction to the master on the user's behalf; no token, wrong token: refused;
// a user's open streams are bounded (--max-streams-per-user).
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import { createClient, type Client } from '@libsql/client';
import { newToken } from '../src/auth/users.js';
import { tempDir, useCluster } from './helpers/cluster.js';

const admin = newToken();
const writer = newToken();
const reader = newToken();
let root = '';
const clients: Client[] = [];

const { cluster, it } = useCluster(() => {
  root = tempDir('sqlfleet-hrana-auth-');
  const file = join(root, 'users.json');
  writeFileSync(
    file,
    JSON.stringify({
      users: [
        { username: 'admin', tokens: [admin.stored], role: 'admin' },
        { username: 'writer', tokens: [writer.stored], role: 'write' },
        { username: 'reader', tokens: [reader.stored], role: 'read' },
      ],
    }),
  );
  mkdirSync(join(root, 'data'));
  return { slaves: 1, dataDir: join(root, 'data'), extraArgs: ['--auth', file, '--max-streams-per-user', '3'], headers: { authorization: `Bearer ${admin.token}` } };
});
after(() => {
  clients.forEach((c) => c.close());
  rmSync(root, { recursive: true, force: true });
});

function client(url: string, authToken?: string): Client {
  const c = createClient({ url, ...(authToken ? { authToken } : {}) });
  clients.push(c);
  return c;
}

it('API tokens as authToken over http and ws; roles; relay on the user behalf', async () => {
  const { master, slaves } = cluster();
  await client(master.url, admin.token).execute('CREATE TABLE notes(x)');
  for (const node of [master, slaves[0]!]) {
    for (const url of [node.url, node.url.replace(/^http/, 'ws')]) {
      const w = client(url, writer.token);
      const tx = await w.transaction('write');
      await tx.execute({ sql: 'INSERT INTO notes VALUES (?)', args: [url] });
      await tx.commit();
      const r = client(url, reader.token);
      assert.equal((await r.execute({ sql: 'SELECT count(*) AS n FROM notes WHERE x = ?', args: [url] })).rows[0]!.n, 1);
      await assert.rejects(r.execute("INSERT INTO notes VALUES ('no')"), /role|FORBIDDEN/i, `reader writes on ${url}`);
      await assert.rejects(w.execute('DROP TABLE notes'), /role|FORBIDDEN/i, `writer drops on ${url}`);
      await assert.rejects(client(url).execute('SELECT 1'), /401|UNAUTHORIZED|credentials|auth/i, `no token on ${url}`);
      await assert.rejects(client(url, 'wrong').execute('SELECT 1'), /401|UNAUTHORIZED|credentials|auth/i, `wrong token on ${url}`);
    }
  }
});

it("--max-streams-per-user bounds a user's open streams; closing one frees its place", async () => {
  const { slaves } = cluster();
  const c = client(slaves[0]!.url, reader.token);
  const txs = [];
  for (let i = 0; i < 3; i++) {
    const tx = await c.transaction('read');
    await tx.execute('SELECT 1');
    txs.push(tx);
  }
  await assert.rejects(c.execute('SELECT 1'), /too many open streams|STREAMS_EXCEEDED/);
  // Another user is not affected.
  assert.equal((await client(slaves[0]!.url, writer.token).execute('SELECT 1 AS one')).rows[0]!.one, 1);
  await txs.pop()!.commit();
  assert.equal((await c.execute('SELECT 2 AS two')).rows[0]!.two, 2);
  for (const tx of txs) tx.close();
});
