// The node's role at run time: which parts (master or follower) run now, swapped as one
// unit at failover and switchover, and remembered in <data-dir>/node-<id>.role.json so a
// restarted node comes back as what it last was (not as what its command line first said).
import { failpoint } from '../failpoints.js';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config.js';
import { SqlfleetError } from '../errors.js';
import type { IndexWaiter } from '../core/index-waiter.js';
import type { Outcome, Replicate } from '../core/executor.js';
import type { LogFn } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { PeerClient } from '../replication/client.js';
import type { Store } from '../store/store.js';
import { wireMaster, type HaHooks, type MasterParts } from './master.js';
import { wireSlave, type FollowerParts } from './slave.js';
import type { Peer } from './types.js';

/** What the role file holds. It is not in the database: a snapshot must not carry it. */
export interface SavedRole {
  role: 'master' | 'slave';
  /** The master followed (slave). */
  master?: string;
  epoch: number;
  /** Every other node known, so a restarted node can find the current master. */
  peers: Peer[];
}

/** Reads the role file, or null when there is none (first start: the command line decides). */
export function readRole(config: Config): SavedRole | null {
  try {
    const v = JSON.parse(fs.readFileSync(rolePath(config), 'utf8')) as SavedRole;
    return v && (v.role === 'master' || v.role === 'slave') ? v : null;
  } catch {
    return null;
  }
}

/** Where the role file of this node is (start-up says so when it finds one). */
export function rolePath(config: Config): string {
  return path.join(config.dataDir, `node-${config.id}.role.json`);
}

/** Writes the role file atomically (temp file, fsync, rename). */
function writeRole(config: Config, saved: SavedRole): void {
  const file = rolePath(config);
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, 'w', 0o600);
  try {
    fs.writeSync(fd, JSON.stringify(saved));
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

/** The shared pieces every role is built from. */
export interface RoleDeps {
  config: Config;
  store: Store;
  client: PeerClient;
  waiter: IndexWaiter;
  log: LogFn;
  metrics: Metrics;
}

type Parts = MasterParts | FollowerParts;

/** Holds the current role's parts and swaps them. */
export class Roles {
  private parts!: Parts;
  private selfUrl = '';
  private switching: Promise<void> = Promise.resolve();
  /** Counts role changes asked for: a failed one is retried only while no newer one was asked. */
  private swaps = 0;
  private stopping = false;
  private peerTimer: NodeJS.Timeout | null = null;
  private savedPeers = '';
  /** Write side handed to the executor: whatever the current master parts are, or a refusal. */
  readonly replicate: () => Replicate;

  constructor(private readonly d: RoleDeps) {
    this.replicate = () => {
      const p = this.parts;
      if (p.kind === 'master' && p.replicate) return p.replicate;
      return refuseWrites(p.masterUrl());
    };
  }

  /** The parts running now. */
  get current(): Parts {
    return this.parts;
  }

  /** Builds the first role: the saved one, else the command line's. */
  init(saved: SavedRole | null, follow: string | null): void {
    const { config, store } = this.d;
    if (follow) this.parts = this.follower(follow, saved?.peers ?? []);
    else if ((saved?.role ?? config.role) === 'master') this.parts = this.master(Math.max(store.epoch, 1), saved?.peers);
    else this.parts = this.follower(saved?.master ?? config.masterUrl, saved?.peers ?? []);
    this.save();
  }

  /** etcd mode: starts as a follower of nobody; the HA loop names the master. */
  initFollower(saved: SavedRole | null): void {
    this.parts = this.follower('', saved?.peers ?? []);
  }

  /** Starts the current parts once the node listens. */
  start(selfUrl: string): void {
    this.selfUrl = selfUrl;
    this.parts.start(selfUrl);
    // Peers' URLs are learned at run time: keep the role file's list fresh.
    this.peerTimer = setInterval(() => this.save(), 500);
    this.peerTimer.unref();
  }

  /** etcd mode: the HA loop's hooks, lent to every master this node becomes. */
  ha: HaHooks | null = null;

  /** Becomes master in `epoch` (stored before the first write) knowing `peers`. */
  becomeMaster(epoch: number, peers: Peer[]): Promise<void> {
    return this.swap(() => this.master(epoch, peers));
  }

  /** Becomes a follower of `masterUrl`. */
  becomeFollower(masterUrl: string, epoch = 0): Promise<void> {
    return this.swap(() => this.follower(masterUrl, this.parts.peers(), epoch));
  }

  /** DELETE /nodes/:id: the role file forgets the node at once, so a restart right after does not bring it back. */
  removeNode(id: number): Outcome {
    const out = this.parts.removeNode(id);
    this.save();
    return out;
  }

  /** Stops the current parts. */
  async stop(): Promise<void> {
    if (this.peerTimer) clearInterval(this.peerTimer);
    this.stopping = true;
    await this.switching;
    this.save();
    await this.parts.stop();
  }

  private swap(build: () => Parts): Promise<void> {
    const gen = ++this.swaps;
    const next = this.switching.then(async () => {
      const old = this.parts;
      await old.stop();
      failpoint('swap');
      this.parts = build();
      this.save();
      this.d.log('info', 'role changed', { from: old.kind, to: this.parts.kind, epoch: this.d.store.epoch, master: this.parts.kind === 'master' ? this.selfUrl : this.parts.masterUrl() });
      if (this.selfUrl) this.parts.start(this.selfUrl);
    });
    this.switching = next.catch((e: unknown) => {
      // The old parts are stopped (a deposed master refuses writes, reads go on): try the
      // same change again in a second, unless a newer one was asked for meanwhile.
      this.d.log('error', 'role change failed; retrying in 1 s', { from: this.parts.kind, err: e instanceof Error ? e.message : String(e) });
      setTimeout(() => {
        if (!this.stopping && gen === this.swaps) this.swap(build).catch(() => undefined);
      }, 1000).unref();
    });
    return next;
  }

  private master(epoch: number, peers?: Peer[]): MasterParts {
    const { config, store, client, waiter, log, metrics } = this.d;
    return wireMaster(config, store, client, waiter, log, metrics, {
      epoch,
      peers,
      ...(this.ha ? { ha: this.ha } : {}),
      onDeposed: (url, newer) => {
        // The failure is logged by swap(); nothing awaits this promise.
        if (url) this.becomeFollower(url, newer).catch(() => undefined);
        else this.swap(() => this.follower(config.masterUrl, this.parts.peers())).catch(() => undefined);
      },
    });
  }

  /** `epoch`: the master's, when known (a deposed master is told it), so forwards are stamped with it at once. */
  private follower(masterUrl: string, peers: Peer[], epoch = 0): FollowerParts {
    const { config, store, client, waiter, log, metrics } = this.d;
    return wireSlave(config, store, client, waiter, log, metrics, { masterUrl, masterEpoch: epoch, peers, onFollow: () => this.save(), discover: !this.ha });
  }

  private save(): void {
    const p = this.parts;
    const peers = p.peers().filter((x) => x.id !== this.d.config.id);
    const saved: SavedRole = p.kind === 'master' ? { role: 'master', epoch: p.epoch, peers } : { role: 'slave', master: p.masterUrl(), epoch: this.d.store.epoch, peers };
    const text = JSON.stringify(saved);
    if (text === this.savedPeers) return;
    try {
      writeRole(this.d.config, saved);
      this.savedPeers = text;
    } catch (e) {
      this.d.log('error', 'could not write the role file', { err: String(e) });
    }
  }
}

function refuseWrites(masterUrl: string): Replicate {
  const no = (): never => {
    throw new SqlfleetError('MASTER_UNAVAILABLE', `this node is not the master (the master is ${masterUrl}); nothing was applied, retry`, {
      master: masterUrl,
      outcome: 'not_applied',
    });
  };
  return { admit: no, check: no, done: () => undefined, onWrite: no, waitAcks: no, settle: no };
}
