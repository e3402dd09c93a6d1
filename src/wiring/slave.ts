// Wires a slave: applies what the master ships, heartbeats to it, forwards writes to it.
import fs from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Config } from '../config.js';
import { SqlfleetError } from '../errors.js';
import { Heartbeat, type HeartbeatAnswer } from '../cluster/heartbeat.js';
import type { IndexWaiter } from '../core/index-waiter.js';
import type { Outcome } from '../core/executor.js';
import type { LogFn } from '../log.js';
import type { Metrics } from '../metrics.js';
import { Applier, type AppendRequest } from '../replication/applier.js';
import { PeerUnreachableError, type PeerClient } from '../replication/client.js';
import { inspectSnapshot } from '../store/snapshot.js';
import type { Store } from '../store/store.js';
import type { RoleParts } from './types.js';

/** Builds a slave's role parts. */
export function wireSlave(config: Config, store: Store, client: PeerClient, waiter: IndexWaiter, log: LogFn, metrics: Metrics): RoleParts {
  const masterUrl = config.masterUrl;
  let selfUrl = '';
  let view: Record<string, unknown>[] = [];
  let verified: unknown[] = [];
  let masterReachable = false;
  let warnedUnreachable = false;
  let trimTimer: NodeJS.Timeout | null = null;
  const applier = new Applier(store, () => waiter.notify(), log);
  const heartbeat = new Heartbeat({
    intervalMs: config.heartbeatMs,
    send: async () => {
      const res = await client.post<HeartbeatAnswer>(
        masterUrl,
        '/internal/heartbeat',
        { id: config.id, url: selfUrl, applied_index: store.appliedIndex, join: config.join !== null },
        { timeoutMs: Math.max(1000, config.heartbeatMs * 2) },
      );
      if (res.status !== 200) throw new Error(`master answered ${res.status}: ${JSON.stringify(res.body)}`);
      return res.body;
    },
    onAnswer: (a) => {
      if (!masterReachable) log('info', 'master reachable', { master: masterUrl });
      masterReachable = true;
      warnedUnreachable = false;
      view = a.nodes ?? [];
      verified = a.verified ?? [];
    },
    onFailure: (e) => {
      if (!warnedUnreachable) log('warn', 'master unreachable', { master: masterUrl, err: String((e as Error).message ?? e) });
      warnedUnreachable = true;
      masterReachable = false;
    },
  });

  const forward = async (body: string, onBehalf: string | null): Promise<Outcome> => {
    try {
      const res = await client.post<Record<string, unknown>>(masterUrl, '/', body, {
        timeoutMs: config.forwardTimeoutMs,
        headers: { 'x-sqlfleet-forwarded-by': String(config.id), ...(onBehalf ? { 'x-sqlfleet-user': onBehalf } : {}) },
      });
      return { status: res.status, body: res.body ?? {} };
    } catch (e) {
      if (!(e instanceof PeerUnreachableError)) throw e;
      throw new SqlfleetError(
        'MASTER_UNAVAILABLE',
        e.sent
          ? `the master at ${masterUrl} did not answer in time; the write may or may not have been applied (check with a read)`
          : `the master at ${masterUrl} cannot be reached; nothing was applied`,
        { master: masterUrl, outcome: e.sent ? 'unknown' : 'not_applied' },
      );
    }
  };

  return {
    executor: {
      epoch: () => store.epoch,
      masterUrl: () => masterUrl,
      diverged: () => applier.diverged,
      forward,
    },
    nodes: () => {
      const nodes = view.map((n) => (n.id === config.id ? { ...n, applied_index: store.appliedIndex } : n));
      if (!masterReachable) {
        return nodes.length
          ? nodes.map((n) => (n.role === 'master' ? { ...n, state: 'down' } : n))
          : [{ id: 0, url: masterUrl, role: 'master', state: 'down' }];
      }
      return nodes;
    },
    statusExtra: () => ({ master: masterUrl, master_reachable: masterReachable, epoch: store.epoch, verified, ...(applier.diverged ? { diverged: applier.diverged } : {}) }),
    append: (body) => {
      const req = body as AppendRequest;
      if (Array.isArray(req?.entries)) metrics.batch(req.entries.length);
      const answer = applier.append(req);
      return { status: 200, body: answer as unknown as Record<string, unknown> };
    },
    heartbeat: () => {
      throw new SqlfleetError('NOT_MASTER', `this node is a slave; heartbeats go to the master at ${masterUrl}`);
    },
    resyncNode: () => {
      throw new SqlfleetError('NOT_MASTER', `resync is ordered by the master at ${masterUrl}`);
    },
    installSnapshot: async (body) => {
      const tmp = `${config.dbPath}.incoming`;
      await pipeline(Readable.fromWeb(body as import('node:stream/web').ReadableStream), fs.createWriteStream(tmp));
      const fd = fs.openSync(tmp, 'r+');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      const info = inspectSnapshot(tmp);
      if (info.epoch < store.epoch) throw new SqlfleetError('STALE_EPOCH', `snapshot from epoch ${info.epoch}; this node follows ${store.epoch}`);
      await store.replaceFile(tmp);
      applier.reset();
      waiter.notify();
      log('info', 'snapshot installed', { applied_index: store.appliedIndex });
      metrics.snapshot('installed', true);
      return { status: 200, body: { ok: true, applied_index: store.appliedIndex } };
    },
    removeNode: () => {
      throw new SqlfleetError('NOT_MASTER', `membership is managed by the master at ${masterUrl}`);
    },
    start: (url) => {
      selfUrl = url;
      heartbeat.start();
      trimTimer = setInterval(() => store.trimLog(store.appliedIndex - config.logRetain), 5_000);
      trimTimer.unref();
    },
    stop: async () => {
      heartbeat.stop();
      if (trimTimer) clearInterval(trimTimer);
    },
  };
}
