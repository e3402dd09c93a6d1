// npm run jepsen -- [--mode etcd|static|both] [--duration 60] [--nemesis partition,kill,pause|none]
//                   [--workload register,bank,set] [--fault-ms 6000] [--quiet-ms 4000] [--out DIR]
// A Jepsen-style test of sqlfleet (issue 27): concurrent clients run the workloads against a
// three-node cluster while nemeses break it on a schedule; every operation is recorded
// (invoke -> ok/fail/info) to <out>/<mode>-<time>.jsonl, and at the end the checkers judge the
// history: register linearizability (strong reads, writes, CAS), the bank total, the set's
// completeness on every node. Prints one verdict per workload; exit 1 when any fails,
// 2 when it cannot run here. Needs root for network namespaces (partitions, etcd mode).
// `npm run jepsen -- --check FILE` judges a recorded history again.
// `runJepsen` is what test/jepsen.test.ts calls for the short version.

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exec, ok } from '../../test/helpers/cluster.js';
import { checkBank, checkRegister, checkSet, formatVerdict, type Verdict } from './checkers.js';
import { operations, parseHistory, Recorder, type HistoryEvent, type Operation } from './history.js';
import { NEMESES, repairAll, runNemesis, type NemesisKind } from './nemesis.js';
import { startRig, waitConverged, waitHealthy, type Mode, type Rig } from './rig.js';
import { BANK_ACCOUNTS, BANK_TOTAL, bankWorkload, readSet, registerWorkload, setWorkload, type Workload } from './workloads.js';

/** Every workload `--workload` accepts. */
export const WORKLOADS = ['register', 'bank', 'set'] as const;
/** A workload's name. */
export type WorkloadName = (typeof WORKLOADS)[number];

/** Options of one run. */
export interface JepsenOptions {
  readonly mode: Mode;
  readonly durationMs: number;
  readonly nemeses: readonly NemesisKind[];
  readonly workloads: readonly WorkloadName[];
  readonly faultMs?: number;
  readonly quietMs?: number;
  /** Directory of the history file; default a temp dir. */
  readonly outDir?: string;
  readonly log?: (s: string) => void;
}

/** What one run found. */
export interface JepsenReport {
  readonly mode: Mode;
  readonly historyFile: string;
  readonly verdicts: readonly Verdict[];
  readonly faults: Record<string, number>;
  readonly operations: number;
  readonly valid: boolean;
}

/** Starts a cluster, runs the workloads under the nemeses, checks the history, stops everything. */
export async function runJepsen(o: JepsenOptions): Promise<JepsenReport> {
  const log = o.log ?? ((s: string) => process.stdout.write(`${s}\n`));
  const dir = o.outDir ?? join(tmpdir(), 'sqlfleet-jepsen');
  mkdirSync(dir, { recursive: true });
  const historyFile = join(dir, `${o.mode}-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
  const rec = new Recorder(historyFile);
  const rig = await startRig(o.mode, log);
  try {
    return await runOn(rig, rec, historyFile, o, log);
  } catch (e) {
    rig.printLogs(60);
    throw e;
  } finally {
    repairAll(rig);
    await rec.close();
    // Every node's log beside the history: what a failure's window needs to be explained.
    for (const n of rig.nodes) writeFileSync(historyFile.replace(/\.jsonl$/, `.node-${n.id}.log`), n.logs());
    await rig.destroy();
  }
}

async function runOn(rig: Rig, rec: Recorder, historyFile: string, o: JepsenOptions, log: (s: string) => void): Promise<JepsenReport> {
  const all: Record<WorkloadName, () => Workload> = { register: () => registerWorkload(4), bank: () => bankWorkload(4), set: () => setWorkload(2) };
  const workloads = o.workloads.map((w) => all[w]());
  const master = rig.nodes[0]!;
  for (const w of workloads) for (const sql of w.setup) ok(await exec(master, sql), `${w.name} setup: ${sql}`);
  await waitConverged(rig, 20_000);
  let stop = false;
  const ctx = { rec, urls: () => rig.nodes.map((n) => n.url), stopped: () => stop, timeoutMs: 6_000 };
  log(`running ${workloads.map((w) => w.name).join(', ')} for ${Math.round(o.durationMs / 1000)} s, nemeses: ${o.nemeses.join(', ') || 'none'}; history ${historyFile}`);
  const running = workloads.map((w) => w.run(ctx));
  const nemesis = runNemesis(rig, rec, { kinds: o.nemeses, faultMs: o.faultMs ?? 6_000, quietMs: o.quietMs ?? 4_000 }, () => stop, log);
  const timer = setTimeout(() => (stop = true), o.durationMs);
  let faults: Record<string, number>;
  try {
    faults = await nemesis;
  } finally {
    stop = true;
    clearTimeout(timer);
    await Promise.all(running);
  }
  // The final reads: a healthy cluster that applied everything, then every node's set.
  await waitHealthy(rig, 60_000);
  await waitConverged(rig, 60_000);
  const verdicts: Verdict[] = [];
  for (const w of o.workloads) {
    const ops = operations(rec.events, w);
    if (w === 'register') verdicts.push(checkRegister(ops));
    if (w === 'bank') verdicts.push(checkBank(ops, BANK_ACCOUNTS, BANK_TOTAL));
    if (w === 'set') {
      // The final reads go into the history too, so `--check` can judge the file alone.
      for (const n of rig.nodes) rec.invoke('set', -2, 'final-read', `node ${n.id}`)('ok', await readSet(n.url, 10_000));
      verdicts.push(checkSet(ops, finalReads(operations(rec.events, 'set'))));
    }
  }
  const opsCount = operations(rec.events).length;
  const faultText = Object.entries(faults).map(([k, n]) => `${k}×${n}`).join(' ') || 'none';
  log(`\n== jepsen ${rig.mode} mode: ${opsCount} operations, faults ${faultText}, history ${historyFile}`);
  for (const v of verdicts) log(formatVerdict(v));
  log(`faults: ${faultTimeline(rec.events).join('; ') || 'none'}`);
  return { mode: rig.mode, historyFile, verdicts, faults, operations: opsCount, valid: verdicts.every((v) => v.valid === true) };
}

/** Each fault as `kind node N [start … end]` in history time, to read a failure's window against. */
export function faultTimeline(events: readonly HistoryEvent[]): string[] {
  const open = new Map<string, number>();
  const out: string[] = [];
  for (const e of events) {
    if (e.workload !== 'nemesis') continue;
    const m = /^(.+)-(start|end)$/.exec(e.f);
    if (!m) {
      out.push(`${e.f} at ${e.time.toFixed(0)}`);
      continue;
    }
    const key = `${m[1]} node ${(e.value as { node: number }).node}`;
    if (m[2] === 'start') open.set(key, e.time);
    else {
      out.push(`${key} [${open.get(key)?.toFixed(0)} … ${e.time.toFixed(0)}]`);
      open.delete(key);
    }
  }
  return out;
}

/** The set's final reads recorded in a history: node -> elements. */
function finalReads(ops: readonly Operation[]): Map<string, number[]> {
  return new Map(ops.filter((o) => o.f === 'final-read' && o.type === 'ok').map((o) => [o.arg as string, o.result as number[]]));
}

/** Judges a recorded history file again (register, bank, set), as at the end of a run. */
export function checkHistory(events: readonly HistoryEvent[]): Verdict[] {
  const present = new Set(events.map((e) => e.workload));
  const verdicts: Verdict[] = [];
  if (present.has('register')) verdicts.push(checkRegister(operations(events, 'register')));
  if (present.has('bank')) verdicts.push(checkBank(operations(events, 'bank'), BANK_ACCOUNTS, BANK_TOTAL));
  if (present.has('set')) verdicts.push(checkSet(operations(events, 'set'), finalReads(operations(events, 'set'))));
  return verdicts;
}

async function main(): Promise<void> {
  const { default: yargs } = await import('yargs');
  const { hideBin } = await import('yargs/helpers');
  const a = await yargs(hideBin(process.argv))
    .option('mode', { choices: ['etcd', 'static', 'both'] as const, default: 'both' as const })
    .option('duration', { type: 'number', default: 120, describe: 'seconds of workload per mode' })
    .option('nemesis', { type: 'string', default: NEMESES.join(','), describe: `comma list of ${NEMESES.join(', ')}, or none` })
    .option('workload', { type: 'string', default: WORKLOADS.join(','), describe: `comma list of ${WORKLOADS.join(', ')}` })
    .option('fault-ms', { type: 'number', default: 6000 })
    .option('quiet-ms', { type: 'number', default: 4000 })
    .option('out', { type: 'string', default: join(process.cwd(), 'jepsen-histories') })
    .option('check', { type: 'string', describe: 'judge a recorded history file instead of running' })
    .strict()
    .parse();
  if (a.check) {
    const events = parseHistory(readFileSync(a.check, 'utf8'));
    const verdicts = checkHistory(events);
    for (const v of verdicts) process.stdout.write(`${formatVerdict(v)}\n`);
    process.stdout.write(`faults: ${faultTimeline(events).join('; ') || 'none'}\n`);
    process.exitCode = verdicts.every((v) => v.valid === true) ? 0 : 1;
    return;
  }
  const nemeses = a.nemesis === 'none' ? [] : a.nemesis.split(',').map((s) => s.trim());
  for (const n of nemeses) if (!NEMESES.includes(n as NemesisKind)) throw new Error(`unknown nemesis ${n}`);
  const workloads = a.workload.split(',').map((s) => s.trim());
  for (const w of workloads) if (!WORKLOADS.includes(w as WorkloadName)) throw new Error(`unknown workload ${w}`);
  const modes: Mode[] = a.mode === 'both' ? ['etcd', 'static'] : [a.mode];
  let valid = true;
  const summary: string[] = [];
  for (const mode of modes) {
    const r = await runJepsen({ mode, durationMs: a.duration * 1000, nemeses: nemeses as NemesisKind[], workloads: workloads as WorkloadName[], faultMs: a['fault-ms'], quietMs: a['quiet-ms'], outDir: a.out });
    valid &&= r.valid;
    summary.push(`${mode}: ${r.operations} operations, faults ${JSON.stringify(r.faults)}: ${r.verdicts.map((v) => `${v.name.split(' ')[0]} ${v.valid === true ? 'PASS' : v.valid === false ? 'FAIL' : 'UNKNOWN'}`).join(', ')}`);
  }
  process.stdout.write(`\n${summary.join('\n')}\n${valid ? 'all valid' : 'INVALID'}\n`);
  process.exitCode = valid ? 0 : 1;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((e: unknown) => {
    process.stderr.write(`jepsen: ${(e as Error).stack ?? e}\n`);
    process.exitCode = 2;
  });
}
