// The short version of `npm run jepsen` (issue 27): the register, bank and set workloads
// against a three-node cluster while the master is partitioned, SIGKILLed and SIGSTOPped in
// turn, in etcd mode and in static mode at the same time (one run each, ~60 s wall); the
// recorded histories must be linearizable (register: strong reads, writes, CAS), keep the
// bank total, and have every acknowledged set element on every node. Needs root (network
// namespaces) and etcd; CI runs as root.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { formatVerdict, type Verdict } from '../scripts/jepsen/checkers.js';
import { runJepsen, type JepsenReport } from '../scripts/jepsen/run.js';
import { etcdSkip } from './helpers/etcd.js';
import { netnsAvailable, netnsUnavailableReason } from './helpers/netns.js';

const missing = !netnsAvailable() ? netnsUnavailableReason() : '';
if (missing && process.env.CI === 'true') {
  test('the jepsen test runs in CI', () => assert.fail(`${missing}: CI must run the jepsen test on network namespaces`));
}
const skip = missing ? `jepsen test skipped: ${missing}` : etcdSkip();
const SECONDS = Number(process.env.JEPSEN_SECONDS ?? 36);
// Found by this test (issue 27): in etcd mode a master whose lease renewal failed refused
// writes but answered consistency "strong" reads from its own copy until it stepped down,
// ~1 s after a new master already acknowledged writes; and a strong read on the master saw
// an entry not yet acknowledged, which a failover then set aside. Fixed in
// core/executor.ts (strongRead): the register check below holds in etcd mode too.

const reports: Partial<Record<'etcd' | 'static', JepsenReport>> = {};
let runError: unknown;

before(async () => {
  if (skip) return;
  const log = (mode: string) => (s: string) => process.stdout.write(`${s.split('\n').map((l) => `# [${mode}] ${l}`).join('\n')}\n`);
  const common = { durationMs: SECONDS * 1000, nemeses: ['partition', 'kill', 'pause'] as const, workloads: ['register', 'bank', 'set'] as const, faultMs: 5000, quietMs: 3000 };
  try {
    const [etcd, stat] = await Promise.all([runJepsen({ ...common, mode: 'etcd', log: log('etcd') }), runJepsen({ ...common, mode: 'static', log: log('static') })]);
    reports.etcd = etcd;
    reports.static = stat;
  } catch (e) {
    runError = e;
  }
}, { timeout: 150_000 });

function report(mode: 'etcd' | 'static'): JepsenReport {
  if (runError) throw runError;
  const r = reports[mode];
  assert.ok(r, `no ${mode} run`);
  return r;
}

function verdict(mode: 'etcd' | 'static', prefix: string): Verdict {
  const r = report(mode);
  const v = r.verdicts.find((x) => x.name.startsWith(prefix));
  assert.ok(v, `${mode}: no ${prefix} verdict`);
  assert.equal(v.valid, true, `${mode} mode, history ${r.historyFile}:\n${formatVerdict(v)}`);
  return v;
}

for (const mode of ['static', 'etcd'] as const) {
  test(`jepsen ${mode}: every nemesis (partition, kill, pause of the master) was injected and operations succeeded around them`, { skip }, () => {
    const r = report(mode);
    for (const kind of ['partition', 'kill', 'pause']) assert.ok((r.faults[kind] ?? 0) >= 1, `no ${kind} fault injected: ${JSON.stringify(r.faults)}`);
    for (const v of r.verdicts) assert.ok((v.stats.ok ?? 0) >= 50, `${v.name}: only ${v.stats.ok} operations succeeded`);
  });
  test(`jepsen ${mode}: register (strong reads, writes, CAS) is linearizable`, { skip }, () => {
    verdict(mode, 'register');
  });
  test(`jepsen ${mode}: bank reads, local and strong, always see the same total`, { skip }, () => {
    verdict(mode, 'bank');
  });
  test(`jepsen ${mode}: every acknowledged set element (ack "all") is on every node`, { skip }, () => {
    verdict(mode, 'set');
  });
}
