// The checkers of the Jepsen-style test (issue 27): the register model for the
// linearizability search, the bank invariant and set completeness. Pure functions over
// recorded operations, so test/jepsen-checker.test.ts feeds them hand-made histories.

import { formatOp, type Operation } from './history.js';
import { searchOne, shrink, type LinearizabilityResult, type Model, type PartitionResult } from './linearizable.js';

/** Register operation arguments: every write and CAS target is a value unique in the run. */
export type RegisterArg = { k: number; v?: number; from?: number; to?: number };
/** A register's state: its value, null before the first write, 'any' when not known (a later segment's start). */
export type RegisterState = number | null | 'any';

/**
 * A register per key with read, write and compare-and-set. A CAS that changed no row is an
 * `ok` operation with result false (it observed a value other than `from`); an `info`
 * CAS, when linearized, sets `to` exactly when the value is `from`. From the state 'any'
 * the first observation decides the value.
 */
export function registerModelFrom(init: RegisterState): Model<RegisterState> {
  return {
    init,
    partition: (op) => String((op.arg as RegisterArg).k),
    key: (s) => String(s),
    step(state, op) {
      const a = op.arg as RegisterArg;
      switch (op.f) {
        case 'read':
          if (op.type === 'info') return state;
          return state === 'any' || op.result === state ? (op.result as RegisterState) : undefined;
        case 'write':
          return a.v!;
        case 'cas':
          if (state === 'any') return op.type === 'info' || op.result === false ? 'any' : a.to!;
          if (op.type === 'info') return state === a.from ? a.to! : state;
          if (op.result === true) return state === a.from ? a.to! : undefined;
          return state !== a.from ? state : undefined;
        default:
          throw new Error(`register model: unknown f ${op.f}`);
      }
    },
  };
}

/** The register model of a whole history: every key starts NULL (the workload's setup). */
export const registerModel: Model<RegisterState> = registerModelFrom(null);

/** Every value a read returned or a successful CAS expected was written by an operation in `ops`. */
export function registerProvenance(ops: readonly Operation[]): boolean {
  const written = new Set<number>();
  for (const o of ops) {
    const a = o.arg as RegisterArg;
    if (o.f === 'write') written.add(a.v!);
    if (o.f === 'cas' && o.type !== 'fail' && o.result !== false) written.add(a.to!);
  }
  return ops.every((o) => {
    const a = o.arg as RegisterArg;
    if (o.f === 'read' && o.type === 'ok' && o.result !== null) return written.has(o.result as number);
    if (o.f === 'cas' && o.type === 'ok' && o.result === true && a.from !== null) return written.has(a.from!);
    return true;
  });
}

/**
 * Removes what cannot change the verdict but would make the search exponential: an
 * unknown-outcome write (or CAS) whose value no operation ever observed stays pending
 * forever, and every subset of such pending operations is a new search state. No read saw
 * its value and no CAS expected it, so it can only have mattered to a CAS that failed
 * while it was in effect: such failed CASes (those returning after the first dropped
 * operation's invocation) are dropped too, as Knossos drops every failed CAS. Failed CASes
 * before that point keep their meaning (they observed a value other than `from`).
 */
export function pruneUnobserved(ops: readonly Operation[]): { ops: Operation[]; dropped: number } {
  const byKey = new Map<string, Operation[]>();
  for (const o of ops) {
    const k = registerModel.partition!(o);
    let g = byKey.get(k);
    if (!g) byKey.set(k, (g = []));
    g.push(o);
  }
  const kept: Operation[] = [];
  let dropped = 0;
  for (const g of byKey.values()) {
    const observed = new Set<unknown>();
    for (const o of g) {
      if (o.f === 'read' && o.type === 'ok') observed.add(o.result);
      if (o.f === 'cas' && o.type !== 'fail') observed.add((o.arg as RegisterArg).from);
    }
    const unobserved = (o: Operation): boolean =>
      o.type === 'info' && ((o.f === 'write' && !observed.has((o.arg as RegisterArg).v)) || (o.f === 'cas' && !observed.has((o.arg as RegisterArg).to)));
    const t0 = Math.min(...g.filter(unobserved).map((o) => o.start));
    for (const o of g) {
      if (unobserved(o) || (o.f === 'cas' && o.type === 'ok' && o.result === false && o.end > t0)) dropped++;
      else kept.push(o);
    }
  }
  return { ops: kept.sort((a, b) => a.start - b.start || a.id - b.id), dropped };
}

/** A checker's verdict, printable. */
export interface Verdict {
  readonly name: string;
  readonly valid: boolean | 'unknown';
  /** Counts: operations by outcome and what was checked. */
  readonly stats: Record<string, number>;
  /** Why it failed (or was unknown), one line each, e.g. the shortest failing window. */
  readonly details: readonly string[];
}

/** Linearizability of register operations; a failure carries the shortest non-linearizable window found. */
export function checkRegister(ops: readonly Operation[], opts: { shrinkMs?: number; maxMs?: number; maxAnomalies?: number } = {}): Verdict & { result: LinearizabilityResult } {
  // Reads that failed or timed out observed nothing and changed nothing: out of the history.
  const usable = ops.filter((o) => o.type !== 'fail' && !(o.f === 'read' && o.type === 'info'));
  const keys = [...new Set(usable.map((o) => registerModel.partition!(o)))].sort();
  const partitions: PartitionResult[] = [];
  const details: string[] = [];
  let pruned = 0;
  let anomalies = 0;
  let steps = 0;
  const search = (k: string, model: Model<RegisterState>, segment: Operation[]): { p: PartitionResult; ops: Operation[] } => {
    // The whole history first; only when unknown-outcome operations make that search too
    // large, the pruned one (weaker only about CASes that failed while they were pending).
    let p: PartitionResult = { partition: k, ...searchOne(model, segment, { maxSteps: 300_000, maxMs: 5_000 }) };
    steps += p.steps;
    if (p.valid !== 'unknown') return { p, ops: segment };
    const pr = pruneUnobserved(segment);
    pruned += pr.dropped;
    details.push(`key ${k}: full search too large (${p.steps} steps); checked without ${pr.dropped} unobserved unknown-outcome writes and the CASes that failed after them`);
    p = { partition: k, ...searchOne(model, pr.ops, { maxMs: opts.maxMs ?? 60_000 }) };
    steps += p.steps;
    return { p, ops: pr.ops };
  };
  for (const k of keys) {
    const keyOps = usable.filter((o) => registerModel.partition!(o) === k);
    let { p, ops: checked } = search(k, registerModel, keyOps);
    partitions.push(p);
    if (p.valid === 'unknown') details.push(`key ${k}: search gave up after ${p.steps} steps (${p.ops} operations)`);
    if (p.valid !== false) continue;
    const window = shrink(registerModel, checked, registerProvenance, opts.shrinkMs ?? 20_000);
    details.push(`key ${k}: not linearizable; no linearization can place ${formatOp(p.blocked!)} before it returned`);
    details.push(`key ${k}: shortest non-linearizable window found (${window.length} of ${keyOps.length} operations):`);
    for (const o of window) details.push(`    ${formatOp(o)}`);
    anomalies++;
    // Go on after the failure: from the next moment no operation is in flight, with the
    // value unknown, so a run reports every anomaly, not only its first.
    let shown = 0;
    for (let seg = nextSegment(keyOps, p.blocked!.end); seg.length > 0 && anomalies < (opts.maxAnomalies ?? 100); ) {
      const r = search(k, registerModelFrom('any'), seg);
      if (r.p.valid !== false) break;
      anomalies++;
      if (shown++ < 5) {
        const b = r.p.blocked!;
        details.push(`key ${k}: again not linearizable: ${formatOp(b)}; just before it:`);
        for (const o of r.ops.filter((o) => o.start < b.start && o.end !== Infinity && o.end > b.start - 1000).slice(-4)) details.push(`    ${formatOp(o)}`);
      }
      seg = nextSegment(keyOps, r.p.blocked!.end);
    }
  }
  const valid = partitions.some((p) => p.valid === false) ? false : partitions.some((p) => p.valid === 'unknown') ? 'unknown' : true;
  const result: LinearizabilityResult = { valid, partitions };
  return { name: 'register (linearizable)', valid, stats: { ...countTypes(ops), checked: usable.length - pruned, pruned, keys: keys.length, anomalies, steps }, details, result };
}

/**
 * The operations after the first moment past `after` when none is in flight (operations
 * whose outcome is unknown do not count: they stay pending into the segment).
 */
export function nextSegment(ops: readonly Operation[], after: number): Operation[] {
  const sorted = [...ops].sort((a, b) => a.start - b.start);
  let maxEnd = after;
  let t = Infinity;
  for (const o of sorted) {
    if (o.start > maxEnd) {
      t = o.start;
      break;
    }
    if (o.end !== Infinity) maxEnd = Math.max(maxEnd, o.end);
  }
  if (t === Infinity) return [];
  return sorted.filter((o) => o.start >= t || (o.type === 'info' && o.start < t));
}

/** A bank read's result: balances by account id, and the log index the answering node had applied. */
export interface BankRead {
  readonly balances: Record<string, number>;
  readonly index: number;
}

/**
 * Every ok read saw every account and the same total, and no negative balance (transfers
 * are guarded). And read-your-writes, the promise local reads do make: a sqlfleet/client
 * process's read, local or strong, answers at an index at or after its own last
 * acknowledged transfer (the client sends it as min_index).
 */
export function checkBank(ops: readonly Operation[], accounts: number, total: number): Verdict {
  const reads = ops.filter((o) => o.f.startsWith('read') && o.type === 'ok');
  const details: string[] = [];
  for (const r of reads) {
    // Histories recorded before reads carried their index hold the balances alone.
    const b = (r.result as BankRead).balances ?? (r.result as Record<string, number>);
    const ids = Object.keys(b);
    const sum = Object.values(b).reduce((n, x) => n + x, 0);
    const neg = Object.entries(b).filter(([, x]) => x < 0);
    if (ids.length !== accounts || sum !== total || neg.length) {
      details.push(`${formatOp(r)}: ${ids.length} accounts, total ${sum} (expected ${accounts} accounts, total ${total})${neg.length ? `, negative ${JSON.stringify(neg)}` : ''}`);
    }
  }
  let ryw = 0;
  const lastWrite = new Map<number, number>();
  for (const o of [...ops].filter((x) => x.via === 'client' && x.type === 'ok').sort((a, b) => a.end - b.end)) {
    const idx = Number((o.result as { index?: number }).index);
    if (o.f === 'transfer') lastWrite.set(o.process, Math.max(lastWrite.get(o.process) ?? 0, idx));
    else if (o.f.startsWith('read')) {
      ryw++;
      const w = lastWrite.get(o.process) ?? 0;
      if (idx < w) details.push(`${formatOp(o)}: read at index ${idx}, before this process's own transfer at index ${w} (read-your-writes)`);
    }
  }
  const shown = details.slice(0, 10);
  if (details.length > 10) shown.push(`… and ${details.length - 10} more`);
  return { name: 'bank (total constant)', valid: details.length === 0, stats: { ...countTypes(ops), reads_checked: reads.length, read_your_writes_checked: ryw, bad_reads: details.length }, details: shown };
}

/** Every acknowledged insert is on every node; nothing is there that was never attempted. */
export function checkSet(ops: readonly Operation[], finalReads: ReadonlyMap<string, readonly number[]>): Verdict {
  ops = ops.filter((o) => o.f === 'insert');
  const acked = new Set(ops.filter((o) => o.f === 'insert' && o.type === 'ok').map((o) => o.arg as number));
  const attempted = new Set(ops.filter((o) => o.f === 'insert' && o.type !== 'fail').map((o) => o.arg as number));
  const failed = new Set(ops.filter((o) => o.f === 'insert' && o.type === 'fail').map((o) => o.arg as number));
  const details: string[] = [];
  let recovered = 0;
  for (const [node, values] of finalReads) {
    const present = new Set(values);
    const lost = [...acked].filter((v) => !present.has(v));
    const unexpected = values.filter((v) => !attempted.has(v));
    if (lost.length) details.push(`${node}: ${lost.length} acknowledged element(s) missing: ${lost.slice(0, 20).join(', ')}`);
    if (unexpected.length) details.push(`${node}: ${unexpected.length} element(s) present that ${unexpected.some((v) => failed.has(v)) ? 'failed definitely' : 'were never inserted'}: ${unexpected.slice(0, 20).join(', ')}`);
    recovered = Math.max(recovered, values.filter((v) => attempted.has(v) && !acked.has(v)).length);
  }
  if (finalReads.size === 0) details.push('no final read');
  return { name: 'set (acknowledged elements on every node)', valid: details.length === 0, stats: { ...countTypes(ops), acknowledged: acked.size, nodes_read: finalReads.size, unknown_present: recovered }, details };
}

/** Operations by outcome. */
export function countTypes(ops: readonly Operation[]): Record<string, number> {
  return { ops: ops.length, ok: ops.filter((o) => o.type === 'ok').length, fail: ops.filter((o) => o.type === 'fail').length, info: ops.filter((o) => o.type === 'info').length };
}

/** One verdict as text: a headline and its details. */
export function formatVerdict(v: Verdict): string {
  const head = `${v.valid === true ? 'PASS' : v.valid === false ? 'FAIL' : 'UNKNOWN'}  ${v.name}  ${Object.entries(v.stats).map(([k, n]) => `${k}=${n}`).join(' ')}`;
  return [head, ...v.details.map((d) => `    ${d}`)].join('\n');
}
