// Promotion (DESIGN §6). Static mode: switchover when the master is reachable, failover when
// it is not. etcd mode: a switchover run by the master's HA loop (the leader key moves to a
// sync-set member in one transaction), or a forced one, the way out when no node may take the
// leader key. One promotion at a time per node; every refusal says why and changes nothing.
import type { Config } from '../config.js';
import { SqlfleetError, isSqlfleetError } from '../errors.js';
import type { Outcome } from '../core/executor.js';
import type { LogFn } from '../log.js';
import { PeerUnreachableError, type PeerClient } from '../replication/client.js';
import type { Store } from '../store/store.js';
import type { Entry } from '../store/types.js';
import type { Roles } from './roles.js';
import type { Peer } from './types.js';

/** What promotion needs from the node. */
export interface PromoteDeps {
  config: Config;
  store: Store;
  client: PeerClient;
  roles: Roles;
  log: LogFn;
  selfUrl: () => string;
  /** Non-null in etcd mode: promotions are etcd's to decide. */
  automatic: () => boolean;
  /** etcd mode: takes the leader key although no sync-set member can (promote --force). */
  force?: (copy: (from: { id: number; url: string; applied: number; epoch: number }) => Promise<number>) => Promise<Record<string, unknown>>;
  /** etcd mode, on the master: hands the leader key to sync-set member `target` (null: the most advanced). */
  switchover?: (target: number | null) => Promise<Record<string, unknown>>;
}

/** Body of POST /internal/promote. */
interface PromoteOrder {
  mode: 'switchover' | 'failover';
  /** Switchover: the epoch to take and the index the old master stopped at. */
  epoch?: number;
  index?: number;
  force?: boolean;
}

const HANDOVER_MS = 5000;

/** Runs promotions for one node. */
export class Promoter {
  private busy = false;

  constructor(private readonly d: PromoteDeps) {}

  /** POST /nodes/:id/promote on this node; `target` -1: any (etcd mode: the most advanced sync-set member). */
  async promote(target: number, force: boolean): Promise<Outcome> {
    if (this.d.automatic()) {
      if (!force) return this.exclusive(() => this.etcdSwitchover(target));
      if (target < 0) throw refused('a forced promotion names its node: `npm run promote -- <id> --force`');
      return this.exclusive(() => this.forced(target));
    }
    if (target < 0) throw refused('`any` is for etcd mode (the most advanced sync-set member); name the node to promote');
    // A follower passes the request to a reachable master, which decides the switchover. Not
    // inside exclusive(): the master's order may come back to this very node (it is the
    // target), and would find it busy ("another promotion is in progress"). But a node still
    // in a promotion of its own refuses: an old master that has just become a follower would
    // otherwise pass a second, concurrent request on to the master it is handing over to.
    this.notBusy();
    const first = this.d.roles.current;
    if (first.kind !== 'master' && (await this.probe(first.masterUrl()))) {
      const res = await this.d.client.post<Record<string, unknown>>(first.masterUrl(), `/nodes/${target}/promote`, { force }, { timeoutMs: HANDOVER_MS * 3 });
      return { status: res.status, body: res.body ?? {} };
    }
    return this.exclusive(async () => {
      const parts = this.d.roles.current;
      if (parts.kind === 'master') return this.switchover(target);
      // A follower whose master did not answer: failover.
      const master = parts.masterUrl();
      if (target === this.d.config.id) return this.failover(force, master);
      const url = parts.peers().find((p) => p.id === target)?.url;
      if (!url) throw new SqlfleetError('NOT_FOUND', `node ${target} is not known to this node`);
      return this.order(url, { mode: 'failover', force });
    });
  }

  /** POST /internal/promote: an order from the old master (switchover) or a peer (failover). */
  async obey(body: unknown): Promise<Outcome> {
    const o = body as PromoteOrder;
    if (!o || (o.mode !== 'switchover' && o.mode !== 'failover')) throw new SqlfleetError('BAD_REQUEST', 'promote order needs mode switchover|failover');
    if (this.d.automatic()) {
      if (o.mode !== 'failover' || o.force !== true) throw refused('this cluster runs with --etcd: only a forced promotion (--force) is taken');
      return this.exclusive(() => this.forced(this.d.config.id));
    }
    return this.exclusive(async () => {
      const parts = this.d.roles.current;
      if (parts.kind === 'master') throw refused(`node ${this.d.config.id} is already the master`);
      if (o.mode === 'failover') return this.failover(o.force === true, parts.masterUrl());
      if (typeof o.epoch !== 'number' || typeof o.index !== 'number') throw new SqlfleetError('BAD_REQUEST', 'switchover needs epoch and index');
      if (this.d.store.appliedIndex < o.index) throw refused(`node ${this.d.config.id} has applied ${this.d.store.appliedIndex}, not ${o.index}`);
      const epoch = Math.max(o.epoch, this.d.store.epoch + 1);
      await this.d.roles.becomeMaster(epoch, parts.peers());
      // The old master follows once this answer reaches it: do not wait for it.
      await this.told(parts.peers().filter((p) => p.url && p.url !== parts.masterUrl() && p.id !== this.d.config.id).map((p) => p.id));
      return done('switchover', this.d.selfUrl(), epoch, this.d.store.appliedIndex);
    });
  }

  private async switchover(target: number): Promise<Outcome> {
    const parts = this.d.roles.current;
    if (parts.kind !== 'master') throw refused('this node stopped being master');
    if (target === this.d.config.id) throw refused(`node ${target} is already the master`);
    const m = parts.member(target);
    if (!m) throw new SqlfleetError('NOT_FOUND', `node ${target} is not a member of this cluster`);
    if (!m.url || m.state === 'down' || m.state === 'diverged') throw refused(`node ${target} is ${m.url || m.state === 'down' ? m.state : 'not yet seen'}; promote a node that is up`);
    const started = Date.now();
    parts.pause(`switchover to node ${target} in progress`);
    try {
      await until(() => parts.inflight() === 0, HANDOVER_MS, 'writes in flight did not finish');
      const index = this.d.store.appliedIndex;
      await until(() => m.confirmed && m.applied >= index, HANDOVER_MS, `node ${target} did not apply index ${index}`);
      this.d.log('info', 'switchover: handing over', { to: target, index, paused_ms: Date.now() - started });
      const res = await this.d.client.post<Record<string, unknown>>(m.url, '/internal/promote', { mode: 'switchover', epoch: parts.epoch + 1, index }, { timeoutMs: HANDOVER_MS });
      if (res.status !== 200 || res.body?.ok !== true) throw refused(`node ${target} refused: ${JSON.stringify(res.body?.error ?? res.body)}`);
      await this.d.roles.becomeFollower(m.url, typeof res.body.epoch === 'number' ? res.body.epoch : parts.epoch + 1);
      this.d.log('info', 'switchover done', { master: m.url, epoch: res.body.epoch, paused_ms: Date.now() - started });
      return { status: 200, body: { ...res.body, paused_ms: Date.now() - started } };
    } catch (e) {
      // Nothing was handed over (or the order's outcome is unknown: then the new master's
      // higher epoch deposes this one as soon as they talk).
      parts.resume();
      if (e instanceof PeerUnreachableError) throw refused(`node ${target} could not be reached: ${e.message}`);
      throw e;
    }
  }

  /**
   * Failover onto this node: copy what the most advanced reachable follower has beyond
   * this node, then take epoch highest-seen + 1.
   */
  private async failover(force: boolean, oldMaster: string): Promise<Outcome> {
    const { store, config } = this.d;
    if (await this.probe(oldMaster)) throw refused(`the master at ${oldMaster} is reachable: promote through it (switchover) instead`);
    const peers = this.d.roles.current.peers().filter((p) => p.url && p.url !== oldMaster && p.id !== config.id);
    const seen = await Promise.all(peers.map((p) => this.peerStatus(p)));
    const reachable = seen.filter((s): s is PeerState => s !== null);
    const unreachable = peers.filter((p) => !reachable.some((r) => r.id === p.id)).map((p) => p.id);
    const best = reachable.reduce<PeerState | null>((a, b) => (b.applied > (a?.applied ?? -1) ? b : a), null);
    let copied = 0;
    if (best && best.applied > store.appliedIndex) {
      try {
        copied = await this.copyFrom(best);
      } catch (e) {
        const why = `could not copy entries ${store.appliedIndex + 1}..${best.applied} from node ${best.id}: ${(e as Error).message}`;
        if (!force) throw refused(`${why}; --force promotes anyway, and those entries are then set aside on node ${best.id}`);
        this.d.log('warn', 'forced failover without entries a reachable node has', { why });
      }
    }
    const epoch = Math.max(store.epoch, ...reachable.map((r) => r.epoch)) + 1;
    const known: Peer[] = [...peers.map((p) => ({ ...p, reachable: reachable.some((r) => r.id === p.id) })), ...this.oldMasterPeer(oldMaster)];
    await this.d.roles.becomeMaster(epoch, known);
    await this.told(reachable.map((r) => r.id));
    this.d.log('warn', 'failover: this node is master', { epoch, index: store.appliedIndex, copied, from_node: best?.id ?? null, unreachable });
    return done('failover', this.d.selfUrl(), epoch, store.appliedIndex, { copied, copied_from: copied ? best?.id : null, unreachable });
  }

  /** etcd mode: the master's HA loop hands the leader key over; any other node asks the master. */
  private async etcdSwitchover(target: number): Promise<Outcome> {
    const parts = this.d.roles.current;
    if (parts.kind === 'master') {
      if (!this.d.switchover) throw refused('this node does not run with --etcd');
      return { status: 200, body: await this.d.switchover(target < 0 ? null : target) };
    }
    const master = parts.masterUrl();
    const noMaster = (why: string) => refused(`${why}: a switchover needs the master. When no node can take over (/status etcd.no_master), \`npm run promote -- <id> --force\` makes that node master and names the writes that may be lost`);
    if (!master) throw noMaster('no master right now');
    try {
      const res = await this.d.client.post<Record<string, unknown>>(master, `/nodes/${target < 0 ? 'any' : target}/promote`, { force: false }, { timeoutMs: HANDOVER_MS * 3 });
      return { status: res.status, body: res.body ?? {} };
    } catch (e) {
      if (e instanceof PeerUnreachableError) throw noMaster(`the master at ${master} does not answer`);
      throw e;
    }
  }

  /** etcd mode, --force: on this node, or ordered to node `target`. */
  private async forced(target: number): Promise<Outcome> {
    if (target !== this.d.config.id) {
      const url = this.d.roles.current.peers().find((p) => p.id === target)?.url;
      if (!url) throw new SqlfleetError('NOT_FOUND', `node ${target} is not known to this node; run the promotion on node ${target} itself (--node-url)`);
      return this.order(url, { mode: 'failover', force: true });
    }
    if (!this.d.force) throw refused('this node does not run with --etcd');
    const body = await this.d.force(async (from) => this.copyFrom(from));
    return { status: 200, body };
  }

  /** Waits (bounded) until the new master's first batch reached `ids`: from then on they forward writes to it. */
  private async told(ids: number[]): Promise<void> {
    const parts = this.d.roles.current;
    if (parts.kind !== 'master') return;
    const end = Date.now() + 2000;
    while (Date.now() < end && !ids.every((id) => parts.member(id)?.confirmed)) await new Promise((r) => setTimeout(r, 10));
  }

  private oldMasterPeer(url: string): Peer[] {
    const p = this.d.roles.current.peers().find((x) => x.url === url);
    return p ? [{ ...p, reachable: false }] : [];
  }

  private async copyFrom(peer: PeerState): Promise<number> {
    const parts = this.d.roles.current;
    if (parts.kind !== 'slave') throw new Error('not a follower');
    let copied = 0;
    while (this.d.store.appliedIndex < peer.applied) {
      const from = this.d.store.appliedIndex + 1;
      const res = await this.d.client.get<{ entries?: Entry[] }>(peer.url, `/internal/log?from=${from}&max=1000`, { timeoutMs: 10_000 });
      const entries = res.body?.entries ?? [];
      if (res.status !== 200 || entries.length === 0) throw new Error(`node ${peer.id} answered ${res.status} with no entries from ${from} (its log may be trimmed)`);
      const answer = parts.applier.append({ epoch: Math.max(this.d.store.epoch, peer.epoch), entries, master_index: peer.applied });
      if (!answer.ok) throw new Error(answer.error?.message ?? 'apply failed');
      copied += entries.filter((e) => e.index >= from).length;
    }
    return copied;
  }

  private async peerStatus(p: Peer): Promise<PeerState | null> {
    try {
      const res = await this.d.client.get<{ applied_index?: number; epoch?: number }>(p.url as string, '/status', { timeoutMs: 1500 });
      if (res.status !== 200 || typeof res.body?.applied_index !== 'number') return null;
      return { id: p.id, url: p.url as string, applied: res.body.applied_index, epoch: res.body.epoch ?? 0 };
    } catch {
      return null;
    }
  }

  private async probe(url: string): Promise<boolean> {
    try {
      const res = await this.d.client.get<{ role?: string }>(url, '/status', { timeoutMs: 1500 });
      return res.status === 200 && res.body?.role === 'master';
    } catch {
      return false;
    }
  }

  private async order(url: string, o: PromoteOrder): Promise<Outcome> {
    const res = await this.d.client.post<Record<string, unknown>>(url, '/internal/promote', o, { timeoutMs: 30_000 });
    return { status: res.status, body: res.body ?? {} };
  }

  private notBusy(): void {
    if (this.busy) throw refused('another promotion is in progress on this node');
  }

  private async exclusive(fn: () => Promise<Outcome>): Promise<Outcome> {
    this.notBusy();
    this.busy = true;
    try {
      return await fn();
    } catch (e) {
      if (e instanceof PeerUnreachableError) throw refused(`a node needed for the promotion could not be reached: ${e.message}`);
      if (isSqlfleetError(e)) throw e;
      throw refused(String((e as Error).message ?? e));
    } finally {
      this.busy = false;
    }
  }
}

interface PeerState {
  id: number;
  url: string;
  applied: number;
  epoch: number;
}

function refused(message: string): SqlfleetError {
  return new SqlfleetError('PROMOTION_REFUSED', message);
}

function done(mode: string, master: string, epoch: number, index: number, extra: Record<string, unknown> = {}): Outcome {
  return { status: 200, body: { ok: true, mode, master, epoch, index, ...extra } };
}

async function until(ok: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw refused(`${what} within ${ms} ms; writes resumed on the old master`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
