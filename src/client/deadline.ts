// One call's time budget: the caller's AbortSignal and the call's deadline in one signal,
// per-request signals cut from what is left, and sleeps that end with the budget.
import { setTimeout as sleep } from 'node:timers/promises';

/** The budget of one client call. */
export class Deadline {
  /** Fires when the caller aborts or the deadline passes. */
  readonly signal: AbortSignal;
  private readonly end: number;

  constructor(
    timeoutMs: number,
    readonly caller: AbortSignal | undefined,
  ) {
    this.end = Date.now() + timeoutMs;
    const timer = AbortSignal.timeout(timeoutMs);
    this.signal = caller ? AbortSignal.any([caller, timer]) : timer;
  }

  /** Milliseconds left (0 once over). */
  remaining(): number {
    return Math.max(0, this.end - Date.now());
  }

  /** True once the caller aborted or the deadline passed. */
  get over(): boolean {
    return this.signal.aborted || this.remaining() === 0;
  }

  /** True when it was the caller's signal, not the deadline, that ended the call. */
  get abortedByCaller(): boolean {
    return this.caller?.aborted === true;
  }

  /** A signal for one request: this budget, and at most `capMs` of it. */
  attempt(capMs: number): AbortSignal {
    const ms = Math.max(1, Math.min(capMs, this.remaining()));
    return AbortSignal.any([this.signal, AbortSignal.timeout(ms)]);
  }

  /**
   * Waits `ms` (less if the budget ends first); never throws. The timer is ref'd: between
   * retries it may be the only thing alive, and a script awaiting the call must not end
   * (silently, exit code 13) before the call settles. It never outlives the budget.
   */
  async pause(ms: number): Promise<void> {
    const wait = Math.min(ms, this.remaining());
    if (wait <= 0 || this.signal.aborted) return;
    await sleep(wait, undefined, { signal: this.signal }).catch(() => {});
  }

  /** Resolves when the budget ends (caller abort or deadline); `stop()` drops the listener. */
  ended(): { promise: Promise<void>; stop: () => void } {
    let stop = (): void => {};
    const promise = new Promise<void>((resolve) => {
      if (this.signal.aborted) return resolve();
      const on = (): void => resolve();
      this.signal.addEventListener('abort', on, { once: true });
      stop = () => this.signal.removeEventListener('abort', on);
    });
    return { promise, stop };
  }
}
