// Lets requests wait (bounded) until this node has applied a log index.

interface Waiter {
  index: number;
  resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout;
}

/** Resolves waiters as the applied index advances. */
export class IndexWaiter {
  private waiters: Waiter[] = [];

  constructor(private current: () => number) {}

  /** Resolves true once `index` is applied, false after `timeoutMs`. */
  wait(index: number, timeoutMs: number): Promise<boolean> {
    if (this.current() >= index) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w: Waiter = {
        index,
        resolve,
        timer: setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve(false);
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  /** Call after the applied index moved. */
  notify(): void {
    if (this.waiters.length === 0) return;
    const now = this.current();
    const keep: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.index <= now) {
        clearTimeout(w.timer);
        w.resolve(true);
      } else keep.push(w);
    }
    this.waiters = keep;
  }

  /** Releases every waiter as not reached (shutdown). */
  cancelAll(): void {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.resolve(false);
    }
    this.waiters = [];
  }
}
