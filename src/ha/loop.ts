// The HA loop of etcd mode (Patroni's ha.py, in small): each cycle renews this node's
// lease, reads the cluster's keys, and runs the one action decide() picks. The master also
// keeps the sync set: it adds a slave only once it holds every acknowledged write, and
// removes one in etcd before any write is answered without it.
import type { Config } from '../config.js';
import type { LogFn } from '../log.js';
import type { Store } from '../store/store.js';
import type { HaHooks, MasterParts } from '../wiring/master.js';
import type { Roles } from '../wiring/roles.js';
import { decide, type Action } from './decide.js';
import { EtcdCluster, type EtcdView } from './etcd.js';

/** What the loop needs from the node. */
export interface HaDeps {
  config: Config;
  store: Store;
  roles: Roles;
  log: LogFn;
  selfUrl: () => string;
}

/** Runs the HA loop of one node. */
export class HaLoop {
  private readonly etcd: EtcdCluster;
  private readonly ttlMs: number;
  private readonly startedAt = Date.now();
  private readonly tickMs: number;
  /** performance.now() until which this node's lease is certainly alive in etcd (minus a margin). */
  private validUntil = 0;
  private leaderRaw: string | null = null;
  private sync = new Set<number>();
  private connected = false;
  private lastWhy = '';
  private lastError = '';
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private again = false;
  private stopped = false;
  private watching = false;
  private dropping: Promise<void> = Promise.resolve();

  /** Lent to every master this node becomes. */
  readonly hooks: HaHooks = {
    leaseOk: () => performance.now() < this.validUntil,
    inSync: (id) => this.sync.has(id),
    drop: (ids) => this.drop(ids),
  };

  constructor(private readonly d: HaDeps) {
    this.ttlMs = d.config.leaseTtlMs;
    this.tickMs = Math.max(100, Math.floor(this.ttlMs / 3));
    this.etcd = new EtcdCluster([...d.config.etcd], d.config.clusterName, Math.max(1, Math.round(this.ttlMs / 1000)), Math.max(500, Math.floor(this.ttlMs / 3)));
  }

  /** Starts cycling now. */
  start(): void {
    void this.tick();
  }

  /** What /status shows of etcd mode. */
  status(): Record<string, unknown> {
    const left = Math.round(this.validUntil - performance.now());
    return {
      etcd: {
        connected: this.connected,
        cluster: this.d.config.clusterName,
        ...(this.lastError ? { error: this.lastError } : {}),
        ...(this.lastWhy ? { waiting: this.lastWhy } : {}),
      },
      ...(this.d.roles.current.kind === 'master' ? { lease: { valid: left > 0, ms_left: Math.max(0, left), ttl_ms: this.ttlMs }, sync_set: [...this.sync].sort((a, b) => a - b) } : {}),
    };
  }

  /** Stops the loop; a master releases its key so a successor need not wait for the lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leaderRaw && this.d.roles.current.kind === 'master') {
      this.validUntil = 0; // no write is admitted from here on
      await this.etcd.release(this.leaderRaw).catch(() => undefined);
    }
    await this.etcd.close(true);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.tick(), ms);
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = true;
    const t0 = performance.now();
    try {
      if (await this.etcd.keepalive()) {
        // etcd counts the TTL from when it received the renewal, which is after t0.
        this.validUntil = t0 + this.ttlMs - Math.min(500, this.ttlMs / 6);
      } else {
        this.validUntil = 0;
        this.d.log('warn', 'etcd says this node lease expired; a new one is granted', {});
      }
      if (!this.watching) {
        await this.etcd.watchLeader(() => this.schedule(0));
        this.watching = true;
      }
      const view = await this.etcd.view();
      await this.etcd.publish({ id: this.d.config.id, url: this.d.selfUrl(), applied: this.d.store.appliedIndex, epoch: this.d.store.epoch });
      if (!this.connected) this.d.log('info', 'etcd reachable', { etcd: this.d.config.etcd.join(',') });
      this.connected = true;
      this.lastError = '';
      await this.act(decide(view, this.local()), view, t0);
    } catch (e) {
      const msg = String((e as Error).message ?? e);
      if (this.connected || !this.lastError) this.d.log('warn', 'etcd unreachable; reads go on, writes wait for a leader', { etcd: this.d.config.etcd.join(','), err: msg });
      this.connected = false;
      this.lastError = msg;
    } finally {
      // A master whose lease may have run out stops being master (self-fencing already
      // refuses its writes since validUntil passed).
      if (this.d.roles.current.kind === 'master' && performance.now() >= this.validUntil) {
        this.d.log('warn', 'leader lease not renewed in time; stepping down', {});
        this.leaderRaw = null;
        await this.d.roles.becomeFollower('').catch(() => undefined);
      }
      this.ticking = false;
      const rerun = this.again;
      this.again = false;
      this.schedule(rerun ? 0 : this.tickMs);
    }
  }

  private local() {
    return { id: this.d.config.id, isMaster: this.d.roles.current.kind === 'master', applied: this.d.store.appliedIndex, initialMaster: this.d.config.role === 'master', starting: Date.now() - this.startedAt < this.ttlMs };
  }

  private async act(a: Action, view: EtcdView, t0: number): Promise<void> {
    if (a.kind === 'wait') {
      if (a.why !== this.lastWhy) this.d.log('info', 'not campaigning', { why: a.why });
      this.lastWhy = a.why;
      if (view.leader?.id === this.d.config.id && view.leaderRaw) await this.etcd.release(view.leaderRaw); // our key from an earlier run
      return;
    }
    this.lastWhy = '';
    if (a.kind === 'renew') return this.keepSync(view);
    if (a.kind === 'follow') {
      const cur = this.d.roles.current;
      if (cur.kind === 'slave') cur.followMaster(a.url, 'etcd names it leader');
      return;
    }
    if (a.kind === 'demote') {
      this.d.log('warn', 'stepping down', { why: a.why, master: a.url });
      this.leaderRaw = null;
      this.sync.clear();
      await this.d.roles.becomeFollower(a.url ?? '');
      return;
    }
    // acquire
    const got = await this.etcd.acquire(this.d.config.id, this.d.selfUrl(), this.d.store.epoch + 1);
    if (!got) return;
    this.leaderRaw = got.raw;
    this.validUntil = t0 + this.ttlMs - Math.min(500, this.ttlMs / 6);
    // The set keeps the previous members: they have every write acknowledged with ack "all".
    const prev = view.sync?.members ?? [];
    this.sync = new Set(prev.filter((id) => id !== this.d.config.id));
    await this.etcd.putSync(got.raw, { leader: this.d.config.id, members: [...this.sync] });
    this.d.log('warn', 'took the leader key; serving as master', { epoch: got.epoch, sync_set: [...this.sync], applied_index: this.d.store.appliedIndex });
    const peers = view.members.filter((m) => m.id !== this.d.config.id).map((m) => ({ id: m.id, url: m.url }));
    await this.d.roles.becomeMaster(got.epoch, peers);
  }

  /** Master: add slaves that hold every acknowledged write; remove ones that are down. */
  private async keepSync(view: EtcdView): Promise<void> {
    const parts = this.d.roles.current as MasterParts;
    if (!this.leaderRaw) this.leaderRaw = view.leaderRaw;
    const gone = parts.members().filter((m) => this.sync.has(m.id) && (m.state === 'down' || m.state === 'diverged')).map((m) => m.id);
    if (gone.length) await this.drop(gone).catch(() => undefined);
    const floor = parts.maxAcked();
    const add = parts.members().filter((m) => !this.sync.has(m.id) && m.state === 'up' && m.confirmed && m.applied >= floor);
    for (const m of add) this.sync.add(m.id); // locally first: from now on every ack waits for them
    const want = [...this.sync].sort((a, b) => a - b);
    const inEtcd = [...(view.sync?.members ?? [])].sort((a, b) => a - b);
    if (want.join(',') !== inEtcd.join(',') && this.leaderRaw) {
      if (add.length) this.d.log('info', 'sync set: adding caught-up slaves', { add: add.map((m) => m.id), sync_set: want });
      await this.etcd.putSync(this.leaderRaw, { leader: this.d.config.id, members: want });
    }
  }

  /** Removes `ids` from the sync set in etcd, then locally. Serialized; throws when etcd refuses. */
  private drop(ids: number[]): Promise<void> {
    const run = this.dropping.then(async () => {
      const leave = ids.filter((id) => this.sync.has(id));
      if (leave.length === 0) return;
      if (!this.leaderRaw) throw new Error('not the leader');
      const next = [...this.sync].filter((id) => !leave.includes(id)).sort((a, b) => a - b);
      const ok = await this.etcd.putSync(this.leaderRaw, { leader: this.d.config.id, members: next });
      if (!ok) throw new Error('the leader key is no longer this node');
      for (const id of leave) this.sync.delete(id);
      this.d.log('warn', 'sync set: removed slaves that did not keep up', { removed: leave, sync_set: next });
      const parts = this.d.roles.current;
      if (parts.kind === 'master') parts.acksChanged();
    });
    this.dropping = run.catch(() => undefined);
    return run;
  }
}
