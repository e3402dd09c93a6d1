// The change webhook (--cdc-url, DESIGN §9) on real processes: only the master sends; a
// receiver that fails, is slow, or is down for a while loses nothing and gets events in
// order; after a SIGKILL of the master and a static promotion, the new master resumes
// after the replicated high-water mark: duplicates only from the batch in flight.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, test } from 'node:test';
import { exec, get, metricSum, ok, post, printLogs, startCluster, status, waitFor, type Cluster } from './helpers/cluster.js';
import { authHeader, hardKill } from './helpers/load.js';

interface Got {
  id: string;
  index: number;
  v?: string;
}

/** A webhook receiver: records every batch; `mode` makes it fail, stall or be down. */
class Receiver {
  readonly batches: Got[][] = [];
  mode: 'ok' | 'fail' | 'slow' = 'ok';
  failNext = 0;
  requests = 0;
  private server!: http.Server;
  url = '';

  async start(): Promise<void> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        this.requests++;
        if (this.mode === 'fail' || this.failNext > 0) {
          this.failNext = Math.max(0, this.failNext - 1);
          res.writeHead(503).end();
          return;
        }
        const events = (JSON.parse(body) as { events: { index: number; pos: number; after?: { v?: string } }[] }).events;
        const answer = () => {
          this.batches.push(events.map((e) => ({ id: `${e.index}.${e.pos}`, index: e.index, v: e.after?.v })));
          res.writeHead(200).end();
        };
        if (this.mode === 'slow') setTimeout(answer, 300);
        else answer();
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  /** Every event received, in arrival order (duplicates included). */
  all(): Got[] {
    return this.batches.flat();
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const receiver = new Receiver();
let c: Cluster | undefined;
after(async () => {
  await c?.stop();
  await receiver.stop();
});

test('webhook: failing, down and slow receivers lose nothing; a new master resumes after the replicated mark', { timeout: 150_000 }, async () => {
  await receiver.start();
  c = await startCluster({ slaves: 2, extraArgs: ['--capture', 'all', '--cdc-url', receiver.url, '--ack-timeout', '2000'] });
  const [s1, s2] = c.slaves;
  try {
    ok(await exec(c.master, 'CREATE TABLE w (id INTEGER PRIMARY KEY, v TEXT)'), 'create');
    const acked: string[] = [];
    const write = async (node: typeof s1, v: string) => {
      ok(await exec(node, 'INSERT INTO w (v) VALUES (?)', [v]), `write ${v}`);
      acked.push(v);
    };
    const delivered = () => new Set(receiver.all().map((g) => g.v).filter((v) => v !== undefined));
    const waitDelivered = (what: string) => waitFor(() => acked.every((v) => delivered().has(v)), { timeoutMs: 30_000, message: what });

    // Fails three times, then takes them.
    receiver.failNext = 3;
    for (let i = 0; i < 20; i++) await write(c.master, `a${i}`);
    await waitDelivered('after three failures');
    // Down for a while.
    receiver.mode = 'fail';
    for (let i = 0; i < 20; i++) await write(c.master, `b${i}`);
    await new Promise((r) => setTimeout(r, 1500));
    receiver.mode = 'ok';
    await waitDelivered('after being down');
    const st = await status(c.master);
    assert.ok(st.cdc.failures >= 4, `failures counted: ${JSON.stringify(st.cdc)}`);
    const metrics = (await get(`${c.master.url}/metrics`)).text;
    assert.ok(metricSum(metrics, 'sqlfleet_cdc_failures_total') >= 4, 'failures in /metrics');
    assert.match(metrics, /^sqlfleet_cdc_lag_entries\{[^}]*\} \d+$/m);
    // The mark reaches the slaves through the log.
    await waitFor(async () => (await status(s2)).cdc?.delivered === st.cdc.delivered || (await status(s2)).cdc?.delivered_index >= st.cdc.delivered_index, {
      timeoutMs: 10_000,
      message: 'slave holds the mark',
    });

    // Slow receiver; the master is SIGKILLed while a batch may be in flight.
    receiver.mode = 'slow';
    for (let i = 0; i < 20; i++) await write(c.master, `c${i}`);
    await hardKill(c.master);
    ok(await post(`${s1.url}/nodes/1/promote`, {}, { headers: authHeader(c.dataDir), timeoutMs: 30_000 }), 'promote');
    for (let i = 0; i < 20; i++) await write(s2, `d${i}`);
    receiver.mode = 'ok';
    await waitDelivered('after the failover');

    const all = receiver.all();
    const ids = all.map((g) => g.id);
    const unique = [...new Set(ids)];
    const dups = ids.length - unique.length;
    // In order: first arrivals follow log order.
    const order = unique.map((id) => id.split('.').map(Number));
    for (let i = 1; i < order.length; i++) assert.ok(order[i][0] > order[i - 1][0] || (order[i][0] === order[i - 1][0] && order[i][1] > order[i - 1][1]), `in order at ${unique[i]}`);
    const inserts = all.filter((g) => g.v !== undefined);
    assert.deepEqual([...new Set(inserts.map((g) => g.v))], acked, 'every acknowledged insert, in order');
    const biggest = Math.max(...receiver.batches.map((b) => b.length));
    assert.ok(dups <= biggest, `duplicates ${dups} are at most one batch (${biggest})`);
    process.stdout.write(`# webhook: ${unique.length} events, ${receiver.requests} requests, ${dups} duplicates after the failover (the batch in flight)\n`);
  } catch (e) {
    printLogs(c.nodes, 80);
    throw e;
  }
});
