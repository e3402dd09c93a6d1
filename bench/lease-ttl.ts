// Lease TTL under load (issue 26): for each --lease-ttl given, a 3-node etcd cluster under
// ack "all" writers on every node plus large reads for DURATION s; counts leases lost as
// master (/status lease.lost_as_master on every node, and epoch changes), the slowest
// renewal, the least lease time left; then ROUNDS SIGKILLs of the master under the same
// writers, each timed to the first acknowledged write after the kill (RTO).
//   npx tsx bench/lease-ttl.ts [ttl...]   (default: 3 2; DURATION=60 ROUNDS=3 WRITERS=12)
import { setTimeout as delay } from 'node:timers/promises';
import { exec, ok, post, startCluster, status, waitFor, type Cluster, type TestNode } from '../test/helpers/cluster.js';
import { startEtcd } from '../test/helpers/etcd.js';
import { WriteLoad, relaunch } from '../test/helpers/load.js';

const DURATION = Number(process.env.DURATION ?? 60) * 1000;
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const WRITERS = Number(process.env.WRITERS ?? 12);

async function master(c: Cluster): Promise<TestNode> {
  return (await waitFor(async () => {
    const s = await Promise.all(c.nodes.map((n) => (n.running ? status(n).catch(() => null) : null)));
    const i = s.findIndex((x) => x?.role === 'master');
    return i >= 0 && (s[i].sync_set ?? []).length === 2 ? c.nodes[i] : undefined;
  }, { timeoutMs: 60_000, message: 'a master with a full sync set' })) as TestNode;
}

async function run(ttl: number): Promise<string> {
  const etcd = await startEtcd();
  const c = await startCluster({ slaves: 2, extraArgs: ['--etcd', etcd.url, '--lease-ttl', String(ttl)], upTimeoutMs: 60_000 });
  try {
    ok(await exec(c.master, 'CREATE TABLE e(id TEXT PRIMARY KEY, client INTEGER, tag TEXT, pad TEXT)'), 'create');
    let m = await master(c);
    const epoch0 = (await status(m)).epoch;
    const clients = Array.from({ length: WRITERS }, (_, i) => ({ node: c.nodes[i % 3], ack: 'all' as const }));
    const load = new WriteLoad({ table: 'e', tag: `t${ttl}`, clients, timeoutMs: 20_000, maxMs: DURATION + 120_000 });
    load.start();
    let reading = true;
    const reads = (async () => {
      while (reading) {
        for (const n of c.nodes) if (n.running) await post(n.url, { query: 'SELECT * FROM e ORDER BY id DESC LIMIT 5000' }, { timeoutMs: 20_000 }).catch(() => null);
      }
    })();
    let minLeft = Infinity;
    const end = Date.now() + DURATION;
    while (Date.now() < end) {
      const s = await status(m).catch(() => null);
      if (s?.lease) minLeft = Math.min(minLeft, s.role === 'master' ? s.lease.ms_left : Infinity);
      await delay(200);
    }
    const st = await Promise.all(c.nodes.map((n) => status(n)));
    const lost = st.reduce((a, s) => a + (s.lease?.lost_as_master ?? 0), 0);
    const renewMax = st.map((s) => s.lease?.renew_max_ms);
    const epochs = new Set(st.map((s) => s.epoch)).size === 1 && st[0].epoch === epoch0 ? 'no new epoch' : `epoch ${epoch0} -> ${st.map((s) => s.epoch).join('/')}`;
    const acked = load.records.filter((r) => r.status === 200).length;
    const errs = load.records.filter((r) => r.ms >= 0 && r.status !== 200).length;
    // RTO rounds.
    const rto: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      m = await master(c);
      await delay(1500);
      const t = Date.now();
      await m.kill('SIGKILL');
      await waitFor(() => load.records.some((r) => r.status === 200 && r.startedAt >= t), { timeoutMs: 30_000, message: 'a write after the kill' });
      rto.push(Math.min(...load.records.filter((r) => r.status === 200 && r.startedAt >= t).map((r) => r.startedAt + r.ms - t)));
      await relaunch(m);
    }
    reading = false;
    await load.stop();
    await reads;
    return `ttl ${ttl} s: ${DURATION / 1000} s of ${WRITERS} ack-all writers + 5000-row reads: ${acked} acknowledged, ${errs} errors, leases lost as master ${lost}, ${epochs}, slowest renewal per node ${renewMax.join('/')} ms, least lease left ${minLeft} ms; RTO after SIGKILL ms ${rto.map((x) => Math.round(x)).join(' ')}`;
  } finally {
    await c.stop();
    await etcd.destroy();
  }
}

const ttls = process.argv.slice(2).map(Number);
for (const ttl of ttls.length ? ttls : [3, 2]) process.stdout.write(`${await run(ttl)}\n`);
process.exit(0);
