// A linearizability checker (issue 27), written here: the Wing & Gong search with Lowe's
// refinements, as Knossos and porcupine implement it. The history becomes a list of call
// and return entries in time order; the search linearizes some call whose operation the
// sequential model accepts in the current state, removes its two entries from the list
// ("lift") and starts again from the head; when it meets a return entry whose call is not
// linearized yet, the current prefix cannot be extended and it backtracks. A cache of
// (set of linearized operations, model state) cuts every configuration that was already
// explored. Histories are split per key first (P-compositionality: a history of
// independent registers is linearizable iff each register's is), which keeps the search
// small. Operations whose outcome is unknown (`info`) get a return time of +∞: they may
// take effect at any point after their invocation, or never (placed last, they change
// nothing any other operation observed).

import type { Operation } from './history.js';

/** A sequential specification: `step` is undefined when `op` cannot happen in `state`. */
export interface Model<S> {
  readonly init: S;
  step(state: S, op: Operation): S | undefined;
  /** A string that is equal for equal states (the cache key). */
  key(state: S): string;
  /** Partition key of an operation (P-compositionality); one partition when absent. */
  partition?(op: Operation): string;
}

/** What `checkLinearizable` found for one partition. */
export interface PartitionResult {
  readonly partition: string;
  readonly ops: number;
  /** true: linearizable; false: not; 'unknown': the search ran out of budget. */
  readonly valid: boolean | 'unknown';
  /** Search steps spent. */
  readonly steps: number;
  /** On false: the operation no linearization could place before its return, in the deepest attempt. */
  readonly blocked?: Operation;
  /** On false: the operations of the deepest linearization found, in their linearized order. */
  readonly longestPrefix?: readonly Operation[];
}

/** Verdict over all partitions. */
export interface LinearizabilityResult {
  readonly valid: boolean | 'unknown';
  readonly partitions: readonly PartitionResult[];
}

/** Limits of one search (per partition). */
export interface SearchBudget {
  /** Steps before giving up with 'unknown'; default 20 million. */
  readonly maxSteps?: number;
  /** Wall-clock ms before giving up with 'unknown'; default 60 000. */
  readonly maxMs?: number;
}

interface Entry {
  readonly op: number; // index into ops
  readonly call: boolean;
  match: Entry | null; // call -> its return entry
  prev: Entry | null;
  next: Entry | null;
}

/** Checks the `ok` and `info` operations of `ops` (a `fail` never happened and is ignored). */
export function checkLinearizable<S>(model: Model<S>, ops: readonly Operation[], budget: SearchBudget = {}): LinearizabilityResult {
  const groups = new Map<string, Operation[]>();
  for (const op of ops) {
    if (op.type === 'fail') continue;
    const k = model.partition?.(op) ?? '';
    let g = groups.get(k);
    if (!g) groups.set(k, (g = []));
    g.push(op);
  }
  const partitions = [...groups.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([k, g]) => ({ partition: k, ...searchOne(model, g, budget) }));
  const valid = partitions.some((p) => p.valid === false) ? false : partitions.some((p) => p.valid === 'unknown') ? 'unknown' : true;
  return { valid, partitions };
}

/** The search on one partition. */
export function searchOne<S>(model: Model<S>, ops: readonly Operation[], budget: SearchBudget = {}): Omit<PartitionResult, 'partition'> {
  const maxSteps = budget.maxSteps ?? 20_000_000;
  const deadline = Date.now() + (budget.maxMs ?? 60_000);
  // Entries in time order; at equal times calls first (the operations count as concurrent).
  const points: { t: number; call: boolean; op: number }[] = [];
  ops.forEach((op, i) => {
    points.push({ t: op.start, call: true, op: i });
    points.push({ t: op.end, call: false, op: i });
  });
  points.sort((a, b) => a.t - b.t || (a.call === b.call ? a.op - b.op : a.call ? -1 : 1));
  const head: Entry = { op: -1, call: false, match: null, prev: null, next: null };
  const calls: Entry[] = new Array(ops.length);
  let last = head;
  for (const p of points) {
    const e: Entry = { op: p.op, call: p.call, match: null, prev: last, next: null };
    last.next = e;
    last = e;
    if (p.call) calls[p.op] = e;
    else calls[p.op]!.match = e;
  }

  const words = new Uint32Array(Math.ceil(ops.length / 32) || 1);
  // The set of linearized operations as a string, two UTF-16 units per word (a cache key).
  const halves = new Uint16Array(words.buffer);
  const bitsKey = (): string => {
    let s = '';
    for (let i = 0; i < halves.length; i += 4096) s += String.fromCharCode.apply(null, halves.subarray(i, i + 4096) as unknown as number[]);
    return s;
  };
  const cache = new Set<string>();
  const stack: { entry: Entry; state: S }[] = [];
  let state = model.init;
  let steps = 0;
  let deepest: { depth: number; order: number[]; blocked: number } = { depth: -1, order: [], blocked: -1 };
  let entry = head.next;

  const lift = (c: Entry): void => {
    c.prev!.next = c.next;
    if (c.next) c.next.prev = c.prev;
    const r = c.match!;
    r.prev!.next = r.next;
    if (r.next) r.next.prev = r.prev;
  };
  const unlift = (c: Entry): void => {
    const r = c.match!;
    r.prev!.next = r;
    if (r.next) r.next.prev = r;
    c.prev!.next = c;
    if (c.next) c.next.prev = c;
  };

  while (head.next !== null) {
    if (++steps > maxSteps || (steps % 4096 === 0 && Date.now() > deadline)) return { ops: ops.length, valid: 'unknown', steps };
    if (entry === null) throw new Error('linearizability search ran off the list');
    if (entry.call) {
      const next = model.step(state, ops[entry.op]!);
      if (next !== undefined) {
        const w = entry.op >>> 5, bit = 1 << (entry.op & 31);
        words[w] = words[w]! | bit;
        const key = `${bitsKey()}\u0000${model.key(next)}`;
        if (!cache.has(key)) {
          cache.add(key);
          stack.push({ entry, state });
          state = next;
          lift(entry);
          entry = head.next;
          continue;
        }
        words[w] = words[w]! & ~bit;
      }
      entry = entry.next;
      continue;
    }
    // A return entry whose operation is not linearized yet: this prefix cannot go on.
    if (stack.length > deepest.depth) deepest = { depth: stack.length, order: stack.map((s) => s.entry.op), blocked: entry.op };
    const top = stack.pop();
    if (!top) {
      return {
        ops: ops.length, valid: false, steps,
        blocked: ops[deepest.blocked]!,
        longestPrefix: deepest.order.map((i) => ops[i]!),
      };
    }
    state = top.state;
    const w = top.entry.op >>> 5;
    words[w] = words[w]! & ~(1 << (top.entry.op & 31));
    unlift(top.entry);
    entry = top.entry.next;
  }
  return { ops: ops.length, valid: true, steps };
}

/**
 * Shrinks a non-linearizable history to a short one that is still not linearizable: first
 * the operations invoked after the blocked one returned are dropped, then chunks and single
 * operations are removed while the rest stays non-linearizable and `keep` holds (e.g.
 * "every value a read saw was written by an operation still present", so the window does
 * not collapse to a read of a value nobody wrote). Bounded by `maxMs`.
 */
export function shrink<S>(model: Model<S>, ops: readonly Operation[], keep: (ops: readonly Operation[]) => boolean = () => true, maxMs = 20_000): Operation[] {
  const deadline = Date.now() + maxMs;
  const bad = (xs: readonly Operation[]): boolean => keep(xs) && searchOne(model, xs, { maxSteps: 2_000_000, maxMs: 5_000 }).valid === false;
  let cur = ops.filter((o) => o.type !== 'fail');
  const first = searchOne(model, cur, { maxMs: 10_000 });
  if (first.valid !== false) return [...cur];
  const cut = first.blocked!.end;
  const prefix = cur.filter((o) => o.start <= cut);
  if (bad(prefix)) cur = prefix;
  for (let size = Math.max(1, cur.length >> 1); size >= 1 && Date.now() < deadline; size = size === 1 ? 0 : Math.max(1, size >> 1)) {
    for (let i = 0; i < cur.length && Date.now() < deadline; ) {
      const candidate = [...cur.slice(0, i), ...cur.slice(i + size)];
      if (candidate.length > 0 && bad(candidate)) cur = candidate;
      else i += size;
    }
  }
  return cur;
}
