// The role-specific half of a node (master or follower), as node.ts sees it. A node swaps
// one RoleParts for another at failover and switchover; nothing of the old one keeps running.
import type { Outcome, ForwardFn, Replicate } from '../core/executor.js';

/** A node another node knows: id and URL (null until it was heard from). */
export interface Peer {
  id: number;
  url: string | null;
  /** false: known to be unreachable (a failover's old master): writes do not wait for it to appear. */
  reachable?: boolean;
}

/** What a role adds to the shared node: replication, liveness, its view of the cluster. */
export interface RoleParts {
  readonly kind: 'master' | 'slave';
  /** Master only. */
  readonly replicate?: Replicate;
  /** Follower only. */
  readonly forward?: ForwardFn;
  masterUrl(): string;
  /** Non-null when this replica stopped applying. */
  diverged(): string | null;
  /** True once the node serves what /health promises (a follower: synced with its master once). */
  ready(): boolean;
  /** Every other node this one knows, for a promotion. */
  peers(): Peer[];
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
  /** Stops every timer, loop and waiter of the role. */
  stop(): Promise<void>;
}
