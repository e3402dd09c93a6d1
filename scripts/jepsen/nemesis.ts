// Nemeses of the Jepsen-style test (issue 27), on a schedule: each round waits for a healthy
// cluster, finds the current master, injects one fault for a while, then repairs it:
//   kill       SIGKILL of the master, restarted on its data dir and port
//   pause      SIGSTOP of the master past the lease TTL, then SIGCONT
//   partition  the master cut off from the other nodes and etcd (network namespaces); the
//              test's clients still reach it — a deposed master must stop answering
//   partition-slave  a slave's link taken down: nobody reaches it, it reaches nobody
//   etcd-kill  (etcd mode) SIGKILL of the etcd member, restarted on its data
//   switchover (static mode) POST /nodes/<slave>/promote, and back to node 0 at the end
// Every fault's start and end goes into the history as a nemesis event.

import { setTimeout as delay } from 'node:timers/promises';
import type { TestNode } from '../../test/helpers/cluster.js';
import { freeze, hardKill, relaunch, thaw } from '../../test/helpers/load.js';
import type { Recorder } from './history.js';
import { agreedMaster, waitHealthy, type Rig } from './rig.js';

/** A kind of fault. */
export type NemesisKind = 'kill' | 'pause' | 'partition' | 'partition-slave' | 'etcd-kill' | 'switchover';
/** Every nemesis, in the order a run takes them. */
export const NEMESES: readonly NemesisKind[] = ['partition', 'kill', 'pause', 'partition-slave', 'etcd-kill', 'switchover'];

/** Whether `kind` applies to this rig (namespaces for partitions, etcd, static mode for switchovers). */
export function applicable(rig: Rig, kind: NemesisKind): boolean {
  if (kind === 'partition' || kind === 'partition-slave') return rig.net !== undefined;
  if (kind === 'etcd-kill') return rig.etcd !== undefined;
  if (kind === 'switchover') return rig.mode === 'static';
  return true;
}

/** Schedule: how long a fault lasts and how long the cluster runs quietly between faults. */
export interface NemesisSchedule {
  readonly kinds: readonly NemesisKind[];
  readonly faultMs: number;
  readonly quietMs: number;
}

/** Runs faults in turn until `stopped()`; returns the number of faults injected per kind. */
export async function runNemesis(rig: Rig, rec: Recorder, sched: NemesisSchedule, stopped: () => boolean, log: (s: string) => void): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const kinds = sched.kinds.filter((k) => applicable(rig, k));
  if (kinds.length === 0) return counts;
  const sleep = async (ms: number): Promise<void> => {
    const end = Date.now() + ms;
    while (!stopped() && Date.now() < end) await delay(Math.min(200, end - Date.now()));
  };
  for (let round = 0; !stopped(); round++) {
    await sleep(sched.quietMs);
    if (stopped()) break;
    const master = (await agreedMaster(rig)) ?? rig.nodes.find((n) => n.running);
    if (!master) break;
    const kind = kinds[round % kinds.length]!;
    const target = kind === 'partition-slave' || kind === 'switchover' ? rig.nodes.find((n) => n !== master && n.running)! : master;
    let repair: () => Promise<void>;
    try {
      repair = await inject(rig, kind, target, master);
    } catch (e) {
      log(`nemesis: ${kind} could not be injected: ${(e as Error).message}`);
      rec.note('nemesis-error', { kind, error: (e as Error).message });
      continue;
    }
    rec.note(`${kind}-start`, { node: kind === 'etcd-kill' ? 'etcd' : target.id });
    log(`nemesis: ${kind} ${kind === 'etcd-kill' ? 'etcd' : `node ${target.id}`}`);
    counts[kind] = (counts[kind] ?? 0) + 1;
    await delay(sched.faultMs); // a fault always runs its full length, even when the run ends
    await repair();
    rec.note(`${kind}-end`, { node: kind === 'etcd-kill' ? 'etcd' : target.id });
    const t0 = Date.now();
    try {
      const m = await waitHealthy(rig, 45_000);
      log(`nemesis: ${kind} repaired, master node ${m.id} after ${Date.now() - t0} ms`);
    } catch (e) {
      log(`nemesis: cluster not healthy 45 s after repairing ${kind}: ${(e as Error).message}`);
      rec.note('unhealthy', { after: kind });
    }
  }
  return counts;
}

/** Asks `master` to hand over to node `id` (static mode), as `npm run promote` does. */
async function promote(rig: Rig, master: TestNode, id: number): Promise<void> {
  const res = await fetch(`${master.url}/nodes/${id}/promote`, { method: 'POST', headers: { authorization: `Bearer ${rig.token}`, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(30_000) });
  if (!res.ok) throw new Error(`promote ${id} via ${master.url}: ${res.status} ${await res.text()}`);
}

/** Starts a fault on `node`; the returned function ends it. */
async function inject(rig: Rig, kind: NemesisKind, node: TestNode, master: TestNode): Promise<() => Promise<void>> {
  switch (kind) {
    case 'partition-slave':
      rig.net!.cut(node.id);
      return async () => rig.net!.heal(node.id);
    case 'etcd-kill':
      await rig.etcd!.kill();
      return () => rig.etcd!.start();
    case 'switchover':
      await promote(rig, master, node.id);
      return async () => {
        // Back to node 0, so that kill (which restarts a node with its original role) stays valid.
        const m = await waitHealthy(rig, 30_000);
        if (m.id !== 0) await promote(rig, m, 0);
      };
    case 'kill':
      await hardKill(node);
      return () => relaunch(node);
    case 'pause':
      freeze(node);
      return async () => thaw(node);
    case 'partition': {
      const peers = rig.peersOf(node);
      for (const h of peers) rig.net!.cutBetween(node.id, h);
      return async () => {
        for (const h of peers) rig.net!.healBetween(node.id, h);
      };
    }
  }
}

/** Repairs anything a failed run may have left: thaws every node, heals every link. */
export function repairAll(rig: Rig): void {
  for (const n of rig.nodes) {
    try {
      thaw(n);
    } catch {
      // exited
    }
  }
  if (rig.net) {
    for (const a of rig.nodes) {
      rig.net.heal(a.id);
      for (const b of rig.peersOf(a)) rig.net.healBetween(a.id, b);
    }
  }
}
