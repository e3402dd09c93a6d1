// Issue 5 hardening: TLS. A test CA and a node certificate for 127.0.0.1 are made with
// openssl; master and slave serve HTTPS (--tls-cert/--tls-key) and verify each other with
// --tls-ca. Real HTTPS requests: DDL on the master, a write forwarded by the slave over TLS,
// read back on the slave, equal checksums; plain HTTP and clients without the CA are refused.

import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import {
  TestNode,
  assertError,
  checksums,
  clusterTest,
  ok,
  requestCount,
  startCluster,
  status,
  tempDir,
  waitFor,
  waitForIndex,
  type Cluster,
  type Reply,
} from './helpers/cluster.js';
import { PATIENT, READY_TIMEOUT_MS, send } from './helpers/hardening.js';

const HAVE_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const SKIP = HAVE_OPENSSL ? false : 'openssl is not installed';

if (!HAVE_OPENSSL && process.env.CI) {
  test('openssl is required for the TLS tests in CI', () => {
    assert.fail('openssl was not found on PATH: install it (the TLS tests make their certificates with it)');
  });
}

let dir = '';
let c: Cluster | undefined;
let ca = '';
const files = { caCert: '', nodeCert: '', nodeKey: '', otherCaCert: '' };

const cluster = (): Cluster => {
  assert.ok(c, 'cluster not started');
  return c;
};
const tlsArgs = (caFile = files.caCert): string[] => ['--tls-cert', files.nodeCert, '--tls-key', files.nodeKey, '--tls-ca', caFile];
const viaCa = () => ({ dispatcher: cluster().dispatcher });
const it = clusterTest(() => c, undefined, { skip: SKIP, timeout: 90_000, logLines: 40 });

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A self-signed CA (EC P-256) in <name>.crt / <name>.key. */
function makeCa(name: string, cn: string): void {
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
}

/** The error code behind a failed fetch (undici puts the socket/TLS error in `cause`). */
async function fetchFailure(p: Promise<unknown>): Promise<string> {
  try {
    const r = await p;
    return `no error: ${JSON.stringify((r as Reply).status)} ${(r as Reply).text?.slice(0, 200)}`;
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    return `${cause?.code ?? ''} ${cause?.message ?? (e as Error).message}`;
  }
}

before(async () => {
  if (!HAVE_OPENSSL) return;
  dir = tempDir('sqlfleet-tls-');
  makeCa('ca', 'sqlfleet test CA');
  makeCa('other-ca', 'some other CA');
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', 'node.key', '-out', 'node.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(
    join(dir, 'node.ext'),
    'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n',
  );
  openssl('x509', '-req', '-in', 'node.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
    '-out', 'node.crt', '-days', '2', '-extfile', 'node.ext');
  files.caCert = join(dir, 'ca.crt');
  files.otherCaCert = join(dir, 'other-ca.crt');
  files.nodeCert = join(dir, 'node.crt');
  files.nodeKey = join(dir, 'node.key');
  ca = readFileSync(files.caCert, 'utf8');
  c = await startCluster({ slaves: 1, dataDir: join(dir, 'data'), extraArgs: tlsArgs(), ca, ...PATIENT });
});

after(async () => {
  await c?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('both nodes serve HTTPS and the slave is up with the master over TLS', async () => {
  const { master, slaves } = cluster();
  assert.match(master.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  assert.match(slaves[0]!.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const s = await status(master);
  const slave = (s.nodes as Array<{ id: number; state: string; url: string }>).find((n) => n.id === 1);
  assert.equal(slave?.state, 'up', JSON.stringify(s.nodes));
  assert.match(slave!.url, /^https:\/\//, `the master reaches the slave at ${slave!.url}`);
  const ss = await status(slaves[0]!);
  assert.match(String(ss.master), /^https:\/\//, `the slave's master: ${ss.master}`);
});

it('DDL on the master, a write via the slave (forwarded over TLS), read back on the slave, equal checksums', async () => {
  const { master, slaves, nodes } = cluster();
  const slave = slaves[0]!;
  const ddl = ok(await send(master.url, { body: { query: 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)' }, ...viaCa() }), 'DDL on master');
  await waitForIndex(nodes, ddl.index, 20_000);
  const w = ok(
    await send(slave.url, { body: { query: 'INSERT INTO notes(body) VALUES (?), (?)', params: ['over', 'tls'] }, ...viaCa() }),
    'write via slave',
  );
  assert.equal(w.node, 1);
  assert.match(String(w.forwarded_to), /^https:\/\/127\.0\.0\.1:\d+$/, `forwarded_to ${w.forwarded_to}`);
  const back = ok(await send(slave.url, { body: { query: 'SELECT body FROM notes ORDER BY id' }, ...viaCa() }), 'read on slave');
  assert.deepEqual(back.results[0].rows, [['over'], ['tls']]);
  const strong = ok(await send(slave.url, { body: { query: 'SELECT count(*) FROM notes', consistency: 'strong' }, ...viaCa() }), 'strong read');
  assert.deepEqual(strong.results[0].rows, [[2]]);
  await waitForIndex(nodes, w.index, 20_000);
  const sums = await checksums(nodes);
  assert.deepEqual(sums[1], sums[0], 'replicas differ');
  assert.equal(sums[0].index, w.index);
  // The entries came over the replication stream, tunnelled inside TLS, not over HTTP.
  const metrics = (await send(`${slave.url}/metrics`, viaCa())).text;
  const count = (route: string) => requestCount(metrics, { route });
  assert.ok(count('/internal/stream') >= 2, `appends on the stream: ${count('/internal/stream')}`);
  assert.equal(count('/internal/append'), 0, 'appends sent over HTTP');
});

it('node:https with the CA works too', async () => {
  const url = new URL('/health', cluster().master.url);
  const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = https.get(url, { ca, timeout: 10_000 }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (data += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
  });
  assert.equal(status, 200, body);
  assert.deepEqual(JSON.parse(body), { ok: true });
});

it('plain HTTP to a TLS port fails', async () => {
  for (const n of cluster().nodes) {
    const plain = n.url.replace(/^https:/, 'http:');
    const failure = await fetchFailure(send(`${plain}/health`, { timeoutMs: 10_000 }));
    assert.ok(!failure.startsWith('no error'), `${n.label()}: plain HTTP was answered: ${failure}`);
    const write = await fetchFailure(send(plain, { body: { query: 'SELECT 1' }, timeoutMs: 10_000 }));
    assert.ok(!write.startsWith('no error'), `${n.label()}: plain HTTP POST was answered: ${write}`);
  }
});

it('a client without the CA (or trusting another CA) is refused with a certificate error', async () => {
  const other = new Agent({ connect: { ca: readFileSync(files.otherCaCert, 'utf8') } });
  try {
    for (const n of cluster().nodes) {
      for (const [who, opts] of [
        ['no CA', {}],
        ['another CA', { dispatcher: other }],
      ] as const) {
        const failure = await fetchFailure(send(n.url, { body: { query: 'SELECT 1' }, timeoutMs: 10_000, ...opts }));
        assert.match(failure, /CERT|UNABLE_TO_VERIFY|SELF_SIGNED|ISSUER|certificate/i, `${n.label()} with ${who}: ${failure}`);
      }
    }
  } finally {
    await other.close();
  }
});

// A slave that trusts a different CA cannot talk to the master: node-to-node TLS is verified.
let badSlave: TestNode | undefined;
let badWrite: Reply | undefined;
it('a slave verifying with the wrong --tls-ca never joins, and its writes are refused 503, applied nowhere', async () => {
  const { master, dataDir } = cluster();
  badSlave = new TestNode({
    role: 'slave',
    readyTimeoutMs: READY_TIMEOUT_MS,
    id: 2,
    numSlaves: 1,
    dataDir,
    masterUrl: master.url,
    extraArgs: [...tlsArgs(files.otherCaCert), '--join', master.url, '--heartbeat-ms', '200'],
  });
  try {
    await badSlave.launch();
    await new Promise((r) => setTimeout(r, 2_000));
    const s = await status(master);
    const bad = (s.nodes as Array<{ id: number; state: string }>).find((n) => n.id === 2);
    assert.ok(bad === undefined || bad.state !== 'up', `the wrong-CA slave is up: ${JSON.stringify(s.nodes)}`);
    const before = (await send(master.url, { body: { query: 'SELECT count(*) FROM notes' }, ...viaCa() })).body.results[0].rows[0][0];
    badWrite = await send(badSlave.url, { body: { query: "INSERT INTO notes(body) VALUES ('bad ca')" }, ...viaCa(), timeoutMs: 30_000 });
    assertError(badWrite, 503, 'MASTER_UNAVAILABLE', 'write via the wrong-CA slave');
    await waitFor(async () => {
      const now = (await send(master.url, { body: { query: 'SELECT count(*) FROM notes' }, ...viaCa() })).body.results[0].rows[0][0];
      assert.equal(now, before, 'the write reached the master');
      return true;
    }, { timeoutMs: 5_000, intervalMs: 100, message: 'unchanged count' });
  } catch (e) {
    process.stderr.write(`\n----- wrong-CA slave -----\n${badSlave.tail(30)}\n`);
    throw e;
  } finally {
    await badSlave.kill();
  }
});

it('a TLS verification failure is reported as outcome "not_applied" (nothing was sent)', async () => {
  assert.ok(badWrite, 'the previous test did not run');
  assert.equal(
    badWrite.body?.error?.outcome,
    'not_applied',
    `a certificate failure happens before the request is sent, so it cannot have been applied: ${badWrite.text}`,
  );
});
