// The only importer of the etcd client: a small, typed surface over etcd3 for the HA loop
// (one lease per node, the leader key, the sync set, member keys, a watch on the leader).
import { createRequire } from 'node:module';
import type { Etcd3, Lease, Watcher } from 'etcd3';
import { circuitBreaker, ConsecutiveBreaker, ConstantBackoff, handleWhen, noop, retry } from 'cockatiel';

let etcd3: typeof import('etcd3') | undefined;
/**
 * etcd3 is loaded by the first EtcdCluster, not at startup: with @grpc/grpc-js and protobufjs
 * under it, it held ~20 MB of every node's resident memory, and a node without --etcd never
 * uses it (bench/mem-idle.ts).
 */
function etcd3Module(): typeof import('etcd3') {
  return (etcd3 ??= createRequire(import.meta.url)('etcd3') as typeof import('etcd3'));
}
const isRecoverableError = (e: Error): boolean => etcd3Module().isRecoverableError(e);

/** The leader key's value: who is master, where, in which epoch. */
export interface LeaderValue {
  id: number;
  url: string;
  epoch: number;
}

/** The sync set (Patroni's synchronous mode): members that have every write the leader acknowledged. */
export interface SyncValue {
  leader: number;
  members: number[];
}

/** A member key's value: each node publishes where it is and how far it applied. */
export interface MemberValue {
  id: number;
  url: string;
  applied: number;
  epoch: number;
  /** The node's etcd lease (decimal id): a switchover binds the leader key to it. */
  lease?: string;
}

/** Client TLS and user credentials for etcd (Patroni's cacert/cert/key and username/password). */
export interface EtcdSecurity {
  /** PEM of the CA that signed etcd's server certificate. */
  ca?: Buffer;
  /** PEM client certificate and key (etcd --client-cert-auth). */
  cert?: Buffer;
  key?: Buffer;
  /** etcd user (etcd --auth enabled). */
  user?: string;
  password?: string;
}

/** What one read of the cluster's keys returns. */
export interface EtcdView {
  leader: LeaderValue | null;
  /** The leader key's raw value (for compare-and-swap) and the revision of its creation. */
  leaderRaw: string | null;
  /** The lease the leader key is bound to (a switchover binds it to the new master's lease). */
  leaderLease: string | null;
  sync: SyncValue | null;
  members: MemberValue[];
  /** The master's last published index, kept after its lease is gone (what a forced promotion may lose). */
  lastMaster: MemberValue | null;
}

/** Keys of one cluster, under /sqlfleet/<cluster-name>/. */
export class EtcdCluster {
  private readonly client: Etcd3;
  private lease: Lease | null = null;
  private leaseId: string | null = null;
  private granting: Promise<string> | null = null;
  private watchers: Watcher[] = [];
  private readonly prefix: string;
  private readonly hostCount: number;

  constructor(
    hosts: string[],
    clusterName: string,
    private readonly ttlSeconds: number,
    private readonly callTimeoutMs: number,
    security: EtcdSecurity = {},
  ) {
    this.prefix = `/sqlfleet/${clusterName}/`;
    this.hostCount = hosts.length;
    this.client = new (etcd3Module().Etcd3)({
      hosts,
      dialTimeout: callTimeoutMs,
      ...(security.ca || security.cert ? { credentials: { rootCertificate: security.ca ?? (null as unknown as Buffer) /* the system's CAs */, ...(security.cert && security.key ? { certChain: security.cert, privateKey: security.key } : {}) } } : {}),
      ...(security.user ? { auth: { username: security.user, password: security.password ?? '' } } : {}),
      // Every unary call has a deadline (the HA loop must never hang on etcd); the watch
      // stream has none. etcd3's default circuit breaker would keep refusing calls for 5 s
      // after etcd came back: the loop retries on its own schedule instead.
      defaultCallOptions: (ctx) => (ctx.service === 'Watch' ? {} : { deadline: Date.now() + callTimeoutMs }),
      faultHandling: {
        // Several members: a member that failed is skipped for 1 s (its circuit is open), and a
        // failed call is tried on the next member. One member: no breaker, no retry (as before).
        host: () => (hosts.length > 1 ? circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: 1000, breaker: new ConsecutiveBreaker(1) }) : noop),
        global: hosts.length > 1 ? retry(handleWhen(isRecoverableError), { maxAttempts: hosts.length, backoff: new ConstantBackoff(0) }) : noop,
      },
    });
  }

  /** This node's lease (granted on first use, again after it was lost). */
  async leaseIdOrGrant(): Promise<string> {
    if (this.leaseId && this.lease && !this.lease.revoked()) return this.leaseId;
    // The renewal timer and the HA cycle may both ask at once: one grant.
    if (this.granting) return this.granting;
    this.lease?.release();
    this.leaseId = null;
    const lease = this.client.lease(this.ttlSeconds, { autoKeepAlive: false });
    this.lease = lease;
    lease.on('lost', () => undefined); // a lost lease is found by keepalive() below
    this.granting = lease.grant().then(
      (id) => {
        if (this.lease === lease) this.leaseId = id;
        return id;
      },
    );
    try {
      return await this.granting;
    } finally {
      this.granting = null;
    }
  }

  /** This node's current lease id, or null before the first grant. */
  currentLease(): string | null {
    return this.lease && !this.lease.revoked() ? this.leaseId : null;
  }

  /** Renews the lease once; false when etcd says it expired (then a new one is granted next time). */
  async keepalive(): Promise<boolean> {
    await this.leaseIdOrGrant();
    let res;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await (this.lease as Lease).keepaliveOnce();
        break;
      } catch (e) {
        if (attempt >= this.hostCount || !isRecoverableError(e as Error)) throw e;
      }
    }
    if (Number(res.TTL) <= 0) {
      this.forgetLease();
      return false;
    }
    return true;
  }

  /** Drops the local lease handle (it expired in etcd). */
  forgetLease(): void {
    this.lease?.release();
    this.lease = null;
    this.leaseId = null;
  }

  /** Reads leader, sync set and members in one round trip each. */
  async view(): Promise<EtcdView> {
    const [leaderKv, syncRaw, members, lastRaw] = await Promise.all([
      this.client.get(this.key('leader')).exec(),
      this.client.get(this.key('sync')).string(),
      this.client.getAll().prefix(this.key('members/')).strings(),
      this.client.get(this.key('last_master')).string(),
    ]);
    const kv = leaderKv.kvs[0];
    const leaderRaw = kv ? kv.value.toString() : null;
    return {
      leader: parse<LeaderValue>(leaderRaw),
      leaderRaw,
      leaderLease: kv && kv.lease !== '0' ? String(kv.lease) : null,
      sync: parse<SyncValue>(syncRaw),
      members: Object.values(members).map((v) => parse<MemberValue>(v)).filter((m): m is MemberValue => m !== null),
      lastMaster: parse<MemberValue>(lastRaw),
    };
  }

  /** The master records how far it applied, in a key without lease, while the leader key is still ours. */
  async putLastMaster(leaderRaw: string, m: MemberValue): Promise<void> {
    await this.client
      .if(this.key('leader'), 'Value', '==', leaderRaw)
      .then(this.client.put(this.key('last_master')).value(JSON.stringify(m)))
      .commit();
  }

  /** Publishes this node's member key on its lease (it vanishes when the node does). */
  async publish(m: MemberValue): Promise<void> {
    const lease = await this.leaseIdOrGrant();
    await this.client.put(this.key(`members/${m.id}`)).value(JSON.stringify({ ...m, lease } satisfies MemberValue)).lease(lease);
  }

  /**
   * Switchover: in one transaction, while the leader key still holds `leaderRaw` (ours) and
   * the target's member key is still on the lease it published, rewrites the leader key
   * naming the target, bound to the target's lease, with a higher epoch, and the sync set
   * `members` (led by the target). Null when a condition failed (nothing changed).
   */
  async handover(leaderRaw: string, target: MemberValue & { lease: string }, minEpoch: number, members: number[]): Promise<{ epoch: number; raw: string } | null> {
    const head = await this.client.get(this.key('leader')).exec();
    const epoch = Math.max(Number(head.header.revision) + 1, minEpoch);
    const raw = JSON.stringify({ id: target.id, url: target.url, epoch } satisfies LeaderValue);
    const res = await this.client
      .if(this.key('leader'), 'Value', '==', leaderRaw)
      .and(this.key(`members/${target.id}`), 'Lease', '==', target.lease)
      .then(this.client.put(this.key('leader')).value(raw).lease(target.lease), this.client.put(this.key('sync')).value(JSON.stringify({ leader: target.id, members } satisfies SyncValue)))
      .commit();
    return res.succeeded ? { epoch, raw } : null;
  }

  /**
   * Takes the leader key if nobody holds it, bound to this node's lease, and writes the sync
   * set `members` in the same transaction (a new master never shows an empty set for a
   * moment). Resolves with the epoch (derived from etcd's revision), or null when someone
   * else has the key.
   */
  async acquire(id: number, url: string, minEpoch: number, members: number[]): Promise<{ epoch: number; raw: string } | null> {
    const lease = await this.leaseIdOrGrant();
    // The epoch must be known before the key is written: the next revision is the current + 1.
    const head = await this.client.get(this.key('leader')).exec();
    const epoch = Math.max(Number(head.header.revision) + 1, minEpoch);
    const raw = JSON.stringify({ id, url, epoch } satisfies LeaderValue);
    const res = await this.client
      .if(this.key('leader'), 'Create', '==', 0)
      .then(this.client.put(this.key('leader')).value(raw).lease(lease), this.client.put(this.key('sync')).value(JSON.stringify({ leader: id, members } satisfies SyncValue)))
      .commit();
    return res.succeeded ? { epoch, raw } : null;
  }

  /** Writes the sync set, only while the leader key still holds `leaderRaw` (ours). */
  async putSync(leaderRaw: string, sync: SyncValue): Promise<boolean> {
    const res = await this.client
      .if(this.key('leader'), 'Value', '==', leaderRaw)
      .then(this.client.put(this.key('sync')).value(JSON.stringify(sync)))
      .commit();
    return res.succeeded;
  }

  /** Deletes the leader key if it is still ours (a clean step-down). */
  async release(leaderRaw: string): Promise<void> {
    await this.client.if(this.key('leader'), 'Value', '==', leaderRaw).then(this.client.delete().key(this.key('leader'))).commit();
  }

  /**
   * Calls `fn` whenever the leader key or the sync set changes, or a member key is deleted (a
   * node stopped: its master drops it from the sync set at once), so nodes react before their next tick.
   */
  async watchLeader(fn: () => void): Promise<void> {
    const made = await Promise.allSettled([...['leader', 'sync'].map((k) => this.client.watch().key(this.key(k)).create()), this.client.watch().prefix(this.key('members/')).create()]);
    const ok = made.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = made.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((w) => w.cancel().catch(() => undefined)));
      throw failed.reason;
    }
    ok.forEach((w, i) => (i < 2 ? w.on('put', fn) : w).on('delete', fn).on('error', () => undefined));
    this.watchers.push(...ok);
  }

  /** Closes the watch and the connection; the lease is left to expire (or revoked when `revoke`). */
  async close(revoke: boolean): Promise<void> {
    try {
      if (revoke && this.lease) await this.lease.revoke();
    } catch {
      // etcd unreachable: the lease expires on its own
    }
    await Promise.all(this.watchers.map((w) => w.cancel().catch(() => undefined)));
    this.lease?.release();
    this.client.close();
  }

  private key(k: string): string {
    return this.prefix + k;
  }
}

function parse<T>(raw: string | null): T | null {
  if (raw === null) return null;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return null;
  }
}
