// Real partitions in etcd mode (DESIGN §6, issue 13): etcd and three nodes on their own
// network-namespace hosts, concurrent ack "all" writers on the master and the slaves.
// (a) The master is cut off from etcd and both slaves while the test's clients still reach
//     it — the split-brain setup SIGKILL/SIGSTOP never show: it must stop acknowledging
//     within the lease TTL, a slave takes over, and after healing it follows, its
//     unacknowledged entries set aside in diverged-*.jsonl.
// (b) One slave's host is cut off: it leaves the sync set, writes go on naming it
//     `missing`, and after healing it rejoins the set and catches up.
// Each ends with the audit: every acknowledged write on every replica, equal checksums,
// no log index acknowledged twice (two masters in one epoch would do that).

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { assertError, exec, ok, post, query, rows, status, waitFor } from './helpers/cluster.js';
import { etcdSkip } from './helpers/etcd.js';
import { agreedMaster, rtoAfter, settleAndAudit, startHaNet, type HaNet } from './helpers/ha-net.js';
import { WriteLoad, acknowledged, assertAuditClean, outcomeSummary } from './helpers/load.js';
import { netnsAvailable, netnsUnavailableReason } from './helpers/netns.js';

const TABLE = 'p';
const TTL_MS = 3000; // the default --lease-ttl: the test runs nodes at default settings
const missing = !netnsAvailable() ? netnsUnavailableReason() : '';
if (missing && process.env.CI === 'true') {
  test('the partition tests run in CI', () => assert.fail(`${missing}: CI must run the partition tests on network namespaces`));
}
const skip = missing ? `partition tests skipped: ${missing}` : etcdSkip();

async function withRig(fn: (r: HaNet) => Promise<void>): Promise<void> {
  const r = await startHaNet({ table: TABLE });
  try {
    await fn(r);
  } catch (e) {
    r.printLogs(100);
    throw e;
  } finally {
    await WriteLoad.stopAll();
    await r.destroy();
  }
}

/** Ids the load wrote that appear in a diverged file's entries. */
function idsIn(file: string, tag: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...new Set(text.match(new RegExp(`${tag}-c\\d+-\\d+`, 'g')) ?? [])];
}

test('partition: the master cut off from etcd and the slaves stops acknowledging within the lease TTL, a slave takes over, the healed old master follows and sets its unacknowledged entries aside', { skip, timeout: 90_000 }, async () => {
  await withRig(async (r) => {
    const [m0, s1, s2] = r.nodes as [typeof r.nodes[0], typeof r.nodes[0], typeof r.nodes[0]];
    const tag = 'pa';
    const load = new WriteLoad({ table: TABLE, tag, timeoutMs: 10_000, clients: [m0, s1, s2, m0, s1, s2].map((node) => ({ node, ack: 'all' as const })) });
    load.start();
    await load.waitForMore(60);
    const epoch0 = (await status(m0)).epoch;
    // Cut node 0 off from everyone it works with; the root namespace (the clients) still reaches it.
    for (const h of [s1.id, s2.id, r.etcdHost]) r.net.cutBetween(m0.id, h);
    const cutAt = Date.now();
    const m = await agreedMaster([s1, s2], 15_000);
    await load.waitForAcked(s1.id, 10, 15_000);
    await load.waitForAcked(s2.id, 10, 15_000);
    const rto = rtoAfter(load.records, cutAt);
    process.stdout.write(`# partition of the master: new master node ${m.id}, first acknowledged write ${rto} ms after the cut\n`);
    assert.ok(rto <= 5000, `RTO ${rto} ms > 5 s`);
    assert.ok((await status(m)).epoch > epoch0, 'the new master has a higher epoch');
    // The old master, still running and reachable by clients, must have stopped acknowledging.
    await waitFor(() => Date.now() > cutAt + TTL_MS + 1000, { timeoutMs: 10_000 });
    const old = await status(m0);
    assert.notEqual(old.role, 'master', `the cut-off master still calls itself master: ${JSON.stringify(old)}`);
    const healAt = Date.now();
    const lateAcks = load.records.filter((x) => x.via === m0.id && acknowledged(x) && x.startedAt + x.ms > cutAt + TTL_MS && x.startedAt + x.ms < healAt);
    assert.deepEqual(lateAcks.map((x) => `${x.id} answered ${x.startedAt + x.ms - cutAt} ms after the cut`), [], 'acknowledged by the cut-off master after its lease TTL');
    const viaOld = load.records.filter((x) => x.via === m0.id && x.startedAt > cutAt && x.startedAt + x.ms < healAt);
    process.stdout.write(`# writes sent to the cut-off master before the heal: ${outcomeSummary(viaOld)}\n`);
    for (const h of [s1.id, s2.id, r.etcdHost]) r.net.healBetween(m0.id, h);
    // The old master follows the new one, and the sync set takes it back once it caught up.
    assert.equal(await agreedMaster(r.nodes, 25_000), m);
    await waitFor(async () => ((await status(m)).sync_set ?? []).length === 2, { timeoutMs: 25_000, message: 'the old master rejoins the sync set' });
    await load.waitForAcked(m0.id, 5, 15_000); // writes sent to it reach the new master
    const a = await settleAndAudit(load, r.nodes, TABLE);
    process.stdout.write(`# ${a.acknowledged} acknowledged, ${a.lost.length} lost, ${a.duplicates.length} duplicates, ${a.sharedIndex.length} shared indexes (${outcomeSummary(load.records)})\n`);
    const hung = load.records.filter((x) => x.netErr);
    process.stdout.write(`# no answer within 10 s: ${hung.map((x) => `via node ${x.via} sent ${x.startedAt - cutAt} ms after the cut (${x.netErr})`).join('; ') || 'none'}\n`);
    // Every node the clients reach answers (or refuses) every write in time: no request hangs on a partition.
    assert.deepEqual(hung.filter((x) => ['23', 'TimeoutError', 'AbortError'].includes(String(x.netErr))).map((x) => `${x.id} via node ${x.via}`), [], 'writes left unanswered for 10 s');
    assertAuditClean(a, outcomeSummary(load.records));
    // What the old master held past the fork: set aside, never acknowledged, not in the database.
    const files = readdirSync(r.dataDir(m0.id)).filter((f) => /^diverged-\d+-\d+\.jsonl$/.test(f));
    const acked = new Set(load.records.filter(acknowledged).map((x) => x.id));
    const final = new Set((await exec(m, `SELECT id FROM ${TABLE}`)).body.results[0].rows.map((row: string[]) => row[0]));
    let kept = 0;
    for (const f of files) {
      const ids = idsIn(join(r.dataDir(m0.id), f), tag);
      kept += ids.length;
      assert.deepEqual(ids.filter((id) => acked.has(id)), [], `${f} holds acknowledged writes`);
      assert.deepEqual(ids.filter((id) => final.has(id)), [], `${f} holds writes that are in the database too`);
    }
    const forked = r.nodes[0]!.logs().includes('entries the new master does not have were set aside');
    assert.equal(files.length > 0, forked, `diverged files ${files.join(',')} vs the log line`);
    process.stdout.write(`# old master: ${files.length} diverged file(s) holding ${kept} unacknowledged write(s)\n`);
  });
});

test('partition: a slave cut off leaves the sync set, writes go on naming it missing, healed it rejoins and catches up', { skip, timeout: 90_000 }, async () => {
  await withRig(async (r) => {
    const [m0, s1, s2] = r.nodes as [typeof r.nodes[0], typeof r.nodes[0], typeof r.nodes[0]];
    const load = new WriteLoad({ table: TABLE, tag: 'pb', timeoutMs: 10_000, clients: [m0, s1, s2, m0, s1].map((node) => ({ node, ack: 'all' as const })) });
    load.start();
    await load.waitForMore(40);
    const epoch0 = (await status(m0)).epoch;
    r.net.cut(s2.id);
    const cutAt = Date.now();
    // Out of the set within --ack-timeout (5 s) plus the down detection.
    await waitFor(async () => JSON.stringify((await status(m0)).sync_set) === '[1]', { timeoutMs: 15_000, intervalMs: 100, message: 'sync set [1] without the cut slave' });
    const outAfter = Date.now() - cutAt;
    await load.waitForAcked(m0.id, 10, 10_000);
    await load.waitForAcked(s1.id, 10, 10_000);
    const w = ok(await exec(m0, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('pb-direct', 99, 'pb')`, undefined, { ack: 'all' }), 'a write while the slave is cut off');
    assert.deepEqual(w.missing, [s2.id], `the answer names the cut slave: ${JSON.stringify(w)}`);
    assert.ok(!(w.replicated_to ?? []).includes(s2.id));
    await delay(500);
    r.net.heal(s2.id);
    const healAt = Date.now();
    await waitFor(async () => JSON.stringify((await status(m0)).sync_set) === '[1,2]', { timeoutMs: 25_000, intervalMs: 100, message: 'the healed slave back in the sync set' });
    const backAfter = Date.now() - healAt;
    const st = await status(m0);
    assert.equal(st.role, 'master');
    assert.equal(st.epoch, epoch0, 'no failover for a slave partition');
    await load.waitForAcked(s2.id, 5, 15_000);
    const a = await settleAndAudit(load, r.nodes, TABLE);
    process.stdout.write(`# slave partition: out of the sync set ${outAfter} ms after the cut, back ${backAfter} ms after the heal; ${a.acknowledged} acknowledged, ${a.lost.length} lost (${outcomeSummary(load.records)})\n`);
    // The direct write is not a load record: check it by hand on every node.
    for (const n of r.nodes) assert.equal((await exec(n, `SELECT count(*) FROM ${TABLE} WHERE id = 'pb-direct'`)).body.results[0].rows[0][0], 1, n.label());
    assertAuditClean({ ...a, unknown: a.unknown.filter((u) => !u.startsWith('pb-direct ')) }, outcomeSummary(load.records));
  });
});

test('partition: a write a slave forwarded as its master was cut off is answered "unknown", and when the link heals and TCP delivers it to the old master, the old master refuses it: it is never applied late', { skip, timeout: 90_000 }, async () => {
  await withRig(async (r) => {
    const [m0, s1, s2] = r.nodes as [typeof r.nodes[0], typeof r.nodes[0], typeof r.nodes[0]];
    // Writes through node 2 keep a connection to the master open: the held-up write travels on one.
    // Four at once, so node 2 holds several open connections: a write that had to open a new
    // one into the cut never leaves (not_applied), and cannot be held up.
    for (let round = 0; round < 2; round++) {
      await Promise.all([0, 1, 2, 3].map(async (i) => ok(await exec(s2, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('pc-warm-${round}-${i}', 0, 'pc')`), 'a write through node 2')));
    }
    for (const h of [s1.id, s2.id, r.etcdHost]) r.net.cutBetween(m0.id, h);
    const cutAt = Date.now();
    const lates = await Promise.all([0, 1, 2, 3].map((i) => exec(s2, `INSERT INTO ${TABLE}(id, client, tag) VALUES ('pc-late-${i}', 0, 'pc')`)));
    for (const late of lates) assertError(late, 503, 'MASTER_UNAVAILABLE', 'a write forwarded into the cut');
    const late = lates.find((x) => x.body.error.outcome === 'unknown');
    assert.ok(late, `at least one write was sent on an open connection and answered unknown: ${lates.map((x) => x.text).join(' ')}`);
    const m = await agreedMaster([s1, s2], 15_000);
    // The old master first learns from etcd who leads now (it follows, in the new epoch)…
    for (const h of [s1.id, r.etcdHost]) r.net.healBetween(m0.id, h);
    await waitFor(async () => (await status(m0)).master === m.url, { timeoutMs: 15_000, message: 'the old master follows the new one' });
    // …then node 2's link heals. The request sits in node 2's kernel, retransmitted with
    // backoff (0.2, 0.6, 1.4, 3, 6.2, 12.6 s after the cut): the old master gets it within
    // seconds, as a follower that knows the master it would pass it to.
    r.net.healBetween(m0.id, s2.id);
    assert.equal(await agreedMaster(r.nodes, 25_000), m);
    const refusal = /"message":"this request was forwarded to the master of epoch \d+; this node is in epoch \d+/;
    const count = async (n: typeof m) => rows(await query(n, `SELECT count(*) FROM ${TABLE} WHERE id LIKE 'pc-late-%'`))[0]![0];
    await waitFor(async () => refusal.test(m0.logs()) || (await count(m)) !== 0, { timeoutMs: 30_000, intervalMs: 200, message: 'the held-up write reaching the old master' });
    process.stdout.write(`# held-up forwarded write: answered ${late.body.error.outcome}; reached the old master ${Date.now() - cutAt} ms after the cut\n`);
    await delay(1000);
    for (const n of r.nodes) {
      assert.equal(await count(n), 0, `${n.label()} holds the write its client was told "unknown" about, applied after the heal`);
    }
    assert.match(m0.logs(), refusal);
  });
});

test('partition: the same for a write sent over Hrana (libSQL) to a slave: its relay into the cut times out, and when the link heals the old master refuses the retransmitted pipeline instead of relaying it to the new master', { skip, timeout: 90_000 }, async () => {
  await withRig(async (r) => {
    const [m0, s1, s2] = r.nodes as [typeof r.nodes[0], typeof r.nodes[0], typeof r.nodes[0]];
    const insert = (id: string) => ({ baton: null, requests: [{ type: 'execute', stmt: { sql: `INSERT INTO ${TABLE}(id, client, tag) VALUES ('${id}', 0, 'ph')` } }, { type: 'close' }] });
    // Relayed writes through node 2 keep a relay connection to the master open.
    for (let i = 0; i < 5; i++) {
      const w = await post(`${s2.url}/v2/pipeline`, insert(`ph-warm-${i}`));
      assert.equal(w.body?.results?.[0]?.type, 'ok', `a Hrana write through node 2: ${w.text}`);
    }
    for (const h of [s1.id, s2.id, r.etcdHost]) r.net.cutBetween(m0.id, h);
    const cutAt = Date.now();
    const late = post(`${s2.url}/v2/pipeline`, insert('ph-late'), { timeoutMs: 30_000 });
    const m = await agreedMaster([s1, s2], 15_000);
    for (const h of [s1.id, r.etcdHost]) r.net.healBetween(m0.id, h);
    await waitFor(async () => (await status(m0)).master === m.url, { timeoutMs: 15_000, message: 'the old master follows the new one' });
    // The relay gives up after --forward-timeout (10 s): the client is told it failed.
    const answer = await late;
    const answeredAt = Date.now() - cutAt;
    assert.notEqual(answer.status === 200 ? answer.body?.results?.[0]?.type : 'error', 'ok', `the relayed write into the cut: ${answer.text}`);
    r.net.healBetween(m0.id, s2.id);
    const refusal = /this request was forwarded to the master of epoch \d+; this node is in epoch \d+/;
    const count = async (n: typeof m) => rows(await query(n, `SELECT count(*) FROM ${TABLE} WHERE id = 'ph-late'`))[0]![0];
    await waitFor(async () => refusal.test(m0.logs()) || (await count(m)) !== 0, { timeoutMs: 30_000, intervalMs: 200, message: 'the held-up pipeline reaching the old master' });
    process.stdout.write(`# held-up Hrana write: answered ${answer.status} ${answeredAt} ms after the cut; reached the old master ${Date.now() - cutAt} ms after the cut\n`);
    await delay(1000);
    for (const n of r.nodes) assert.equal(await count(n), 0, `${n.label()} holds the Hrana write its client was told failed, applied after the heal`);
    assert.match(m0.logs(), refusal);
  });
});
