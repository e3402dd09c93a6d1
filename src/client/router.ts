// Where the client sends requests: the known nodes, which of them failed lately, and the
// current master. No I/O: the client feeds it what answers and failures taught it.
import type { ClusterStatus } from './types.js';

/** How long a node that failed is skipped for reads (unless every node failed). */
const DOWN_MS = 1_000;

/** The routing state of one client. */
export class Router {
  /** Nodes reads go to: the seeds, plus what /status lists when discovering. */
  private readonly nodes: string[] = [];
  /** Every node heard of (reads' nodes and masters): where discovery asks. */
  private readonly known: string[] = [];
  private readonly downUntil = new Map<string, number>();
  private rr = 0;
  /** The master's URL as last learned; undefined = ask /status. */
  master: string | undefined;

  constructor(
    seeds: readonly string[],
    private readonly discover: boolean,
  ) {
    for (const s of seeds) this.add(s, true);
  }

  /** Adds a node URL (normalized, without a trailing slash); `reads`: also a node for reads. */
  add(url: string, reads: boolean): string {
    const u = normalize(url);
    if (reads && !this.nodes.includes(u)) this.nodes.push(u);
    if (!this.known.includes(u)) this.known.push(u);
    return u;
  }

  /** Every known node. */
  all(): readonly string[] {
    return this.nodes;
  }

  /** Records that `url` failed: skipped for a while, and forgotten as master. */
  failed(url: string): void {
    this.downUntil.set(url, Date.now() + DOWN_MS);
    if (this.master === url) this.master = undefined;
  }

  /** Records that `url` answered. */
  answered(url: string): void {
    this.downUntil.delete(url);
  }

  /** Sets the master from an answer (`master` field of an error, `forwarded_to`). */
  setMaster(url: string | undefined): void {
    this.master = url ? this.add(url, this.discover) : undefined;
  }

  /** The next node for a read: round-robin over nodes not failed lately (all of them if every one failed). */
  nextRead(): string {
    const now = Date.now();
    const healthy = this.nodes.filter((u) => (this.downUntil.get(u) ?? 0) <= now);
    const pool = healthy.length > 0 ? healthy : this.nodes;
    this.rr = (this.rr + 1) % pool.length;
    return pool[this.rr];
  }

  /**
   * Takes in the /status answers of one discovery round. A node that says it is master
   * wins over a node that names a master; among those, the highest epoch wins (a deposed
   * master that has not yet learned of its successor must not be chosen over it).
   */
  learn(answers: readonly { url: string; status: ClusterStatus }[]): void {
    let best: { url: string; epoch: number; self: boolean } | undefined;
    for (const { url, status } of answers) {
      for (const n of status.nodes ?? []) if (typeof n.url === 'string' && n.url && n.state !== 'down') this.add(n.url, this.discover);
      const epoch = typeof status.epoch === 'number' ? status.epoch : 0;
      const self = status.role === 'master';
      const named = self ? url : typeof status.master === 'string' && status.master ? normalize(status.master) : undefined;
      if (!named) continue;
      const better = !best || epoch > best.epoch || (epoch === best.epoch && self && !best.self);
      if (better) best = { url: named, epoch, self };
    }
    if (best) this.setMaster(best.url);
  }

  /** Where to look for the master: the last known one first, then every node. */
  candidates(): string[] {
    return this.master ? [this.master, ...this.known.filter((u) => u !== this.master)] : [...this.known];
  }
}

function normalize(url: string): string {
  return url.replace(/\/+$/, '');
}
