// Wires the master: membership, log shipping, acknowledgements, heartbeats in, log trimming.
import { failpoint } from '../failpoints.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { SqlfleetError } from '../errors.js';
import { Membership, type Member } from '../cluster/membership.js';
import { Verifier } from '../cluster/verifier.js';
import type { Checksum } from '../store/checksum.js';
import type { IndexWaiter } from '../core/index-waiter.js';
import type { LogFn } from '../log.js';
import type { Metrics } from '../metrics.js';
import { AckTracker } from '../replication/acks.js';
import type { PeerClient } from '../replication/client.js';
import { Shipper } from '../replication/shipper.js';
import { takeSnapshot } from '../store/snapshot.js';
import type { Store } from '../store/store.js';
import type { Peer, RoleParts } from './types.js';
import type { Member as MemberT } from '../cluster/membership.js';

const JOINED_KEY = 'joined_members';

/** How this master came to be, and whom to tell when it learns it was deposed. */
export interface MasterOptions {
  /** The epoch it writes in; stored durably before the first write. */
  epoch: number;
  /** A promoted master: every other node it knows (else the 1..numSlaves range). */
  peers?: Peer[];
  /** A node with a higher epoch exists: step down and follow `masterUrl` (may be null: unknown). */
  onDeposed: (masterUrl: string | null, epoch: number) => void;
  /** etcd mode: the lease fences writes and the sync set decides whom ack "all" waits for. */
  ha?: HaHooks;
}

/** What the etcd HA loop lends a master. */
export interface HaHooks {
  /** False once the leader lease may have expired: no write is admitted or acknowledged then. */
  leaseOk(): boolean;
  /** Members of the sync set: ack "all" waits for them. */
  inSync(id: number): boolean;
  /** Removes `ids` from the sync set in etcd; a write is answered without them only after this resolved. Throws when etcd cannot record it. */
  drop(ids: number[]): Promise<void>;
  /** Adds `ids` (they hold every answered write) to the sync set: locally at once, in etcd when it resolves. */
  admit(ids: number[]): Promise<void>;
  /** Resolves once etcd holds the local sync set (an ack "all" answer waits for it); rejects when etcd cannot record it. */
  published(): Promise<void>;
}

/** The master's parts, plus what a switchover needs. */
export interface MasterParts extends RoleParts {
  readonly kind: 'master';
  readonly epoch: number;
  member(id: number): MemberT | undefined;
  /** Refuses new writes (not applied) until resume(); in-flight ones finish. */
  pause(reason: string): void;
  resume(): void;
  /** Writes admitted and not yet answered. */
  inflight(): number;
  /** Every member, as the master sees it (the HA loop adds caught-up ones to the sync set). */
  members(): readonly MemberT[];
  /** Highest index acknowledged to a client: a member joins the sync set only once it has it. */
  maxAcked(): number;
  /** Slaves outside the sync set that hold every answered write (etcd mode: they join it now). */
  syncCandidates(): number[];
  /** The sync set changed: waiting writes re-check. */
  acksChanged(): void;
}

/** Builds the master's role parts. */
export function wireMaster(config: Config, store: Store, client: PeerClient, _waiter: IndexWaiter, log: LogFn, metrics: Metrics, opts: MasterOptions): MasterParts {
  if (store.epoch < opts.epoch) store.setEpoch(opts.epoch);
  const epoch = store.epoch;
  let selfUrl = '';
  let paused: string | null = null;
  let deposed = false;
  let inflight = 0;
  let maxAcked = store.appliedIndex; // everything before this epoch counts as acknowledged
  const ha = opts.ha;
  const depose = (url: string | null, higher: number) => {
    if (deposed) return;
    deposed = true;
    log('warn', 'a newer master exists; stepping down', { epoch, newer_epoch: higher, master: url });
    opts.onDeposed(url, higher);
  };
  const membership = new Membership({
    numSlaves: config.numSlaves,
    peers: opts.peers,
    selfId: config.id,
    downAfterMs: config.downAfterMs,
    masterIndex: () => store.appliedIndex,
    persist: (joined) => store.setMeta(JOINED_KEY, joined),
    joined: store.getMeta<{ id: number; url: string }[]>(JOINED_KEY) ?? [],
    onStateChange: (m, from) => log('info', 'node state changed', { slave: m.id, from, to: m.state, applied_index: m.applied }),
  });
  const acks = new AckTracker(() => membership.slaves(), ha ? (m) => ha.inSync(m.id) : (m) => membership.expected(m));
  // etcd mode: a slave joins the sync set as soon as it holds every write answered so far
  // (DESIGN §6), before the waiting writes re-check: from then on they wait for it too.
  const floor = () => Math.max(maxAcked, acks.released);
  const syncCandidates = () =>
    ha ? membership.slaves().filter((m) => !ha.inSync(m.id) && m.confirmed && (m.state === 'up' || m.state === 'catching_up') && m.applied >= floor()).map((m) => m.id) : [];
  membership.onChange(() => {
    const ids = syncCandidates();
    if (ha && ids.length && !deposed) ha.admit(ids).catch(() => undefined); // the HA tick writes it again
    acks.check();
  });
  const shipper = new Shipper({
    store,
    client,
    membership,
    epoch: () => epoch,
    selfUrl: () => selfUrl,
    onStale: (url, higher) => depose(url, higher),
    batchMaxEntries: config.batchMaxEntries,
    batchMaxBytes: config.batchMaxBytes,
    timeoutMs: 30_000,
    retryMs: config.heartbeatMs,
    log,
    onBatch: (n) => metrics.batch(n),
    sendSnapshot: async (id, url) => {
      const tmp = path.join(config.dataDir, `snapshot-for-${id}-${process.pid}.db`);
      try {
        const snap = await takeSnapshot(config.dbPath, tmp);
        log('info', 'snapshot taken', { slave: id, index: snap.index, bytes: snap.bytes, ms: snap.ms });
        const res = await client.postStream<{ ok?: boolean; applied_index?: number }>(url, '/internal/snapshot', fs.createReadStream(tmp), {
          timeoutMs: 300_000,
        });
        if (res.status !== 200 || res.body?.ok !== true || typeof res.body.applied_index !== 'number') {
          throw new Error(`slave ${id} refused the snapshot: ${res.status} ${JSON.stringify(res.body)}`);
        }
        log('info', 'snapshot installed', { slave: id, index: res.body.applied_index });
        metrics.snapshot('sent', true);
        return res.body.applied_index;
      } catch (e) {
        metrics.snapshot('sent', false);
        throw e;
      } finally {
        fs.rmSync(tmp, { force: true });
      }
    },
  });
  const verifier = new Verifier({
    membership,
    localChecksum: () => store.checksum(),
    remoteChecksum: async (url) => (await client.get<Checksum>(url, '/checksum', { timeoutMs: 10_000 })).body,
    log,
  });
  let verifying = false;
  const verify = async () => {
    if (verifying) return;
    verifying = true;
    try {
      await verifier.verifyOnce();
    } catch (e) {
      log('error', 'verification failed', { err: e instanceof Error ? e.message : String(e) });
    } finally {
      verifying = false;
    }
  };
  const timers: NodeJS.Timeout[] = [];

  const nodeJson = (m: Member) => ({
    id: m.id,
    url: m.url,
    role: 'slave',
    state: m.state,
    applied_index: m.applied,
    lag: Math.max(0, store.appliedIndex - m.applied),
    last_seen_ms: m.lastSeen ? Date.now() - m.lastSeen : null,
  });

  // Every node as the master sees it: /status here, and the view slaves get in heartbeats.
  const clusterNodes = () => [
    { id: config.id, url: selfUrl, role: 'master', state: 'up', applied_index: store.appliedIndex, lag: 0, last_seen_ms: 0 },
    ...membership.slaves().map(nodeJson),
  ];

  const trim = () => {
    // Slaves never seen do not hold the log back: they will start from a snapshot.
    const slaves = membership.slaves().filter((m) => m.lastSeen > 0);
    const minApplied = slaves.length ? Math.min(...slaves.map((m) => m.applied)) : store.appliedIndex;
    const upTo = Math.min(minApplied, store.appliedIndex - config.logRetain);
    if (upTo > 0 && upTo >= store.firstLogIndex()) {
      // Runs from a timer: SQLITE_FULL or an I/O error here must not end the process; the
      // log is kept whole and the next round tries again.
      try {
        failpoint('trim');
        const n = store.trimLog(upTo);
        shipper.forget(upTo);
        if (n > 0) log('debug', 'log trimmed', { up_to: upTo, entries: n });
      } catch (e) {
        log('error', 'could not trim the log; keeping it and trying again', { up_to: upTo, err: e instanceof Error ? e.message : String(e) });
      }
    }
  };

  const check = () => {
    if (deposed) throw notMaster('not_applied', 'this node was master and stepped down; nothing was applied, retry');
    if (paused) throw notMaster('not_applied', `${paused}; nothing was applied, retry`);
    if (ha && !ha.leaseOk()) throw notMaster('not_applied', 'the leader lease in etcd was not renewed in time; nothing was applied, retry');
  };
  const notMaster = (outcome: 'not_applied' | 'unknown', why: string) =>
    new SqlfleetError('MASTER_UNAVAILABLE', why, { outcome, ...(outcome === 'not_applied' ? { retry_after_ms: 200 } : {}) });

  return {
    kind: 'master',
    epoch,
    member: (id) => membership.get(id),
    pause: (reason) => {
      paused = reason;
    },
    resume: () => {
      paused = null;
    },
    inflight: () => inflight,
    members: () => membership.slaves(),
    maxAcked: floor,
    syncCandidates,
    acksChanged: () => acks.check(),
    masterUrl: () => selfUrl,
    diverged: () => null,
    ready: () => true,
    peers: () => membership.slaves().map((m) => ({ id: m.id, url: m.url })),
    replicate: {
      admit: () => {
        check();
        inflight++;
      },
      check,
      done: () => {
        inflight--;
      },
      onWrite: (entry, json) => shipper.onWrite(entry, json),
      waitAcks: async (index, level, timeoutMs) => {
        const r = await acks.wait(index, level, timeoutMs);
        if (ha && level === 'all' && r.lagging.length > 0) {
          // Patroni's rule: leave the sync set in etcd before answering without them.
          if (!ha.leaseOk()) throw notMaster('unknown', `slaves ${r.lagging.join(',')} did not apply the write in time and the leader lease is no longer valid; the write is on the master only and may be lost`);
          try {
            await ha.drop(r.lagging);
          } catch (e) {
            throw notMaster('unknown', `slaves ${r.lagging.join(',')} did not apply the write in time and etcd could not record that they left the sync set (${(e as Error).message}); the write is on the master only and may be lost`);
          }
          r.lagging = [];
        }
        if (ha && level === 'all') {
          // A slave added to the sync set while this write waited holds it: etcd names it
          // before the answer goes out, so the write survives the master's loss.
          try {
            await ha.published();
          } catch (e) {
            log('warn', 'etcd did not record the sync set before an ack "all" answer; the write is on every slave the answer names', { err: (e as Error).message, replicated_to: r.replicated_to });
          }
        }
        return r;
      },
      settle: (_epoch, index) => {
        if (deposed) throw notMaster('unknown', 'this master stepped down while the write waited for acknowledgements; it may or may not survive (check with a read)');
        if (ha && !ha.leaseOk()) throw notMaster('unknown', 'the leader lease expired while the write waited for acknowledgements; it may or may not survive (check with a read)');
        if (index > maxAcked) maxAcked = index;
      },
    },
    nodes: clusterNodes,
    statusExtra: () => ({ master: selfUrl, epoch, verified: verifier.last, ...(paused ? { paused } : {}) }),
    append: (body) => {
      const b = body as { epoch?: unknown; master?: unknown };
      if (typeof b?.epoch === 'number' && b.epoch > epoch) {
        depose(typeof b.master === 'string' ? b.master : null, b.epoch);
        throw new SqlfleetError('UNAVAILABLE', `stepping down: epoch ${b.epoch} is newer than ${epoch}; retry`);
      }
      throw new SqlfleetError('NOT_MASTER', 'this node is the master; it does not accept log entries', { master: selfUrl });
    },
    heartbeat: (body) => {
      const b = body as { id?: unknown; url?: unknown; applied_index?: unknown; join?: unknown; epoch?: unknown; master?: unknown; resync?: unknown; cluster?: unknown };
      // Checked first: a node of another cluster (a copied --data-dir, a wrong --master-url) must not depose or join this one.
      if (typeof b?.cluster === 'string' && b.cluster !== config.clusterName) {
        throw new SqlfleetError('FORBIDDEN', `this master belongs to cluster "${config.clusterName}", the node to "${b.cluster}" (--cluster-name): refused`);
      }
      if (typeof b?.epoch === 'number' && b.epoch > epoch) {
        depose(typeof b.master === 'string' && b.master !== selfUrl ? b.master : null, b.epoch);
        throw new SqlfleetError('NOT_MASTER', `this node was master in epoch ${epoch}; epoch ${b.epoch} is newer`, { epoch });
      }
      if (!Number.isInteger(b?.id) || typeof b.url !== 'string' || !Number.isInteger(b.applied_index)) {
        throw new SqlfleetError('BAD_REQUEST', 'heartbeat needs {id, url, applied_index}');
      }
      const id = b.id as number;
      if (id === config.id) throw new SqlfleetError('BAD_REQUEST', `node id ${id} is the master's`);
      if (!membership.get(id)) {
        if (b.join !== true) throw new SqlfleetError('NOT_FOUND', `node ${id} is not a member; start it with --join`);
        membership.join(id, b.url);
        log('info', 'node joined', { slave: id, url: b.url });
      }
      const m = membership.contact(id, b.applied_index as number, b.url);
      if (b.resync === true && m.state === 'diverged') {
        log('info', 'resync requested by the slave (its log forked)', { slave: id });
        shipper.requestResync(id);
      }
      shipper.kick(id);
      return {
        status: 200,
        body: { ok: true, epoch, master_index: store.appliedIndex, state: m.state, verified: verifier.last, nodes: clusterNodes() },
      };
    },
    resyncNode: (id) => {
      if (!membership.get(id)) throw new SqlfleetError('NOT_FOUND', `node ${id} is not a member`);
      log('info', 'resync requested', { slave: id });
      shipper.requestResync(id);
      return { status: 202, body: { ok: true, resync: id } };
    },
    installSnapshot: async () => {
      throw new SqlfleetError('NOT_MASTER', 'the master does not install snapshots');
    },
    removeNode: (id) => {
      if (!membership.remove(id)) throw new SqlfleetError('NOT_FOUND', `node ${id} is not a member`);
      log('info', 'node removed', { slave: id });
      return { status: 200, body: { ok: true, removed: id } };
    },
    start: (url) => {
      selfUrl = url;
      log('info', 'serving as master', { epoch, url, applied_index: store.appliedIndex });
      for (const m of membership.slaves()) shipper.kick(m.id);
      timers.push(setInterval(() => membership.tick(), Math.max(50, config.heartbeatMs / 2)));
      timers.push(setInterval(trim, 5_000));
      timers.push(setInterval(() => void verify(), config.verifyMs));
      for (const t of timers) t.unref();
    },
    stop: async () => {
      deposed = true; // writes still waiting for acks answer "unknown", new ones are refused
      for (const t of timers) clearInterval(t);
      shipper.stop();
      acks.flush();
    },
  };
}
