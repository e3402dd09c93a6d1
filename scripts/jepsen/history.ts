// Jepsen-style operation histories (issue 27): every client operation is recorded twice,
// at invocation and at completion (ok / fail / info), with monotonic times, and appended
// to a JSON-lines file per run so a failing run can be re-checked offline.
//   ok   — the operation took effect and returned `value`
//   fail — the operation certainly did not take effect (a definite refusal)
//   info — the outcome is unknown (timeout, connection lost, outcome: "unknown"): the
//          checkers treat it as possibly applied, at any time after its invocation.

import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { dirname } from 'node:path';
import { performance } from 'node:perf_hooks';

/** What an event says about its operation. */
export type EventType = 'invoke' | 'ok' | 'fail' | 'info';

/** One line of a history: an invocation or a completion of operation `id`. */
export interface HistoryEvent {
  readonly type: EventType;
  /** Operation id; an invocation and its completion share it. */
  readonly id: number;
  /** Logical process: one client thread; it gets a new number after an `info` (its op may still be running). */
  readonly process: number;
  readonly workload: string;
  /** Function: read, write, cas, transfer, insert, … */
  readonly f: string;
  /** Invocation: the argument; completion: the result. */
  readonly value: unknown;
  /** Monotonic milliseconds since the recorder started. */
  readonly time: number;
  /** Which node or client path served it, for reading failures. */
  readonly via?: string;
  readonly error?: string;
}

/** A completed (or still open) operation: invocation and completion paired. */
export interface Operation {
  readonly id: number;
  readonly process: number;
  readonly workload: string;
  readonly f: string;
  readonly arg: unknown;
  readonly type: Exclude<EventType, 'invoke'>;
  readonly result: unknown;
  readonly start: number;
  /** Completion time; Infinity for `info` (it may take effect at any later time). */
  readonly end: number;
  readonly via?: string;
  readonly error?: string;
}

/** Records events in memory and, when given a file, appends each as one JSON line. */
export class Recorder {
  readonly events: HistoryEvent[] = [];
  private readonly t0 = performance.now();
  private nextId = 0;
  private readonly out: WriteStream | undefined;

  constructor(file?: string) {
    if (file) {
      mkdirSync(dirname(file), { recursive: true });
      this.out = createWriteStream(file, { flags: 'a' });
    }
  }

  /** Monotonic ms since the recorder started. */
  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  /** Logs an invocation; returns a function that logs its completion exactly once. */
  invoke(workload: string, process: number, f: string, value: unknown, via?: string): (type: Exclude<EventType, 'invoke'>, result?: unknown, error?: string) => void {
    const id = this.nextId++;
    this.push({ type: 'invoke', id, process, workload, f, value, time: this.now(), ...(via ? { via } : {}) });
    let done = false;
    return (type, result, error) => {
      if (done) return;
      done = true;
      this.push({ type, id, process, workload, f, value: result ?? null, time: this.now(), ...(via ? { via } : {}), ...(error ? { error } : {}) });
    };
  }

  /** Logs a nemesis event (a fault begins or ends) in the same timeline. */
  note(f: string, value: unknown): void {
    const id = this.nextId++;
    this.push({ type: 'info', id, process: -1, workload: 'nemesis', f, value, time: this.now() });
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    const out = this.out;
    if (!out) return;
    await new Promise<void>((res) => out.end(res));
  }

  private push(e: HistoryEvent): void {
    this.events.push(e);
    this.out?.write(`${JSON.stringify(e)}\n`);
  }
}

/** Pairs invocations with completions; an invocation without completion counts as `info`. */
export function operations(events: readonly HistoryEvent[], workload?: string): Operation[] {
  const open = new Map<number, HistoryEvent>();
  const ops: Operation[] = [];
  for (const e of events) {
    if (e.workload === 'nemesis' || (workload !== undefined && e.workload !== workload)) continue;
    if (e.type === 'invoke') {
      open.set(e.id, e);
      continue;
    }
    const inv = open.get(e.id);
    if (!inv) continue;
    open.delete(e.id);
    ops.push(pair(inv, e.type, e.value, e.type === 'info' ? Infinity : e.time, e.error));
  }
  for (const inv of open.values()) ops.push(pair(inv, 'info', null, Infinity, 'never completed'));
  return ops.sort((a, b) => a.start - b.start || a.id - b.id);
}

function pair(inv: HistoryEvent, type: Operation['type'], result: unknown, end: number, error?: string): Operation {
  return {
    id: inv.id, process: inv.process, workload: inv.workload, f: inv.f, arg: inv.value, type, result, start: inv.time, end,
    ...(inv.via ? { via: inv.via } : {}), ...(error ? { error } : {}),
  };
}

/** Parses a history file written by a Recorder. */
export function parseHistory(text: string): HistoryEvent[] {
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as HistoryEvent);
}

/** One operation as a line of a report, e.g. `p3 cas k1 4→9 ok true [120.1 … 131.7] via node 0`. */
export function formatOp(op: Operation): string {
  const end = op.end === Infinity ? '∞' : op.end.toFixed(1);
  const res = op.type === 'ok' ? (op.result === null && op.f !== 'read' ? ' ok' : ` → ${JSON.stringify(op.result)}`) : op.type === 'info' ? ` (unknown${op.error ? `: ${op.error}` : ''})` : ` (failed${op.error ? `: ${op.error}` : ''})`;
  return `#${op.id} p${op.process} ${op.f} ${JSON.stringify(op.arg)}${res} [${op.start.toFixed(1)} … ${end}]${op.via ? ` via ${op.via}` : ''}`;
}
