// What a write's answer and /status report (issue 32, item 15), without a cluster: the ack
// tracker's `lagging` (named only when a wait ran out, as the README defines it), and
// rqlite's runtime.num_cpu (the CPUs this process may use, not a constant 1 on Node 20).

import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { test } from 'node:test';
import type { Member } from '../src/cluster/membership.js';
import { withRqliteStatus } from '../src/http/rqlite.js';
import { AckTracker } from '../src/replication/acks.js';

const member = (id: number, applied: number): Member => ({ id, url: `http://s${id}`, state: 'up', applied, lastSeen: Date.now(), joined: false, confirmed: true });

test('ack "one": answered when one slave has it; the slaves still behind are not "lagging"', async () => {
  const slaves = [member(1, 5), member(2, 3)];
  const t = new AckTracker(() => slaves, () => true);
  assert.deepEqual(await t.wait(5, 'one', 10_000), { replicated_to: [1], lagging: [], missing: [] });
  // Answered while waiting: slave 2 applies 6 first, slave 1 is still behind.
  const pending = t.wait(6, 'one', 10_000);
  slaves[1]!.applied = 6;
  t.check();
  assert.deepEqual(await pending, { replicated_to: [2], lagging: [], missing: [] });
});

test('ack "master": never waits and names no lagging slave', async () => {
  const t = new AckTracker(() => [member(1, 0), member(2, 0)], () => true);
  assert.deepEqual(await t.wait(1, 'master', 10_000), { replicated_to: [], lagging: [], missing: [] });
});

test('ack "one" that runs out of --ack-timeout names the expected slaves as lagging', async () => {
  const t = new AckTracker(() => [member(1, 0), member(2, 0)], (m) => m.id === 1);
  assert.deepEqual(await t.wait(1, 'one', 30), { replicated_to: [], lagging: [1], missing: [] });
});

test('ack "all": lagging (after the timeout) and missing as before', async () => {
  const down = { ...member(2, 0), state: 'down' as const };
  const t = new AckTracker(() => [member(1, 0), down, member(3, 1)], (m) => m.state !== 'down');
  assert.deepEqual(await t.wait(1, 'all', 30), { replicated_to: [3], lagging: [1], missing: [1, 2] });
});

test('/status runtime.num_cpu is os.availableParallelism()', () => {
  const s = withRqliteStatus({ url: 'http://127.0.0.1:1', node: 0, role: 'master' }, true, false) as { runtime: { num_cpu: number } };
  assert.equal(s.runtime.num_cpu, availableParallelism());
});
