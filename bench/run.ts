// `npm run bench`: issue 6's benchmark. Starts the baseline (bench/baseline.ts) and a
// sqlfleet cluster (master + 2 slaves, ack "all"), drives both with the same closed-loop
// generator (bench/load.ts) phase by phase — sqlfleet and baseline in turns (A-B-B-A), so
// both see the same machine — and prints a table of figures with their ratio to the
// baseline and the issue's targets. The JSON goes to .bench/latest.json.
//
// Environment:
//   BENCH_SECONDS          measured seconds per phase (default 4; warm-up is a quarter, ≤ 1 s)
//   BENCH_MAX_REQUESTS     request cap per phase (default 500000)
//   BENCH_CATCHUP_ENTRIES  entries a stopped slave falls behind (default 100000)
//   BENCH_CATCHUP_SECONDS  cap on the time spent writing them (default 15 × BENCH_SECONDS)
//   BENCH_RSS_WRITES       when set (e.g. 1000000): write that many entries, then read the master's RSS
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { appliedIndex, removeTempDirs, startBaseline, startCluster, type BenchCluster } from './cluster.js';
import { mergeResults, runLoad, type BodyFn, type LoadResult } from './load.js';
import { getJson, post, ROOT, started, stopAll, until, type Proc } from './procs.js';

const SECONDS = num('BENCH_SECONDS', 4);
const WARMUP_MS = Math.min(1000, (SECONDS * 1000) / 4);
const MAX_REQUESTS = num('BENCH_MAX_REQUESTS', 500_000);
const CATCHUP_ENTRIES = num('BENCH_CATCHUP_ENTRIES', 100_000);
const CATCHUP_SECONDS = num('BENCH_CATCHUP_SECONDS', 15 * SECONDS);
const RSS_WRITES = num('BENCH_RSS_WRITES', 0);
const BATCH_ROWS = 1000;

const DDL = 'CREATE TABLE kv (id INTEGER PRIMARY KEY, k TEXT, v TEXT, n INTEGER)';
const INSERT = 'INSERT INTO kv(k,v,n) VALUES (?,?,?)';
const PAD = 'x'.repeat(24);

function num(name: string, dflt: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${v}"`);
  return n;
}

// ---- request bodies ------------------------------------------------------------------

/** Run-unique prefix so that literal SQL texts never repeat across phases. */
let phaseTag = 0;
const paramInsert = (ack?: string): BodyFn => {
  const tag = ++phaseTag;
  return (seq) => JSON.stringify({ query: INSERT, params: [`k${tag}_${seq}`, `v${seq}${PAD}`, seq], ...(ack ? { ack } : {}) });
};
const literalInsert = (): BodyFn => {
  const tag = ++phaseTag;
  return (seq) => JSON.stringify({ query: `INSERT INTO kv(k,v,n) VALUES ('k${tag}_${seq}','v${seq}${PAD}',${seq})` });
};
const pointRead = (maxId: number): BodyFn => () =>
  JSON.stringify({ query: 'SELECT * FROM kv WHERE id = ?', params: [1 + Math.floor(Math.random() * maxId)] });
const batchInsert = (): BodyFn => {
  const tag = ++phaseTag;
  return (seq) => {
    const queries = new Array(BATCH_ROWS);
    for (let i = 0; i < BATCH_ROWS; i++) queries[i] = { query: INSERT, params: [`b${tag}_${seq}_${i}`, `v${i}${PAD}`, i] };
    return JSON.stringify({ queries, transaction: true });
  };
};

// ---- results ---------------------------------------------------------------------------

/** One line of the table. */
interface Row {
  metric: string;
  sqlfleet: number | null;
  baseline: number | null;
  unit: string;
  /** sqlfleet / baseline (for latencies: how many times slower). */
  ratio: number | null;
  target: string;
  verdict: 'PASS' | 'MISS' | 'SKIP' | '';
  note?: string;
}

const rows: Row[] = [];
const phases: Record<string, { sqlfleet?: LoadResult; baseline?: LoadResult }> = {};
const oddities: string[] = [];

function ratioOf(a: number | null, b: number | null): number | null {
  return a === null || b === null || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? null : a / b;
}

function addRow(r: Omit<Row, 'ratio' | 'verdict'> & { check?: (r: Row) => boolean | undefined }): void {
  const row: Row = { ...r, ratio: ratioOf(r.sqlfleet, r.baseline), verdict: '' };
  delete (row as { check?: unknown }).check;
  if (r.check) {
    const ok = r.check(row);
    row.verdict = ok === undefined ? 'SKIP' : ok ? 'PASS' : 'MISS';
  }
  rows.push(row);
}

function errorNote(res: LoadResult | undefined, who: string): string {
  if (!res || res.errors === 0) return '';
  oddities.push(`${who}: ${res.errors} errors, e.g. ${res.errorSamples.join(' | ')}`);
  return `${who} ${res.errors} err`;
}

/**
 * Runs the same phase on sqlfleet and on the baseline in an A-B-B-A schedule (half the
 * time each turn), so a drift in the machine's background load hits both alike.
 */
async function phase(
  name: string,
  fleetUrl: string,
  baseUrl: string,
  concurrency: number,
  body: (system: 'sqlfleet' | 'baseline') => BodyFn,
): Promise<{ sqlfleet: LoadResult; baseline: LoadResult }> {
  const half = { concurrency, durationMs: (SECONDS * 1000) / 2, maxRequests: MAX_REQUESTS / 2 };
  process.stdout.write(`  ${name.padEnd(34)} `);
  const f = body('sqlfleet');
  const b = body('baseline');
  const f1 = await runLoad({ ...half, url: fleetUrl, body: f, warmupMs: WARMUP_MS });
  const b1 = await runLoad({ ...half, url: baseUrl, body: b, warmupMs: WARMUP_MS });
  const b2 = await runLoad({ ...half, url: baseUrl, body: (seq, id) => b(seq + 1e8, id), warmupMs: 250 });
  const f2 = await runLoad({ ...half, url: fleetUrl, body: (seq, id) => f(seq + 1e8, id), warmupMs: 250 });
  const sqlfleet = mergeResults([f1, f2]);
  const baseline = mergeResults([b1, b2]);
  process.stdout.write(
    `sqlfleet ${fmt(sqlfleet.rps, 0)} req/s p50 ${fmt(sqlfleet.p50, 2)} ms | baseline ${fmt(baseline.rps, 0)} req/s p50 ${fmt(baseline.p50, 2)} ms\n`,
  );
  phases[name] = { sqlfleet, baseline };
  return { sqlfleet, baseline };
}

function fmt(v: number | null | undefined, digits: number): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '—';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

// ---- phases --------------------------------------------------------------------------------

async function writePhases(c: BenchCluster, base: Proc): Promise<void> {
  for (const kind of ['parameterized', 'unique literal'] as const) {
    for (const conc of [1, 8, 32]) {
      const make = () => (kind === 'parameterized' ? paramInsert() : literalInsert());
      const { sqlfleet: f, baseline: b } = await phase(`writes ${kind} c=${conc}`, c.master.url, base.url, conc, make);
      const note = [errorNote(f, `sqlfleet ${kind} c=${conc}`), errorNote(b, `baseline ${kind} c=${conc}`)].filter(Boolean).join(', ');
      const target = conc === 32 ? (kind === 'parameterized' ? 0.6 : 0.5) : undefined;
      addRow({
        metric: `${kind} writes c=${conc}`,
        sqlfleet: f.rps,
        baseline: b.rps,
        unit: 'req/s',
        target: target ? `ratio ≥ ${target}` : '',
        check: target ? (r) => (r.ratio ?? 0) >= target : undefined,
        note,
      });
      addRow({
        metric: `  p50 latency c=${conc}`,
        sqlfleet: f.p50,
        baseline: b.p50,
        unit: 'ms',
        target: conc === 1 && kind === 'parameterized' ? 'sqlfleet ≤ 0.5 ms' : '',
        check: conc === 1 && kind === 'parameterized' ? (r) => (r.sqlfleet ?? Infinity) <= 0.5 : undefined,
      });
      addRow({ metric: `  p99 latency c=${conc}`, sqlfleet: f.p99, baseline: b.p99, unit: 'ms', target: '' });
    }
  }
}

async function readPhase(c: BenchCluster, base: Proc): Promise<void> {
  const maxId = async (url: string) => {
    const r = (await post(url, { query: 'SELECT max(id) FROM kv' })) as { results: { rows: number[][] }[] };
    return Math.max(1, Number(r.results[0].rows[0][0] ?? 1));
  };
  const fleetMax = await maxId(c.slaves[0].url);
  const baseMax = await maxId(base.url);
  const { sqlfleet: f, baseline: b } = await phase('point reads on a slave c=32', c.slaves[0].url, base.url, 32, (s) =>
    pointRead(s === 'sqlfleet' ? fleetMax : baseMax),
  );
  const note = [errorNote(f, 'sqlfleet reads'), errorNote(b, 'baseline reads')].filter(Boolean).join(', ');
  addRow({ metric: 'point reads on a slave c=32', sqlfleet: f.rps, baseline: b.rps, unit: 'req/s', target: 'ratio ≥ 0.8', check: (r) => (r.ratio ?? 0) >= 0.8, note });
  addRow({ metric: '  p50 / p99 latency', sqlfleet: f.p50, baseline: b.p50, unit: 'ms', target: '', note: `p99 ${fmt(f.p99, 2)} vs ${fmt(b.p99, 2)} ms` });
}

async function batchPhase(c: BenchCluster, base: Proc): Promise<void> {
  const { sqlfleet: f, baseline: b } = await phase(`${BATCH_ROWS}-row transactional batches c=4`, c.master.url, base.url, 4, () => batchInsert());
  const note = [errorNote(f, 'sqlfleet batches'), errorNote(b, 'baseline batches')].filter(Boolean).join(', ');
  addRow({
    metric: `${BATCH_ROWS}-row batches (ack all) c=4`,
    sqlfleet: f.rps * BATCH_ROWS,
    baseline: b.rps * BATCH_ROWS,
    unit: 'rows/s',
    target: 'sqlfleet ≥ 100k rows/s',
    check: (r) => (r.sqlfleet ?? 0) >= 100_000,
    note: [note, `p50 ${fmt(f.p50, 1)} vs ${fmt(b.p50, 1)} ms/batch`].filter(Boolean).join('; '),
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
  const w = await runLoad({ url: c.master.url, concurrency: 32, body: paramInsert('master'), durationMs: CATCHUP_SECONDS * 1000, maxRequests: CATCHUP_ENTRIES });
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
  addRow({
    metric: 'catch-up of a stopped slave',
    sqlfleet: rate,
    baseline: null,
    unit: 'entries/s',
    target: 'sqlfleet ≥ 50k entries/s',
    check: (r) => (r.sqlfleet ?? 0) >= 50_000,
    note: `${behind} entries behind${reduced}`,
  });
  return { stoppedAt: from, target, behind, writers: w, restartReadyS: (tReady - t0) / 1000, startIndex, seconds: secs, rate, caught, slave2HwmBeforeKb: hwmBefore };
}

/** Optional: many writes on the master, then its RSS. */
async function rssPhase(c: BenchCluster): Promise<Record<string, unknown> | null> {
  if (RSS_WRITES <= 0) {
    addRow({ metric: 'master RSS after 1M writes', sqlfleet: null, baseline: null, unit: 'MB', target: '≤ 200 MB', check: () => undefined, note: 'set BENCH_RSS_WRITES=1000000' });
    return null;
  }
  const from = await appliedIndex(c.master.url);
  process.stdout.write(`  RSS: writing ${RSS_WRITES} entries on the master (ack "all", c=32)… `);
  const w = await runLoad({ url: c.master.url, concurrency: 32, body: paramInsert(), durationMs: 3_600_000, maxRequests: RSS_WRITES });
  const written = (await appliedIndex(c.master.url)) - from;
  const m = c.master.memory();
  process.stdout.write(`${written} entries in ${fmt(w.seconds, 0)} s; master RSS ${fmt((m?.rssKb ?? NaN) / 1024, 0)} MB, peak ${fmt((m?.hwmKb ?? NaN) / 1024, 0)} MB\n`);
  addRow({
    metric: `master RSS after ${fmt(written, 0)} more writes`,
    sqlfleet: (m?.rssKb ?? NaN) / 1024,
    baseline: null,
    unit: 'MB',
    target: '≤ 200 MB',
    check: (r) => (r.sqlfleet ?? Infinity) <= 200,
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

// ---- report ------------------------------------------------------------------------------

function table(): string {
  const head = ['metric', 'sqlfleet', 'baseline', 'ratio', 'target', 'result', 'note'];
  const digits = (unit: string) => (unit === 'ms' ? 2 : unit === 'MB' ? 0 : 0);
  const cells = rows.map((r) => [
    r.metric,
    r.sqlfleet === null ? '—' : `${fmt(r.sqlfleet, digits(r.unit))} ${r.unit}`,
    r.baseline === null ? '—' : `${fmt(r.baseline, digits(r.unit))} ${r.unit}`,
    r.ratio === null ? '—' : fmt(r.ratio, 2),
    r.target,
    r.verdict,
    r.note ?? '',
  ]);
  const width = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
  const line = (c: string[]) => '| ' + c.map((x, i) => (i >= 1 && i <= 3 ? x.padStart(width[i]) : x.padEnd(width[i]))).join(' | ') + ' |';
  return [line(head), '|' + width.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...cells.map(line)].join('\n');
}

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

/** CPU ticks of this process and of its children that have exited (every server, once stopped). */
function ownTicks(): number {
  try {
    const f = readFileSync('/proc/self/stat', 'utf8');
    const v = f.slice(f.lastIndexOf(')') + 2).split(' ').map(Number);
    return v[11] + v[12] + v[13] + v[14]; // utime stime cutime cstime
  } catch {
    return Number.NaN;
  }
}

function cpuPressure(): string {
  try {
    return /avg60=([\d.]+)/.exec(readFileSync('/proc/pressure/cpu', 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}

function loadavg(): string {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  } catch {
    return '?';
  }
}

// ---- main ----------------------------------------------------------------------------------

async function main(): Promise<Record<string, unknown>> {
  const startedAt = Date.now();
  const load0 = loadavg();
  console.log(`sqlfleet bench: ${SECONDS} s per phase (+${WARMUP_MS / 1000} s warm-up), load average before: ${load0}`);
  const base = await startBaseline();
  const c = await startCluster(2);
  console.log(`  baseline ${base.url} (pid ${base.pid}); master ${c.master.url} (pid ${c.master.pid}); slaves ${c.slaves.map((s) => `${s.url} (pid ${s.pid})`).join(', ')}`);
  await post(base.url, { query: DDL });
  await post(c.master.url, { command: 'exec', query: DDL });

  // JIT warm-up of every process before the first measured phase (c=1 would warm up slowly).
  process.stdout.write('  warm-up…\n');
  for (const url of [c.master.url, base.url]) {
    for (const body of [paramInsert(), literalInsert()]) await runLoad({ url, concurrency: 8, body, durationMs: 1500 });
  }
  for (const url of [c.slaves[0].url, base.url]) await runLoad({ url, concurrency: 8, body: pointRead(100), durationMs: 1000 });

  await writePhases(c, base);
  await readPhase(c, base);
  await batchPhase(c, base);
  const catchUp = await catchUpPhase(c);
  const rss1m = await rssPhase(c);
  const identical = await checksums(c);

  const mem = {
    master: c.master.memory(),
    slave1: c.slaves[0].memory(),
    slave2: c.slaves[1].memory(),
    slave2BeforeRestartHwmKb: catchUp.slave2HwmBeforeKb as number,
    baseline: base.memory(),
  };
  const mb = (kb: number | undefined) => (kb === undefined ? null : kb / 1024);
  addRow({ metric: 'peak RSS master', sqlfleet: mb(mem.master?.hwmKb), baseline: mb(mem.baseline?.hwmKb), unit: 'MB', target: '' });
  addRow({ metric: 'peak RSS slave 1', sqlfleet: mb(mem.slave1?.hwmKb), baseline: mb(mem.baseline?.hwmKb), unit: 'MB', target: '' });
  addRow({
    metric: 'peak RSS slave 2',
    sqlfleet: mb(Math.max(mem.slave2?.hwmKb ?? 0, mem.slave2BeforeRestartHwmKb || 0)),
    baseline: mb(mem.baseline?.hwmKb),
    unit: 'MB',
    target: '',
    note: `before restart ${fmt(mb(mem.slave2BeforeRestartHwmKb), 0)} MB, after ${fmt(mb(mem.slave2?.hwmKb), 0)} MB`,
  });

  for (const p of [c.master, ...c.slaves, base]) {
    const bad = p.complaints();
    if (bad.count) oddities.push(`${p.label} logged ${bad.count} warn/error lines, e.g. ${bad.first.slice(0, 3).join(' || ').slice(0, 800)}`);
  }
  const changes = c.master.stateChanges;
  const load1 = loadavg();
  const elapsed = (Date.now() - startedAt) / 1000;
  console.log('\n' + table());
  console.log(`\nreplica checksums after the run: ${identical ? 'identical' : 'DIFFER'}; load average before ${load0}, after ${load1}; ${fmt(elapsed, 0)} s`);
  if (changes.length) console.log(`\nmembership changes the master logged (slave 2 is stopped on purpose for the catch-up):\n${changes.map((x) => `  ${x}`).join('\n')}`);

  const out = {
    at: new Date().toISOString(),
    node: process.version,
    settings: { seconds: SECONDS, warmupMs: WARMUP_MS, maxRequests: MAX_REQUESTS, catchupEntries: CATCHUP_ENTRIES, catchupSeconds: CATCHUP_SECONDS, rssWrites: RSS_WRITES },
    loadavg: { before: load0, after: load1 },
    elapsedSeconds: elapsed,
    rows,
    phases,
    catchUp,
    rss1m,
    memoryKb: mem,
    replicasIdentical: identical,
    membershipChanges: changes,
    oddities,
  };
  return out;
}

/** After every server stopped: how much of the machine's CPU went to other processes during the run. */
function finish(out: Record<string, unknown>, m0: { busy: number; total: number }, own0: number, psi0: string): void {
  const m1 = machineTicks();
  const mine = ownTicks() - own0;
  const total = m1.total - m0.total;
  const others = (m1.busy - m0.busy - mine) / total;
  const cpu = { cores: availableParallelism(), ownShare: mine / total, othersShare: others, idleShare: 1 - (m1.busy - m0.busy) / total, pressureAvg60: { before: psi0, after: cpuPressure() } };
  out.cpu = cpu;
  console.log(
    `machine CPU during the run: bench + servers ${fmt(100 * cpu.ownShare, 0)}%, other processes ${fmt(100 * others, 0)}%, idle ${fmt(100 * cpu.idleShare, 0)}% of ${cpu.cores} cores` +
      ` (CPU pressure avg60 ${psi0} → ${cpu.pressureAvg60.after})`,
  );
  if (others > 0.1) {
    oddities.push(`other processes used ${fmt(100 * others, 0)}% of the machine's CPU during the run: absolute figures are low; ratios are measured in turns (A-B-B-A) to share the noise`);
  }
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
    removeTempDirs();
  }
  process.exit(code);
}
process.on('SIGINT', () => void shutdown(130));
process.on('SIGTERM', () => void shutdown(143));

try {
  const m0 = machineTicks();
  const own0 = ownTicks();
  const psi0 = cpuPressure();
  const out = await main();
  await stopAll();
  finish(out, m0, own0, psi0);
  await shutdown(0);
} catch (e) {
  console.error(`\nbench failed: ${(e as Error).stack ?? e}`);
  for (const p of started) console.error(`\n--- ${p.label} (pid ${p.pid}, ${p.running ? 'running' : 'exited'}) last lines ---\n${p.tail(25)}`);
  await shutdown(1);
}
