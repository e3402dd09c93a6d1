// An etcd-mode cluster on network namespaces (test/helpers/netns.ts): etcd on host 3, nodes
// 0..2 on hosts 0..2, each bound to its host's address, so a test can cut any of them off
// while its process keeps running. Used by test/partition.test.ts and scripts/soak.ts.
// Also the checks both share: which node leads, and the end-of-scenario audit.

import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import assert from 'node:assert/strict';
import { checksums, exec, ok, printLogs, status, tempDir, TestNode, waitFor } from './cluster.js';
import { freePort, TestEtcd } from './etcd.js';
import { auditWrites, idCounts, type Audit, type WriteLoad, type WriteRecord } from './load.js';
import { createNet, type Net } from './netns.js';

/** The running rig: the net, etcd, the three nodes (index = node id). */
export interface HaNet {
  readonly net: Net;
  readonly etcd: TestEtcd;
  readonly nodes: readonly TestNode[];
  /** Host index of etcd in `net`. */
  readonly etcdHost: number;
  /** Data dir of node i. */
  dataDir(i: number): string;
  /** Prints every node's and etcd's log tail to stderr. */
  printLogs(lines?: number): void;
  /** Stops everything and removes the namespaces and data dirs. Idempotent. */
  destroy(): Promise<void>;
}

/** Options of `startHaNet`. */
export interface HaNetOptions {
  /** Table created once the cluster runs, with columns (id TEXT PRIMARY KEY, client INTEGER, tag TEXT). */
  readonly table: string;
  /** Added to every node's command line. */
  readonly extraArgs?: readonly string[];
  /** Called with every process spawned in the net (etcd on `etcdHost`, node i on host i, restarts too), e.g. to keep its whole output. */
  readonly onSpawn?: (host: number, child: ChildProcess) => void;
}

/** Starts etcd and three nodes in namespaces, creates `table`, and waits for the sync set [1,2]. */
export async function startHaNet(opts: HaNetOptions): Promise<HaNet> {
  const net = await createNet({ hosts: 4 });
  const etcdHost = 3;
  const dirs = [tempDir('sqlfleet-hanet-'), tempDir('sqlfleet-hanet-'), tempDir('sqlfleet-hanet-')];
  const nodes: TestNode[] = [];
  let etcd: TestEtcd | undefined;
  let destroyed = false;
  const destroy = async (): Promise<void> => {
    if (destroyed) return;
    destroyed = true;
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    await etcd?.destroy();
    net.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  const logs = (lines = 120): void => {
    printLogs(nodes, lines);
    if (etcd) process.stderr.write(`\n----- etcd -----\n${etcd.logs().slice(-2000)}\n`);
  };
  try {
    const spawnIn = (host: number, cmd: string, args: readonly string[], o: SpawnOptions): ChildProcess => {
      const child = net.spawn(host, cmd, args, o);
      opts.onSpawn?.(host, child);
      return child;
    };
    etcd = new TestEtcd(await freePort(), await freePort(), net.hosts[etcdHost]!.addr, (cmd, args) =>
      spawnIn(etcdHost, cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] }),
    );
    await etcd.start();
    // Separate data dirs (each host its own disk, its own diverged files): the token is passed.
    const token = randomBytes(24).toString('hex');
    const common = ['--etcd', etcd.url, '--cluster-token', token, '--insecure', ...(opts.extraArgs ?? [])];
    for (let id = 0; id < 3; id++) {
      const host = net.hosts[id]!;
      nodes.push(
        new TestNode({
          role: id === 0 ? 'master' : 'slave',
          id,
          numSlaves: 2,
          dataDir: dirs[id]!,
          extraArgs: ['--host', host.addr, ...common],
          spawnIn: (cmd, args, o) => spawnIn(id, cmd, args, o),
        }),
      );
    }
    await nodes[0]!.launch();
    for (const n of nodes.slice(1)) n.spec = { ...n.spec, masterUrl: nodes[0]!.url };
    await Promise.all(nodes.slice(1).map((n) => n.launch()));
    // Node 0 campaigns once the others published (at most 1 s after its start): until every
    // node follows it, a schema change sent to it is refused (503, no master yet).
    assert.equal(await agreedMaster(nodes, 15_000), nodes[0], 'node 0 leads the fresh cluster');
    ok(await exec(nodes[0]!, `CREATE TABLE ${opts.table}(id TEXT PRIMARY KEY, client INTEGER, tag TEXT)`), 'create table');
    await waitFor(async () => ((await status(nodes[0]!)).sync_set ?? []).length === 2, { timeoutMs: 20_000, message: 'sync set [1,2]' });
  } catch (e) {
    logs();
    await destroy();
    throw e;
  }
  return { net, etcd, nodes, etcdHost, dataDir: (i) => dirs[i]!, printLogs: logs, destroy };
}

/** Waits until one node of `among` calls itself master and every node of `among` names it; returns it. */
export async function agreedMaster(among: readonly TestNode[], timeoutMs = 15_000): Promise<TestNode> {
  return waitFor(
    async () => {
      const s = await Promise.all(among.map((n) => status(n)));
      const m = among.find((_, i) => s[i].role === 'master');
      return m && s.every((x) => x.master === m.url) ? m : undefined;
    },
    { timeoutMs, intervalMs: 100, message: `one master that nodes ${among.map((n) => n.id).join(',')} follow` },
  ) as Promise<TestNode>;
}

/** ms from `t` to the end of the first acknowledged write that started at or after `t`; Infinity if none. */
export function rtoAfter(records: readonly WriteRecord[], t: number): number {
  const ends = records.filter((r) => r.status === 200 && r.startedAt >= t).map((r) => r.startedAt + r.ms);
  return ends.length ? Math.round(Math.min(...ends) - t) : Infinity;
}

/**
 * Ends a scenario: stops the load, waits until every node applied one index under one
 * master, asserts equal checksums, and audits every write against every replica. Returns
 * the audit (the caller asserts it, so it can print the figures first).
 */
export async function settleAndAudit(load: WriteLoad, nodes: readonly TestNode[], table: string, timeoutMs = 30_000): Promise<Audit> {
  await load.stop();
  await waitFor(
    async () => {
      const s = await Promise.all(nodes.map((n) => status(n)));
      return s.every((x) => x.applied_index === s[0].applied_index && x.master && x.master === s[0].master && !x.diverged);
    },
    { timeoutMs, intervalMs: 100, message: 'every node at one index under one master' },
  );
  // A write the load gave up on (its client's deadline passed) may still be applied after the
  // nodes met at one index: the checksums are taken again until they are all at one index,
  // and those are compared (any difference at one index fails).
  const sums = await waitFor<any[] | undefined>(
    async () => {
      const all = await checksums(nodes);
      return all.every((x) => x.index === all[0].index) ? all : undefined;
    },
    { timeoutMs, intervalMs: 200, message: 'checksums of every node at one index' },
  );
  for (let i = 1; i < sums!.length; i++) assert.deepEqual(sums![i], sums![0], `checksum of ${nodes[i]!.label()} differs from ${nodes[0]!.label()}`);
  const present = await Promise.all(nodes.map((n) => idCounts(n, table)));
  return auditWrites(load.records, present);
}
