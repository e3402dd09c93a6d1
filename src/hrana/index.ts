// The Hrana front (DESIGN §8): sessions over the node's executor dependencies, the stream
// registry, and the WebSocket listener. node.ts wires it; http/app.ts mounts its routes.
import type { Server } from 'node:http';
import { Counter, Gauge, type Registry } from 'prom-client';
import { SqlfleetError } from '../errors.js';
import type { Config } from '../config.js';
import { ANONYMOUS_ADMIN, CLUSTER, type Principal, type Users } from '../auth/users.js';
import { fenceForwarded, type ExecutorDeps } from '../core/executor.js';
import { Session, type SessionDeps } from '../core/session.js';
import { openRemote } from './remote.js';
import { Streams } from './streams.js';
import { serveHranaWs } from './ws.js';

/** The Hrana front of one node. */
export interface HranaFront {
  streams: Streams;
  /** Accepts WebSocket upgrades on the node's server. */
  attachWs(server: unknown, users: Users | null, isClusterToken: (authorization: string | undefined) => boolean): void;
  /** Adds the front's metrics to the node's registry: open streams, transaction outcomes. */
  registerMetrics(registry: Registry): void;
  /** Rolls back open transactions and closes every stream and socket. */
  close(): Promise<void>;
}

/** Builds the front from the executor's dependencies. */
export function createHrana(o: { deps: ExecutorDeps; config: Config; token: string; log: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void }): HranaFront {
  const { config } = o;
  let txOutcomes: Counter<'outcome'> | null = null;
  const outcomeCounters = new Map<string, { inc(): void }>();
  const sessionDeps: SessionDeps = {
    observeTx: (outcome) => {
      if (!txOutcomes) return;
      let c = outcomeCounters.get(outcome);
      if (!c) outcomeCounters.set(outcome, (c = txOutcomes.labels(outcome)));
      c.inc();
    },
    ...o.deps,
    txTimeoutMs: config.txTimeoutMs,
    // A relayed stream this node passes on keeps its stamp and is never resent: its first
    // sender may have given up on it (held up in a cut, delivered after the heal).
    openRemote: (who, stamp) =>
      openRemote({ masterUrl: o.deps.masterUrl, epoch: stamp === undefined ? o.deps.knownEpoch : () => stamp, resend: stamp === undefined, token: o.token, timeoutMs: config.forwardTimeoutMs }, who),
  };
  const streams = new Streams(
    { maxStreams: config.maxStreams, maxStreamsPerUser: config.maxStreamsPerUser, idleMs: config.streamIdleMs },
    (who, stamp) => new Session(sessionDeps, who, stamp),
    (stamp) => fenceForwarded(stamp, o.deps),
  );
  let closeWs = () => undefined as void;
  return {
    streams,
    attachWs(server, users, isClusterToken) {
      const authenticate = async (jwt: string | null): Promise<Principal> => {
        const header = jwt ? `Bearer ${jwt}` : undefined;
        if (isClusterToken(header)) return CLUSTER;
        if (!users) return ANONYMOUS_ADMIN;
        const p = await users.authenticate(header);
        if (!p) throw new SqlfleetError('UNAUTHORIZED', jwt ? 'wrong credentials' : 'credentials required: pass an API token as authToken');
        return p;
      };
      closeWs = serveHranaWs(server as Server, { streams, authenticate, maxMessage: config.maxBody, log: o.log });
    },
    registerMetrics(registry) {
      const registers = [registry];
      new Gauge({ name: 'sqlfleet_hrana_streams', help: 'Open Hrana streams (HTTP batons and WebSocket streams).', registers, collect() { this.set(streams.size); } });
      outcomeCounters.clear();
      txOutcomes = new Counter({ name: 'sqlfleet_transactions_total', help: 'Interactive (Hrana) write transactions on this node by outcome: commit, rollback, timeout (--tx-timeout), aborted (role lost, SQLite rolled back).', labelNames: ['outcome'], registers });
    },
    async close() {
      closeWs();
      await streams.closeAll();
    },
  };
}
