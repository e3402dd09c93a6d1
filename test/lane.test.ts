// POST / is answered on the node:http lane (src/http/lane.ts), ahead of hono: what a
// client sees there besides the answers the error and auth tests check — request ids,
// answer headers, a chunked body over --max-body, request metrics — and which requests
// the log records at the default level (successful statements only at debug).
import assert from 'node:assert/strict';
import { exec, get, ok, post, request, requestCount, useCluster, waitFor, waitForIndex, assertError } from './helpers/cluster.js';

const MAX_BODY = 4096;
const { it, cluster } = useCluster({ slaves: 1, extraArgs: ['--max-body', String(MAX_BODY)] }, async (c) => {
  const w = ok(await exec(c.master, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)'));
  await waitForIndex(c.nodes, w.index);
});

it('a request id sent is echoed; without one the node makes a UUID; answers are JSON with an exact length', async () => {
  for (const n of cluster().nodes) {
    const r = await post(n.url, { query: 'SELECT 1' }, { headers: { 'x-request-id': `rid-${n.label()}` } });
    ok(r, `read on ${n.label()}`);
    assert.equal(r.headers.get('x-request-id'), `rid-${n.label()}`);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.text));
    const own = (await post(n.url, { query: 'SELECT 3' })).headers.get('x-request-id') ?? '';
    assert.match(own, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  }
});

it('a chunked body over --max-body is refused 413 and the node goes on serving', async () => {
  const { master } = cluster();
  const big = new TextEncoder().encode(JSON.stringify({ query: `SELECT '${'x'.repeat(MAX_BODY)}'` }));
  const body = new ReadableStream<Uint8Array>({
    start(ctl) {
      for (let i = 0; i < big.length; i += 1000) ctl.enqueue(big.slice(i, i + 1000));
      ctl.close();
    },
  });
  assertError(await request(master.url, { method: 'POST', body }), 413, 'PAYLOAD_TOO_LARGE', 'chunked oversized body');
  ok(await post(master.url, { query: 'SELECT 1' }), 'read after the 413');
});

it('POST / answers are counted in /metrics by route "/" and status', async () => {
  const { master } = cluster();
  const count = async (code: string) => requestCount((await get(`${master.url}/metrics`)).text, { route: '/', code });
  const [ok0, bad0] = [await count('200'), await count('400')];
  ok(await post(master.url, { query: 'SELECT 1' }));
  assertError(await post(master.url, '{not json'), 400, 'BAD_REQUEST', 'malformed JSON');
  assert.equal(await count('200'), ok0 + 1);
  assert.equal(await count('400'), bad0 + 1);
});

it('at the default log level a successful write is not logged with its SQL; schema changes and refusals are', async () => {
  const { master, slaves } = cluster();
  const marker = `m${Date.now()}`;
  ok(await exec(master, `INSERT INTO t(v) VALUES ('${marker}')`), 'write');
  ok(await exec(slaves[0], `INSERT INTO t(v) VALUES ('${marker}-fwd')`), 'forwarded write');
  ok(await exec(master, `CREATE TABLE ${marker} (a)`), 'schema change');
  assertError(await exec(master, `INSERT INTO nowhere_${marker} VALUES (1)`), 400, 'SQL_ERROR', 'write to a missing table');
  const lines = (n: typeof master) =>
    n
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{') && l.includes(marker))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  // Log lines reach the harness through a pipe: wait (bounded) for the refusal's line to arrive.
  await waitFor(() => lines(master).some((o) => o.status === 400), { timeoutMs: 5_000, message: "the refused write's log line" }).catch(() => undefined);
  const seen = [...lines(master), ...lines(slaves[0])];
  assert.ok(!seen.some((o) => o.msg === 'write' || o.msg === 'forwarded'), `successful writes logged at info: ${JSON.stringify(seen)}`);
  assert.ok(seen.some((o) => o.msg === 'schema' && o.status === 200), `no schema line: ${JSON.stringify(seen)}`);
  assert.ok(seen.some((o) => o.status === 400 && (o.error === 'SQL_ERROR' || o.msg === 'refused')), `no line for the refused write: ${JSON.stringify(seen)}`);
});

it('Hrana pipelines take the lane too: answers with an exact length, errors as {message, code}, 413 over --max-body, metrics by route', async () => {
  const { master, slaves } = cluster();
  const count = async (route: string, code: string) => requestCount((await get(`${master.url}/metrics`)).text, { route, code });
  const before = { v2: await count('/v2/pipeline', '200'), v3: await count('/v3/pipeline', '200'), bad: await count('/v2/pipeline', '400') };
  for (const path of ['/v2/pipeline', '/v3/pipeline']) {
    const r = await post(`${master.url}${path}`, { baton: null, requests: [{ type: 'execute', stmt: { sql: 'SELECT 1 AS one' } }, { type: 'close' }] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('content-type'), 'application/json');
    assert.equal(Number(r.headers.get('content-length')), Buffer.byteLength(r.text));
    assert.equal(r.body.results[0].response.result.rows[0][0].value, '1');
    assert.equal(r.body.baton, null);
  }
  // A transaction held by its baton across requests, on the master and through a slave.
  for (const n of [master, slaves[0]!]) {
    const p = `${n.url}/v2/pipeline`;
    const a = await post(p, { baton: null, requests: [{ type: 'execute', stmt: { sql: 'BEGIN' } }, { type: 'execute', stmt: { sql: "INSERT INTO t(v) VALUES ('hrana-lane')" } }] });
    assert.equal(a.status, 200, a.text);
    const b = await post(p, { baton: a.body.baton, requests: [{ type: 'execute', stmt: { sql: 'COMMIT' } }, { type: 'close' }] });
    assert.equal(b.body.results[0].type, 'ok', b.text);
  }
  const bad = await post(`${master.url}/v2/pipeline`, '{not json');
  assert.equal(bad.status, 400);
  assert.equal(bad.body.code, 'PROTO_ERROR');
  assert.equal(typeof bad.body.message, 'string');
  const big = await post(`${master.url}/v2/pipeline`, { baton: null, requests: [{ type: 'execute', stmt: { sql: `SELECT '${'x'.repeat(MAX_BODY)}'` } }] });
  assert.equal(big.status, 413, big.text);
  assert.equal((await post(`${master.url}/v2/pipeline`, { baton: 'no-such-baton', requests: [] })).status >= 400, true);
  assert.ok((await count('/v2/pipeline', '200')) >= before.v2 + 3);
  assert.ok((await count('/v3/pipeline', '200')) >= before.v3 + 1);
  assert.equal(await count('/v2/pipeline', '400') >= before.bad + 1, true);
});
