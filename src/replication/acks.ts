// Write acknowledgement levels: a write waits (bounded) until the slaves its level asks
// for have applied it. A timeout never fails the write: it is committed on the master,
// and the answer names every slave that lacks it.
import type { Member } from '../cluster/membership.js';

/** `all`: every expected slave not declared out; `one`: at least one slave; `master`: no wait. */
export type AckLevel = 'all' | 'one' | 'master';

/** Who applied a write by the time it was acknowledged. */
export interface AckResult {
  replicated_to: number[];
  /**
   * Slaves still expected (up, or not yet past the start-up grace) that had not applied it
   * when --ack-timeout ran out. Only a wait that ran out names them: a level satisfied in
   * time ("one" answered by one slave, "master") has no lagging slave, however far the
   * others are behind at that moment.
   */
  lagging: number[];
  /** Every member that lacks the write when it is acknowledged, whatever its state (level "all"). */
  missing: number[];
}

/** Which members a write at level "all" waits for; the rest are "out". */
export type ExpectedFn = (m: Member) => boolean;

interface Pending {
  index: number;
  level: AckLevel;
  resolve: (r: AckResult) => void;
  /** performance.now() past which the wait ends unmet. */
  deadline: number;
}

/** Tracks writes waiting for slave acknowledgements. */
export class AckTracker {
  private pending: Pending[] = [];
  /** One timer for the earliest deadline (a timer per write cost more than the wait itself). */
  private timer: NodeJS.Timeout | null = null;
  private timerAt = Infinity;
  /**
   * Highest index whose wait ended (answered, at any level): a slave that has applied it
   * has every write answered so far, so it may join the sync set (etcd mode). Set when the
   * wait ends, before the answer goes out, so no answered write is missed.
   */
  released = 0;

  /**
   * `slaves` lists the members a write may wait for; `expected` says which of them a
   * write at level "all" must wait for right now (static mode: up, catching up, or never
   * seen during the master's start-up grace; etcd mode: members of the sync set).
   */
  constructor(
    private readonly slaves: () => readonly Member[],
    private readonly expected: ExpectedFn,
  ) {}

  /** Waits until `level` is satisfied for `index`, or `timeoutMs`. */
  wait(index: number, level: AckLevel, timeoutMs: number): Promise<AckResult> {
    const now = this.evaluate(index, level, false, this.slaves());
    if (now.done) return Promise.resolve(this.release(index, now.result));
    return new Promise((resolve) => {
      const deadline = performance.now() + timeoutMs;
      this.pending.push({ index, level, resolve, deadline });
      if (deadline < this.timerAt) this.arm(deadline);
    });
  }

  /** Re-checks every waiting write; call when a slave's applied index or state changes. */
  check(): void {
    if (this.pending.length === 0) return;
    const slaves = this.slaves();
    const keep: Pending[] = [];
    for (const p of this.pending) {
      const r = this.evaluate(p.index, p.level, false, slaves);
      if (r.done) p.resolve(this.release(p.index, r.result));
      else keep.push(p);
    }
    this.pending = keep;
    if (keep.length === 0) this.disarm();
  }

  /** Resolves every waiter with what is known now (shutdown, role change). */
  flush(): void {
    const slaves = this.slaves();
    for (const p of this.pending) p.resolve(this.release(p.index, this.evaluate(p.index, p.level, true, slaves).result));
    this.pending = [];
    this.disarm();
  }

  /** Ends the waits whose deadline passed, then re-arms for the earliest one left. */
  private expire(): void {
    this.timer = null;
    this.timerAt = Infinity;
    const now = performance.now();
    const slaves = this.slaves();
    const keep: Pending[] = [];
    let next = Infinity;
    for (const p of this.pending) {
      if (p.deadline <= now) p.resolve(this.release(p.index, this.evaluate(p.index, p.level, true, slaves).result));
      else {
        keep.push(p);
        if (p.deadline < next) next = p.deadline;
      }
    }
    this.pending = keep;
    if (next < Infinity) this.arm(next);
  }

  private arm(at: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => this.expire(), Math.max(0, at - performance.now()));
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerAt = Infinity;
  }

  private release(index: number, r: AckResult): AckResult {
    if (index > this.released) this.released = index;
    return r;
  }

  // `ended`: the wait is over without the level being met (timeout, flush).
  private evaluate(index: number, level: AckLevel, ended: boolean, slaves: readonly Member[]): { done: boolean; result: AckResult } {
    const replicated_to: number[] = [];
    const lagging: number[] = [];
    const missing: number[] = [];
    for (const s of slaves) {
      if (s.applied >= index && s.confirmed) replicated_to.push(s.id);
      else {
        missing.push(s.id);
        if (this.expected(s)) lagging.push(s.id);
      }
    }
    let done: boolean;
    if (level === 'master' || slaves.length === 0) done = true;
    else if (level === 'one') done = replicated_to.length > 0;
    else done = lagging.length === 0;
    // "all" is done exactly when no expected slave lags; "one" lags only when its wait ran out.
    const lags = level === 'all' || (level === 'one' && ended && !done);
    return { done, result: { replicated_to, lagging: lags ? lagging : [], missing: level === 'all' ? missing : [] } };
  }
}
