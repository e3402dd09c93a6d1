// Wires a follower (slave): applies what the master ships, heartbeats to it, forwards
// writes to it, and finds the master again when it moves (failover, switchover).
import { failpoint } from '../failpoints.js';
import fs from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config.js';
import { SqlfleetError, isSqlfleetError } from '../errors.js';
import { Heartbeat, type HeartbeatAnswer } from '../cluster/heartbeat.js';
import type { IndexWaiter } from '../core/index-waiter.js';
import type { Outcome } from '../core/executor.js';
import type { LogFn } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Applier, type AppendRequest } from '../replication/applier.js';
import { shippedStmts } from '../replication/frame.js';
import { PeerUnreachableError, type PeerClient } from '../replication/client.js';
import { inspectSnapshot } from '../store/snapshot.js';
import type { Store } from '../store/store.js';
import type { Peer, RoleParts } from './types.js';

/** Whom a follower follows first, whom else it knows, and whom to tell when its master moves. */
export interface FollowerOptions {
  masterUrl: string;
  /** That master's epoch when known (0: not known; learned from its entries and heartbeats). */
  masterEpoch?: number;
  /** Other nodes known from earlier views (a restarted node looks for the master among them). */
  peers: Peer[];
  /** Called when this follower starts following another master (persist it). */
  onFollow: (masterUrl: string, epoch: number) => void;
  /** Static mode: ask peers where the master went when it stops answering (etcd mode: etcd says). */
  discover: boolean;
}

/** A follower's parts, plus what a promotion needs. */
export interface FollowerParts extends RoleParts {
  readonly kind: 'slave';
  readonly applier: Applier;
  /** True while the last heartbeat to the master was answered. */
  masterReachable(): boolean;
  /** Follows `url`, master in `epoch`, from now on (etcd named a new leader). */
  followMaster(url: string, why: string, epoch?: number): void;
  /** The newest epoch this follower knows of: its master's (from etcd, a peer or its entries). */
  knownEpoch(): number;
}

/** Builds a follower's role parts. */
export function wireSlave(config: Config, store: Store, client: PeerClient, waiter: IndexWaiter, log: LogFn, metrics: Metrics, opts: FollowerOptions): FollowerParts {
  let masterUrl = opts.masterUrl;
  let selfUrl = '';
  let view: Record<string, unknown>[] = [];
  let verified: unknown[] = [];
  let masterReachable = false;
  let warnedUnreachable = false;
  let unreachableSince = 0;
  // Slaves started beside their master (npm run cluster) ask before it listens: until the
  // master was reached once or the start-up grace passed, its silence is not news (debug).
  let everReached = false;
  const quietUntil = Date.now() + Math.max(10_000, config.downAfterMs);
  let lastDiscovery = 0;
  let trimTimer: NodeJS.Timeout | null = null;
  let stopped = false;
  // /health: 200 once connected to a master and caught up with what it had then.
  let syncTarget: number | null = null;
  let synced = false;
  let resolvingFork = false;
  let wantResync = false;
  const knownPeers = new Map<number, string>();
  for (const p of opts.peers) if (p.url) knownPeers.set(p.id, p.url);
  const applier = new Applier(store, () => waiter.notify(), log);

  // Aborted soon after the master changes: a write forwarded to the old one is answered
  // (outcome unknown) instead of waiting out --forward-timeout on a master that is gone.
  // A reachable old master (switchover) answers its in-flight writes well within the grace.
  let masterChanged = new AbortController();
  // etcd mode (no discovery): a replaced master's lease is gone, so it can acknowledge
  // nothing more: end at once. Static mode: a switchover's old master still answers.
  const abortForwards = () => {
    const previous = masterChanged;
    if (!opts.discover) previous.abort();
    else setTimeout(() => previous.abort(), Math.max(1000, config.heartbeatMs * 2)).unref();
  };
  // The epoch of the master followed, as told with its URL (etcd's leader key, a peer's
  // /status) before its first entries arrive: stamped on forwarded writes (x-sqlfleet-epoch).
  let masterEpoch = opts.masterEpoch ?? 0;
  const follow = (url: string, why: string, epoch = 0) => {
    if (url === selfUrl) return;
    if (url === masterUrl) {
      masterEpoch = Math.max(masterEpoch, epoch);
      return;
    }
    masterEpoch = epoch;
    log('info', 'following a new master', { master: url, was: masterUrl, epoch: Math.max(store.epoch, epoch), why });
    abortForwards();
    masterChanged = new AbortController();
    masterUrl = url;
    masterReachable = false;
    opts.onFollow(url, store.epoch);
  };

  const checkSynced = () => {
    if (!synced && syncTarget !== null && store.appliedIndex >= syncTarget) {
      synced = true;
      log('info', 'in sync with the master', { master: masterUrl, applied_index: store.appliedIndex });
    }
  };

  // The master is gone: ask every node we know who the master is now (highest epoch wins).
  const discover = async () => {
    if (Date.now() - lastDiscovery < config.heartbeatMs * 2) return;
    lastDiscovery = Date.now();
    const urls = new Set<string>(knownPeers.values());
    for (const n of view) if (typeof n.url === 'string') urls.add(n.url);
    urls.delete(selfUrl);
    urls.delete(masterUrl);
    let best: { url: string; epoch: number } | null = null;
    await Promise.all(
      [...urls].map(async (u) => {
        try {
          const res = await client.get<{ role?: string; epoch?: number; url?: string; master?: string }>(u, '/status', { timeoutMs: 1000 });
          const b = res.body;
          if (res.status === 200 && b?.role === 'master' && typeof b.epoch === 'number' && b.epoch >= store.epoch && (!best || b.epoch > best.epoch)) {
            best = { url: typeof b.url === 'string' ? b.url : u, epoch: b.epoch };
          }
        } catch {
          // unreachable peers say nothing
        }
      }),
    );
    const found = best as { url: string; epoch: number } | null;
    if (found && !stopped) follow(found.url, `found by asking peers (epoch ${found.epoch})`, found.epoch);
  };

  const heartbeat = new Heartbeat({
    intervalMs: config.heartbeatMs,
    send: async () => {
      const to = masterUrl;
      if (!to) throw new Error('no master elected yet');
      const res = await client.post<HeartbeatAnswer & { error?: { code: string; message: string; master?: string; epoch?: number } }>(
        to,
        '/internal/heartbeat',
        { id: config.id, url: selfUrl, applied_index: store.appliedIndex, join: config.join !== null, epoch: store.epoch, master: masterUrl, cluster: config.clusterName, ...(wantResync ? { resync: true } : {}) },
        { timeoutMs: Math.max(1000, config.heartbeatMs * 2) },
      );
      if (res.status !== 200) {
        const err = res.body?.error;
        if (err?.code === 'NOT_MASTER' && typeof err.master === 'string' && err.master) follow(err.master, `${to} is no longer master`, typeof err.epoch === 'number' ? err.epoch : 0);
        throw new Refused(err?.message ? `${to} answered ${res.status} ${err.code}: ${err.message}` : `${to} answered ${res.status}: ${JSON.stringify(res.body)}`);
      }
      return res.body;
    },
    onAnswer: (a) => {
      if (!masterReachable) log('info', 'master reachable', { master: masterUrl });
      masterReachable = true;
      everReached = true;
      warnedUnreachable = false;
      unreachableSince = 0;
      view = a.nodes ?? [];
      if (typeof a.epoch === 'number' && a.epoch > masterEpoch) masterEpoch = a.epoch;
      for (const n of view) if (typeof n.id === 'number' && typeof n.url === 'string' && n.id !== config.id) knownPeers.set(n.id, n.url);
      verified = a.verified ?? [];
      if (syncTarget === null && typeof a.master_index === 'number') syncTarget = a.master_index;
      checkSynced();
    },
    onFailure: (e) => {
      // Only silence is quiet at start: a master that answers and refuses (another
      // --cluster-name, a wrong token) is said at once.
      const refused = e instanceof Refused;
      const starting = !refused && !everReached && Date.now() < quietUntil;
      if (!warnedUnreachable) log(starting ? 'debug' : 'warn', starting ? 'master not answering yet' : refused ? 'the master refused this node' : 'master unreachable', { master: masterUrl, err: String((e as Error).message ?? e) });
      if (!starting) warnedUnreachable = true;
      masterReachable = false;
      if (unreachableSince === 0) unreachableSince = Date.now();
      if (opts.discover && Date.now() - unreachableSince >= config.downAfterMs) void discover();
    },
  });

  // This replica's log forked from the master's (it was master, or followed one, in an
  // epoch that lost): set its extra entries aside in a file, then ask for a snapshot.
  const resolveFork = async () => {
    if (resolvingFork || !applier.fork) return;
    resolvingFork = true;
    try {
      const master = masterUrl;
      const hashAt = async (i: number): Promise<string | null> => {
        const res = await client.get<{ entries?: { index: number; hash: string }[] }>(master, `/internal/log?from=${i}&max=1`, { timeoutMs: 5000 });
        const e = res.body?.entries?.[0];
        return e && e.index === i ? e.hash : null;
      };
      // Hashes chain, so "same entry at i" holds for a prefix: binary-search its end.
      let lo = Math.max(0, store.firstLogIndex() - 1);
      let hi = store.appliedIndex;
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        const theirs = await hashAt(mid);
        if (theirs !== null && theirs === store.hashAt(mid)) lo = mid;
        else hi = mid - 1;
      }
      const from = lo + 1;
      const entries = store.entriesJson(from, Number.MAX_SAFE_INTEGER);
      if (entries.length > 0) {
        const firstEpoch = (JSON.parse(entries[0].json) as { epoch: number }).epoch;
        const file = path.join(config.dataDir, `diverged-${firstEpoch}-${from}.jsonl`);
        const fd = fs.openSync(file, 'w', 0o600);
        try {
          fs.writeSync(fd, entries.map((e) => e.json).join('\n') + '\n');
          fs.fsyncSync(fd);
        } finally {
          fs.closeSync(fd);
        }
        log('error', 'entries the new master does not have were set aside; re-seeding from a snapshot', {
          file,
          from,
          to: entries[entries.length - 1].index,
          entries: entries.length,
          master: master,
        });
      }
      wantResync = true;
    } catch (e) {
      log('warn', 'could not compare logs with the master yet; will retry', { err: String(e) });
      setTimeout(() => void resolveFork(), config.heartbeatMs).unref();
    } finally {
      resolvingFork = false;
    }
  };

  const knownEpoch = () => Math.max(store.epoch, masterEpoch);

  // `epoch`: a forwarded request's own stamp when this node passes it on (the first
  // sender's view is kept). A node in a newer epoch refuses an older stamp: a write held up
  // in the network (a cut link retransmits for minutes) and delivered after a failover is
  // never applied late, after its client was told "unknown". A refusal this node gets back
  // while its client still waits only says it had not heard of the newer epoch yet (a
  // switchover a moment ago): it learns it from the refusal and sends once more.
  const forward = async (body: string, onBehalf: string | null, epoch?: number): Promise<Outcome> => {
    const stamp = epoch ?? knownEpoch();
    const first = await forwardOnce(body, onBehalf, stamp);
    if (epoch !== undefined || !staleStamp(first) || stamp >= knownEpoch()) return first;
    return forwardOnce(body, onBehalf, knownEpoch());
  };

  /** The master's answer refused the stamp as older than its epoch (executor.ts fenceForwarded); learns that epoch. */
  const staleStamp = (out: Outcome): boolean => {
    const err = out.body.error as { code?: unknown; outcome?: unknown; epoch?: unknown } | undefined;
    if (out.status !== 503 || err?.code !== 'MASTER_UNAVAILABLE' || err.outcome !== 'not_applied' || typeof err.epoch !== 'number') return false;
    masterEpoch = Math.max(masterEpoch, err.epoch);
    return true;
  };

  const forwardOnce = async (body: string, onBehalf: string | null, stamp: number): Promise<Outcome> => {
    const to = masterUrl;
    if (!to) throw new SqlfleetError('MASTER_UNAVAILABLE', 'no master is elected yet; nothing was applied, retry', { outcome: 'not_applied', retry_after_ms: 500 });
    const changed = masterChanged.signal;
    try {
      const res = await client.post<Record<string, unknown>>(to, '/', body, {
        timeoutMs: config.forwardTimeoutMs,
        headers: { 'x-sqlfleet-forwarded-by': String(config.id), 'x-sqlfleet-epoch': String(stamp), ...(onBehalf ? { 'x-sqlfleet-user': onBehalf } : {}) },
        signal: changed,
      });
      return { status: res.status, body: res.body ?? {} };
    } catch (e) {
      if (!(e instanceof PeerUnreachableError)) throw e;
      if (changed.aborted) {
        throw new SqlfleetError(
          'MASTER_UNAVAILABLE',
          `${masterUrl && masterUrl !== to ? `the master changed from ${to} to ${masterUrl}` : `the master at ${to} was replaced`} while the write was in flight; it may or may not have been applied (retry with the same idempotency_key)`,
          { master: masterUrl, outcome: 'unknown' },
        );
      }
      throw new SqlfleetError(
        'MASTER_UNAVAILABLE',
        e.sent
          ? `the master at ${to} did not answer in time; the write may or may not have been applied (check with a read)`
          : `the master at ${to} cannot be reached; nothing was applied`,
        { master: to, outcome: e.sent ? 'unknown' : 'not_applied' },
      );
    }
  };

  return {
    kind: 'slave',
    applier,
    masterReachable: () => masterReachable,
    followMaster: (url, why, epoch) => follow(url, why, epoch),
    knownEpoch,
    forward,
    masterUrl: () => masterUrl,
    diverged: () => applier.diverged,
    ready: () => {
      checkSynced();
      return synced;
    },
    peers: () => {
      const out = new Map<number, string | null>(knownPeers);
      for (const n of view) if (typeof n.id === 'number' && n.id !== config.id) out.set(n.id, typeof n.url === 'string' ? n.url : null);
      return [...out].map(([id, url]) => ({ id, url }));
    },
    nodes: () => {
      const nodes = view.map((n) => (n.id === config.id ? { ...n, applied_index: store.appliedIndex } : n));
      if (!masterReachable) {
        return nodes.length ? nodes.map((n) => (n.role === 'master' ? { ...n, state: 'down' } : n)) : [{ id: null, url: masterUrl, role: 'master', state: 'down' }];
      }
      return nodes;
    },
    statusExtra: () => ({
      master: masterUrl,
      master_reachable: masterReachable,
      epoch: store.epoch,
      verified,
      ...(applier.diverged ? { diverged: applier.diverged } : {}),
    }),
    append: (body) => {
      const req = body as AppendRequest;
      if (Array.isArray(req?.entries)) metrics.batch(req.entries.length);
      let answer;
      try {
        answer = applier.append(req, shippedStmts(req));
      } catch (e) {
        if (isSqlfleetError(e, 'STALE_EPOCH')) throw new SqlfleetError('STALE_EPOCH', e.message, { epoch: store.epoch, master: masterUrl });
        throw e;
      }
      // Whoever ships entries of the current epoch is the master.
      if (typeof req.master === 'string' && req.master && req.epoch >= store.epoch) follow(req.master, 'it shipped entries of the current epoch');
      if (!answer.ok && applier.fork) void resolveFork();
      if (syncTarget === null && typeof req.master_index === 'number') syncTarget = req.master_index;
      checkSynced();
      return { status: 200, body: answer as unknown as Record<string, unknown> };
    },
    heartbeat: () => {
      throw new SqlfleetError('NOT_MASTER', `this node is a slave; heartbeats go to the master at ${masterUrl}`, { master: masterUrl, epoch: knownEpoch() });
    },
    resyncNode: () => {
      throw new SqlfleetError('NOT_MASTER', `resync is ordered by the master at ${masterUrl}`, { master: masterUrl });
    },
    installSnapshot: async (body) => {
      const tmp = `${config.dbPath}.incoming`;
      await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream), fs.createWriteStream(tmp));
      const fd = fs.openSync(tmp, 'r+');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      const info = inspectSnapshot(tmp);
      if (info.epoch < store.epoch) throw new SqlfleetError('STALE_EPOCH', `snapshot from epoch ${info.epoch}; this node follows ${store.epoch}`, { epoch: store.epoch, master: masterUrl });
      await store.replaceFile(tmp);
      applier.reset();
      wantResync = false;
      waiter.notify();
      log('info', 'snapshot installed', { applied_index: store.appliedIndex });
      metrics.snapshot('installed', true);
      checkSynced();
      return { status: 200, body: { ok: true, applied_index: store.appliedIndex } };
    },
    removeNode: () => {
      throw new SqlfleetError('NOT_MASTER', `membership is managed by the master at ${masterUrl}`, { master: masterUrl });
    },
    start: (url) => {
      selfUrl = url;
      heartbeat.start();
      trimTimer = setInterval(() => {
        // A timer: an error here (disk full, I/O) is logged, never thrown out of the event loop.
        try {
          failpoint('trim');
          store.trimLog(store.appliedIndex - config.logRetain);
        } catch (e) {
          log('error', 'could not trim the log; keeping it and trying again', { err: e instanceof Error ? e.message : String(e) });
        }
      }, 5_000);
      trimTimer.unref();
    },
    stop: async () => {
      stopped = true;
      abortForwards(); // e.g. this node became master: its forwards to the old one end too
      heartbeat.stop();
      if (trimTimer) clearInterval(trimTimer);
    },
  };
}

/** The master answered the heartbeat, with a refusal (not silence). */
class Refused extends Error {}
