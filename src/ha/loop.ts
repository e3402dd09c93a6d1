// The HA loop of etcd mode (Patroni's ha.py, in small): each cycle renews this node's
// lease, reads the cluster's keys, and runs the one action decide() picks. The master also
// keeps the sync set: it adds a slave as soon as it holds every acknowledged write, and
// removes one in etcd before any write is answered without it. When no node can take the
// key, every node says why (log, /status, metric) and force() is the operator's way out.
import type { Config } from '../config.js';
import { SqlfleetError } from '../errors.js';
import type { LogFn } from '../log.js';
import type { Store } from '../store/store.js';
import type { HaHooks, MasterParts } from '../wiring/master.js';
import type { Roles } from '../wiring/roles.js';
import { decide, masterless, type Action, type Masterless } from './decide.js';
import fs from 'node:fs';
import { EtcdCluster, type EtcdSecurity, type EtcdView, type MemberValue } from './etcd.js';
import { SyncSet } from './syncset.js';

/** What a forced promotion copies from the most advanced live node before taking the key. */
export type CopyFn = (from: MemberValue) => Promise<number>;

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
  /** The lease is renewed on a timer of its own, never waiting behind a cycle's reads and actions. */
  private readonly renewMs: number;
  private renewTimer: NodeJS.Timeout | null = null;
  private renewing = false;
  /** Slowest lease renewal (ms, send to answer) and times this node lost its lease while master: /status. */
  private renewMaxMs = 0;
  private leaseLosses = 0;
  /** performance.now() until which this node's lease is certainly alive in etcd (minus a margin). */
  private validUntil = 0;
  private leaderRaw: string | null = null;
  private readonly sync = new SyncSet((members) => (this.leaderRaw ? this.etcd.putSync(this.leaderRaw, { leader: this.d.config.id, members }) : Promise.resolve(false)));
  /** The last view read (a slave is ready only once the sync set there names it). */
  private seen: EtcdView | null = null;
  /** The leader as last seen with its member key: how far it had applied, and when. */
  private lastLeader: { id: number; applied: number; at: number } | null = null;
  private stuck: Masterless | null = null;
  /** Nodes whose member key vanished (stopped, or lease lost) and has not come back: not (re)admitted to the sync set. */
  private readonly departed = new Set<number>();
  private stuckSince = 0;
  private forcing = false;
  /** The index this master last wrote to the last_master key. */
  private recorded = -1;
  private connected = false;
  private lastWhy = '';
  private lastError = '';
  private timer: NodeJS.Timeout | null = null;
  private ticking = false;
  private again = false;
  private stopped = false;
  private watching = false;
  /** The last action was a short wait: the next cycle runs in 100 ms. */
  private soon = false;

  /** Lent to every master this node becomes. */
  readonly hooks: HaHooks = {
    leaseOk: () => performance.now() < this.validUntil,
    inSync: (id) => this.sync.has(id),
    drop: (ids) => this.drop(ids),
    admit: (ids) => this.admit(ids),
    published: () => (this.sync.published() ? Promise.resolve() : this.sync.sync()),
  };

  constructor(private readonly d: HaDeps) {
    this.ttlMs = d.config.leaseTtlMs;
    this.tickMs = Math.max(100, Math.floor(this.ttlMs / 3));
    this.renewMs = Math.max(100, Math.floor(this.ttlMs / 3));
    this.etcd = new EtcdCluster([...d.config.etcd], d.config.clusterName, Math.max(1, Math.round(this.ttlMs / 1000)), Math.max(500, Math.floor(this.ttlMs / 3)), security(d.config));
  }

  /** Starts cycling now. */
  start(): void {
    void this.renew();
    void this.tick();
  }

  /**
   * Renews this node's lease every third of the TTL, retrying early (every 100-250 ms) when
   * a renewal fails, on its own timer: a cycle waiting on etcd or on a role change does not
   * delay it. The lease is certainly alive until the renewal's send time + TTL; a master
   * admits writes only until that minus a margin (leaseOk).
   */
  private async renew(): Promise<void> {
    if (this.stopped || this.renewing) return;
    this.renewing = true;
    let next = this.renewMs;
    const t0 = performance.now();
    const lease = this.etcd.currentLease();
    try {
      if (await this.etcd.keepalive()) {
        // A master's key is bound to the lease it had: a lease granted anew (the old one
        // expired, and the key with it) does not make it master again; the cycle steps down.
        if (this.d.roles.current.kind !== 'master' || (this.leaderRaw !== null && lease !== null && lease === this.etcd.currentLease())) this.validUntil = t0 + this.ttlMs - Math.min(500, this.ttlMs / 6);
        this.renewMaxMs = Math.max(this.renewMaxMs, Math.round(performance.now() - t0));
      } else {
        this.validUntil = 0;
        this.d.log('warn', 'etcd says this node lease expired; a new one is granted', {});
        next = 0;
      }
    } catch {
      // etcd slow or unreachable: try again soon, well before the lease can run out.
      next = Math.min(250, Math.max(100, Math.floor(this.ttlMs / 12)));
    } finally {
      this.renewing = false;
      if (this.d.roles.current.kind === 'master' && performance.now() >= this.validUntil) this.schedule(0); // the cycle steps down
      if (!this.stopped) {
        if (this.renewTimer) clearTimeout(this.renewTimer);
        this.renewTimer = setTimeout(() => void this.renew(), next);
      }
    }
  }

  /** What /status shows of etcd mode. */
  status(): Record<string, unknown> {
    const left = Math.round(this.validUntil - performance.now());
    const master = this.d.roles.current.kind === 'master';
    return {
      etcd: {
        connected: this.connected,
        cluster: this.d.config.clusterName,
        ...(this.lastError ? { error: this.lastError } : {}),
        ...(this.lastWhy ? { waiting: this.lastWhy } : {}),
        ...(!master && this.seen?.sync ? { sync_set: this.seen.sync.members, in_sync_set: this.inSeenSet() } : {}),
        ...(this.stuck ? { no_master: { reason: this.stuck.reason, why: this.stuck.why, way_out: WAY_OUT } } : {}),
      },
      lease: { valid: left > 0, ms_left: Math.max(0, left), ttl_ms: this.ttlMs, renew_max_ms: this.renewMaxMs, lost_as_master: this.leaseLosses },
      ...(master ? { sync_set: this.sync.members() } : {}),
    };
  }

  /**
   * /health in etcd mode: a master once it holds the key; a slave once the sync set in etcd
   * names it (it holds every acknowledged write and may take over), not merely in sync.
   */
  ready(): boolean {
    return this.d.roles.current.kind === 'master' || this.inSeenSet();
  }

  /** The reason code while no node can take the leader key (the metric), else null. */
  masterless(): string | null {
    return this.stuck?.reason ?? null;
  }

  private inSeenSet(): boolean {
    // Also while the master is being replaced: a member of the last set holds every
    // acknowledged write, and reads go on (a load balancer keeps it in the read pool).
    const v = this.seen;
    return !!v?.sync && (!v.leader || v.sync.leader === v.leader.id) && v.sync.members.includes(this.d.config.id);
  }

  /** Stops the loop; a master releases its key so a successor need not wait for the lease. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.renewTimer) clearTimeout(this.renewTimer);
    if (this.leaderRaw && this.d.roles.current.kind === 'master') {
      // A graceful stop hands the key to the most advanced sync-set member (a switchover
      // that leaves this node out of the new set); else releases it: the election starts at once.
      const handed = await this.locked(() => this.switchoverNow(null, true), 2000).then(
        (r) => (this.d.log('info', 'stopping: leadership handed over', { to: r.id, paused_ms: r.paused_ms }), true),
        (e: Error) => (this.d.log('info', 'stopping: no switchover, releasing the leader key', { why: e.message }), false),
      );
      if (!handed && this.leaderRaw) {
        this.validUntil = 0; // no write is admitted from here on
        await this.etcd.release(this.leaderRaw).catch(() => undefined);
      }
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
    this.soon = false;
    try {
      // Unary calls first: they have a deadline, the watch stream has none (an etcd that does
      // not answer is found here). This node's member key first (on a fresh cluster the first master's view then finds
      // the slaves that started with it, and takes the key with them in the sync set). A
      // master also records its index where a lost lease does not erase it (in parallel).
      const me = { id: this.d.config.id, url: this.d.selfUrl(), applied: this.d.store.appliedIndex, epoch: this.d.store.epoch };
      const record = this.leaderRaw && this.d.roles.current.kind === 'master' && me.applied !== this.recorded ? this.leaderRaw : null;
      await Promise.all([this.etcd.publish(me), record ? this.etcd.putLastMaster(record, me).then(() => (this.recorded = me.applied)) : null]);
      const view = await this.etcd.view();
      if (!this.watching) {
        await this.etcd.watchLeader(() => this.schedule(0));
        this.watching = true;
      }
      this.observe(view);
      if (!this.connected) this.d.log('info', 'etcd reachable', { etcd: this.d.config.etcd.join(',') });
      this.connected = true;
      this.lastError = '';
      await this.act(decide(view, this.local()), view);
    } catch (e) {
      const raw = String((e as Error).message ?? e);
      // Wrong credentials say so: they do not heal by waiting, unlike an etcd that is down.
      const creds = /authentication failed|invalid user|permission denied|user name is empty|bad certificate|unknown ca|certificate verify|self.signed|handshake/i.test(raw);
      const msg = creds ? `etcd refused this node's credentials (check --etcd-user and SQLFLEET_ETCD_PASSWORD, --etcd-ca, --etcd-cert, --etcd-key): ${raw}` : raw;
      if (this.connected || !this.lastError) {
        if (creds) this.d.log('error', "etcd refused this node's credentials; it will not campaign; reads go on", { etcd: this.d.config.etcd.join(','), err: raw });
        else this.d.log('warn', 'etcd unreachable; reads go on, writes wait for a leader', { etcd: this.d.config.etcd.join(','), err: raw });
      }
      this.connected = false;
      this.lastError = msg;
    } finally {
      // A master whose lease may have run out stops being master (self-fencing already
      // refuses its writes since validUntil passed).
      if (this.d.roles.current.kind === 'master' && performance.now() >= this.validUntil) {
        this.leaseLosses++;
        this.d.log('warn', 'leader lease not renewed in time; stepping down', { renew_max_ms: this.renewMaxMs });
        this.leaderRaw = null;
        this.sync.clear();
        await this.d.roles.becomeFollower('').catch(() => undefined);
      }
      this.ticking = false;
      const rerun = this.again;
      this.again = false;
      this.schedule(rerun ? 0 : this.soon ? 100 : this.tickMs);
    }
  }

  /** Remembers the view: the leader's last known index, and whether the cluster is stuck without a master. */
  private observe(view: EtcdView): void {
    for (const m of this.seen?.members ?? []) if (!view.members.some((x) => x.id === m.id)) this.departed.add(m.id);
    for (const m of view.members) this.departed.delete(m.id);
    this.seen = view;
    const lm = view.leader ? view.members.find((m) => m.id === view.leader?.id) : undefined;
    if (lm) this.lastLeader = { id: lm.id, applied: lm.applied, at: Date.now() };
    else if (!view.leader && view.lastMaster && view.lastMaster.id === view.sync?.leader && (!this.lastLeader || this.lastLeader.id !== view.lastMaster.id || this.lastLeader.applied < view.lastMaster.applied)) {
      this.lastLeader = { id: view.lastMaster.id, applied: view.lastMaster.applied, at: 0 }; // recorded by it in etcd; when is unknown
    }
    const stuck = masterless(view);
    if (!stuck) {
      if (this.stuck) this.d.log('info', 'a node may take the leader key again', { leader: view.leader?.id ?? null });
      this.stuck = null;
      this.stuckSince = 0;
      return;
    }
    // Said only once it lasted a lease TTL: a master whose lease lapsed under load is
    // without member key until its next cycle re-publishes it, and then takes the key again.
    if (!this.stuckSince) this.stuckSince = Date.now();
    if (Date.now() - this.stuckSince < this.ttlMs) return;
    if (stuck.why !== this.stuck?.why) this.d.log('error', 'no master, and no node may take over on its own', { why: stuck.why, reason: stuck.reason, way_out: WAY_OUT, ...this.lostHint() });
    this.stuck = stuck;
  }

  private lostHint(): Record<string, unknown> {
    const l = this.lastLeader;
    return l ? { last_master: l.id, last_master_index: l.applied, this_node_index: this.d.store.appliedIndex } : {};
  }

  private local() {
    return { id: this.d.config.id, isMaster: this.d.roles.current.kind === 'master', applied: this.d.store.appliedIndex, initialMaster: this.d.config.role === 'master', starting: Date.now() - this.startedAt < this.ttlMs, lease: this.etcd.currentLease(), ...(Date.now() - this.startedAt < FRESH_WAIT_MS ? { expected: Array.from({ length: this.d.config.numSlaves }, (_, i) => i + 1).filter((id) => id !== this.d.config.id) } : {}) };
  }

  private async act(a: Action, view: EtcdView): Promise<void> {
    this.soon = a.kind === 'wait' && a.soon === true;
    if (a.kind === 'wait') {
      if (a.why !== this.lastWhy) this.d.log('info', 'not campaigning', { why: a.why });
      this.lastWhy = a.why;
      if (view.leader?.id === this.d.config.id && view.leaderRaw) await this.etcd.release(view.leaderRaw); // our key from an earlier run
      return;
    }
    this.lastWhy = '';
    if (a.kind === 'renew') return this.keepSync(view);
    if (a.kind === 'assume') return this.assume(view, a.epoch);
    if (a.kind === 'follow') {
      const cur = this.d.roles.current;
      if (cur.kind === 'slave') cur.followMaster(a.url, 'etcd names it leader', a.epoch);
      return;
    }
    if (a.kind === 'demote') {
      this.d.log('warn', 'stepping down', { why: a.why, master: a.url });
      this.leaderRaw = null;
      this.sync.clear();
      await this.d.roles.becomeFollower(a.url ?? '', a.epoch);
      return;
    }
    // acquire. The set keeps the previous members: they have every write acknowledged with
    // ack "all" (and this node, the most advanced of them, has those too). Written with the
    // key, so the set is never empty while those slaves are in sync; others join as soon as
    // they confirm every write this master counts as acknowledged.
    const me = this.d.config.id;
    const members = new Set((view.sync?.members ?? []).filter((id) => id !== me));
    // A fresh cluster (no set in etcd yet) with an empty log here: a live node whose log is
    // empty too holds everything, so it is in the set from the first moment.
    if (!view.sync && this.d.store.appliedIndex === 0) for (const m of view.members) if (m.id !== me && m.applied === 0) members.add(m.id);
    await this.take(view, [...members].sort((a, b) => a - b), this.d.store.epoch + 1);
  }

  /** Renews the lease now (before taking the key: validUntil then counts from this renewal). */
  private async renewNow(): Promise<void> {
    const t0 = performance.now();
    if (await this.etcd.keepalive()) this.validUntil = t0 + this.ttlMs - Math.min(500, this.ttlMs / 6);
    else throw new Error('this node lease expired in etcd; a new one is granted next cycle');
  }

  /** Writes the leader key (and the sync set `members`) and becomes master; false when another node has the key. */
  private async take(view: EtcdView, members: number[], minEpoch: number): Promise<{ epoch: number } | null> {
    await this.renewNow();
    const got = await this.etcd.acquire(this.d.config.id, this.d.selfUrl(), minEpoch, members);
    if (!got) return null;
    this.leaderRaw = got.raw;
    this.recorded = -1;
    this.sync.reset(members);
    this.stuck = null;
    this.stuckSince = 0;
    this.d.log('warn', 'took the leader key; serving as master', { epoch: got.epoch, sync_set: members, applied_index: this.d.store.appliedIndex });
    const peers = view.members.filter((m) => m.id !== this.d.config.id).map((m) => ({ id: m.id, url: m.url }));
    await this.d.roles.becomeMaster(got.epoch, peers);
    return { epoch: got.epoch };
  }

  /**
   * `npm run promote -- <id> --force` in etcd mode: the way out when no node may take the
   * key on its own (the master is gone and no sync-set member is alive). Refused while a
   * master holds the key. Copies what the most advanced live node has beyond this one, takes
   * the key with an empty sync set, and names what may be lost.
   */
  async force(copy: CopyFn): Promise<Record<string, unknown>> {
    return this.locked(() => this.forceNow(copy));
  }

  /** Runs `fn` while the HA cycle waits (one promotion at a time on this node). */
  private async locked<T>(fn: () => Promise<T>, waitMs = 5000): Promise<T> {
    if (this.forcing) throw refused('a promotion is already running on this node');
    this.forcing = true;
    const end = Date.now() + waitMs;
    try {
      while (this.ticking && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
      if (this.ticking) throw refused('the HA loop of this node is busy (etcd slow?); try again');
      this.ticking = true; // the loop waits while this runs
      try {
        return await fn();
      } finally {
        this.ticking = false;
        this.schedule(0);
      }
    } finally {
      this.forcing = false;
    }
  }

  /**
   * Switchover in etcd mode (`npm run promote -- <id>` through the master): moves the leader
   * key to sync-set member `target` (null: the most advanced one) in one etcd transaction,
   * once it has applied every write this master applied. Writes pause meanwhile (refused
   * not_applied, which clients retry), at most PAUSE_MS before the transaction; a target not
   * in the sync set, not up, or not caught up in time is refused and writes resume. This node
   * then follows the target, in the new sync set unless it is `leaving` (a graceful stop).
   */
  async switchover(target: number | null): Promise<Record<string, unknown>> {
    return this.locked(() => this.switchoverNow(target, false));
  }

  private async switchoverNow(target: number | null, leaving: boolean): Promise<Record<string, unknown> & { id: number; paused_ms: number }> {
    const me = this.d.config.id;
    const parts = this.d.roles.current;
    if (parts.kind !== 'master' || !this.leaderRaw) throw refused(`node ${me} is not the master; ask the master`);
    if (target === me) throw refused(`node ${me} is already the master`);
    const view = await this.etcd.view();
    if (view.leaderRaw !== this.leaderRaw) throw refused('the leader key changed under this master; it is stepping down');
    const set = this.sync.members();
    const up = (id: number) => {
      const m = parts.member(id);
      const mv = view.members.find((x) => x.id === id);
      return m && m.url && m.confirmed && (m.state === 'up' || m.state === 'catching_up') && mv?.lease ? { m, mv: { ...mv, lease: mv.lease } } : null;
    };
    let pick: number;
    if (target === null) {
      const ready = set.map(up).filter((x) => x !== null).sort((a, b) => b.m.applied - a.m.applied || a.m.id - b.m.id);
      if (!ready.length) throw refused(`no sync-set member is up to take over (sync set [${set.join(',')}])`);
      pick = ready[0].m.id;
    } else {
      if (!set.includes(target)) throw refused(`node ${target} is not in the sync set [${set.join(',')}]: it is not known to hold every acknowledged write; promote a member, or wait until node ${target} caught up and joined (GET /status sync_set)`);
      pick = target;
    }
    const t = up(pick);
    if (!t) throw refused(`node ${pick} is not up (or has no member key in etcd); promote a member that is up`);
    const started = performance.now();
    parts.pause(`switchover to node ${pick} in progress`);
    let got: { epoch: number; raw: string } | null = null;
    let index = 0;
    let unknown = false;
    try {
      const end = started + PAUSE_MS;
      while (parts.inflight() > 0 || !(t.m.confirmed && t.m.applied >= this.d.store.appliedIndex)) {
        if (performance.now() > end) throw refused(`node ${pick} did not apply index ${this.d.store.appliedIndex} within ${PAUSE_MS} ms (it has ${t.m.applied}${parts.inflight() ? `, ${parts.inflight()} writes still in flight` : ''}); writes resumed on this master`);
        await new Promise((r) => setTimeout(r, 5));
      }
      index = this.d.store.appliedIndex;
      if (!this.hooks.leaseOk()) throw refused('this master lease is not certainly valid; writes resumed, try again');
      const members = [...set.filter((id) => id !== pick), ...(leaving ? [] : [me])].sort((a, b) => a - b);
      try {
        got = await this.etcd.handover(this.leaderRaw, t.mv, parts.epoch + 1, members);
      } catch (e) {
        // The outcome is unknown: read the key before resuming (a handed-over key must not see this master write again).
        const after = await this.etcd.view().catch(() => null);
        if (after?.leader?.id === pick) got = { epoch: after.leader.epoch, raw: after.leaderRaw as string };
        else if (after?.leaderRaw === this.leaderRaw) throw refused(`etcd did not record the handover (${(e as Error).message}); writes resumed on this master`);
        else {
          unknown = true;
          throw e;
        }
      }
      if (!got) throw refused(`etcd refused the handover: the leader key or node ${pick}'s lease changed meanwhile; writes resumed on this master`);
    } catch (e) {
      if (!unknown) {
        parts.resume();
        throw e;
      }
      // Whether etcd took the handover is unknown: step down; the next cycle follows the key's
      // holder, or takes the key again as master if it still names this node.
      this.leaderRaw = null;
      this.sync.clear();
      await this.d.roles.becomeFollower('').catch(() => undefined);
      throw refused(`the handover's outcome is unknown (${(e as Error).message}); this node stepped down, the leader key decides`);
    }
    const paused = Math.round(performance.now() - started);
    // From here this node is no master: no strong read is answered as one (writes stay paused).
    this.validUntil = 0;
    this.leaderRaw = null;
    this.sync.clear();
    this.d.log('warn', leaving ? 'switchover: handed the leader key over; stopping' : 'switchover: handed the leader key over; following', { to: pick, epoch: got.epoch, index, paused_ms: paused, leaving });
    // A stopping node stays a paused master until it stops (refusing not_applied, which
    // clients retry on the new master) rather than start following for a moment.
    if (!leaving) await this.d.roles.becomeFollower(t.mv.url, got.epoch);
    return { ok: true, mode: 'switchover', id: pick, master: t.mv.url, epoch: got.epoch, index, paused_ms: paused };
  }

  /** A switchover named this node in the leader key, bound to its lease: serve as master. */
  private async assume(view: EtcdView, epoch: number): Promise<void> {
    const me = this.d.config.id;
    const members = view.sync?.leader === me ? view.sync.members.filter((id) => id !== me) : [];
    this.leaderRaw = view.leaderRaw;
    this.recorded = -1;
    this.sync.reset(members);
    this.stuck = null;
    this.stuckSince = 0;
    this.d.log('warn', 'the leader key was handed to this node; serving as master', { epoch, sync_set: members, applied_index: this.d.store.appliedIndex });
    const peers = view.members.filter((m) => m.id !== me).map((m) => ({ id: m.id, url: m.url }));
    await this.d.roles.becomeMaster(Math.max(epoch, this.d.store.epoch + 1), peers);
  }

  private async forceNow(copy: CopyFn): Promise<Record<string, unknown>> {
    const me = this.d.config.id;
    if (this.d.roles.current.kind === 'master') throw refused(`node ${me} is already the master`);
    const view = await this.etcd.view();
    this.observe(view);
    if (view.leader) throw refused(`node ${view.leader.id} holds the leader key (${view.leader.url}): it is the master, there is nothing to force`);
    const before = this.d.store.appliedIndex;
    const best = view.members.filter((m) => m.id !== me).sort((a, b) => b.applied - a.applied)[0];
    let copied = 0;
    let copyError: string | null = null;
    if (best && best.applied > before) {
      try {
        copied = await copy(best);
      } catch (e) {
        copyError = `could not copy entries ${this.d.store.appliedIndex + 1}..${best.applied} from node ${best.id}: ${(e as Error).message}`;
        this.d.log('warn', 'forced promotion without entries a live node has', { why: copyError });
      }
    }
    const index = this.d.store.appliedIndex;
    const lost = this.mayBeLost(index, view);
    const minEpoch = Math.max(this.d.store.epoch, ...view.members.map((m) => m.epoch)) + 1;
    const got = await this.take(view, [], minEpoch);
    if (!got) throw refused('another node took the leader key meanwhile; it is the master');
    this.d.log('warn', 'forced promotion: this node is master', { epoch: got.epoch, index, copied, from_node: copied ? best?.id : null, may_be_lost: lost });
    return { ok: true, mode: 'forced', master: this.d.selfUrl(), epoch: got.epoch, index, copied, copied_from: copied ? best?.id ?? null : null, ...(copyError ? { copy_error: copyError } : {}), may_be_lost: lost, ...this.lostHint() };
  }

  /** Names what a forced promotion at `index` may lose, from the lost master's last known index. */
  private mayBeLost(index: number, view: EtcdView): string {
    const l = this.lastLeader;
    const which = 'writes it acknowledged while its sync set was empty (their answers named every slave in "missing"), with ack "one" to a slave that is gone, or with ack "master"';
    const setAside = 'if it comes back it follows this node and writes entries it has beyond this log to <data-dir>/diverged-<epoch>-<index>.jsonl';
    const lostId = l?.id ?? view.sync?.leader ?? null;
    if (!l) return `not known (no node saw the lost master's index): ${which}, past index ${index} (${setAside})`;
    const when = l.at ? `${Math.round((Date.now() - l.at) / 100) / 10} s before it was lost` : 'when it last recorded its index in etcd';
    const known = l.applied > index ? `entries ${index + 1}..${l.applied}, which node ${lostId} had applied ${when}, and any it wrote after that` : `anything node ${lostId} wrote after index ${index} (it had applied ${l.applied} ${when})`;
    return `${known}: ${which} (${setAside})`;
  }

  /** Master: add slaves that hold every acknowledged write; remove ones that are down; make etcd hold the set. */
  private async keepSync(view: EtcdView): Promise<void> {
    const parts = this.d.roles.current as MasterParts;
    if (!this.leaderRaw) this.leaderRaw = view.leaderRaw;
    // A member whose key vanished from etcd stopped (or lost its lease): writes stop waiting for it now.
    const gone = parts.members().filter((m) => this.sync.has(m.id) && (m.state === 'down' || m.state === 'diverged' || this.departed.has(m.id))).map((m) => m.id);
    if (gone.length) await this.drop(gone).catch(() => undefined);
    const add = parts.syncCandidates().filter((id) => !this.departed.has(id));
    if (add.length) await this.admit(add).catch(() => undefined);
    const inEtcd = [...(view.sync?.members ?? [])].sort((a, b) => a - b).join(',');
    if (inEtcd !== this.sync.members().join(',') || view.sync?.leader !== this.d.config.id) {
      // Written by this master before (the view was read before that write) or lost: make sure.
      await this.sync.sync().catch((e: Error) => this.d.log('warn', 'could not write the sync set to etcd', { err: e.message }));
    }
  }

  /** Adds caught-up slaves: locally at once (every later ack waits for them), then in etcd. */
  private admit(ids: number[]): Promise<void> {
    // Not a node whose member key vanished (a stopping slave revokes its lease; it rejoins when back).
    const fresh = ids.filter((id) => !this.sync.has(id) && !this.departed.has(id));
    if (fresh.length === 0) return this.sync.published() ? Promise.resolve() : this.sync.sync();
    const done = this.sync.add(fresh);
    void done.then(
      () => this.d.log('info', 'sync set: added slaves that hold every acknowledged write', { add: fresh, sync_set: this.sync.members() }),
      (e: Error) => this.d.log('warn', 'sync set: could not record added slaves in etcd (retried every cycle)', { add: fresh, err: e.message }),
    );
    return done;
  }

  /** Removes `ids` from the sync set in etcd, then locally. Serialized; throws when etcd refuses. */
  private async drop(ids: number[]): Promise<void> {
    if (!this.leaderRaw) throw new Error('not the leader');
    const left = await this.sync.drop(ids);
    if (left.length === 0) return;
    this.d.log('warn', 'sync set: removed slaves that did not keep up', { removed: left, sync_set: this.sync.members() });
    const parts = this.d.roles.current;
    if (parts.kind === 'master') parts.acksChanged();
  }
}

/**
 * How long a fresh cluster's first master, just started, waits for the other nodes of its
 * range to publish their member keys (to lead with them in the sync set). Short: scripts and
 * tests that start node 0 and then its slaves expect it to lead about as soon as it is up.
 */
const FRESH_WAIT_MS = 1000;

/** Longest a switchover pauses writes while the target catches up, before the etcd transaction. */
const PAUSE_MS = 1000;

function security(c: Config): EtcdSecurity {
  const read = (f: string | null) => (f ? fs.readFileSync(f) : undefined);
  return { ca: read(c.etcdCa), cert: read(c.etcdCert), key: read(c.etcdKey), ...(c.etcdUser ? { user: c.etcdUser, password: c.etcdPassword ?? '' } : {}) };
}

const WAY_OUT = 'bring the lost master back, or run `npm run promote -- <id> --force` on the node with the highest applied_index: it names the acknowledged writes that may be lost';

function refused(message: string): SqlfleetError {
  return new SqlfleetError('PROMOTION_REFUSED', message);
}
