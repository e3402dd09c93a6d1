// The change feed on real processes (DESIGN §9): GET /changes gives the same events, byte
// for byte, on the master and on every slave; a transaction's events share an index;
// Last-Event-ID resumes exactly under write load; filters; 410 past the retention;
// a SIGKILL of the master and a static promotion leave a slave's feed continuous;
// --capture none (the default) records nothing.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { assertError, exec, get, ok, post, printLogs, rows, startCluster, status, waitFor, waitForIndex, type Cluster, type TestNode } from './helpers/cluster.js';
import { authHeader, hardKill } from './helpers/load.js';

interface Ev {
  id: string;
  text: string;
  data: { index: number; pos: number; table: string; op: string; key: unknown; before: unknown; after: unknown; ts: string; sql?: string };
}

/** A GET /changes consumer: parses the SSE stream as it comes. */
class Feed {
  readonly events: Ev[] = [];
  lastId = '';
  status = 0;
  private readonly ac = new AbortController();
  private readonly done: Promise<void>;
  private wakers: (() => void)[] = [];

  constructor(url: string, lastEventId?: string) {
    this.done = (async () => {
      const res = await fetch(url, { headers: lastEventId ? { 'last-event-id': lastEventId } : {}, signal: this.ac.signal });
      this.status = res.status;
      if (!res.ok || !res.body) return;
      const dec = new TextDecoder();
      let buf = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buf += dec.decode(chunk, { stream: true });
        let cut;
        while ((cut = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, cut);
          buf = buf.slice(cut + 2);
          let id: string | undefined;
          let data: string | undefined;
          for (const line of block.split('\n')) {
            if (line.startsWith('id: ')) id = line.slice(4);
            else if (line.startsWith('data: ')) data = line.slice(6);
          }
          if (id !== undefined) this.lastId = id;
          if (data !== undefined) this.events.push({ id: id ?? '', text: data, data: JSON.parse(data) });
        }
        for (const w of this.wakers.splice(0)) w();
      }
    })().catch(() => {});
  }

  /** Waits until `pred` holds for the events so far. */
  async until(pred: (evs: Ev[]) => boolean, timeoutMs = 15_000, what = 'events'): Promise<Ev[]> {
    const deadline = Date.now() + timeoutMs;
    while (!pred(this.events)) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; have ${this.events.length}: ${this.events.slice(-3).map((e) => e.text).join(' | ')}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.wakers.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
    return this.events;
  }

  async close(): Promise<void> {
    this.ac.abort();
    await this.done;
  }
}

const feeds = new Set<Feed>();
function feed(url: string, lastEventId?: string): Feed {
  const f = new Feed(url, lastEventId);
  feeds.add(f);
  return f;
}
const clusters: Cluster[] = [];
after(async () => {
  for (const f of feeds) await f.close();
  for (const c of clusters) await c.stop();
});

async function withCluster(extraArgs: string[], slaves: number, fn: (c: Cluster) => Promise<void>): Promise<void> {
  const c = await startCluster({ slaves, extraArgs });
  clusters.push(c);
  try {
    await fn(c);
  } catch (e) {
    printLogs(c.nodes, 80);
    throw e;
  } finally {
    for (const f of feeds) await f.close();
    feeds.clear();
    await c.stop();
  }
}

/** Every event of `node` from index 0 until one of index `upTo` or beyond (and its siblings) arrived. */
async function allEvents(node: TestNode, upTo: number, query = ''): Promise<Ev[]> {
  const f = feed(`${node.url}/changes?from=0${query}&heartbeat=200`);
  // Caught up once a bare progress id at or past upTo came (all of upTo's events passed).
  await f.until(() => /^\d+$/.test(f.lastId) && Number(f.lastId) >= upTo, 20_000, `${node.label()} caught up to ${upTo}`);
  await f.close();
  return f.events.filter((e) => e.data.index <= upTo);
}

/** The answer to GET `url` when it is an error (its JSON), undefined when a feed opened (closed again at once). */
async function opening(url: string): Promise<Awaited<ReturnType<typeof get>> | undefined> {
  const ac = new AbortController();
  const res = await fetch(url, { signal: ac.signal });
  if (res.status === 200) {
    ac.abort();
    return undefined;
  }
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text, ms: 0, headers: res.headers };
}

const lastIndex = (r: { index: number }) => r.index;

test('the feed is identical on every node; statement classes, transactions and schema changes', { timeout: 120_000 }, async () => {
  await withCluster(['--capture', 'all'], 2, async (c) => {
    const m = c.master;
    ok(await exec(m, 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER, b BLOB)'), 'create');
    ok(await exec(m, "INSERT INTO users (name, n, b) VALUES (?, 9007199254740993, x'00ff10')", ['ana']), 'insert');
    const batch = ok(
      await post(m.url, { queries: ["INSERT INTO users (name) VALUES ('bo')", "INSERT INTO users (name) VALUES ('cy')", "UPDATE users SET n = 1 WHERE name = 'bo'"], transaction: true }),
      'batch',
    );
    ok(await exec(c.slaves[0], "INSERT INTO users (name) VALUES ('dee') ON CONFLICT(name) DO NOTHING; UPDATE users SET name = 'anna' WHERE name = 'ana'"), 'multi via a slave');
    ok(await exec(m, "INSERT INTO users (name) VALUES ('bo') ON CONFLICT(name) DO UPDATE SET n = n + 1 RETURNING id"), 'upsert returning');
    const last = ok(await exec(m, "DELETE FROM users WHERE name = 'cy'"), 'delete');
    await waitForIndex(c.nodes, lastIndex(last));

    const [fm, ...fs] = await Promise.all(c.nodes.map((n) => allEvents(n, last.index)));
    for (const [i, f] of fs.entries()) assert.deepEqual(f.map((e) => e.text), fm.map((e) => e.text), `slave ${i + 1}'s feed is the master's, byte for byte`);
    assert.deepEqual(fm.map((e) => e.id), fm.map((e) => `${e.data.index}.${e.data.pos}`));
    assert.deepEqual(
      fm.map((e) => `${e.data.op} ${JSON.stringify(e.data.key)}`),
      ['schema null', 'insert {"id":1}', 'insert {"id":2}', 'insert {"id":3}', 'update {"id":2}', 'insert {"id":4}', 'update {"id":1}', 'update {"id":2}', 'delete {"id":3}'],
    );
    const schema = fm[0].data;
    assert.equal(schema.sql, 'CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT UNIQUE, n INTEGER, b BLOB)');
    assert.ok(fm[1].text.includes('"n":9007199254740993'), `64-bit integer exact: ${fm[1].text}`);
    assert.equal((fm[1].data.after as { b: string }).b, Buffer.from([0, 0xff, 0x10]).toString('base64'));
    const tx = fm.filter((e) => e.data.index === batch.index);
    assert.deepEqual(tx.map((e) => e.data.pos), [0, 1, 2], 'a transaction: one index, positions in order');
    assert.deepEqual(fm[6].data.before, { id: 1, name: 'ana', n: 9007199254740993, b: 'AP8Q' });
    assert.equal(new Date(fm[1].data.ts).toISOString(), fm[1].data.ts);

    // Filters.
    const deletes = await allEvents(c.slaves[1], last.index, '&op=delete,schema');
    assert.deepEqual(deletes.map((e) => e.data.op), ['schema', 'delete']);
    assertError(await get(`${m.url}/changes?op=upsert`), 400, 'BAD_REQUEST');

    // Latency from an acknowledged write to its event on a live consumer.
    const live = feed(`${c.slaves[0].url}/changes?table=users`);
    await new Promise((r) => setTimeout(r, 200));
    // Two figures: from the acknowledgement (ack "all": the slave applied it first, so often 0),
    // and from sending the write (the write's own round trip included: an upper bound).
    const lat: number[] = [];
    const whole: number[] = [];
    for (let i = 0; i < 40; i++) {
      const sent = performance.now();
      const w = ok(await exec(m, 'INSERT INTO users (name) VALUES (?)', [`lat${i}`]), 'write');
      const acked = performance.now();
      await live.until((evs) => evs.some((e) => e.data.index === w.index), 5000, `event of ${w.index}`);
      const seen = performance.now();
      lat.push(seen - acked);
      whole.push(seen - sent);
    }
    lat.sort((a, b) => a - b);
    whole.sort((a, b) => a - b);
    process.stdout.write(
      `# change feed on a slave's SSE consumer: acknowledged write (ack all) -> event p50 ${lat[20].toFixed(1)} ms (max ${lat[39].toFixed(1)}); write sent -> event p50 ${whole[20].toFixed(1)} ms (max ${whole[39].toFixed(1)})\n`,
    );
    assert.ok(lat[20] < 100, `p50 ${lat[20]} ms`);
  });
});

test('Last-Event-ID resumes exactly: reconnecting many times under write load gives no gap and no duplicate', { timeout: 120_000 }, async () => {
  await withCluster(['--capture', 'all'], 1, async (c) => {
    ok(await exec(c.master, 'CREATE TABLE k (id INTEGER PRIMARY KEY, v TEXT)'), 'create');
    const WRITES = 150;
    let writing = true;
    let lastWrite = 0;
    const load = (async () => {
      for (let i = 0; i < WRITES; i++) {
        // Every third write is a 3-row transaction: a reconnect often lands inside one index.
        const body = i % 3 === 0 ? { queries: [0, 1, 2].map((j) => ({ query: 'INSERT INTO k (v) VALUES (?)', params: [`${i}.${j}`] })), transaction: true } : { query: 'INSERT INTO k (v) VALUES (?)', params: [`${i}`] };
        lastWrite = ok(await post(c.master.url, body), 'write').index;
      }
      writing = false;
    })();
    const got: Ev[] = [];
    let id: string | undefined;
    let reconnects = 0;
    for (let round = 0; writing || got.length === 0 || got[got.length - 1].data.index < lastWrite; round++) {
      const f = feed(`${c.slaves[0].url}/changes${id ? '' : '?from=0'}`, id);
      const want = 1 + (round % 7);
      await f.until((evs) => evs.length >= want || (!writing && evs.length > 0 && evs[evs.length - 1].data.index >= lastWrite), 10_000, 'some events').catch(() => {});
      await f.close();
      feeds.delete(f);
      got.push(...f.events);
      if (f.events.length) id = f.events[f.events.length - 1].id;
      reconnects++;
      if (round > 2000) throw new Error('too many rounds');
    }
    await load;
    const all = await allEvents(c.slaves[0], lastWrite);
    assert.ok(reconnects > 20, `reconnected ${reconnects} times`);
    assert.deepEqual(got.map((e) => e.id), all.map((e) => e.id), 'the resumed pieces are the whole feed');
    assert.equal(new Set(got.map((e) => e.id)).size, got.length, 'no duplicate');
    process.stdout.write(`# resume: ${got.length} events over ${reconnects} connections\n`);
  });
});

test('failover: a SIGKILLed master and a static promotion leave the feed continuous and the same on the new master', { timeout: 150_000 }, async () => {
  await withCluster(['--capture', 'all', '--ack-timeout', '2000'], 2, async (c) => {
    const [s1, s2] = c.slaves;
    ok(await exec(c.master, 'CREATE TABLE f (id INTEGER PRIMARY KEY, v TEXT)'), 'create');
    const consumer = feed(`${s2.url}/changes?from=0&table=f&op=insert`);
    const acked: string[] = [];
    for (let i = 0; i < 30; i++) {
      ok(await exec(c.master, 'INSERT INTO f (v) VALUES (?)', [`before-${i}`]), 'write');
      acked.push(`before-${i}`);
    }
    // Slave 1 learns slave 2's address from the master's heartbeat answers: only then can its
    // failover ship to slave 2 (and point its writes at the new master) before answering.
    await waitFor(async () => (await status(s1)).nodes?.some((n: { id: number; url?: string }) => n.id === s2.id && n.url === s2.url), { timeoutMs: 10_000, message: 'slave 1 knows slave 2' });
    await hardKill(c.master);
    const p = await post(`${s1.url}/nodes/1/promote`, {}, { headers: authHeader(c.dataDir), timeoutMs: 30_000 });
    ok(p, 'promote');
    let last = 0;
    for (let i = 0; i < 30; i++) {
      last = ok(await exec(s2, 'INSERT INTO f (v) VALUES (?)', [`after-${i}`]), 'write via slave 2 to the new master').index;
      acked.push(`after-${i}`);
    }
    await consumer.until((evs) => evs.length >= acked.length, 20_000, 'every acknowledged insert');
    const seen = consumer.events.map((e) => (e.data.after as { v: string }).v);
    assert.deepEqual(seen, acked, 'every acknowledged write once, in order, across the failover');
    const idx = consumer.events.map((e) => e.data.index);
    assert.deepEqual(idx, [...idx].sort((a, b) => a - b));
    await waitForIndex([s1, s2], last);
    const [a, b] = await Promise.all([allEvents(s1, last), allEvents(s2, last)]);
    assert.deepEqual(a.map((e) => e.text), b.map((e) => e.text), 'the new master and the other slave hold the same feed');
  });
});

test('a cursor older than the retention gets 410 with the oldest index; a table list; capture none records nothing', { timeout: 90_000 }, async () => {
  await withCluster(['--capture', 't', '--changes-retain', '3'], 0, async (c) => {
    const m = c.master;
    ok(await exec(m, 'CREATE TABLE t (x); CREATE TABLE u (x)'), 'create');
    let last = 0;
    for (let i = 0; i < 10; i++) last = ok(await exec(m, `INSERT INTO t VALUES (${i}); INSERT INTO u VALUES (${i})`), 'write').index;
    // Trims run once a second, also while the writes went on: wait for the one after the last write.
    const r = (await waitFor(async () => {
      const x = await opening(`${m.url}/changes?from=1`);
      return x?.body?.error?.oldest === last - 2 ? x : undefined;
    }, { timeoutMs: 10_000, message: '410 naming the oldest index kept' })) as Awaited<ReturnType<typeof get>>;
    assertError(r, 410, 'CHANGES_TRIMMED');
    assert.equal(r.body.error.oldest, last - 2);
    const f = feed(`${m.url}/changes?from=${r.body.error.oldest}`);
    const evs = await f.until((e) => e.length >= 3);
    assert.deepEqual(evs.map((e) => `${e.data.index} ${e.data.table}`), [`${last - 2} t`, `${last - 1} t`, `${last} t`], 'only table t is captured');
    assertError(await get(`${m.url}/changes?from=1`, { headers: { 'last-event-id': '2.0' } }), 410, 'CHANGES_TRIMMED');
  });
  await withCluster([], 0, async (c) => {
    ok(await exec(c.master, 'CREATE TABLE t (x); INSERT INTO t VALUES (1)'), 'write');
    assertError(await get(`${c.master.url}/changes?from=0`), 400, 'BAD_REQUEST');
    const r = await post(c.master.url, { command: 'query', query: "SELECT count(*) FROM sqlite_schema WHERE name LIKE '_sqlfleet_changes%'" });
    assert.deepEqual(rows(r), [[0]], 'no change table under --capture none');
  });
});

test('under --auth the feed needs the read role', { timeout: 90_000 }, async () => {
  const { hashPassword } = await import('../src/auth/users.js');
  const { writeFileSync, mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'sqlfleet-changes-auth-'));
  const users = join(dir, 'users.json');
  writeFileSync(users, JSON.stringify({ users: [{ username: 'ada', password: await hashPassword('pw-ada'), role: 'admin' }, { username: 'rita', password: await hashPassword('pw-rita'), role: 'read' }] }));
  const basic = (u: string, p: string) => ({ authorization: `Basic ${Buffer.from(`${u}:${p}`).toString('base64')}` });
  const admin = basic('ada', 'pw-ada');
  const c = await startCluster({ slaves: 0, extraArgs: ['--auth', users, '--capture', 'all'], headers: admin });
  clusters.push(c);
  try {
    ok(await post(c.master.url, { query: 'CREATE TABLE t (x); INSERT INTO t VALUES (1)' }, { headers: admin }), 'write');
    assertError(await get(`${c.master.url}/changes?from=0`), 401, 'UNAUTHORIZED');
    assertError(await get(`${c.master.url}/changes?from=0`, { headers: basic('rita', 'wrong') }), 401, 'UNAUTHORIZED');
    const res = await fetch(`${c.master.url}/changes?from=0`, { headers: basic('rita', 'pw-rita'), signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('"op":"insert"')) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
  } catch (e) {
    printLogs(c.nodes, 40);
    throw e;
  } finally {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a slave that starts from a snapshot serves the same feed as the master', { timeout: 120_000 }, async () => {
  const { joiningSlave, logEvents, readFile } = await import('./helpers/load.js');
  const { join } = await import('node:path');
  const args = ['--capture', 'all', '--log-retain', '5'];
  await withCluster(args, 0, async (c) => {
    const m = c.master;
    ok(await exec(m, 'CREATE TABLE s (id INTEGER PRIMARY KEY, v TEXT)'), 'create');
    for (let i = 0; i < 30; i++) ok(await exec(m, 'INSERT INTO s (v) VALUES (?)', [`v${i}`]), 'write');
    // The master trims its log every 5 s: a new slave then needs a snapshot.
    await waitFor(() => (readFile<number | null>(join(c.dataDir, 'node-0.db'), 'SELECT min(idx) FROM _sqlfleet_log') ?? 0) > 1, { timeoutMs: 20_000, intervalMs: 200, message: 'master log trimmed' });
    const joiner = joiningSlave(m, 7, c.dataDir, args);
    try {
      await joiner.launch();
      let last = 0;
      await waitFor(async () => {
        last = ok(await exec(m, "UPDATE s SET v = v || '+' WHERE id = 1"), 'write after the join').index;
        return logEvents(joiner, 'snapshot installed').length > 0;
      }, { timeoutMs: 30_000, intervalMs: 500, message: 'the joiner installed a snapshot' });
      last = ok(await exec(m, 'DELETE FROM s WHERE id = 2'), 'write').index;
      await waitForIndex([joiner], last, 20_000);
      const [a, b] = await Promise.all([allEvents(m, last), allEvents(joiner, last)]);
      assert.ok(a.length > 30);
      assert.deepEqual(b.map((e) => e.text), a.map((e) => e.text), 'the snapshot carried the events; the joiner records the rest itself');
    } finally {
      await joiner.kill('SIGTERM');
    }
  });
});
