// The master's sync set (Patroni's synchronous mode), held twice: locally (whom ack "all"
// waits for) and in etcd (who may take the leader key). Patroni's invariant keeps every
// member of the etcd set in the local set: a slave is added locally first and written to
// etcd after; a slave is removed from etcd first and locally after. Writes to etcd are
// serialized, and each writes the local set as it is then.

/** Writes the set in etcd; false when the leader key is no longer ours. */
export type WriteSync = (members: number[]) => Promise<boolean>;

/** One master's sync set. */
export class SyncSet {
  private local = new Set<number>();
  /** What etcd holds, as last written by this master (null: not known yet). */
  private written: string | null = null;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly write: WriteSync) {}

  /** A member: ack "all" waits for it. */
  has(id: number): boolean {
    return this.local.has(id);
  }

  /** The local set, sorted. */
  members(): number[] {
    return sorted(this.local);
  }

  /** A new master's set, already in etcd (written with the leader key). */
  reset(ids: number[]): void {
    this.local = new Set(ids);
    this.written = key(this.members());
    this.chain = Promise.resolve();
  }

  /** Empties the set (this node stopped being master). */
  clear(): void {
    this.local.clear();
    this.written = null;
  }

  /** True when etcd holds exactly the local set. */
  published(): boolean {
    return this.written === key(this.members());
  }

  /**
   * Adds slaves that hold every acknowledged write: locally now (every later ack waits for
   * them), in etcd when the returned promise resolves.
   */
  add(ids: number[]): Promise<void> {
    const fresh = ids.filter((id) => !this.local.has(id));
    for (const id of fresh) this.local.add(id);
    return this.sync();
  }

  /** Removes slaves: in etcd first, then locally (a write is answered without them only after). Rejects when etcd refuses. */
  drop(ids: number[]): Promise<number[]> {
    const run = this.chain.then(async () => {
      const leave = ids.filter((id) => this.local.has(id));
      if (leave.length === 0) return [];
      const next = this.members().filter((id) => !leave.includes(id));
      await this.put(next);
      for (const id of leave) this.local.delete(id);
      return leave;
    });
    this.chain = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  /** Writes the local set to etcd unless it is there already; resolves once it is (rejects when etcd refuses). */
  sync(): Promise<void> {
    const run = this.chain.then(async () => {
      const want = this.members();
      if (this.written === key(want)) return;
      await this.put(want);
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async put(members: number[]): Promise<void> {
    this.written = null; // unknown until etcd answers
    if (!(await this.write(members))) throw new Error('the leader key is no longer this node');
    this.written = key(members);
  }
}

function sorted(s: Iterable<number>): number[] {
  return [...s].sort((a, b) => a - b);
}

function key(ids: number[]): string {
  return ids.join(',');
}
