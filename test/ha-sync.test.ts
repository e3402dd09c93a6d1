// The sync set's order of writes (Patroni's invariant), the "no node may take over" verdict
// and the ack tracker's released index: pure, no etcd, no processes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Member } from '../src/cluster/membership.js';
import { decide, masterless } from '../src/ha/decide.js';
import type { EtcdView, MemberValue } from '../src/ha/etcd.js';
import { SyncSet } from '../src/ha/syncset.js';
import { AckTracker } from '../src/replication/acks.js';

const member = (id: number, applied = 5): MemberValue => ({ id, url: `http://n${id}`, applied, epoch: 1 });
const view = (v: Partial<EtcdView>): EtcdView => ({ leader: null, leaderRaw: null, leaderLease: null, sync: null, members: [], lastMaster: null, ...v });

test('masterless: only when the key is gone and no sync-set member is alive', () => {
  assert.equal(masterless(view({ leader: { id: 0, url: 'u', epoch: 1 }, sync: { leader: 0, members: [] } })), null, 'a master holds the key');
  assert.equal(masterless(view({ members: [member(1)] })), null, 'a fresh cluster: anyone may campaign');
  assert.equal(masterless(view({ sync: { leader: 0, members: [1] }, members: [member(1), member(2)] })), null, 'member 1 campaigns');
  assert.equal(masterless(view({ sync: { leader: 0, members: [] }, members: [member(0), member(1)] })), null, 'the old master is back');
  assert.equal(masterless(view({ sync: { leader: 0, members: [] }, members: [member(1), member(2)] }))?.reason, 'sync_set_empty');
  assert.equal(masterless(view({ sync: { leader: 0, members: [1] }, members: [member(2)] }))?.reason, 'sync_members_gone');
});

test('decide: a leader key naming this node is served (switchover) only when bound to this node\'s live lease', () => {
  const me = { id: 1, isMaster: false, applied: 5, initialMaster: false, starting: false, lease: '77' };
  const key = { leader: { id: 1, url: 'http://n1', epoch: 9 }, leaderRaw: 'k', sync: { leader: 1, members: [0, 2] }, members: [member(0), member(1), member(2)] };
  assert.deepEqual(decide(view({ ...key, leaderLease: '77' }), me), { kind: 'assume', epoch: 9 }, 'handed over: serve as master');
  assert.equal(decide(view({ ...key, leaderLease: '66' }), me).kind, 'wait', 'a key from an earlier run of this node: wait for it to expire');
  assert.equal(decide(view({ ...key, leaderLease: '77' }), { ...me, lease: null }).kind, 'wait', 'no lease yet');
  assert.equal(decide(view({ ...key, leaderLease: '77' }), { ...me, isMaster: true }).kind, 'renew');
  assert.deepEqual(decide(view({ ...key, leaderLease: '77' }), { ...me, id: 0, isMaster: true }), { kind: 'demote', url: 'http://n1', why: 'node 1 holds the leader key', epoch: 9 }, 'the old master follows');
});

test('decide: a fresh cluster\'s first master waits, while starting, until the other nodes of its range published (it leads with them in the sync set)', () => {
  const me = { id: 0, isMaster: false, applied: 0, initialMaster: true, starting: true, expected: [1, 2] };
  const w = decide(view({ members: [member(0, 0), member(1, 0)] }), me);
  assert.equal(w.kind, 'wait');
  assert.equal(w.kind === 'wait' && w.soon, true, 'looks again soon');
  assert.equal(decide(view({ members: [member(0, 0), member(1, 0), member(2, 0)] }), me).kind, 'acquire');
  assert.equal(decide(view({ members: [member(0, 0)] }), { ...me, starting: false }).kind, 'acquire', 'not past one lease TTL');
  assert.equal(decide(view({ members: [member(0, 0)], sync: { leader: 0, members: [] } }), me).kind, 'acquire', 'not on a cluster that had a master');
});

/** A SyncSet whose etcd writes wait until released by the test. */
function rig() {
  const writes: { members: number[]; done: (ok: boolean) => void; fail: (e: Error) => void }[] = [];
  const set = new SyncSet((members) => new Promise<boolean>((done, fail) => writes.push({ members, done, fail })));
  const tick = () => new Promise((r) => setImmediate(r));
  return { set, writes, tick };
}

test('SyncSet: add is local at once and in etcd after; drop is in etcd first and local after; a failed drop keeps the member', async () => {
  const { set, writes, tick } = rig();
  set.reset([]);
  assert.ok(set.published());
  const added = set.add([2, 1]);
  assert.ok(set.has(1) && set.has(2), 'acks wait for them before etcd knows');
  assert.equal(set.published(), false);
  await tick();
  assert.deepEqual(writes[0].members, [1, 2]);
  writes[0].done(true);
  await added;
  assert.ok(set.published());

  const dropped = set.drop([1]);
  await tick();
  assert.deepEqual(writes[1].members, [2]);
  assert.ok(set.has(1), 'still waited for until etcd dropped it');
  writes[1].done(true);
  assert.deepEqual(await dropped, [1]);
  assert.equal(set.has(1), false);

  const failed = set.drop([2]);
  await tick();
  writes[2].fail(new Error('etcd down'));
  await assert.rejects(failed, /etcd down/);
  assert.ok(set.has(2), 'a drop etcd did not record keeps the member');
  assert.equal(set.published(), false, 'the outcome of the failed write is unknown');
  const again = set.sync();
  await tick();
  assert.deepEqual(writes[3].members, [2]);
  writes[3].done(true);
  await again;
  assert.ok(set.published());
});

test('SyncSet: a write refused because the key is no longer ours rejects', async () => {
  const { set, writes, tick } = rig();
  set.reset([1]);
  const p = set.add([2]);
  await tick();
  writes[0].done(false);
  await assert.rejects(p, /no longer this node/);
});

test('AckTracker: released is the highest index whose wait ended, at any level', async () => {
  const slaves: Member[] = [{ id: 1, url: 'u', state: 'up', applied: 0, lastSeen: 1, joined: false, confirmed: true }];
  const acks = new AckTracker(() => slaves, () => true);
  const w = acks.wait(3, 'all', 10_000);
  assert.equal(acks.released, 0);
  await acks.wait(4, 'master', 10_000);
  assert.equal(acks.released, 4);
  slaves[0].applied = 3;
  acks.check();
  assert.deepEqual((await w).replicated_to, [1]);
  assert.equal(acks.released, 4);
});
