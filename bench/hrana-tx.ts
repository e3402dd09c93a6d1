// Interactive transaction throughput (issue 25): 8 clients each run
// `BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT` over Hrana (/v2/pipeline, four round trips,
// the stream held by its baton) against a master with 2 slaves (ack "all"), compared with
// ../shared/bench/limit.mjs answering the same SELECT and UPDATE as one `queries` request
// (its transaction) from 8 clients. Run: npx tsx bench/hrana-tx.ts [seconds]
import { join, resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { Agent, request } from 'undici';
import { runScript, startCluster, tempDir } from './cluster.js';
import { ROOT, freePort, start } from './procs.js';

const SECONDS = Number(process.argv[2] ?? 5);
const CLIENTS = 8;
const ROWS = 100;
const LIMIT = resolve(ROOT, process.env.BENCH_LIMIT ?? '../shared/bench/limit.mjs');
const agent = new Agent({ connections: CLIENTS * 2, pipelining: 1 });

async function postJson(url: string, body: unknown): Promise<any> {
  const res = await request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, dispatcher: agent });
  const json = await res.body.json();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${JSON.stringify(json)}`);
  return json;
}

/** Runs `one` from CLIENTS loops for SECONDS; returns operations per second. */
async function load(one: (client: number, i: number) => Promise<void>): Promise<number> {
  const until = Date.now() + SECONDS * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; Date.now() < until; i++) {
        await one(c, i);
        n++;
      }
    }),
  );
  return n / SECONDS;
}

const SELECT = 'SELECT v FROM acct WHERE id = ?';
const UPDATE = 'UPDATE acct SET v = v + 1 WHERE id = ?';

async function hranaTx(url: string, id: number): Promise<void> {
  const int = { type: 'integer', value: String(id) };
  const p = `${url}/v2/pipeline`;
  let r = await postJson(p, { baton: null, requests: [{ type: 'execute', stmt: { sql: 'BEGIN IMMEDIATE' } }] });
  r = await postJson(p, { baton: r.baton, requests: [{ type: 'execute', stmt: { sql: SELECT, args: [int] } }] });
  r = await postJson(p, { baton: r.baton, requests: [{ type: 'execute', stmt: { sql: UPDATE, args: [int] } }] });
  r = await postJson(p, { baton: r.baton, requests: [{ type: 'execute', stmt: { sql: 'COMMIT' } }, { type: 'close' }] });
  if (r.results[0].type !== 'ok') throw new Error(JSON.stringify(r.results[0]));
}

await runScript('hrana-tx', async () => {
  if (!existsSync(LIMIT)) throw new Error(`${LIMIT} is missing (set BENCH_LIMIT)`);
  const limit = await start('limit', LIMIT, [], [], { PORT: String(await freePort()), HOST: '127.0.0.1', DB: join(tempDir('sqlfleet-limit-'), 'limit.db') });
  await postJson(limit.url, { query: 'CREATE TABLE acct(id INTEGER PRIMARY KEY, v INTEGER)' });
  await postJson(limit.url, { queries: Array.from({ length: ROWS }, (_, i) => ({ query: 'INSERT INTO acct VALUES (?, 0)', params: [i] })) });
  const limitTps = await load((c, i) => postJson(limit.url, { queries: [{ query: SELECT, params: [(c * 7 + i) % ROWS] }, { query: UPDATE, params: [(c * 7 + i) % ROWS] }], transaction: true }));

  const cluster = await startCluster(2);
  const m = cluster.master.url;
  await postJson(m, { query: 'CREATE TABLE acct(id INTEGER PRIMARY KEY, v INTEGER)' });
  await postJson(m, { queries: Array.from({ length: ROWS }, (_, i) => ({ query: 'INSERT INTO acct VALUES (?, 0)', params: [i] })), transaction: true });
  await load((c, i) => hranaTx(m, (c * 7 + i) % ROWS)); // warm-up
  const txTps = await load((c, i) => hranaTx(m, (c * 7 + i) % ROWS));
  const slaveTps = await load((c, i) => hranaTx(cluster.slaves[0]!.url, (c * 7 + i) % ROWS));
  console.log(JSON.stringify({ clients: CLIENTS, seconds: SECONDS, limit_queries_tx_per_s: Math.round(limitTps), hrana_tx_per_s_master: Math.round(txTps), ratio: +(txTps / limitTps).toFixed(3), hrana_tx_per_s_via_slave: Math.round(slaveTps) }));
});
