// sqlfleet/client against real clusters: calls and typed errors, read-your-writes through
// slaves, idempotency keys over raw HTTP (replay, concurrent duplicates, replication to a
// promoted slave, expiry), the package export as a consumer imports it, and write storms
// through a master SIGKILL + restart, a failover and a switchover: every call ends within
// its deadline; one row per resolved call, none per not_applied, at most one per unknown.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { createClient, SqlfleetClientError, type Client } from '../src/client/index.js';
import { uuidv7 } from '../src/client/uuid.js';
import {
  REPO_ROOT,
  assertError,
  assertSameChecksums,
  exec,
  ok,
  post,
  printLogs,
  rows,
  startCluster,
  status,
  useCluster,
  waitFor,
  waitForIndex,
  type Cluster,
  type TestNode,
} from './helpers/cluster.js';
import { authHeader, hardKill, readFile, relaunch } from './helpers/load.js';

describe('client calls on one cluster', () => {
  const suite = useCluster({ slaves: 2 }, async (c) => {
    ok(await exec(c.master, 'CREATE TABLE kv(k TEXT PRIMARY KEY, v INTEGER)'), 'create kv');
    ok(await exec(c.master, 'CREATE TABLE rows(call TEXT, n INTEGER)'), 'create rows');
  });
  const it = suite.it;
  const clients: Client[] = [];
  /** A client on every node of the shared cluster, closed when the test file ends. */
  function clientFor(nodes: readonly TestNode[], extra: Partial<Parameters<typeof createClient>[0]> = {}): Client {
    const c = createClient({ urls: nodes.map((n) => n.url), timeoutMs: 10_000, ...extra });
    clients.push(c);
    return c;
  }
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
  });

  /** Rejection of `p` as a SqlfleetClientError. */
  async function rejection(p: Promise<unknown>): Promise<SqlfleetClientError> {
    try {
      await p;
    } catch (e) {
      assert.ok(e instanceof SqlfleetClientError, `not a SqlfleetClientError: ${e}`);
      return e;
    }
    assert.fail('expected the call to reject');
  }

  it('execute, query, batch and status: typed results, writes found on the master from a slave URL', async () => {
    const c = suite.cluster();
    const db = clientFor([c.slaves[0]]); // only a slave given: the master is learned from /status
    const w = await db.execute('INSERT INTO kv(k, v) VALUES (?, ?)', ['a', 1]);
    assert.equal(w.changes, 1);
    assert.equal(w.replayed, false);
    assert.equal(w.attempts, 1);
    assert.ok(w.index > 0);
    assert.equal(db.masterUrl, c.master.url);
    const ret = await db.execute('INSERT INTO kv(k, v) VALUES (:k, :v) RETURNING k, v', { ':k': 'b', ':v': 2 });
    assert.deepEqual(ret.columns, ['k', 'v']);
    assert.deepEqual(ret.rows, [['b', 2]]);
    const q = await db.query<[string, number]>('SELECT k, v FROM kv WHERE k IN (?, ?) ORDER BY k', ['a', 'b']);
    assert.deepEqual(q.columns, ['k', 'v']);
    assert.deepEqual(q.rows, [['a', 1], ['b', 2]]);
    assert.ok(q.index >= ret.index, 'the read saw the write');
    const b = await db.batch(['INSERT INTO kv(k, v) VALUES (\'c\', 3)', { sql: 'UPDATE kv SET v = v + ? WHERE k = ?', params: [10, 'a'] }, 'SELECT v FROM kv WHERE k = \'a\'']);
    assert.equal(b.results.length, 3);
    assert.equal(b.results[1].changes, 1);
    assert.deepEqual(b.results[2].rows, [[11]]);
    const s = await db.status();
    assert.equal(s.role, 'master');
    assert.equal(s.master, c.master.url);
    assert.equal(typeof s.epoch, 'number');
    assert.equal(s.nodes.length, 3);
  });

  it('errors: one class with the server code, status, statement index and write outcome; deadlines and aborts', async () => {
    const c = suite.cluster();
    const db = clientFor(c.nodes);
    const dup = await rejection(db.execute('INSERT INTO kv(k, v) VALUES (?, ?)', ['dup', 1]).then(() => db.execute('INSERT INTO kv(k, v) VALUES (?, ?)', ['dup', 2])));
    assert.equal(dup.code, 'CONSTRAINT');
    assert.equal(dup.status, 409);
    assert.equal(dup.outcome, 'not_applied');
    assert.equal(dup.statement, 0);
    assert.equal(dup.attempts, 1, 'a definite refusal is not retried');
    const inBatch = await rejection(db.batch(['INSERT INTO kv(k, v) VALUES (\'ok1\', 1)', 'INSERT INTO kv(k, v) VALUES (\'dup\', 3)']));
    assert.equal(inBatch.code, 'CONSTRAINT');
    assert.equal(inBatch.statement, 1);
    assert.deepEqual((await db.query('SELECT count(*) FROM kv WHERE k = ?', ['ok1'])).rows, [[0]], 'the batch was all or nothing');
    const syntax = await rejection(db.query('SELEC 1'));
    assert.equal(syntax.code, 'SQL_SYNTAX');
    assert.equal(syntax.status, 400);
    assert.equal(syntax.outcome, undefined, 'reads carry no outcome');
    assert.equal((await rejection(db.query('INSERT INTO kv(k, v) VALUES (\'q\', 1)'))).code, 'READ_ONLY_COMMAND');
    assert.equal((await rejection(db.query('SELECT * FROM nope'))).code, 'SQL_ERROR');

    const ac = new AbortController();
    ac.abort();
    const aborted = await rejection(db.execute('INSERT INTO kv(k, v) VALUES (\'never\', 1)', [], { signal: ac.signal }));
    assert.equal(aborted.code, 'ABORTED');
    assert.equal(aborted.outcome, 'not_applied');

    // Nothing listens: the call ends at its deadline, not later, and says nothing was applied.
    const dead = createClient({ urls: ['http://127.0.0.1:9'], timeoutMs: 800 });
    clients.push(dead);
    const t0 = performance.now();
    const e = await rejection(dead.execute('INSERT INTO kv(k, v) VALUES (\'x\', 1)'));
    const ms = performance.now() - t0;
    assert.ok(ms < 1_300, `ended after ${ms} ms (deadline 800)`);
    assert.ok(['NO_MASTER', 'NETWORK', 'DEADLINE'].includes(e.code), e.code);
    assert.equal(e.outcome, 'not_applied');
    await dead.close();
    assert.equal((await rejection(dead.query('SELECT 1'))).code, 'CLOSED');
  });

  it('read-your-writes by default: ack "master" writes read back at once from the slaves', async () => {
    const c = suite.cluster();
    // Reads only from the slaves; writes acknowledged by the master alone, so slaves may lag.
    const db = clientFor(c.slaves, { ack: 'master', discover: false });
    for (let i = 0; i < 30; i++) {
      const w = await db.execute('INSERT INTO kv(k, v) VALUES (?, ?)', [`ryw-${i}`, i]);
      assert.equal(db.lastWriteIndex, w.index);
      const r = await db.query('SELECT v FROM kv WHERE k = ?', [`ryw-${i}`]);
      assert.ok(r.node !== 0, 'answered by a slave');
      assert.deepEqual(r.rows, [[i]], `write ${i} (index ${w.index}) read back on node ${r.node} at ${r.index}`);
    }
  });

  it('idempotency over raw HTTP: same key twice is one row and the first answer, header form, bad keys refused', async () => {
    const c = suite.cluster();
    const key = randomUUID();
    const body = { query: 'INSERT INTO rows(call, n) VALUES (?, 1) RETURNING rowid', params: [key], idempotency_key: key };
    const first = ok(await post(c.master.url, body), 'first');
    const again = ok(await post(c.master.url, body), 'again');
    assert.equal(first.idempotent_replay, undefined);
    assert.equal(again.idempotent_replay, true);
    assert.equal(again.index, first.index);
    assert.deepEqual(again.results, first.results);
    // Through a slave, key in the header: forwarded with the key, replayed by the master.
    const viaSlave = ok(await post(c.slaves[1].url, { query: 'INSERT INTO rows(call, n) VALUES (?, 1) RETURNING rowid', params: [key] }, { headers: { 'idempotency-key': key } }), 'via slave');
    assert.equal(viaSlave.idempotent_replay, true);
    assert.equal(viaSlave.index, first.index);
    assert.equal(viaSlave.forwarded_to, c.master.url);
    await waitForIndex(c.nodes, first.index);
    for (const n of c.nodes) assert.deepEqual(rows(await post(n.url, { query: 'SELECT count(*) FROM rows WHERE call = ?', params: [key] })), [[1]], `one row on ${n.label()}`);

    const bad = (extra: Record<string, unknown>, headers: Record<string, string> = {}) =>
      post(c.master.url, { query: 'INSERT INTO rows(call, n) VALUES (\'bad\', 1)', ...extra }, { headers });
    assertError(await bad({ idempotency_key: 7 }), 400, 'BAD_REQUEST', 'number key');
    assertError(await bad({ idempotency_key: '' }), 400, 'BAD_REQUEST', 'empty key');
    assertError(await bad({ idempotency_key: 'x'.repeat(129) }), 400, 'BAD_REQUEST', 'long key');
    assertError(await bad({ idempotency_key: 'has space' }), 400, 'BAD_REQUEST', 'space in key');
    assertError(await bad({ idempotency_key: 'a' }, { 'idempotency-key': 'b' }), 400, 'BAD_REQUEST', 'header and body differ');
    // A UUIDv7 key from before the window (default 600 s): refused, never applied.
    const old = uuidv7(Date.now() - 700_000);
    const expired = await bad({ idempotency_key: old });
    assertError(expired, 409, 'IDEMPOTENCY_KEY_EXPIRED', 'expired key');
    assert.deepEqual(rows(await post(c.master.url, { query: 'SELECT count(*) FROM rows WHERE call = \'bad\'' })), [[0]]);
  });

  it('concurrent duplicates of one key: exactly one apply, every other answer a replay of it', async () => {
    const c = suite.cluster();
    const key = randomUUID();
    const targets = [c.master, c.slaves[0], c.slaves[1]];
    const answers = await Promise.all(
      Array.from({ length: 24 }, (_, i) => post(targets[i % 3].url, { query: 'INSERT INTO rows(call, n) VALUES (?, ?)', params: [key, i], idempotency_key: key })),
    );
    const bodies = answers.map((a, i) => ok(a, `duplicate ${i}`));
    assert.equal(new Set(bodies.map((b) => b.index)).size, 1, 'one index for all');
    assert.equal(bodies.filter((b) => b.idempotent_replay !== true).length, 1, 'one first answer');
    await waitForIndex(c.nodes, bodies[0].index);
    for (const n of c.nodes) assert.deepEqual(rows(await post(n.url, { query: 'SELECT count(*) FROM rows WHERE call = ?', params: [key] })), [[1]], n.label());
  });

  it('the package export: a consumer imports { createClient } from "sqlfleet/client" (built JS)', async () => {
    const c = suite.cluster();
    const build = await run(process.execPath, ['scripts/build-client.mjs']);
    assert.equal(build.code, 0, build.out);
    const script = `
      import { createClient, SqlfleetClientError } from 'sqlfleet/client';
      const db = createClient({ urls: [${JSON.stringify(c.slaves[0].url)}] });
      const w = await db.execute("INSERT INTO kv(k, v) VALUES ('pkg', 42)");
      const r = await db.query("SELECT v FROM kv WHERE k = 'pkg'");
      let code = '';
      try { await db.query('SELEC'); } catch (e) { code = e instanceof SqlfleetClientError ? e.code : 'other'; }
      await db.close();
      console.log(JSON.stringify({ changes: w.changes, rows: r.rows, code }));`;
    // Run from the package root as a plain ESM script: no tsx, the "exports" map resolves it.
    const r = await run(process.execPath, ['--input-type=module', '-e', script]);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(JSON.parse(r.out.trim().split('\n').pop() ?? ''), { changes: 1, rows: [[42]], code: 'SQL_SYNTAX' });
  });

});

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 50_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? 1, out });
    });
  });
}

test('the window: keys are pruned after --idempotency-window (+ grace) on every node; a late UUIDv7 retry is refused, never applied', { timeout: 60_000 }, async () => {
  const c = await startCluster({ slaves: 1, extraArgs: ['--idempotency-window', '1'] });
  try {
    ok(await exec(c.master, 'CREATE TABLE w(call TEXT)'), 'create');
    const count = async (call: string) => rows(await post(c.master.url, { query: 'SELECT count(*) FROM w WHERE call = ?', params: [call] }))[0][0];
    const send = (node: TestNode, call: string, key: string) => post(node.url, { query: 'INSERT INTO w(call) VALUES (?)', params: [call], idempotency_key: key });
    const plain = `plain-${randomUUID()}`;
    const v7 = uuidv7();
    ok(await send(c.master, 'plain', plain), 'plain key');
    ok(await send(c.master, 'v7', v7), 'v7 key');
    await waitForIndex(c.nodes, (await status(c.master)).applied_index);
    const kept = (id: number) => readFile<number>(join(c.dataDir, `node-${id}.db`), `SELECT count(*) FROM _sqlfleet_idem WHERE key IN ('${plain}', '${v7}')`);
    assert.deepEqual([kept(0), kept(1)], [2, 2], 'both keys recorded on master and slave');
    assert.equal(ok(await send(c.slaves[0], 'plain', plain), 'replay in the window').idempotent_replay, true);
    await delay(2_300); // window 1 s + grace (capped at the window) 1 s
    ok(await exec(c.master, "INSERT INTO w(call) VALUES ('tick')"), 'an entry that prunes');
    await waitForIndex(c.nodes, (await status(c.master)).applied_index);
    assert.deepEqual([kept(0), kept(1)], [0, 0], 'both keys pruned on master and slave');
    // The UUIDv7 key says its own age: refused with a clear error, nothing applied.
    assertError(await send(c.slaves[0], 'v7', v7), 409, 'IDEMPOTENCY_KEY_EXPIRED', 'late v7 retry');
    assert.equal(await count('v7'), 1);
    // Any other key is forgotten after the window: it is a new write (as documented).
    const again = ok(await send(c.master, 'plain', plain), 'plain key after the window');
    assert.equal(again.idempotent_replay, undefined);
    assert.equal(await count('plain'), 2);
  } catch (e) {
    printLogs(c.nodes);
    throw e;
  } finally {
    await c.stop();
  }
});

test('routing without a cluster: a deposed master that still says "master" loses to a higher epoch; UUIDv7 keys carry their time', async () => {
  const { Router } = await import('../src/client/router.js');
  const { keyTime } = await import('../src/core/idempotency.js');
  const r = new Router(['http://a', 'http://b/', 'http://c'], true);
  const st = (role: string, master: string, epoch: number) => ({ node: 0, role, url: '', applied_index: 0, master, epoch, nodes: [] });
  r.learn([
    { url: 'http://a', status: st('master', 'http://a', 1) }, // restarted old master, not yet told
    { url: 'http://b', status: st('slave', 'http://c', 2) },
  ]);
  assert.equal(r.master, 'http://c');
  r.learn([{ url: 'http://c', status: st('master', 'http://c', 2) }, { url: 'http://b', status: st('slave', 'http://c', 2) }]);
  assert.equal(r.master, 'http://c');
  r.failed('http://c');
  assert.equal(r.master, undefined, 'a failed master is looked up again');
  const reads = new Set(Array.from({ length: 6 }, () => r.nextRead()));
  assert.deepEqual([...reads].sort(), ['http://a', 'http://b'], 'reads skip the node that just failed');
  const t = Date.now() - 12_345;
  assert.equal(keyTime(uuidv7(t)), t);
  assert.match(uuidv7(), /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(keyTime(randomUUID()), undefined, 'a v4 key has no time');
});

// ---- storms ----------------------------------------------------------------------------

interface Call {
  id: string;
  ms: number;
  result: 'resolved' | 'not_applied' | 'unknown';
  code?: string;
  attempts: number;
  replayed?: boolean;
}

const DEADLINE_MS = 8_000;
/** Slack over the deadline for timers and the event loop on a shared 2-core machine. */
const LATE_MS = 750;

/** `workers` loops of client.execute until stop() (at most `maxCalls` calls in all). */
function storm(db: Client, workers: number, maxCalls: number) {
  const calls: Call[] = [];
  let running = true;
  let seq = 0;
  const loops = Array.from({ length: workers }, async (_, w) => {
    while (running && seq < maxCalls) {
      const id = `w${w}-${seq++}`;
      const t0 = performance.now();
      try {
        const r = await db.execute('INSERT INTO storm(call, worker) VALUES (?, ?)', [id, w], { timeoutMs: DEADLINE_MS });
        calls.push({ id, ms: performance.now() - t0, result: 'resolved', attempts: r.attempts, replayed: r.replayed });
      } catch (e) {
        assert.ok(e instanceof SqlfleetClientError, `storm call rejected with ${e}`);
        calls.push({ id, ms: performance.now() - t0, result: e.outcome === 'not_applied' ? 'not_applied' : 'unknown', code: e.code, attempts: e.attempts });
      }
    }
  });
  return {
    calls,
    count: () => calls.length,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/** Waits for `n` more finished calls. */
async function more(s: { count: () => number }, n: number, timeoutMs = 20_000): Promise<void> {
  const target = s.count() + n;
  await waitFor(() => s.count() >= target, { timeoutMs, message: `${n} more storm calls` });
}

/** The audit: every call ended in time; rows per call match what the client was told. */
async function audit(c: Cluster, master: TestNode, calls: readonly Call[], what: string): Promise<string> {
  const late = calls.filter((x) => x.ms > DEADLINE_MS + LATE_MS);
  assert.deepEqual(late.map((x) => `${x.id} ${Math.round(x.ms)} ms`), [], `${what}: calls past their deadline`);
  const s = await status(master);
  await waitForIndex(c.nodes, s.applied_index, 30_000);
  await assertSameChecksums(c.nodes);
  const counts = new Map<string, number>();
  for (const [call, n] of rows(await post(master.url, { query: 'SELECT call, count(*) FROM storm GROUP BY call' }), 'count rows') as [string, number][]) counts.set(call, n);
  const problems: string[] = [];
  for (const x of calls) {
    const n = counts.get(x.id) ?? 0;
    if (x.result === 'resolved' && n !== 1) problems.push(`${x.id} resolved but has ${n} rows`);
    if (x.result === 'not_applied' && n !== 0) problems.push(`${x.id} rejected not_applied (${x.code}) but has ${n} rows`);
    if (x.result === 'unknown' && n > 1) problems.push(`${x.id} unknown (${x.code}) but has ${n} rows`);
  }
  const known = new Set(calls.map((x) => x.id));
  for (const [id, n] of counts) if (!known.has(id) || n > 1) problems.push(`${id}: ${n} rows${known.has(id) ? '' : ' of a call never made'}`);
  assert.deepEqual(problems, [], `${what}: audit`);
  const by = (r: Call['result']) => calls.filter((x) => x.result === r).length;
  const unknownApplied = calls.filter((x) => x.result === 'unknown' && (counts.get(x.id) ?? 0) === 1).length;
  const line =
    `# ${what}: ${calls.length} calls, ${by('resolved')} resolved (${calls.filter((x) => x.attempts > 1 && x.result === 'resolved').length} after retries, ` +
    `${calls.filter((x) => x.replayed).length} answered by replay), ${by('not_applied')} rejected not_applied, ${by('unknown')} unknown ` +
    `(${unknownApplied} of them applied); ${[...counts.values()].reduce((a, b) => a + b, 0)} rows, duplicates 0; slowest call ${Math.round(Math.max(...calls.map((x) => x.ms)))} ms`;
  process.stdout.write(`${line}\n`);
  return line;
}

/** A fresh cluster with the storm table; logs printed on failure; stopped at the end. */
async function withStormCluster(fn: (c: Cluster, db: Client) => Promise<void>): Promise<void> {
  const c = await startCluster({ slaves: 2, extraArgs: ['--ack-timeout', '3000'] });
  const db = createClient({ urls: c.nodes.map((n) => n.url), timeoutMs: DEADLINE_MS });
  try {
    ok(await exec(c.master, 'CREATE TABLE storm(call TEXT, worker INTEGER)'), 'create storm'); // no UNIQUE: a double apply must show
    await fn(c, db);
  } catch (e) {
    printLogs(c.nodes, 120);
    throw e;
  } finally {
    await db.close();
    await c.stop();
  }
}

test('storm: the master SIGKILLed and restarted mid-load: every call ends in its deadline, no write applied twice', { timeout: 120_000 }, async () => {
  await withStormCluster(async (c, db) => {
    const s = storm(db, 6, 3_000);
    await more(s, 60);
    await hardKill(c.master);
    await delay(1_500);
    await relaunch(c.master);
    await more(s, 60);
    await hardKill(c.master); // and once more, right away
    await relaunch(c.master);
    await more(s, 60);
    await s.stop();
    await audit(c, c.master, s.calls, 'master SIGKILL + restart x2');
    assert.ok(s.calls.some((x) => x.result === 'resolved' && x.attempts > 1), 'some calls were carried across the kill by retries');
  });
});

/** POST /nodes/<id>/promote on `via` with the cluster token. */
async function promote(c: Cluster, via: TestNode, id: number): Promise<any> {
  return ok(await post(`${via.url}/nodes/${id}/promote`, {}, { headers: authHeader(c.dataDir), timeoutMs: 30_000 }), `promote ${id} via ${via.label()}`);
}

test('storm: failover (master SIGKILLed, slave 1 promoted): the client follows; keys applied by the old master replay on the new one', { timeout: 120_000 }, async () => {
  await withStormCluster(async (c, db) => {
    const [s1] = c.slaves;
    // A key applied by the first master, replicated with its entry.
    const key = randomUUID();
    const first = ok(await post(c.master.url, { query: 'INSERT INTO storm(call, worker) VALUES (?, -1)', params: ['keyed'], idempotency_key: key }), 'keyed write');
    const s = storm(db, 6, 3_000);
    await more(s, 60);
    await hardKill(c.master);
    const t0 = Date.now();
    const answer = await promote(c, s1, 1);
    assert.equal(answer.mode, 'failover');
    const step = (what: string) => process.stdout.write(`# failover: ${what} at +${Date.now() - t0} ms\n`);
    step('promoted');
    await more(s, 80);
    assert.equal(db.masterUrl, s1.url, 'the client writes to the new master');
    const replay = ok(await post(s1.url, { query: 'INSERT INTO storm(call, worker) VALUES (?, -1)', params: ['keyed'], idempotency_key: key }), 'replay on the new master');
    assert.equal(replay.idempotent_replay, true, 'the promoted slave knew the key');
    assert.equal(replay.index, first.index);
    step('replayed');
    await relaunch(c.master); // the old master comes back and follows
    step('old master relaunched');
    await waitFor(async () => (await status(c.master)).master === s1.url, { timeoutMs: 15_000, message: 'old master follows node 1' });
    step('old master follows');
    await more(s, 40);
    await s.stop();
    const calls = [...s.calls, { id: 'keyed', ms: 0, result: 'resolved' as const, attempts: 1 }];
    await audit(c, s1, calls, 'failover');
  });
});

test('storm: switchover (promote slave 2 while writes run): every call resolves or is refused not_applied, no duplicates', { timeout: 120_000 }, async () => {
  await withStormCluster(async (c, db) => {
    const s2 = c.slaves[1];
    const s = storm(db, 6, 3_000);
    await more(s, 60);
    const answer = await promote(c, c.master, 2);
    assert.equal(answer.mode, 'switchover');
    await more(s, 80);
    assert.equal(db.masterUrl, s2.url, 'the client writes to the new master');
    await s.stop();
    await audit(c, s2, s.calls, 'switchover');
    assert.equal(s.calls.filter((x) => x.result === 'unknown').length, 0, 'a switchover leaves no outcome unknown');
  });
});
