// The replication stream (src/replication/stream.ts, src/http/stream.ts): the master sends
// appends to each slave over one tunnelled connection, not one HTTP request per batch. What
// a user and an operator see: the writes arrive, the slave's metrics count them on the
// stream route, the stream refuses anyone without the cluster token, an Upgrade offer from
// a client stays plain HTTP, a peer that has no stream is served over HTTP, and a slave
// that stops answering fails the append in time.
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { test } from 'node:test';
import { PeerClient, PeerUnreachableError } from '../src/replication/client.js';
import { STREAM_HEADER, STREAM_PATH, STREAM_PROTOCOL } from '../src/replication/stream.js';
import { exec, get, ok, query, requestCount, rows, useCluster, waitForIndex } from './helpers/cluster.js';
import { clusterToken } from './helpers/load.js';

const { it, cluster } = useCluster({ slaves: 2 }, async (c) => {
  const w = ok(await exec(c.master, 'CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT)'));
  await waitForIndex(c.nodes, w.index);
});

const routeCount = async (url: string, route: string): Promise<number> => requestCount((await get(`${url}/metrics`)).text, { route });

/** Sends raw bytes to a node and collects what comes back until it closes the connection (or `ms`). */
function raw(url: string, bytes: string, ms = 2000): Promise<{ text: string; closed: boolean }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(u.port), u.hostname);
    let text = '';
    const timer = setTimeout(() => {
      s.destroy();
      resolve({ text, closed: false });
    }, ms);
    s.on('data', (d) => (text += d.toString('utf8')));
    s.on('error', reject);
    s.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    s.write(bytes);
  });
}

const tunnel = (headers: Record<string, string>, path = STREAM_PATH) =>
  `CONNECT ${path} HTTP/1.1\r\nhost: x\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('')}\r\n`;

it('writes reach every slave over the stream: the slaves count them on /internal/stream, none on /internal/append', async () => {
  const { master, slaves, nodes } = cluster();
  const before = await Promise.all(slaves.map(async (s) => [await routeCount(s.url, STREAM_PATH), await routeCount(s.url, '/internal/append')]));
  let last = 0;
  for (let i = 0; i < 20; i++) last = ok(await exec(master, 'INSERT INTO s(v) VALUES (?)', [`w${i}`]), `write ${i}`).index;
  await waitForIndex(nodes, last);
  for (const [i, s] of slaves.entries()) {
    assert.deepEqual(rows(await query(s, "SELECT count(*) FROM s WHERE v LIKE 'w%'")), [[20]], `rows on ${s.label()}`);
    const [stream, append] = [await routeCount(s.url, STREAM_PATH), await routeCount(s.url, '/internal/append')];
    assert.ok(stream >= before[i]![0]! + 1, `${s.label()} counted no append on the stream (${before[i]![0]} → ${stream})`);
    assert.equal(append, before[i]![1], `${s.label()} was sent appends over HTTP`);
  }
});

it('the stream refuses a tunnel without the cluster token (401) or for another protocol or path (404), and closes', async () => {
  const { slaves, dataDir } = cluster();
  const token = clusterToken(dataDir);
  const s = slaves[0]!;
  const frame = JSON.stringify({ epoch: 999, master: 'http://127.0.0.1:1', master_index: 1, entries: [] }) + '\n';
  for (const [headers, status] of [
    [{ [STREAM_HEADER]: STREAM_PROTOCOL }, 401],
    [{ [STREAM_HEADER]: STREAM_PROTOCOL, authorization: 'Bearer wrong' }, 401],
    [{ [STREAM_HEADER]: STREAM_PROTOCOL, authorization: `Bearer ${token}x` }, 401],
    [{ [STREAM_HEADER]: 'sqlfleet-append/0', authorization: `Bearer ${token}` }, 404],
    [{ authorization: `Bearer ${token}` }, 404],
  ] as const) {
    const r = await raw(s.url, tunnel(headers) + frame);
    assert.match(r.text, new RegExp(`^HTTP/1.1 ${status} `), `answer to ${JSON.stringify(headers)}: ${r.text}`);
    assert.ok(r.closed, `connection left open after a ${status}`);
    assert.ok(!r.text.includes('"ok":true'), `a frame was answered after a refused tunnel: ${r.text}`);
  }
  const other = await raw(s.url, tunnel({ [STREAM_HEADER]: STREAM_PROTOCOL, authorization: `Bearer ${token}` }, '/internal/elsewhere'));
  assert.match(other.text, /^HTTP\/1.1 404 /);
  // With the token the tunnel opens, and a frame is answered by the append route's own checks.
  const accepted = await raw(s.url, tunnel({ [STREAM_HEADER]: STREAM_PROTOCOL, authorization: `Bearer ${token}` }) + '{not json\n', 1000);
  assert.match(accepted.text, /^HTTP\/1.1 200 /, accepted.text);
  assert.match(accepted.text, /"code":"BAD_REQUEST"/, `malformed frame: ${accepted.text}`);
});

it('an HTTP/1.1 request that offers an Upgrade (h2c, as Java\'s HttpClient sends) is answered as plain HTTP', async () => {
  const { master } = cluster();
  const body = JSON.stringify({ query: 'SELECT 41 + 1' });
  const r = await raw(
    master.url,
    `POST / HTTP/1.1\r\nhost: x\r\nconnection: Upgrade, HTTP2-Settings, close\r\nupgrade: h2c\r\nhttp2-settings: AAMAAABkAAQAAP__\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
  );
  assert.match(r.text, /^HTTP\/1.1 200 /, r.text);
  assert.match(r.text, /"rows":\[\[42\]\]/, r.text);
});

test('a peer without the stream (a node from before it) is sent appends over HTTP, and the tunnel is not retried at once', async () => {
  const seen: string[] = [];
  const firstLines: string[] = [];
  const server = http.createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      const ok = req.method === 'POST' && req.url === '/internal/append';
      res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { ok: true, applied_index: seen.length } : { ok: false, error: { code: 'NOT_FOUND', message: 'no route' } }));
    });
  });
  server.on('connection', (sock: net.Socket) => sock.once('data', (d: Buffer) => firstLines.push(d.toString('latin1').split(' ', 2).join(' '))));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const client = new PeerClient('t0ken-of-the-cluster');
  try {
    const a = await client.append<{ ok: boolean }>(url, '{"entries":[]}', { timeoutMs: 2000 });
    const b = await client.append<{ ok: boolean }>(url, '{"entries":[]}', { timeoutMs: 2000 });
    assert.equal(a?.ok, true);
    assert.equal(b?.ok, true);
    // Node closes a CONNECT nobody listens for; the second append does not try again.
    assert.deepEqual(seen, ['POST /internal/append', 'POST /internal/append']);
    assert.equal(firstLines.filter((l) => l.startsWith('CONNECT')).length, 1, `tunnels tried: ${JSON.stringify(firstLines)}`);
  } finally {
    await client.close();
    server.close();
  }
});

test('a slave that takes the stream and never answers fails the append after its timeout (sent: true), and the next append reconnects', async () => {
  let tunnels = 0;
  const sockets: net.Socket[] = [];
  const server = http.createServer((_req, res) => res.end());
  server.on('connect', (_req, socket: net.Socket) => {
    tunnels++;
    sockets.push(socket);
    socket.write(`HTTP/1.1 200 Connection Established\r\n${STREAM_HEADER}: ${STREAM_PROTOCOL}\r\n\r\n`);
    socket.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  const client = new PeerClient('token');
  try {
    const started = Date.now();
    const err = await client.append(url, '{}', { timeoutMs: 300 }).then(
      () => null,
      (e: unknown) => e,
    );
    assert.ok(err instanceof PeerUnreachableError, `no timeout error: ${String(err)}`);
    assert.equal(err.sent, true);
    const took = Date.now() - started;
    assert.ok(took >= 290 && took < 2000, `timed out after ${took} ms`);
    await assert.rejects(client.append(url, '{}', { timeoutMs: 200 }), PeerUnreachableError);
    assert.equal(tunnels, 2, 'the timed-out stream was reused instead of replaced');
  } finally {
    await client.close();
    for (const s of sockets) s.destroy();
    server.close();
  }
});

test('a stream to a port nobody listens on fails as not sent', async () => {
  const free = await new Promise<number>((r) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => r(p));
    });
  });
  const client = new PeerClient('token');
  const err = await client.append(`http://127.0.0.1:${free}`, '{}', { timeoutMs: 1000 }).then(
    () => null,
    (e: unknown) => e,
  );
  await client.close();
  assert.ok(err instanceof PeerUnreachableError, String(err));
  assert.equal(err.sent, false);
});

test('a slave that accepts the connection and never answers the CONNECT fails the append after its timeout as sent (not as refused)', async () => {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => {
    sockets.push(s);
    s.on('error', () => {});
  }); // TCP accepted, nothing ever answered: a slave with a blocked event loop
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const client = new PeerClient('token');
  try {
    const started = Date.now();
    const err = await client.append(`http://127.0.0.1:${(server.address() as net.AddressInfo).port}`, '{}', { timeoutMs: 400 }).then(
      () => null,
      (e: unknown) => e,
    );
    const took = Date.now() - started;
    assert.ok(err instanceof PeerUnreachableError, `no error: ${String(err)}`);
    assert.equal(err.sent, true, 'a peer that took the connection was reported as never reached (the shipper marks it down)');
    assert.ok(took >= 390 && took < 3000, `failed after ${took} ms`);
    assert.doesNotMatch(err.message, /: 23$/, 'the message names the timeout');
  } finally {
    await client.close();
    for (const s of sockets) s.destroy();
    server.close();
  }
});
