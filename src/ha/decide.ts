// The HA decision (Patroni's design): one pure step from (what etcd shows, what this node
// is) to one action. No I/O here, so a table of states tests it without etcd.
import type { EtcdView } from './etcd.js';

/** What this node knows of itself when it decides. */
export interface LocalState {
  id: number;
  isMaster: boolean;
  applied: number;
  /** Started as `npm run master` (node 0): on a fresh cluster it is the one to lead. */
  initialMaster: boolean;
  /** Up for less than one lease TTL: on a fresh cluster, give node 0 time to appear first. */
  starting: boolean;
  /** This node's current etcd lease: a leader key bound to it was handed over by a switchover. */
  lease?: string | null;
  /** Other nodes of the numSlaves range, during the first second: a fresh cluster's first master waits until they published, to take the key with them in the sync set. */
  expected?: number[];
}

/** The one thing the loop does this cycle. */
export type Action =
  | { kind: 'renew' }
  | { kind: 'acquire' }
  | { kind: 'assume'; epoch: number }
  | { kind: 'follow'; url: string; epoch: number }
  | { kind: 'demote'; url: string | null; why: string; epoch?: number }
  | { kind: 'wait'; why: string; soon?: boolean };

/** Decides this cycle's action. */
export function decide(view: EtcdView, me: LocalState): Action {
  const { leader, sync } = view;
  if (leader) {
    if (leader.id === me.id) {
      if (me.isMaster) return { kind: 'renew' };
      // A switchover wrote the key for this node, bound to its live lease: serve as master.
      if (me.lease && view.leaderLease === me.lease) return { kind: 'assume', epoch: leader.epoch };
      return { kind: 'wait', why: 'the leader key names this node from an earlier run; waiting for its lease to expire' };
    }
    if (me.isMaster) return { kind: 'demote', url: leader.url, why: `node ${leader.id} holds the leader key`, epoch: leader.epoch };
    return { kind: 'follow', url: leader.url, epoch: leader.epoch };
  }
  if (me.isMaster) return { kind: 'demote', url: null, why: 'the leader key is gone (lease expired)' };
  // Only a member of the sync set may lead: it has every write acknowledged with ack "all".
  const eligible = (id: number) => (sync ? sync.leader === id || sync.members.includes(id) : true);
  if (!eligible(me.id)) return { kind: 'wait', why: `not in the sync set [${sync?.members.join(',')}]` };
  const rivals = view.members.filter((m) => m.id !== me.id && eligible(m.id));
  const ahead = rivals.find((m) => m.applied > me.applied);
  if (ahead) return { kind: 'wait', why: `node ${ahead.id} is more advanced (${ahead.applied} > ${me.applied})` };
  if (!sync && me.initialMaster && me.starting && me.applied === 0 && me.expected) {
    const missing = me.expected.filter((id) => !view.members.some((m) => m.id === id));
    if (missing.length) return { kind: 'wait', why: `fresh cluster: waiting (at most 1 s after start) for nodes ${missing.join(',')} to appear, to lead with them in the sync set`, soon: true };
  }
  if (!sync && !me.initialMaster) {
    // A fresh cluster: node 0 (the initial master) leads when it is there and not behind.
    const first = rivals.find((m) => m.id === 0 && m.applied >= me.applied);
    if (first) return { kind: 'wait', why: 'fresh cluster: the initial master (node 0) takes the lead' };
    if (me.starting && me.applied === 0) return { kind: 'wait', why: 'fresh cluster: giving the initial master (node 0) one lease TTL to appear' };
  }
  return { kind: 'acquire' };
}

/** Why no node will take the leader key without an operator, by a stable reason code. */
export interface Masterless {
  reason: 'sync_set_empty' | 'sync_members_gone';
  why: string;
}

/**
 * Null while a master holds the key or some node may still take it (a fresh cluster, or a
 * sync-set member is alive). Otherwise the cluster is without a master until the lost one
 * returns or an operator forces a promotion: say so, with the reason.
 */
export function masterless(view: EtcdView): Masterless | null {
  const { leader, sync } = view;
  if (leader || !sync) return null;
  const eligible = [sync.leader, ...sync.members];
  if (view.members.some((m) => eligible.includes(m.id))) return null;
  if (sync.members.length === 0) {
    return { reason: 'sync_set_empty', why: `the master (node ${sync.leader}) is gone and its sync set was empty: no other node is known to hold every write it acknowledged` };
  }
  return { reason: 'sync_members_gone', why: `the master (node ${sync.leader}) and every member of its sync set [${sync.members.join(',')}] are gone` };
}
