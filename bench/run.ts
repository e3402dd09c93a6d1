// `npm run bench`: sqlfleet (master + 2 slaves, ack "all") against two references, the
// single-node limit (limit.mjs: node:http + better-sqlite3 + group commit; issue 29's goals
// divide by it) and the yardstick (yardstick.mjs: hono + better-sqlite3, one commit per
// write), from ../shared/bench/ when present, else bench/'s own (bench/references.ts; the
// output says which), driven by wrk with the bodies of sql.lua. Each figure is measured in
// rounds of limit, yardstick, sqlfleet, sqlfleet, yardstick, limit runs (A-B-B-A), so all
// see the same machine; the table gives each round's ratio to the limit, their median, the
// median ratio to the yardstick, and CPU time per operation summed over every server
// process (schedstat), which hardly moves with the machine's load. Then interactive Hrana
// transactions against the limit's `queries` transactions (issue 25), 1000-row batches
// (against the yardstick), a stopped slave's catch-up and RSS. JSON: .bench/latest.json.
//
//   npm run bench                 static mode
//   npm run bench -- --etcd       every node with --etcd <url> of a throw-away etcd (bench/etcd.ts)
//
// Environment:
//   BENCH_SECONDS          seconds per wrk run (default 5; four runs per figure and round)
//   BENCH_ROUNDS           A-B-B-A rounds per figure (default 3; the median ratio is judged)
//   BENCH_PHASES           comma list of wrk,hrana,batch,catchup,rss (default all of them)
//   BENCH_FIGURES          comma list of wrk figures by mode and connections, e.g. param32,literal32,read32,param1,batch4 (default all)
//   BENCH_MAX_REQUESTS     request cap per batch run (default 500000)
//   BENCH_CATCHUP_ENTRIES  entries a stopped slave falls behind (default 100000)
//   BENCH_CATCHUP_SECONDS  cap on the time spent writing them (default 60)
//   BENCH_RSS_WRITES       when set (e.g. 1000000): write that many entries, then read the master's RSS
//   BENCH_REFERENCES       folder of limit.mjs, yardstick.mjs, sql.lua (default ../shared/bench if present, else bench)
//   BENCH_LIMIT, BENCH_YARDSTICK, BENCH_SQL_LUA, BENCH_WRK, BENCH_ETCD   other paths to the tools
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { appliedIndex, removeTempDirs, startCluster, startFloor, startLimit, startYardstick, type BenchCluster, type Floor } from './cluster.js';
import { startEtcd, type Etcd } from './etcd.js';
import { hranaTxRate, limitTx, seedHranaTx } from './hrana-tx.js';
import { referenceLine } from './references.js';
import { mergeResults, runLoad, type BodyFn, type LoadResult } from './load.js';
import { cpuMs, getJson, post, ROOT, started, stopAll, until, type Proc } from './procs.js';
import { checkWrk, runWrk, type WrkMode, type WrkResult } from './wrk.js';

const SECONDS = num('BENCH_SECONDS', 5);
const ROUNDS = Math.max(1, Math.round(num('BENCH_ROUNDS', 3)));
const PHASES = new Set((process.env.BENCH_PHASES ?? 'wrk,hrana,batch,catchup,rss').split(',').map((s) => s.trim()));
const MAX_REQUESTS = num('BENCH_MAX_REQUESTS', 500_000);
const CATCHUP_ENTRIES = num('BENCH_CATCHUP_ENTRIES', 100_000);
const CATCHUP_SECONDS = num('BENCH_CATCHUP_SECONDS', 60);
const RSS_WRITES = num('BENCH_RSS_WRITES', 0);
const ETCD = process.argv.includes('--etcd');
const ONLY_FIGURES = process.env.BENCH_FIGURES ? new Set(process.env.BENCH_FIGURES.split(',').map((s) => s.trim())) : null;
const BATCH_ROWS = 1000;
const READ_KEYS = 1000;

// The yardstick creates this table itself; sqlfleet gets the same.
const DDL = 'CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)';
const UPSERT = 'INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)';
const VALUE = 'v'.repeat(100); // as sql.lua

function num(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
}

function fmt(v: number | null | undefined, digits: number): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function median(xs: readonly number[]): number {
  const s = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const oddities: string[] = [];

// ---- the wrk figures ------------------------------------------------------------------------

/** One figure of the issue: what wrk sends, where, and the goal on the median ratio. */
interface Figure {
  name: string;
  mode: WrkMode;
  concurrency: number;
  /** The node of sqlfleet it is sent to. */
  target: (c: BenchCluster) => Proc;
  /** `rps`: sqlfleet/reference throughput, higher is better; `p50`: sqlfleet/reference latency, lower is better. */
  measure: 'rps' | 'p50';
  /** Goal on the median ratio to the limit (issue 29). */
  goal: number;
  /** Goal on the median ratio to the yardstick (issue 16). */
  ysGoal: number;
}

const FIGURES: Figure[] = [
  { name: 'parameterized writes c=32', mode: 'param', concurrency: 32, target: (c) => c.master, measure: 'rps', goal: 0.6, ysGoal: 0.8 },
  { name: 'unique literal writes c=32', mode: 'literal', concurrency: 32, target: (c) => c.master, measure: 'rps', goal: 0.5, ysGoal: 0.7 },
  { name: 'point reads on one slave c=32', mode: 'read', concurrency: 32, target: (c) => c.slaves[0], measure: 'rps', goal: 1.0, ysGoal: 1.5 },
  { name: 'write p50 at c=1 (× reference)', mode: 'param', concurrency: 1, target: (c) => c.master, measure: 'p50', goal: 2.5, ysGoal: 3 },
  { name: '100-row batches c=4 (rows/s)', mode: 'batch', concurrency: 4, target: (c) => c.master, measure: 'rps', goal: 0.5, ysGoal: 0 },
];

/** The runs of one figure in one round. */
interface Round {
  limit: WrkResult[];
  yardstick: WrkResult[];
  /** The replicated floor's runs (write figures only). */
  floor: WrkResult[];
  sqlfleet: WrkResult[];
  /** sqlfleet / limit. */
  ratio: number;
  /** sqlfleet / yardstick. */
  ysRatio: number;
  /** floor / limit, and sqlfleet / floor (NaN for reads: a read's floor is the limit itself). */
  floorRatio: number;
  toFloor: number;
}

const figureRounds = new Map<string, Round[]>();
let prefixSeq = 0;

function mean(rs: readonly WrkResult[], k: 'rps' | 'p50_ms'): number {
  return rs.reduce((a, r) => a + r[k], 0) / rs.length;
}

/** CPU µs per request of each process over some runs, and their sum. */
function cpuPerOp(rs: readonly WrkResult[]): { total: number; by: Record<string, number>; wrk: number } {
  const ops = rs.reduce((a, r) => a + r.requests, 0);
  const by: Record<string, number> = {};
  for (const r of rs) for (const [k, ms] of Object.entries(r.cpu)) by[k] = (by[k] ?? 0) + ms;
  for (const k of Object.keys(by)) by[k] = (by[k] * 1000) / ops;
  const wrk = (rs.reduce((a, r) => a + r.wrkCpuMs, 0) * 1000) / ops;
  return { total: Object.values(by).reduce((a, b) => a + b, 0), by, wrk };
}

async function wrkRound(f: Figure, c: BenchCluster, refs: Refs, round: number): Promise<void> {
  const fleetProcs = [
    { name: 'master', pid: c.master.pid },
    { name: 'slave1', pid: c.slaves[0].pid },
    { name: 'slave2', pid: c.slaves[1].pid },
  ];
  const floorProcs = [
    { name: 'master', pid: refs.floor.master.pid },
    { name: 'slave1', pid: refs.floor.slaves[0].pid },
    { name: 'slave2', pid: refs.floor.slaves[1].pid },
  ];
  const one = async (who: 'limit' | 'yardstick' | 'floor' | 'sqlfleet'): Promise<WrkResult> => {
    const ref = who === 'limit' || who === 'yardstick' ? refs[who] : null;
    const r = await runWrk({
      url: ref ? ref.url : who === 'floor' ? refs.floor.master.url : f.target(c).url,
      mode: f.mode,
      prefix: f.mode === 'read' ? 'r' : `w${++prefixSeq}`,
      keys: READ_KEYS,
      concurrency: f.concurrency,
      seconds: SECONDS,
      procs: ref ? [{ name: who, pid: ref.pid }] : who === 'floor' ? floorProcs : fleetProcs,
    });
    if (r.errors || r.socketErrors) oddities.push(`${f.name}, round ${round + 1}, ${who}: ${r.errors} error answers ${r.socketErrors}`);
    return r;
  };
  // Writes: limit, yardstick, floor, sqlfleet, sqlfleet, floor, yardstick, limit.
  const withFloor = f.mode !== 'read';
  const l1 = await one('limit');
  const y1 = await one('yardstick');
  const fl1 = withFloor ? await one('floor') : null;
  const f1 = await one('sqlfleet');
  const f2 = await one('sqlfleet');
  const fl2 = withFloor ? await one('floor') : null;
  const y2 = await one('yardstick');
  const l2 = await one('limit');
  const limit = [l1, l2];
  const yardstick = [y1, y2];
  const floor = fl1 && fl2 ? [fl1, fl2] : [];
  const sqlfleet = [f1, f2];
  const ratioOf = (a: WrkResult[], ref: WrkResult[]) =>
    a.length === 0 ? Number.NaN : f.measure === 'rps' ? mean(a, 'rps') / mean(ref, 'rps') : mean(a, 'p50_ms') / mean(ref, 'p50_ms');
  const ratio = ratioOf(sqlfleet, limit);
  const ysRatio = ratioOf(sqlfleet, yardstick);
  const floorRatio = ratioOf(floor, limit);
  const toFloor = ratioOf(sqlfleet, floor);
  const list = figureRounds.get(f.name) ?? [];
  list.push({ limit, yardstick, floor, sqlfleet, ratio, ysRatio, floorRatio, toFloor });
  figureRounds.set(f.name, list);
  const cf = cpuPerOp(sqlfleet).total;
  const cl = cpuPerOp(limit).total;
  const per = f.mode === 'batch' ? 100 : 1; // rows per request
  const rate = (rs: WrkResult[]) => `${fmt(mean(rs, 'rps') * per, 0)} ${per > 1 ? 'rows' : 'req'}/s p50 ${fmt(mean(rs, 'p50_ms'), 2)} ms`;
  console.log(
    `  ${f.name.padEnd(32)} round ${round + 1}: sqlfleet ${rate(sqlfleet)} | limit ${rate(limit)} | yardstick ${rate(yardstick)}` +
      (withFloor ? ` | floor ${rate(floor)}` : '') +
      ` | ratio ${fmt(ratio, 2)} (yardstick ${fmt(ysRatio, 2)}${withFloor ? `; floor ${fmt(floorRatio, 2)}` : ''}) | CPU/op ${fmt(cf, 0)} vs limit ${fmt(cl, 0)} µs`,
  );
}

/** The first table: each round's ratio to the limit, the median, the goal, the yardstick's median; then CPU per operation. */
function wrkTables(): string {
  const out: string[] = [];
  const roundHeads = Array.from({ length: ROUNDS }, (_, i) => `round ${i + 1}`);
  const head = ['figure (ratio to the limit)', ...roundHeads, 'median', 'goal', 'result', 'sqlfleet, median', 'limit, median', 'ratio to the yardstick', 'floor / limit', 'sqlfleet / floor'];
  const shown = FIGURES.filter((f) => figureRounds.has(f.name));
  const cells = shown.map((f) => {
    const rs = figureRounds.get(f.name)!;
    const m = median(rs.map((r) => r.ratio));
    const ok = f.measure === 'rps' ? m >= f.goal : m <= f.goal;
    const sign = f.measure === 'rps' ? '≥' : '≤';
    const abs = (k: 'sqlfleet' | 'limit') =>
      f.measure === 'p50' ? `${fmt(median(rs.map((r) => mean(r[k], 'p50_ms'))), 2)} ms` : `${fmt(median(rs.map((r) => mean(r[k], 'rps'))) * (f.mode === 'batch' ? 100 : 1), 0)}/s`;
    const ym = median(rs.map((r) => r.ysRatio));
    const fm = median(rs.map((r) => r.floorRatio));
    const tf = median(rs.map((r) => r.toFloor));
    const x = (v: number) => (Number.isFinite(v) ? `${fmt(v, 2)}x` : '—');
    return [f.name, ...rs.map((r) => `${fmt(r.ratio, 2)}x`), `${fmt(m, 2)}x`, `${sign} ${f.goal}x`, ok ? 'PASS' : 'MISS', abs('sqlfleet'), abs('limit'), `${fmt(ym, 2)}x${f.ysGoal ? ` (goal ${sign} ${f.ysGoal}x)` : ''}`, x(fm), x(tf)];
  });
  out.push(grid(head, cells, 1, roundHeads.length + 1));
  const cpuHead = ['CPU per operation (µs, all rounds)', 'sqlfleet', 'master', 'slave 1', 'slave 2', 'limit', 'ratio', 'yardstick', 'ratio', 'floor (m / s1 / s2)', 'wrk, sqlfleet / limit'];
  const cpuCells = shown.map((f) => {
    const rs = figureRounds.get(f.name)!;
    const cf = cpuPerOp(rs.flatMap((r) => r.sqlfleet));
    const cl = cpuPerOp(rs.flatMap((r) => r.limit));
    const cy = cpuPerOp(rs.flatMap((r) => r.yardstick));
    const fl = rs.some((r) => r.floor.length) ? cpuPerOp(rs.flatMap((r) => r.floor)) : null;
    const floorCell = fl ? `${fmt(fl.total, 0)} (${fmt(fl.by.master, 0)} / ${fmt(fl.by.slave1, 0)} / ${fmt(fl.by.slave2, 0)})` : '—';
    return [f.name, fmt(cf.total, 0), fmt(cf.by.master, 0), fmt(cf.by.slave1, 0), fmt(cf.by.slave2, 0), fmt(cl.total, 0), `${fmt(cf.total / cl.total, 2)}x`, fmt(cy.total, 0), `${fmt(cf.total / cy.total, 2)}x`, floorCell, `${fmt(cf.wrk, 0)} / ${fmt(cl.wrk, 0)}`];
  });
  out.push(grid(cpuHead, cpuCells, 1, 9));
  return out.join('\n\n');
}

/** A markdown table; columns from..to are right-aligned. */
function grid(head: string[], cells: string[][], from: number, to: number): string {
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => '| ' + c.map((x, i) => (i >= from && i <= to ? x.padStart(width[i]) : x.padEnd(width[i]))).join(' | ') + ' |';
  return [line(head), '|' + width.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.map(line)].join('\n');
}

/** The reference servers: the limit, the yardstick and the replicated floor (bench/floor.mjs, write figures only). */
interface Refs {
  limit: Proc;
  yardstick: Proc;
  floor: Floor;
}

/**
 * Every statement text the bench sends more than once, run once on each reference before
 * the first literal write. ../shared/bench's servers cache the first 1000 texts and never
 * evict, so after the literal figure (1000s of unique texts) a text first seen later, like
 * the point read, was prepared on every request: the shared limit's CPU per read went from
 * 53 to 109 µs (bench/refs-compare.ts), which flattered the read ratio. Primed, both
 * reference sets cost the same.
 */
async function primeReferences(refs: Pick<Refs, 'limit' | 'yardstick'>): Promise<void> {
  for (const ref of [refs.limit, refs.yardstick]) {
    await post(ref.url, { command: 'query', query: 'SELECT v FROM kv WHERE k = ?', params: ['r-0'] });
    await seedHranaTx(ref.url);
    for (const query of ['SELECT v FROM acct WHERE id = ?', 'UPDATE acct SET v = v + 1 WHERE id = ?']) await post(ref.url, { query, params: [0] });
  }
}

/** The keys sql.lua's read mode asks for (r-0 … r-999), in one transaction on each system. */
async function seedReadKeys(c: BenchCluster, refs: Refs): Promise<void> {
  const queries = Array.from({ length: READ_KEYS }, (_, i) => ({ query: UPSERT, params: [`r-${i}`, VALUE] }));
  for (const ref of [refs.limit, refs.yardstick]) await post(ref.url, { queries, transaction: true });
  const r = await post(c.master.url, { command: 'exec', queries, transaction: true });
  const index = Number(r.index);
  const ok = await until(async () => (await appliedIndex(c.slaves[0].url)) >= index, 20_000);
  if (!ok) throw new Error('slave 1 did not apply the read keys within 20 s');
}

async function wrkPhase(c: BenchCluster, refs: Refs): Promise<void> {
  await seedReadKeys(c, refs);
  // JIT warm-up of every process (c=1 alone would warm up slowly); not measured.
  process.stdout.write('  warm-up…\n');
  const fleet = [{ name: 'master', pid: c.master.pid }];
  for (const mode of ['param', 'literal', 'read'] as const) {
    const floor = mode === 'read' ? [] : [refs.floor.master.url];
    for (const url of [mode === 'read' ? c.slaves[0].url : c.master.url, refs.limit.url, refs.yardstick.url, ...floor]) {
      await runWrk({ url, mode, prefix: mode === 'read' ? 'r' : `warm${++prefixSeq}`, keys: READ_KEYS, concurrency: 8, seconds: 1, procs: fleet });
    }
  }
  const chosen = FIGURES.filter((f) => !ONLY_FIGURES || ONLY_FIGURES.has(`${f.mode}${f.concurrency}`));
  if (chosen.length === 0) throw new Error(`BENCH_FIGURES names none of ${FIGURES.map((f) => `${f.mode}${f.concurrency}`).join(', ')}`);
  for (let round = 0; round < ROUNDS; round++) for (const f of chosen) await wrkRound(f, c, refs, round);
}

// ---- interactive transactions (issue 25) -------------------------------------------------------

const hranaRounds: { limit: number[]; sqlfleet: number[]; ratio: number }[] = [];

/** 8 clients: BEGIN IMMEDIATE, SELECT, UPDATE, COMMIT over /v2/pipeline against the limit's `queries` transactions; A-B-B-A rounds. */
async function hranaPhase(c: BenchCluster, limit: Proc): Promise<void> {
  await seedHranaTx(limit.url);
  await seedHranaTx(c.master.url);
  await hranaTxRate(c.master.url, 1); // warm-up
  await limitTx(limit.url, 1);
  for (let round = 0; round < ROUNDS; round++) {
    const l1 = await limitTx(limit.url, SECONDS);
    const f1 = await hranaTxRate(c.master.url, SECONDS);
    const f2 = await hranaTxRate(c.master.url, SECONDS);
    const l2 = await limitTx(limit.url, SECONDS);
    const r = { limit: [l1, l2], sqlfleet: [f1, f2], ratio: (f1 + f2) / (l1 + l2) };
    hranaRounds.push(r);
    console.log(`  interactive transactions c=8       round ${round + 1}: sqlfleet ${fmt((f1 + f2) / 2, 0)} tx/s | limit ${fmt((l1 + l2) / 2, 0)} tx/s | ratio ${fmt(r.ratio, 2)}`);
  }
  const m = median(hranaRounds.map((r) => r.ratio));
  rows.push({
    metric: 'interactive transactions c=8 (Hrana, 3 requests as @libsql/client sends them) vs limit `queries`',
    sqlfleet: median(hranaRounds.map((r) => (r.sqlfleet[0] + r.sqlfleet[1]) / 2)),
    yardstick: median(hranaRounds.map((r) => (r.limit[0] + r.limit[1]) / 2)),
    unit: 'tx/s',
    ref: 'limit',
    target: '≥ 0.3x the limit',
    verdict: m >= 0.3 ? 'PASS' : 'MISS',
    note: `median ratio ${fmt(m, 2)}x; rounds ${hranaRounds.map((r) => fmt(r.ratio, 2)).join(' / ')}; the reference column is the limit here`,
  });
}

// ---- batch, catch-up, RSS (undici generator, bench/load.ts) -----------------------------------

/** One line of the second table. */
interface Row {
  metric: string;
  sqlfleet: number | null;
  yardstick: number | null;
  unit: string;
  target: string;
  verdict: 'PASS' | 'MISS' | 'SKIP' | '';
  note?: string;
  /** Which reference the `yardstick` column holds (default the yardstick). */
  ref?: 'limit' | 'yardstick';
}
const rows: Row[] = [];
const phases: Record<string, { sqlfleet?: LoadResult; yardstick?: LoadResult; cpuUsPerRow?: Record<string, number> }> = {};

let phaseTag = 0;
const upsert = (ack?: string): BodyFn => {
  const tag = ++phaseTag;
  return (seq) => JSON.stringify({ query: UPSERT, params: [`c${tag}_${seq}`, VALUE], ...(ack ? { ack } : {}) });
};
const batch = (): BodyFn => {
  const tag = ++phaseTag;
  return (seq) => {
    const queries = new Array(BATCH_ROWS);
    for (let i = 0; i < BATCH_ROWS; i++) queries[i] = { query: UPSERT, params: [`b${tag}_${seq}_${i}`, VALUE] };
    return JSON.stringify({ queries, transaction: true });
  };
};

function errorNote(res: LoadResult | undefined, who: string): string {
  if (!res || res.errors === 0) return '';
  oddities.push(`${who}: ${res.errors} errors, e.g. ${res.errorSamples.join(' | ')}`);
  return `${who} ${res.errors} err`;
}

/** 1000-row transactional batches, A-B-B-A against the yardstick, with CPU per row. */
async function batchPhase(c: BenchCluster, ys: Proc): Promise<void> {
  const half = { concurrency: 4, durationMs: SECONDS * 1000, maxRequests: MAX_REQUESTS / 2 };
  const fleetPids = [c.master.pid, ...c.slaves.map((s) => s.pid)];
  const cpuRows = { sqlfleet: { ms: 0, rows: 0 }, yardstick: { ms: 0, rows: 0 } };
  // A short unmeasured warm-up, then a measured run with CPU read around it.
  const timed = async (who: 'sqlfleet' | 'yardstick', warmupMs: number) => {
    const url = who === 'sqlfleet' ? c.master.url : ys.url;
    const pids = who === 'sqlfleet' ? fleetPids : [ys.pid];
    await runLoad({ ...half, url, body: batch(), durationMs: warmupMs });
    const before = pids.reduce((a, p) => a + cpuMs(p), 0);
    const r = await runLoad({ ...half, url, body: batch() });
    cpuRows[who].ms += pids.reduce((a, p) => a + cpuMs(p), 0) - before;
    cpuRows[who].rows += (r.ok + r.errors) * BATCH_ROWS;
    return r;
  };
  process.stdout.write(`  ${BATCH_ROWS}-row transactional batches c=4 `);
  const y1 = await timed('yardstick', 1000);
  const f1 = await timed('sqlfleet', 1000);
  const f2 = await timed('sqlfleet', 250);
  const y2 = await timed('yardstick', 250);
  const f = mergeResults([f1, f2]);
  const y = mergeResults([y1, y2]);
  const cpu = { sqlfleet: (cpuRows.sqlfleet.ms * 1000) / cpuRows.sqlfleet.rows, yardstick: (cpuRows.yardstick.ms * 1000) / cpuRows.yardstick.rows };
  phases.batch = { sqlfleet: f, yardstick: y, cpuUsPerRow: cpu };
  console.log(`sqlfleet ${fmt(f.rps * BATCH_ROWS, 0)} rows/s | yardstick ${fmt(y.rps * BATCH_ROWS, 0)} rows/s | CPU/row ${fmt(cpu.sqlfleet, 1)} vs ${fmt(cpu.yardstick, 1)} µs`);
  const note = [errorNote(f, 'sqlfleet batches'), errorNote(y, 'yardstick batches')].filter(Boolean).join(', ');
  rows.push({
    metric: `${BATCH_ROWS}-row batches (ack all) c=4`,
    sqlfleet: f.rps * BATCH_ROWS,
    yardstick: y.rps * BATCH_ROWS,
    unit: 'rows/s',
    target: 'sqlfleet ≥ 100k rows/s',
    verdict: f.rps * BATCH_ROWS >= 100_000 ? 'PASS' : 'MISS',
    note: [note, `p50 ${fmt(f.p50, 1)} vs ${fmt(y.p50, 1)} ms/batch; CPU/row ${fmt(cpu.sqlfleet, 1)} vs ${fmt(cpu.yardstick, 1)} µs`].filter(Boolean).join('; '),
  });
}

/** Stops slave 2, writes entries on the master, restarts the slave and times its catch-up. */
async function catchUpPhase(c: BenchCluster): Promise<Record<string, unknown>> {
  const slave = c.slaves[1];
  const hwmBefore = slave.memory()?.hwmKb ?? Number.NaN;
  await slave.stop();
  const down = await until(async () => {
    const s = await getJson<{ nodes: { id: number; state: string }[] }>(c.master.url, '/status');
    return s.nodes.find((n) => n.id === 2)?.state === 'down';
  }, 10_000);
  if (!down) oddities.push('catch-up: the master did not mark the stopped slave down within 10 s');
  const from = await appliedIndex(c.master.url);
  process.stdout.write(`  catch-up: slave 2 stopped at master index ${from}; writing up to ${CATCHUP_ENTRIES} entries (ack "master", c=32, ≤ ${CATCHUP_SECONDS} s)… `);
  const w = await runLoad({ url: c.master.url, concurrency: 32, body: upsert('master'), durationMs: CATCHUP_SECONDS * 1000, maxRequests: CATCHUP_ENTRIES });
  if (w.errors) oddities.push(`catch-up writers: ${w.errors} errors, e.g. ${w.errorSamples.join(' | ')}`);
  const target = await appliedIndex(c.master.url);
  const behind = target - from;
  process.stdout.write(`${behind} entries in ${fmt(w.seconds, 1)} s (${fmt(w.rps, 0)}/s)\n`);

  const t0 = performance.now();
  const restarted = await c.restartSlave(2);
  const tReady = performance.now();
  const startIndex = Number(restarted.ready.applied_index ?? Number.NaN);
  let last = startIndex;
  const caught = await until(
    async () => {
      last = await appliedIndex(restarted.url);
      return last >= target;
    },
    Math.max(120_000, CATCHUP_SECONDS * 2000),
    20,
  );
  const tDone = performance.now();
  if (!caught) oddities.push(`catch-up: slave 2 reached only ${last} of ${target}`);
  const applied = target - startIndex;
  const secs = (tDone - tReady) / 1000;
  const rate = caught ? applied / secs : Number.NaN;
  process.stdout.write(
    `  catch-up: slave 2 restarted (ready after ${fmt((tReady - t0) / 1000, 2)} s at index ${startIndex}), applied ${applied} entries in ${fmt(secs, 2)} s → ${fmt(rate, 0)} entries/s\n`,
  );
  const reduced = behind < 100_000 ? ` (fewer than 100k: BENCH_CATCHUP_ENTRIES=${CATCHUP_ENTRIES}, cap ${CATCHUP_SECONDS} s)` : '';
  rows.push({
    metric: 'catch-up of a stopped slave',
    sqlfleet: rate,
    yardstick: null,
    unit: 'entries/s',
    target: 'sqlfleet ≥ 100k entries/s',
    verdict: rate >= 100_000 ? 'PASS' : 'MISS',
    note: `${behind} entries behind${reduced}`,
  });
  return { stoppedAt: from, target, behind, writers: w, restartReadyS: (tReady - t0) / 1000, startIndex, seconds: secs, rate, caught, slave2HwmBeforeKb: hwmBefore };
}

/** Optional: many writes on the master, then its RSS. */
async function rssPhase(c: BenchCluster): Promise<Record<string, unknown> | null> {
  if (RSS_WRITES <= 0) {
    rows.push({ metric: 'master RSS after 1M writes', sqlfleet: null, yardstick: null, unit: 'MB', target: '≤ 200 MB', verdict: 'SKIP', note: 'set BENCH_RSS_WRITES=1000000' });
    return null;
  }
  const from = await appliedIndex(c.master.url);
  process.stdout.write(`  RSS: writing ${RSS_WRITES} entries on the master (ack "all", c=32)… `);
  const w = await runLoad({ url: c.master.url, concurrency: 32, body: upsert(), durationMs: 3_600_000, maxRequests: RSS_WRITES });
  const written = (await appliedIndex(c.master.url)) - from;
  const m = c.master.memory();
  process.stdout.write(`${written} entries in ${fmt(w.seconds, 0)} s; master RSS ${fmt((m?.rssKb ?? NaN) / 1024, 0)} MB, peak ${fmt((m?.hwmKb ?? NaN) / 1024, 0)} MB\n`);
  const rss = (m?.rssKb ?? NaN) / 1024;
  rows.push({
    metric: `master RSS after ${fmt(written, 0)} more writes`,
    sqlfleet: rss,
    yardstick: null,
    unit: 'MB',
    target: '≤ 200 MB',
    verdict: rss <= 200 ? 'PASS' : 'MISS',
    note: `peak ${fmt((m?.hwmKb ?? NaN) / 1024, 0)} MB`,
  });
  return { written, writers: w, master: m };
}

async function checksums(c: BenchCluster): Promise<boolean> {
  const target = await appliedIndex(c.master.url);
  await until(async () => (await Promise.all(c.slaves.map((s) => appliedIndex(s.url)))).every((i) => i >= target), 30_000);
  // A checksum reads every row: after the optional 1M-write phase that takes a while.
  const sums = await Promise.all([c.master, ...c.slaves].map((p) => getJson(p.url, '/checksum', 300_000)));
  const same = sums.every((s) => JSON.stringify(s) === JSON.stringify(sums[0]));
  if (!same) oddities.push(`replica checksums differ after the run: ${JSON.stringify(sums).slice(0, 600)}`);
  return same;
}

function rowTable(): string {
  const head = ['metric', 'sqlfleet', 'reference', 'ratio', 'target', 'result', 'note'];
  const cells = rows.map((r) => [
    r.metric,
    r.sqlfleet === null ? '—' : `${fmt(r.sqlfleet, 0)} ${r.unit}`,
    r.yardstick === null ? '—' : `${fmt(r.yardstick, 0)} ${r.unit} (${r.ref ?? 'yardstick'})`,
    r.sqlfleet === null || r.yardstick === null ? '—' : fmt(r.sqlfleet / r.yardstick, 2),
    r.target,
    r.verdict,
    r.note ?? '',
  ]);
  return grid(head, cells, 1, 3);
}

// ---- the machine ---------------------------------------------------------------------------------

/** Busy and total CPU ticks of the whole machine (/proc/stat). */
function machineTicks(): { busy: number; total: number } {
  try {
    const v = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const idle = v[3] + (v[4] ?? 0);
    const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

/** CPU ticks of this process and of its children that have exited (wrk runs, every server once stopped). */
function ownTicks(): number {
  try {
    const f = readFileSync('/proc/self/stat', 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
    return v[11] + v[12] + v[13] + v[14]; // utime stime cutime cstime
  } catch {
    return Number.NaN;
  }
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

// ---- main ----------------------------------------------------------------------------------------

// Set by main() in --etcd mode; stopped last, after the nodes.
const helpers: { etcd: Etcd | null } = { etcd: null };

async function main(): Promise<Record<string, unknown>> {
  const startedAt = Date.now();
  const load0 = loadavg();
  await checkWrk();
  console.log(`sqlfleet bench${ETCD ? ' --etcd' : ''}: wrk, ${ROUNDS} A-B-B-A rounds of ${SECONDS} s runs per figure; load average before: ${load0}`);
  console.log(`  ${referenceLine()}`);
  // Failover mode: every node gets --etcd (and the cluster name defaults to the same).
  const etcd = ETCD ? await startEtcd() : null;
  helpers.etcd = etcd;
  const nodeArgs = etcd ? ['--etcd', etcd.url] : [];
  const ys = await startYardstick();
  const limit = await startLimit();
  const floor = await startFloor();
  const c = await startCluster(2, [], [], nodeArgs);
  const idleKb = { master: c.master.memory()?.rssKb, slave1: c.slaves[0].memory()?.rssKb, slave2: c.slaves[1].memory()?.rssKb };
  console.log(
    `  limit ${limit.url} (pid ${limit.pid}); yardstick ${ys.url} (pid ${ys.pid}); floor ${floor.master.url} (pids ${[floor.master, ...floor.slaves].map((p) => p.pid).join(', ')}); master ${c.master.url} (pid ${c.master.pid}); slaves ${c.slaves.map((s) => `${s.url} (pid ${s.pid})`).join(', ')}` +
      (etcd ? `; etcd ${etcd.url} (pid ${etcd.pid})` : ''),
  );
  await post(c.master.url, { command: 'exec', query: DDL });
  await primeReferences({ limit, yardstick: ys });

  if (PHASES.has('wrk')) await wrkPhase(c, { limit, yardstick: ys, floor });
  if (PHASES.has('hrana')) await hranaPhase(c, limit);
  if (PHASES.has('batch')) await batchPhase(c, ys);
  const catchUp = PHASES.has('catchup') ? await catchUpPhase(c) : null;
  const rss1m = PHASES.has('rss') ? await rssPhase(c) : null;
  const identical = await checksums(c);

  const mem = {
    master: c.master.memory(),
    slave1: c.slaves[0].memory(),
    slave2: c.slaves[1].memory(),
    slave2BeforeRestartHwmKb: (catchUp?.slave2HwmBeforeKb as number | undefined) ?? Number.NaN,
    yardstick: ys.memory(),
    limit: limit.memory(),
  };
  const mb = (kb: number | undefined) => (kb === undefined ? null : kb / 1024);
  const peakOk = (kb: number | undefined) => (kb === undefined ? '' : kb / 1024 <= 200 ? 'PASS' : 'MISS');
  const idleNote = (kb: number | undefined) => `idle at start ${fmt(mb(kb), 0)} MB (goal ≤ 100)`;
  rows.push({ metric: 'peak RSS master', sqlfleet: mb(mem.master?.hwmKb), yardstick: mb(mem.limit?.hwmKb), unit: 'MB', ref: 'limit', target: '≤ 200 MB', verdict: peakOk(mem.master?.hwmKb), note: idleNote(idleKb.master) });
  rows.push({ metric: 'peak RSS slave 1', sqlfleet: mb(mem.slave1?.hwmKb), yardstick: mb(mem.limit?.hwmKb), unit: 'MB', ref: 'limit', target: '≤ 200 MB', verdict: peakOk(mem.slave1?.hwmKb), note: idleNote(idleKb.slave1) });
  rows.push({
    metric: 'peak RSS slave 2',
    sqlfleet: mb(Math.max(mem.slave2?.hwmKb ?? 0, mem.slave2BeforeRestartHwmKb || 0)),
    yardstick: mb(mem.limit?.hwmKb),
    unit: 'MB',
    ref: 'limit',
    target: '≤ 200 MB',
    verdict: peakOk(Math.max(mem.slave2?.hwmKb ?? 0, mem.slave2BeforeRestartHwmKb || 0)),
    note: `${idleNote(idleKb.slave2)}; ` + (catchUp ? `before restart ${fmt(mb(mem.slave2BeforeRestartHwmKb), 0)} MB, after ${fmt(mb(mem.slave2?.hwmKb), 0)} MB` : ''),
  });

  for (const p of [c.master, ...c.slaves, ys, limit]) {
    const bad = p.complaints();
    if (bad.count) oddities.push(`${p.label} logged ${bad.count} warn/error lines, e.g. ${bad.first.slice(0, 3).join(' || ').slice(0, 800)}`);
  }
  const logBytes = (p: Proc) => p.outputBytes;
  const load1 = loadavg();
  const elapsed = (Date.now() - startedAt) / 1000;
  console.log('\n' + (figureRounds.size ? wrkTables() + '\n\n' : '') + rowTable());
  console.log(`\nreplica checksums after the run: ${identical ? 'identical' : 'DIFFER'}; log output: master ${fmt(logBytes(c.master) / 1024, 0)} kB; load average before ${load0}, after ${load1}; ${fmt(elapsed, 0)} s`);
  const changes = c.master.stateChanges;
  if (changes.length) console.log(`\nmembership changes the master logged (slave 2 is stopped on purpose for the catch-up):\n${changes.map((x) => `  ${x}`).join('\n')}`);

  const figures = Object.fromEntries(
    [...figureRounds].map(([name, rs]) => [
      name,
      {
        rounds: rs,
        medianRatio: median(rs.map((r) => r.ratio)),
        medianFloorRatio: median(rs.map((r) => r.floorRatio)),
        medianToFloor: median(rs.map((r) => r.toFloor)),
        cpuUsPerOp: {
          sqlfleet: cpuPerOp(rs.flatMap((r) => r.sqlfleet)),
          yardstick: cpuPerOp(rs.flatMap((r) => r.yardstick)),
          floor: rs.some((r) => r.floor.length) ? cpuPerOp(rs.flatMap((r) => r.floor)) : null,
        },
      },
    ]),
  );
  return {
    at: new Date().toISOString(),
    node: process.version,
    mode: etcd ? 'etcd' : 'static',
    settings: { seconds: SECONDS, rounds: ROUNDS, phases: [...PHASES], maxRequests: MAX_REQUESTS, catchupEntries: CATCHUP_ENTRIES, catchupSeconds: CATCHUP_SECONDS, rssWrites: RSS_WRITES },
    loadavg: { before: load0, after: load1 },
    elapsedSeconds: elapsed,
    figures,
    rows,
    phases,
    catchUp,
    rss1m,
    memoryKb: mem,
    logBytes: { master: logBytes(c.master), slave1: logBytes(c.slaves[0]), slave2: logBytes(c.slaves[1]) },
    replicasIdentical: identical,
    membershipChanges: changes,
    oddities,
  };
}

/** After every server stopped: how much of the machine's CPU went to other processes during the run. */
function finish(out: Record<string, unknown>, m0: { busy: number; total: number }, own0: number): void {
  const m1 = machineTicks();
  const mine = ownTicks() - own0;
  const total = m1.total - m0.total;
  const others = (m1.busy - m0.busy - mine) / total;
  const cpu = { cores: availableParallelism(), ownShare: mine / total, othersShare: others, idleShare: 1 - (m1.busy - m0.busy) / total };
  out.cpu = cpu;
  console.log(
    `machine CPU during the run: bench, wrk and servers ${fmt(100 * cpu.ownShare, 0)}%, other processes ${fmt(100 * others, 0)}%, idle ${fmt(100 * cpu.idleShare, 0)}% of ${cpu.cores} cores`,
  );
  if (others > 0.1) oddities.push(`other processes used ${fmt(100 * others, 0)}% of the machine's CPU during the run: throughput is low and noisy; trust the median ratio and CPU per operation`);
  if (oddities.length) console.log('\nodd:\n' + oddities.map((o) => `  - ${o}`).join('\n'));
  const dir = join(ROOT, '.bench');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(out, null, 2) + '\n');
  console.log(`\nwrote .bench/latest.json`);
}

let exiting = false;
async function shutdown(code: number): Promise<never> {
  if (!exiting) {
    exiting = true;
    await stopAll();
    await helpers.etcd?.stop();
    removeTempDirs();
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));

try {
  const m0 = machineTicks();
  const own0 = ownTicks();
  const out = await main();
  await stopAll();
  await helpers.etcd?.stop();
  finish(out, m0, own0);
  await shutdown(0);
} catch (e) {
  console.error(`\nbench failed: ${(e as Error).stack ?? e}`);
  for (const p of started) console.error(`\n--- ${p.label} (pid ${p.pid}, ${p.running ? 'running' : 'exited'}) last lines ---\n${p.tail(25)}`);
  await shutdown(1);
}
