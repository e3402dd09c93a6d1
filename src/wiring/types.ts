// The role-specific half of a node (master or slave), as node.ts sees it.
import type { Outcome, ExecutorDeps } from '../core/executor.js';

/** What a role adds to the shared node: replication, liveness, its view of the cluster. */
export interface RoleParts {
  executor: Pick<ExecutorDeps, 'replicate' | 'forward' | 'masterUrl' | 'diverged' | 'epoch'>;
  /** Node list of /status. */
  nodes(): Record<string, unknown>[];
  /** Extra fields of /status. */
  statusExtra(): Record<string, unknown>;
  append(body: unknown): Outcome;
  heartbeat(body: unknown): Outcome;
  removeNode(id: number): Outcome;
  resyncNode(id: number): Outcome;
  installSnapshot(body: ReadableStream<Uint8Array>): Promise<Outcome>;
  /** Starts timers and loops once the node listens at `selfUrl`. */
  start(selfUrl: string): void;
  stop(): Promise<void>;
}
