// Interactive transaction throughput (issue 25): 8 clients each run a write transaction of
// a SELECT and an UPDATE over Hrana (/v2/pipeline, the stream held by its baton) against a
// master with 2 slaves (ack "all"), compared with the single-node limit
// (bench/references.ts: ../shared/bench/limit.mjs when present) answering the same SELECT
// and UPDATE as one `queries` request (its transaction) from 8 clients. `npm run bench`
// measures it as a figure (measureHranaTx); alone:
//   npx tsx bench/hrana-tx.ts [seconds]
// The requests are what @libsql/client (0.18, HTTP, Hrana v2) sends for
// `tx = await client.transaction('write'); await tx.execute(SELECT); await tx.execute(UPDATE);
// await tx.commit()`, captured from the client: three round trips — store_sql + a batch of
// BEGIN IMMEDIATE and the SELECT (conditioned on BEGIN), store_sql + a batch of the UPDATE,
// then COMMIT with close (shape `client`, the default). Shape `four` is the older bench:
// BEGIN IMMEDIATE, SELECT, UPDATE, COMMIT + close as four requests.
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

/** How a transaction's requests are shaped (see the head of this file). */
export type Shape = 'client' | 'four';

/** What a load run measured: transactions per second and done, mean latency of each request (ms), failed transactions. */
export interface LoadResult {
  tps: number;
  n: number;
  lat: number[];
  errors: number;
}

/** Runs `one` from CLIENTS loops for `seconds`; `one` adds each request's latency (ms) into `lat`. */
async function loadRun(seconds: number, one: (client: number, i: number, lat: number[]) => Promise<void>): Promise<LoadResult> {
  const t0 = Date.now();
  const until = t0 + seconds * 1000;
  let n = 0;
  let errors = 0;
  const lat: number[] = [];
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      for (let i = 0; Date.now() < until; i++) {
        try {
          await one(c, i, lat);
          n++;
        } catch (e) {
          if (++errors <= 3) console.error(`transaction failed: ${(e as Error).message}`);
        }
      }
    }),
  );
  return { tps: n / ((Date.now() - t0) / 1000), n, lat: lat.map((x) => x / Math.max(1, n)), errors };
}

/** Runs `one` from CLIENTS loops for `seconds`; returns operations per second. */
async function load(seconds: number, one: (client: number, i: number, lat: number[]) => Promise<void>): Promise<number> {
  return (await loadRun(seconds, one)).tps;
}

const SELECT = 'SELECT v FROM acct WHERE id = ?';
const UPDATE = 'UPDATE acct SET v = v + 1 WHERE id = ?';

/** One request, its latency added to lat[k]. */
async function timed(lat: number[], k: number, url: string, body: unknown): Promise<any> {
  const t = performance.now();
  const r = await postJson(url, body);
  lat[k] = (lat[k] ?? 0) + performance.now() - t;
  return r;
}

function check(r: any, what: string): void {
  for (const x of r.results) {
    if (x.type !== 'ok') throw new Error(`${what}: ${JSON.stringify(x)}`);
    const b = x.response?.result;
    if (x.response?.type === 'batch' && b.step_errors.some((e: unknown) => e !== null)) throw new Error(`${what}: ${JSON.stringify(b.step_errors)}`);
  }
}

/** Four requests: BEGIN IMMEDIATE, SELECT, UPDATE, COMMIT + close. */
async function hranaTxFour(url: string, id: number, lat: number[]): Promise<void> {
  const int = { type: 'integer', value: String(id) };
  const p = `${url}/v2/pipeline`;
  let r = await timed(lat, 0, p, { baton: null, requests: [{ type: 'execute', stmt: { sql: 'BEGIN IMMEDIATE' } }] });
  r = await timed(lat, 1, p, { baton: r.baton, requests: [{ type: 'execute', stmt: { sql: SELECT, args: [int] } }] });
  r = await timed(lat, 2, p, { baton: r.baton, requests: [{ type: 'execute', stmt: { sql: UPDATE, args: [int] } }] });
  r = await timed(lat, 3, p, { baton: r.baton, requests: [{ type: 'execute', stmt: { sql: 'COMMIT' } }, { type: 'close' }] });
  check(r, 'COMMIT');
}

/** What @libsql/client 0.18 sends (captured): three requests, see the head of this file. */
async function hranaTxClient(url: string, id: number, lat: number[]): Promise<void> {
  const arg = { type: 'float', value: id }; // a JS number, as the client encodes it
  const p = `${url}/v2/pipeline`;
  const stmt = (o: Record<string, unknown>, wantRows: boolean) => ({ ...o, args: [], named_args: [], want_rows: wantRows });
  let r = await timed(lat, 0, p, {
    requests: [
      { type: 'store_sql', sql_id: 0, sql: SELECT },
      { type: 'batch', batch: { steps: [{ stmt: stmt({ sql: 'BEGIN IMMEDIATE' }, false) }, { condition: { type: 'ok', step: 0 }, stmt: { ...stmt({ sql_id: 0 }, true), args: [arg] } }] } },
    ],
  });
  check(r, 'BEGIN + SELECT');
  r = await timed(lat, 1, p, {
    baton: r.baton,
    requests: [
      { type: 'store_sql', sql_id: 1, sql: UPDATE },
      { type: 'batch', batch: { steps: [{ stmt: { ...stmt({ sql_id: 1 }, true), args: [arg] } }] } },
    ],
  });
  check(r, 'UPDATE');
  r = await timed(lat, 2, p, { baton: r.baton, requests: [{ type: 'execute', stmt: stmt({ sql: 'COMMIT' }, false) }, { type: 'close' }] });
  check(r, 'COMMIT');
}

const TABLE = 'CREATE TABLE IF NOT EXISTS acct(id INTEGER PRIMARY KEY, v INTEGER)';
const rows = () => Array.from({ length: ROWS }, (_, i) => ({ query: 'INSERT OR REPLACE INTO acct VALUES (?, 0)', params: [i] }));

/** Creates the accounts table on a node (or the limit) once; idempotent. */
export async function seedHranaTx(url: string): Promise<void> {
  await postJson(url, { query: TABLE });
  await postJson(url, { queries: rows(), transaction: true });
}

const limitOne = (limitUrl: string) => (c: number, i: number, lat: number[]) =>
  timed(lat, 0, limitUrl, { queries: [{ query: SELECT, params: [(c * 7 + i) % ROWS] }, { query: UPDATE, params: [(c * 7 + i) % ROWS] }], transaction: true }).then(() => undefined);

/** Transactions per second of the limit (one `queries` request each) over `seconds`. */
export function limitTx(limitUrl: string, seconds: number): Promise<number> {
  return load(seconds, limitOne(limitUrl));
}

/** The limit's transactions over `seconds`, with latency and count. */
export function limitTxLoad(limitUrl: string, seconds: number): Promise<LoadResult> {
  return loadRun(seconds, limitOne(limitUrl));
}

/** Interactive Hrana transactions against one node over `seconds`, with the latency of each request. */
export function hranaTxLoad(nodeUrl: string, seconds: number, shape: Shape = 'client'): Promise<LoadResult> {
  const tx = shape === 'four' ? hranaTxFour : hranaTxClient;
  return loadRun(seconds, (c, i, lat) => tx(nodeUrl, (c * 7 + i) % ROWS, lat));
}

/** Interactive Hrana transactions per second against one node over `seconds`. */
export async function hranaTxRate(nodeUrl: string, seconds: number, shape: Shape = 'client'): Promise<number> {
  return (await hranaTxLoad(nodeUrl, seconds, shape)).tps;
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
