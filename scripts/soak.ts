// npm run soak -- [--rounds 20] [--faults kill,partition] [--writers 2] [--pause-ms 10]
//                 [--round-timeout 120000] [--log-dir DIR]
// Failover soak of etcd mode (issue 13): etcd and three nodes on network-namespace hosts
// (test/helpers/ha-net.ts), concurrent ack "all" writers on every node for the whole run,
// and N failovers in a row, the faults taken in turn from --faults:
//   kill       SIGKILL of the current master, restarted on its data dir and port once a
//              successor leads; it must come back as a follower.
//   partition  the current master cut off from etcd and both other nodes (the clients still
//              reach it); healed once a successor leads and the old one stepped down.
// Each round measures the RTO (fault -> end of the first acknowledged write sent after it)
// and waits for one agreed master with the old master back in its sync set before the next.
// At the end every write is audited against every replica and a report is printed.
//
// Needs root (network namespaces) and etcd (Debian etcd-server, /usr/bin/etcd).
// Ctrl-C (SIGINT) or SIGTERM stops it and removes every process, namespace and data dir. The
// soak runs in a worker process of its own (own process group) under a thin supervisor:
// tsx SIGKILLs its child when that child does not acknowledge a signal within ~60 ms, which
// a busy soak process on a loaded machine does not always manage, and a SIGKILLed soak
// would leave its nodes running. The supervisor forwards signals; the worker also stops
// when the supervisor disappears.
// Exit status: 0 clean; 1 when a write was lost, applied twice, two acknowledged writes
// share a log index (or any other audit finding), or a round failed (no master elected, the
// old master never rejoined, a cut-off master went on acknowledging); 2 when it cannot run here.

import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync, type WriteStream } from 'node:fs';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as delay } from 'node:timers/promises';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { status, waitFor, type TestNode } from '../test/helpers/cluster.js';
import { etcdAvailable } from '../test/helpers/etcd.js';
import { agreedMaster, rtoAfter, settleAndAudit, startHaNet, type HaNet } from '../test/helpers/ha-net.js';
import { acknowledged, hardKill, outcomeSummary, relaunch, WriteLoad, type Audit } from '../test/helpers/load.js';
import { netnsAvailable, netnsUnavailableReason } from '../test/helpers/netns.js';

// Not SQLFLEET_*: the nodes inherit the environment and read SQLFLEET_* as options.
const WORKER_ENV = 'SFSOAK_WORKER';
const TABLE = 'soak';
const TAG = 'sk';
const FAULTS = ['kill', 'partition'] as const;
type Fault = (typeof FAULTS)[number];

/** What happened in one round. */
interface Round {
  readonly n: number;
  readonly fault: Fault;
  oldMaster?: number;
  newMaster?: number;
  epochBefore?: number;
  epochAfter?: number;
  /** ms from the fault until the survivors agreed on a new master. */
  electMs?: number;
  /** RTO: ms from the fault to the end of the first acknowledged write sent after it. */
  rtoMs?: number;
  /** ms from the restart/heal until the old master was back in the sync set. */
  rejoinMs?: number;
  /** diverged-*.jsonl files the old master wrote this round (its unacknowledged entries, set aside). */
  setAside?: number;
  /** The round's own failure; undefined when it passed. */
  failure?: string;
  /** True when no master was elected (a failure of its own kind in the report). */
  noMaster?: boolean;
  /** Things worth knowing that are not failures. */
  notes: string[];
}

const now = (): number => Date.now();
const fmtMs = (ms: number | undefined): string => (ms === undefined || !Number.isFinite(ms) ? '-' : `${Math.round(ms)} ms`);

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Keeps the whole output of every process in the net (the harness keeps only a tail), one file per host. */
class LogSink {
  private readonly streams = new Map<number, WriteStream>();
  constructor(
    readonly dir: string,
    private readonly etcdHost: number,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private stream(host: number): WriteStream {
    let s = this.streams.get(host);
    if (!s) {
      s = createWriteStream(join(this.dir, host === this.etcdHost ? 'etcd.log' : `node${host}.log`), { flags: 'a' });
      this.streams.set(host, s);
    }
    return s;
  }

  attach(host: number, child: ChildProcess): void {
    const s = this.stream(host);
    s.write(`[soak ${new Date().toISOString()}] spawned pid ${child.pid}\n`);
    child.stdout?.on('data', (d) => s.write(d));
    child.stderr?.on('data', (d) => s.write(d));
    child.once('exit', (code, signal) => s.write(`[soak ${new Date().toISOString()}] pid ${child.pid} exited code=${code} signal=${signal}\n`));
  }

  /** A line in every host's file, to find a round in the logs. */
  mark(text: string): void {
    for (const h of [0, 1, 2, this.etcdHost]) this.stream(h).write(`[soak ${new Date().toISOString()}] ${text}\n`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.streams.values()].map((s) => new Promise<void>((r) => s.end(r))));
    this.streams.clear();
  }
}

async function main(): Promise<number> {
  const argv = await yargs(hideBin(process.argv))
    .scriptName('soak')
    .usage('$0 [--rounds N] [--faults kill,partition]')
    .option('rounds', { type: 'number', default: 20, describe: 'failovers in a row (each round is one fault)' })
    .option('faults', { type: 'string', default: FAULTS.join(','), describe: `faults taken in turn, comma-separated: ${FAULTS.join(', ')}` })
    .option('writers', { type: 'number', default: 2, describe: 'concurrent ack "all" writers per node' })
    .option('pause-ms', { type: 'number', default: 10, describe: "pause between two writes of one writer (leaves CPU to the nodes)" })
    .option('write-timeout', { type: 'number', default: 10_000, describe: 'client deadline of one write, ms' })
    .option('round-timeout', { type: 'number', default: 120_000, describe: 'ms one round may take before it counts as failed' })
    .option('lease-ttl', { type: 'number', describe: "the nodes' --lease-ttl in s (default: the nodes' default, 3)" })
    .option('log-dir', { type: 'string', describe: 'keep the full output of etcd and every node here (default: a temp dir, kept only when the soak fails)' })
    .strict()
    .parseAsync();

  const rounds = argv.rounds;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10_000) return usage(`--rounds must be an integer 1..10000, got ${rounds}`);
  const writers = argv.writers;
  if (!Number.isInteger(writers) || writers < 1 || writers > 50) return usage(`--writers must be an integer 1..50, got ${writers}`);
  const faults = argv.faults.split(',').map((f) => f.trim()).filter(Boolean);
  const bad = faults.filter((f) => !(FAULTS as readonly string[]).includes(f));
  if (faults.length === 0 || bad.length) return usage(`--faults: unknown fault(s) ${bad.join(',') || '(none given)'}; known: ${FAULTS.join(', ')}`);
  const roundTimeout = argv['round-timeout'];
  if (!(roundTimeout >= 10_000)) return usage(`--round-timeout must be >= 10000 ms, got ${roundTimeout}`);

  if (!netnsAvailable()) {
    process.stderr.write(`soak: cannot run here: ${netnsUnavailableReason()}\n`);
    return 2;
  }
  if (!etcdAvailable()) {
    process.stderr.write('soak: cannot run here: etcd is not installed (apt-get install etcd-server; /usr/bin/etcd)\n');
    return 2;
  }

  const keepLogs = argv['log-dir'] !== undefined;
  const logDir = argv['log-dir'] ?? mkdtempSync(join(tmpdir(), 'sqlfleet-soak-logs-'));
  const ETCD_HOST = 3; // startHaNet puts etcd on host 3
  const sink = new LogSink(logDir, ETCD_HOST);

  // Cleanup on SIGINT/SIGTERM: the rig (processes by PID, namespaces, data dirs) and the logs.
  // netns.ts also removes its namespaces on these signals and re-raises; this handler stays
  // registered, so the re-raised signal lands here and the data dirs are removed too.
  let rig: HaNet | undefined;
  let starting: Promise<HaNet> | undefined;
  let interrupted = false;
  /** Set by the first signal: resolves with the exit code once everything is removed. */
  let cleanup: Promise<number> = Promise.resolve(130);
  const onSignal = (sig: NodeJS.Signals | 'disconnect'): void => {
    if (interrupted) return;
    interrupted = true;
    process.stderr.write(`\nsoak: ${sig === 'disconnect' ? 'the supervising process is gone' : sig}: stopping; removing processes, namespaces and data dirs\n`);
    const code = sig === 'SIGTERM' ? 143 : 130;
    setTimeout(() => process.exit(code), 30_000); // cleanup is bounded too
    cleanup = (async () => {
      const r = rig ?? (await starting?.catch(() => undefined));
      await r?.destroy().catch(() => undefined);
      await sink.close().catch(() => undefined);
      if (keepLogs) process.stderr.write(`soak: logs so far in ${logDir}\n`);
      else rmSync(logDir, { recursive: true, force: true });
      return code;
    })();
    void cleanup.then((c) => process.exit(c));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  if (process.channel) {
    process.channel.unref();
    process.on('disconnect', () => onSignal('disconnect'));
  }

  const started = now();
  process.stdout.write(`soak: ${rounds} rounds, faults ${faults.join(' → ')}, ${writers} ack "all" writer(s) per node; logs in ${logDir}\n`);
  starting = startHaNet({ table: TABLE, onSpawn: (host, child) => sink.attach(host, child), ...(argv['lease-ttl'] ? { extraArgs: ['--lease-ttl', String(argv['lease-ttl'])] } : {}) });
  try {
    rig = await starting;
  } catch (e) {
    if (interrupted) return cleanup;
    await sink.close();
    process.stderr.write(`soak: could not start etcd and the three nodes: ${(e as Error).message.split('\n')[0]}\nsoak: logs in ${logDir}\n`);
    return 1;
  }
  const r = rig;
  const nodes = r.nodes;
  const results: Round[] = [];
  let audit: Audit | undefined;
  let auditError: string | undefined;
  let aborted: string | undefined;
  let load: WriteLoad | undefined;
  try {
    const ttlMs: number = (await status(nodes[0]!)).lease?.ttl_ms ?? 3000;
    load = new WriteLoad({
      table: TABLE,
      tag: TAG,
      timeoutMs: argv['write-timeout'],
      pauseMs: argv['pause-ms'],
      // Bounded: the whole soak's time budget, and a count no sane run reaches.
      maxMs: rounds * roundTimeout + 120_000,
      maxWrites: 2_000_000,
      clients: Array.from({ length: writers }, () => nodes).flat().map((node) => ({ node, ack: 'all' as const })),
    });
    load.start();
    await load.waitForMore(30, 20_000);

    let lastEpoch: number = (await status((await agreedMaster(nodes, 15_000)))).epoch;
    for (let i = 0; i < rounds && !interrupted; i++) {
      const fault = faults[i % faults.length] as Fault;
      const round: Round = { n: i + 1, fault, notes: [] };
      results.push(round);
      sink.mark(`round ${round.n}/${rounds}: ${fault}`);
      try {
        lastEpoch = await runRound(r, load, round, lastEpoch, ttlMs, roundTimeout, sink);
      } catch (e) {
        round.failure ??= (e as Error).message.split('\n')[0];
      }
      if (interrupted) break;
      process.stdout.write(roundLine(round, rounds));
      if (round.failure) {
        sink.mark(`round ${round.n} FAILED: ${round.failure}`);
        process.stderr.write(`soak: round ${round.n} failed: ${round.failure}\n`);
        r.printLogs(60);
        try {
          lastEpoch = await recover(r, ttlMs);
          process.stdout.write(`  recovered: one master (epoch ${lastEpoch}) with both others in its sync set\n`);
        } catch (e) {
          aborted = `after round ${round.n} the cluster did not recover: ${(e as Error).message.split('\n')[0]}`;
          process.stderr.write(`soak: ${aborted}; stopping the rounds\n`);
          break;
        }
      }
    }
    if (interrupted) return cleanup;
    sink.mark('settling and auditing');
    try {
      audit = await settleAndAudit(load, nodes, TABLE, 60_000);
    } catch (e) {
      auditError = (e as Error).message.split('\n')[0];
      await load.stop();
    }
  } catch (e) {
    if (interrupted) return cleanup;
    aborted = `soak stopped: ${(e as Error).message.split('\n')[0]}`;
    process.stderr.write(`soak: ${aborted}\n`);
    r.printLogs(80);
    await load?.stop();
  } finally {
    if (!interrupted) {
      await WriteLoad.stopAll();
      await r.destroy();
      await sink.close();
    }
  }

  // The report.
  const records = load?.records ?? [];
  const failovers = results.filter((x) => x.newMaster !== undefined && x.newMaster !== x.oldMaster && (x.epochAfter ?? 0) > (x.epochBefore ?? Infinity)).length;
  const rtos = results.map((x) => x.rtoMs).filter((x): x is number => x !== undefined && Number.isFinite(x));
  const failed = results.filter((x) => x.failure);
  const noMaster = results.filter((x) => x.noMaster);
  const unanswered = records.filter((x) => x.netErr && ['TimeoutError', 'AbortError', '23'].includes(String(x.netErr)));
  const notes = results.flatMap((x) => x.notes.map((t) => `round ${x.n}: ${t}`));
  const out: string[] = [];
  out.push('', '==== soak report ====');
  out.push(`rounds:              ${results.length} of ${rounds} (${FAULTS.map((f) => `${results.filter((x) => x.fault === f).length} ${f}`).join(', ')}) in ${Math.round((now() - started) / 1000)} s`);
  out.push(`failovers:           ${failovers}`);
  out.push(`failed rounds:       ${failed.length}${failed.length ? ` (${failed.map((x) => `#${x.n} ${x.failure}`).join('; ')})` : ''}`);
  out.push(`rounds w/o a master: ${noMaster.length}${noMaster.length ? ` (#${noMaster.map((x) => x.n).join(', #')})` : ''}`);
  out.push(`RTO:                 median ${fmtMs(median(rtos))}, max ${fmtMs(rtos.length ? Math.max(...rtos) : NaN)} over ${rtos.length} round(s)` +
    `${rtos.length ? ` (kill: median ${fmtMs(median(rtoOf(results, 'kill')))}, partition: median ${fmtMs(median(rtoOf(results, 'partition')))})` : ''}`);
  out.push(`writes sent:         ${records.length}`);
  if (audit) {
    out.push(`acknowledged:        ${audit.acknowledged}`);
    out.push(`lost:                ${audit.lost.length}${list(audit.lost)}`);
    out.push(`duplicates:          ${audit.duplicates.length}${list(audit.duplicates)}`);
    out.push(`shared indexes:      ${audit.sharedIndex.length}${list(audit.sharedIndex)}`);
    out.push(`partial/phantom/unknown: ${audit.partial.length}/${audit.phantom.length}/${audit.unknown.length}${list([...audit.partial, ...audit.phantom, ...audit.unknown])}`);
    out.push(`failed writes:       ${audit.failed} (${audit.failedButCommitted} of them committed anyway: outcome unknown to the client)`);
  } else {
    out.push(`acknowledged:        ${records.filter(acknowledged).length} (not audited: ${auditError ?? aborted ?? 'no audit'})`);
  }
  out.push(`unanswered writes:   ${unanswered.length} (no answer within --write-timeout)`);
  out.push(`outcomes:            ${outcomeSummary(records)}`);
  const forked = results.filter((x) => x.setAside);
  out.push(`old master forked:   ${forked.length} round(s)${forked.length ? ` (#${forked.map((x) => x.n).join(', #')}): its unacknowledged entries set aside in diverged-*.jsonl, as designed` : ''}`);
  if (notes.length) out.push(`notes:               ${notes.join('\n                     ')}`);

  const auditBad = audit ? audit.lost.length + audit.duplicates.length + audit.sharedIndex.length + audit.partial.length + audit.phantom.length + audit.unknown.length : 1;
  const pass = !aborted && failed.length === 0 && auditBad === 0 && !auditError && results.length === rounds;
  if (auditError) out.push(`audit failed:        ${auditError}`);
  if (aborted) out.push(`aborted:             ${aborted}`);
  out.push(`verdict:             ${pass ? 'PASS' : 'FAIL'}`);
  if (!pass || keepLogs) out.push(`logs:                ${logDir}`);
  process.stdout.write(out.join('\n') + '\n');
  if (pass && !keepLogs) rmSync(logDir, { recursive: true, force: true });
  return pass ? 0 : 1;
}

/** One fault, the failover, and the way back to a full sync set. Returns the new epoch. */
async function runRound(r: HaNet, load: WriteLoad, round: Round, lastEpoch: number, ttlMs: number, roundMs: number, sink: LogSink): Promise<number> {
  const deadline = now() + roundMs;
  const nodes = r.nodes;
  const budget = `the round's ${Math.round(roundMs / 1000)} s (--round-timeout) ran out`;
  const left = (want: number): number => {
    const l = deadline - now();
    if (l <= 0) throw new Error(budget);
    return Math.min(want, l);
  };
  const fail = (why: string, noMaster = false): never => {
    round.failure = now() >= deadline ? `${why} (${budget})` : why;
    if (noMaster) round.noMaster = true;
    throw new Error(why);
  };

  // Before: one agreed master, both others in its sync set, writes flowing.
  const m = await agreedMaster(nodes, left(20_000)).catch(() => fail('no agreed master before the fault', true));
  const s0 = await status(m);
  round.oldMaster = m.id;
  round.epochBefore = s0.epoch;
  if (s0.epoch !== lastEpoch) round.notes.push(`epoch moved from ${lastEpoch} to ${s0.epoch} between rounds (a failover the soak did not cause)`);
  if ((s0.sync_set ?? []).length !== 2) fail(`sync set before the fault is ${JSON.stringify(s0.sync_set)}`);
  await load.waitForMore(20, left(15_000)).catch(() => fail('the load made no progress before the fault'));
  const others = nodes.filter((n) => n !== m);
  const divergedFiles = (): number => readdirSync(r.dataDir(m.id)).filter((f) => /^diverged-.*\.jsonl$/.test(f)).length;
  const divergedBefore = divergedFiles();

  // The fault.
  let faultAt: number;
  if (round.fault === 'kill') {
    sink.mark(`round ${round.n}: SIGKILL master node ${m.id} (epoch ${s0.epoch})`);
    await hardKill(m);
    faultAt = now();
  } else {
    sink.mark(`round ${round.n}: cutting master node ${m.id} (epoch ${s0.epoch}) off from nodes ${others.map((n) => n.id).join(',')} and etcd`);
    for (const h of [...others.map((n) => n.id), r.etcdHost]) r.net.cutBetween(m.id, h);
    faultAt = now();
  }

  // The failover: the survivors agree on one of them, in a higher epoch.
  let m2: TestNode;
  try {
    m2 = await agreedMaster(others, left(20_000));
  } catch (e) {
    return fail(`no master elected among nodes ${others.map((n) => n.id).join(',')} within 20 s of the ${round.fault}: ${(e as Error).message.split('\n')[0]}`, true);
  }
  round.electMs = now() - faultAt;
  const s2 = await status(m2);
  round.newMaster = m2.id;
  round.epochAfter = s2.epoch;
  sink.mark(`round ${round.n}: node ${m2.id} leads (epoch ${s2.epoch}), ${round.electMs} ms after the fault`);
  if (!(s2.epoch > s0.epoch)) fail(`new master node ${m2.id} has epoch ${s2.epoch}, not above ${s0.epoch}`);
  for (const n of others) await load.waitForAcked(n.id, 3, left(15_000)).catch(() => fail(`no write via node ${n.id} acknowledged after the failover`));
  round.rtoMs = rtoAfter(load.records, faultAt);
  if (!Number.isFinite(round.rtoMs)) fail('no acknowledged write after the fault');

  // The way back.
  let backAt: number;
  if (round.fault === 'kill') {
    await relaunch(m).catch((e: Error) => fail(`the killed master did not restart: ${e.message.split('\n')[0]}`));
    backAt = now();
    sink.mark(`round ${round.n}: node ${m.id} restarted`);
  } else {
    // The cut-off master must stop calling itself master within its lease (the clients still
    // reach it) and must not acknowledge anything after that; only then heal.
    await waitFor(async () => (await status(m)).role !== 'master', { timeoutMs: left(Math.max(1000, faultAt + ttlMs + 5000 - now())), intervalMs: 100, message: 'the cut-off master to step down' }).catch(() =>
      fail(`two masters: cut-off node ${m.id} still calls itself master ${now() - faultAt} ms after the cut (lease TTL ${ttlMs} ms) while node ${m2.id} leads`),
    );
    const hold = faultAt + ttlMs + 1000 - now();
    if (hold > 0) await delay(hold);
    const healAt = now();
    const late = load.records.filter((x) => x.via === m.id && acknowledged(x) && x.startedAt + x.ms > faultAt + ttlMs && x.startedAt + x.ms < healAt);
    if (late.length) fail(`cut-off node ${m.id} acknowledged ${late.length} write(s) after its lease TTL: ${late.slice(0, 5).map((x) => `${x.id} at +${Math.round(x.startedAt + x.ms - faultAt)} ms`).join(', ')}`);
    for (const h of [...others.map((n) => n.id), r.etcdHost]) r.net.healBetween(m.id, h);
    backAt = now();
    sink.mark(`round ${round.n}: healed node ${m.id}`);
  }
  // The old master follows the new one and is taken back into the sync set.
  const agreed = await agreedMaster(nodes, left(30_000)).catch(() => fail(`node ${m.id} does not follow node ${m2.id} within 30 s of the ${round.fault === 'kill' ? 'restart' : 'heal'}`));
  if (agreed !== m2) round.notes.push(`after the ${round.fault === 'kill' ? 'restart' : 'heal'} node ${agreed.id} leads, not node ${m2.id}`);
  await waitFor(async () => ((await status(agreed)).sync_set ?? []).includes(m.id) && ((await status(agreed)).sync_set ?? []).length === 2, {
    timeoutMs: left(30_000),
    intervalMs: 100,
    message: 'the old master back in the sync set',
  }).catch(() => fail(`node ${m.id} not back in the sync set of node ${agreed.id} within 30 s`));
  round.rejoinMs = now() - backAt;
  await load.waitForAcked(m.id, 3, left(15_000)).catch(() => fail(`no write via the old master node ${m.id} acknowledged after it rejoined`));
  round.setAside = divergedFiles() - divergedBefore;
  return (await status(agreed)).epoch;
}

/** After a failed round: heal every cut, restart what is down, wait for one master with a full sync set. */
async function recover(r: HaNet, ttlMs: number): Promise<number> {
  for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) r.net.healBetween(i, j);
  for (const n of r.nodes) if (!n.running) await relaunch(n);
  const m = await agreedMaster(r.nodes, 60_000 + ttlMs);
  await waitFor(async () => ((await status(m)).sync_set ?? []).length === 2, { timeoutMs: 60_000, intervalMs: 200, message: 'a full sync set' });
  return (await status(m)).epoch;
}

function rtoOf(results: readonly Round[], fault: Fault): number[] {
  return results.filter((x) => x.fault === fault && x.rtoMs !== undefined && Number.isFinite(x.rtoMs)).map((x) => x.rtoMs!);
}

function roundLine(x: Round, of: number): string {
  const who = x.oldMaster === undefined ? '' : ` node ${x.oldMaster} (epoch ${x.epochBefore})`;
  const to = x.newMaster === undefined ? '' : ` → node ${x.newMaster} (epoch ${x.epochAfter})`;
  const t = ` elected ${fmtMs(x.electMs)}, RTO ${fmtMs(x.rtoMs)}, rejoined ${fmtMs(x.rejoinMs)}${x.setAside ? ', its unacknowledged tail set aside' : ''}`;
  const notes = x.notes.length ? `\n  note: ${x.notes.join('; ')}` : '';
  return `round ${String(x.n).padStart(String(of).length)}/${of} ${x.fault.padEnd(9)}${who}${to}:${t}${x.failure ? `  FAILED: ${x.failure}` : ''}${notes}\n`;
}

function list(xs: readonly string[]): string {
  return xs.length ? ` (${xs.slice(0, 10).join(', ')}${xs.length > 10 ? `, … ${xs.length - 10} more` : ''})` : '';
}

function usage(msg: string): number {
  process.stderr.write(`soak: ${msg}\n`);
  return 2;
}

/** The supervisor: runs the soak in a worker (own process group), forwards SIGINT/SIGTERM, exits with its code. */
function supervise(): void {
  const tsx = import.meta.resolve('tsx');
  const child = spawn(process.execPath, ['--import', tsx, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    cwd: process.cwd(),
    detached: true,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [WORKER_ENV]: '1' },
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => child.kill(sig));
  child.on('error', (e) => {
    process.stderr.write(`soak: could not start the worker: ${e.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + (constants.signals[signal] ?? 0) : 1)));
}

if (process.env[WORKER_ENV] !== '1') supervise();
else main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`soak: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exit(1);
  },
);
