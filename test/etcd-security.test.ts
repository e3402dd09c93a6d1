// etcd over TLS with client certificates and a user (issue 26): a real etcd serving HTTPS
// with --client-cert-auth and auth enabled (root + a user whose role may read and write only
// /sqlfleet/), certificates made with openssl as in test/tls.test.ts. Nodes given
// --etcd-ca/--etcd-cert/--etcd-key/--etcd-user and SQLFLEET_ETCD_PASSWORD elect a master and
// fail over; a node with a wrong password or a certificate from another CA never becomes
// master and says why in /status.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Etcd3, Range } from 'etcd3';
import { TestNode, exec, ok, printLogs, startCluster, status, tempDir, waitFor } from './helpers/cluster.js';
import { etcdSkip, startEtcd } from './helpers/etcd.js';

const HAVE_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const skip = etcdSkip() || (HAVE_OPENSSL ? false : 'openssl is not installed');
const PASSWORD = 'fleet-secret';

function makeCerts(dir: string): void {
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  for (const [name, cn] of [['ca', 'etcd test CA'], ['other-ca', 'some other CA']]) {
    openssl('req', '-x509', ...ec, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  }
  const leaf = (name: string, cn: string, ca: string, usage: string, san = '') => {
    openssl('req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`);
    writeFileSync(join(dir, `${name}.ext`), `${san}basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=${usage}\n`);
    openssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`);
  };
  leaf('server', '127.0.0.1', 'ca', 'serverAuth', 'subjectAltName=IP:127.0.0.1\n');
  leaf('client', 'sqlfleet', 'ca', 'clientAuth');
  leaf('rogue', 'sqlfleet', 'other-ca', 'clientAuth');
}

test('etcd over TLS with client certificates and a user: nodes elect and fail over; a wrong password or a certificate from another CA never leads and says why', { skip, timeout: 180_000 }, async () => {
  const dir = tempDir('sqlfleet-etcd-tls-');
  makeCerts(dir);
  const f = (n: string) => join(dir, n);
  const etcd = await startEtcd({ cert: f('server.crt'), key: f('server.key'), clientCa: f('ca.crt'), probe: { ca: f('ca.crt'), cert: f('client.crt'), key: f('client.key') } });
  // Auth on: root (required by etcd) and the user the nodes run as, limited to /sqlfleet/.
  const admin = new Etcd3({ hosts: etcd.url, credentials: { rootCertificate: readFileSync(f('ca.crt')), certChain: readFileSync(f('client.crt')), privateKey: readFileSync(f('client.key')) } });
  await admin.role('root').create().catch(() => undefined);
  await (await admin.user('root').create('root-secret')).addRole('root');
  const role = await admin.role('sqlfleet').create();
  await role.grant({ permission: 'Readwrite', range: Range.prefix('/sqlfleet/') });
  await (await admin.user('sqlfleet').create(PASSWORD)).addRole('sqlfleet');
  await admin.auth.authEnable();
  admin.close();

  const secure = ['--etcd', etcd.url, '--etcd-ca', f('ca.crt'), '--etcd-cert', f('client.crt'), '--etcd-key', f('client.key'), '--etcd-user', 'sqlfleet'];
  let c: Awaited<ReturnType<typeof startCluster>> | null = null;
  const extra: TestNode[] = [];
  try {
    c = await startCluster({ slaves: 2, extraArgs: secure, env: { SQLFLEET_ETCD_PASSWORD: PASSWORD }, upTimeoutMs: 30_000 });
    ok(await exec(c.master, 'CREATE TABLE t(id INTEGER PRIMARY KEY)'), 'create');
    await waitFor(async () => ((await status(c!.master)).sync_set ?? []).length === 2, { timeoutMs: 20_000, message: 'sync set [1,2] over TLS + auth' });
    ok(await exec(c.master, 'INSERT INTO t VALUES (1)'), 'a write');
    assert.equal((await status(c.master)).etcd.connected, true);

    // A fourth and fifth node: wrong password; a client certificate from another CA.
    const bad = [
      { id: 3, args: secure, env: { SQLFLEET_ETCD_PASSWORD: 'wrong' }, why: /auth|password/i },
      { id: 4, args: secure.map((a) => (a === f('client.crt') ? f('rogue.crt') : a === f('client.key') ? f('rogue.key') : a)), env: { SQLFLEET_ETCD_PASSWORD: PASSWORD }, why: /certificate|handshake|TLS|SSL|unavailable|connect/i },
    ];
    for (const b of bad) {
      const n = new TestNode({ role: 'slave', id: b.id, numSlaves: 2, dataDir: c.dataDir, masterUrl: c.master.url, extraArgs: b.args, env: b.env });
      extra.push(n);
      await n.launch();
    }
    for (const [i, n] of extra.entries()) {
      const st = await waitFor(async () => {
        const s = await status(n);
        return s.etcd?.connected === false && s.etcd?.error ? s : undefined;
      }, { timeoutMs: 20_000, message: `${n.label()} reports its etcd error` });
      process.stdout.write(`# ${n.label()} /status etcd.error: ${st.etcd.error}\n`);
      assert.match(st.etcd.error, bad[i].why);
      assert.match(st.etcd.error, /credentials/, 'says the credentials are the problem');
      assert.match(n.logs(), /etcd refused this node's credentials/);
      assert.notEqual(st.role, 'master');
    }

    // Failover over TLS + auth: the master SIGKILLed, a sync-set slave takes the key.
    const t0 = performance.now();
    await c.master.kill('SIGKILL');
    const next = await waitFor<TestNode | undefined>(async () => {
      for (const s of c!.slaves) if ((await status(s).catch(() => null))?.role === 'master') return s;
      return undefined;
    }, { timeoutMs: 20_000, message: 'a slave takes over' }) as TestNode;
    await waitFor(async () => (await exec(next, 'INSERT INTO t VALUES (2)')).status === 200, { timeoutMs: 15_000, message: 'a write on the new master' });
    process.stdout.write(`# failover over TLS + auth: ${next.label()} acknowledged a write ${Math.round(performance.now() - t0)} ms after the SIGKILL\n`);
    for (const n of extra) assert.notEqual((await status(n)).role, 'master', `${n.label()} never leads`);
  } catch (e) {
    if (c) printLogs([...c.nodes, ...extra], 40);
    throw e;
  } finally {
    await Promise.all(extra.map((n) => n.kill('SIGKILL')));
    await c?.stop();
    await etcd.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
});
