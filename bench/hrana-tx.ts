// Interactive transaction throughput (issue 25): 8 clients each run
// `BEGIN IMMEDIATE; SELECT; UPDATE; COMMIT` over Hrana (/v2/pipeline, four round trips,
// the stream held by its baton) against a master with 2 slaves (ack "all"), compared with
// the single-node limit (bench/references.ts: ../shared/bench/limit.mjs when present)
// answering the same SELECT and UPDATE as one `queries` request (its transaction) from 8
// clients. `npm run bench` measures it as a figure (measureHranaTx); alone:
//   npx tsx bench/hrana-tx.ts [seconds]
import { Agent, request } from 'undici';
import { runScript, startCluster, startLimit } from './cluster.js';
import { referenceLine } from './references.js';

const CLIENTS = 8;
const ROWS = 100;
const agent = new Agent({ connections: CLIENTS * 2, pipelining: 1 });

async function postJson(url: string, body: unknown): Promise<any> {
  const res = await request(url, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' }, dispatcher: agent });
  const json = await res.body.json();
  if (res.statusCode !== 200) throw new Error(`${url}: ${res.statusCode} ${JSON.stringify(json)}`);
  return json;
}

/** Runs `one` from CLIENTS loops for `seconds`; returns operations per second. */
async function load(seconds: number, one: (client: number, i: number) => Promise<void>): Promise<number> {
  const t0 = Date.now();
  const until = t0 + seconds * 1000;
  let n = 0;
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; Date.now() < until; i++) {
        await one(c, i);
        n++;
      }
    }),
  );
  return n / ((Date.now() - t0) / 1000);
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

const TABLE = 'CREATE TABLE IF NOT EXISTS acct(id INTEGER PRIMARY KEY, v INTEGER)';
const rows = () => Array.from({ length: ROWS }, (_, i) => ({ query: 'INSERT OR REPLACE INTO acct VALUES (?, 0)', params: [i] }));

/** Creates the accounts table on a node (or the limit) once; idempotent. */
export async function seedHranaTx(url: string): Promise<void> {
  await postJson(url, { query: TABLE });
  await postJson(url, { queries: rows(), transaction: true });
}

/** Transactions per second of the limit (one `queries` request each) over `seconds`. */
export function limitTx(limitUrl: string, seconds: number): Promise<number> {
  return load(seconds, (c, i) => postJson(limitUrl, { queries: [{ query: SELECT, params: [(c * 7 + i) % ROWS] }, { query: UPDATE, params: [(c * 7 + i) % ROWS] }], transaction: true }));
}

/** Interactive Hrana transactions per second against one node over `seconds`. */
export function hranaTxRate(nodeUrl: string, seconds: number): Promise<number> {
  return load(seconds, (c, i) => hranaTx(nodeUrl, (c * 7 + i) % ROWS));
}

if (process.argv[1]?.endsWith('hrana-tx.ts')) {
  const seconds = Number(process.argv[2] ?? 5);
  await runScript('hrana-tx', async () => {
    console.log(referenceLine());
    const limit = await startLimit();
    await seedHranaTx(limit.url);
    const limitTps = await limitTx(limit.url, seconds);
    const cluster = await startCluster(2);
    const m = cluster.master.url;
    await seedHranaTx(m);
    await hranaTxRate(m, seconds); // warm-up
    const txTps = await hranaTxRate(m, seconds);
    const slaveTps = await hranaTxRate(cluster.slaves[0]!.url, seconds);
    console.log(JSON.stringify({ clients: CLIENTS, seconds, limit_queries_tx_per_s: Math.round(limitTps), hrana_tx_per_s_master: Math.round(txTps), ratio: +(txTps / limitTps).toFixed(3), hrana_tx_per_s_via_slave: Math.round(slaveTps) }));
  });
  await agent.close();
}
