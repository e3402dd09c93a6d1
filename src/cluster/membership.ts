// Master's view of the cluster: which slaves exist, where they are, how far they have
// applied, and their state (up, down, catching_up, diverged).
import { SqlfleetError } from '../errors.js';

/** A node's state as shown in /status. */
export type NodeState = 'up' | 'down' | 'catching_up' | 'diverged';

/** One slave as the master sees it. */
export interface Member {
  readonly id: number;
  url: string | null;
  state: NodeState;
  /** Highest index the slave reported applied. */
  applied: number;
  /** Wall-clock ms of the last contact; 0 = never. */
  lastSeen: number;
  /** Registered at runtime with --join (persisted), rather than in the numSlaves range. */
  readonly joined: boolean;
  /**
   * `applied` was confirmed by an append answer of this master (same log, same epoch).
   * A heartbeat alone does not confirm it: after a failover a follower may report an
   * index whose entries the new master never had.
   */
  confirmed: boolean;
}

/** What Membership needs from the rest of the node. */
export interface MembershipDeps {
  numSlaves: number;
  /** Instead of the 1..numSlaves range: the nodes a promoted master knows (every node but itself). */
  peers?: { id: number; url: string | null; reachable?: boolean }[];
  /** This node's id (never its own member). */
  selfId: number;
  downAfterMs: number;
  /** The master's applied index, to tell catching_up from up. */
  masterIndex: () => number;
  /** Persists runtime-joined members so a restarted master remembers them. */
  persist: (joined: { id: number; url: string }[]) => void;
  /** Initially persisted joined members. */
  joined: { id: number; url: string }[];
  onStateChange?: (m: Member, from: NodeState) => void;
  now?: () => number;
}

/** The master's member table. */
export class Membership {
  private readonly map = new Map<number, Member>();
  /** slaves(), kept until a member is added or removed (it is read on every write and every ack). */
  private sorted: readonly Member[] | null = null;
  private readonly listeners: Array<() => void> = [];
  private readonly now: () => number;
  private readonly startedAt: number;
  private graceOver = false;

  constructor(private readonly deps: MembershipDeps) {
    this.now = deps.now ?? Date.now;
    this.startedAt = this.now();
    if (deps.peers) {
      // Every configured node but this one (a promoted master's members include node 0).
      for (let id = 0; id <= deps.numSlaves; id++) if (id !== deps.selfId) this.map.set(id, blank(id, null, false));
      for (const p of deps.peers) {
        if (p.id === deps.selfId) continue;
        const m = blank(p.id, p.url, false);
        if (p.reachable === false) m.lastSeen = -1; // not "never seen": no start-up grace
        else if (p.url) {
          // A promoted master ships to the nodes it knows at once (they learn of it that way).
          m.state = 'catching_up';
          m.lastSeen = this.now();
        }
        this.map.set(p.id, m);
      }
    }
    else for (let id = 1; id <= deps.numSlaves; id++) this.map.set(id, blank(id, null, false));
    for (const j of deps.joined) if (!this.map.has(j.id)) this.map.set(j.id, blank(j.id, j.url, true));
  }

  /** Every slave, by id (the same array until a member is added or removed: do not change it). */
  slaves(): readonly Member[] {
    return (this.sorted ??= [...this.map.values()].sort((a, b) => a.id - b.id));
  }

  /** One slave, or undefined. */
  get(id: number): Member | undefined {
    return this.map.get(id);
  }

  /** Calls `fn` after any change of applied index or state (ack waiters re-check). */
  onChange(fn: () => void): void {
    this.listeners.push(fn);
  }

  /** Registers a slave at runtime (--join); remembered across restarts. */
  join(id: number, url: string): Member {
    if (!Number.isInteger(id) || id <= 0) throw new SqlfleetError('BAD_REQUEST', `node id must be a positive integer`);
    const existing = this.map.get(id);
    if (existing) {
      existing.url = url;
      return existing;
    }
    const m = blank(id, url, true);
    this.map.set(id, m);
    this.sorted = null;
    this.save();
    return m;
  }

  /** Forgets a slave (DELETE /nodes/:id). */
  remove(id: number): boolean {
    const had = this.map.delete(id);
    if (had) {
      this.sorted = null;
      this.save();
      this.changed();
    }
    return had;
  }

  /**
   * A write at level "all" waits for this member: it is up or catching up, or it was
   * never seen and the master has not yet been up for the down-after interval (slaves
   * of a fresh cluster are expected before their first heartbeat arrives).
   */
  expected(m: Member): boolean {
    if (m.state === 'up' || m.state === 'catching_up') return true;
    return m.state === 'down' && m.lastSeen === 0 && this.now() - this.startedAt <= this.deps.downAfterMs;
  }

  /**
   * A heartbeat (confirmed = false) or an append answer of this master (confirmed = true):
   * the slave is alive at `applied`.
   */
  contact(id: number, applied: number, url?: string, reseeded = false, confirmed = false): Member {
    const m = this.map.get(id);
    if (!m) throw new SqlfleetError('NOT_FOUND', `node ${id} is not a member; start it with --join to register it`);
    if (url) m.url = url;
    if (reseeded && m.state === 'diverged') this.setState(m, 'catching_up');
    if (confirmed || reseeded) m.confirmed = true;
    m.applied = applied;
    m.lastSeen = this.now();
    if (m.state === 'down') this.setState(m, applied >= this.deps.masterIndex() ? 'up' : 'catching_up');
    else if (m.state === 'catching_up' && applied >= this.deps.masterIndex()) this.setState(m, 'up');
    this.changed();
    return m;
  }

  /** The slave refused connections: it is down now, not after missed heartbeats. */
  unreachable(id: number): void {
    const m = this.map.get(id);
    if (m && m.state !== 'down' && m.state !== 'diverged') {
      this.setState(m, 'down');
      this.changed();
    }
  }

  /** The slave's log does not chain to ours: it stops receiving entries. */
  diverged(id: number): void {
    const m = this.map.get(id);
    if (m && m.state !== 'diverged') {
      this.setState(m, 'diverged');
      this.changed();
    }
  }

  /** Marks slaves with no contact for downAfterMs as down; call periodically. */
  tick(): void {
    const now = this.now();
    if (!this.graceOver && now - this.startedAt > this.deps.downAfterMs) {
      this.graceOver = true;
      this.changed(); // never-seen slaves stop being expected: waiting writes re-check
    }
    for (const m of this.map.values()) {
      if ((m.state === 'up' || m.state === 'catching_up') && now - m.lastSeen > this.deps.downAfterMs) {
        this.setState(m, 'down');
        this.changed();
      }
    }
  }

  private setState(m: Member, state: NodeState): void {
    const from = m.state;
    m.state = state;
    this.deps.onStateChange?.(m, from);
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }

  private save(): void {
    this.deps.persist(
      [...this.map.values()].filter((m) => m.joined && m.url).map((m) => ({ id: m.id, url: m.url as string })),
    );
  }
}

function blank(id: number, url: string | null, joined: boolean): Member {
  return { id, url, state: 'down', applied: 0, lastSeen: 0, joined, confirmed: false };
}
