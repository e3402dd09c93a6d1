// The cluster a Jepsen-style run works on (issue 27): three nodes, each on its own
// network-namespace host (test/helpers/netns.ts) so the master can really be cut off;
// in etcd mode etcd on a fourth host (test/helpers/ha-net.ts). Without root the static
// mode runs on loopback and the partition nemesis is unavailable.

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { printLogs, startCluster, status, tempDir, TestNode, waitFor, waitForUp } from '../../test/helpers/cluster.js';
import type { TestEtcd } from '../../test/helpers/etcd.js';
import { startHaNet } from '../../test/helpers/ha-net.js';
import { clusterToken } from '../../test/helpers/load.js';
import { createNet, netnsAvailable, type Net } from '../../test/helpers/netns.js';

/** Failover mode of the cluster under test. */
export type Mode = 'static' | 'etcd';

/** The running cluster. */
export interface Rig {
  readonly mode: Mode;
  readonly nodes: readonly TestNode[];
  /** The namespaces (partitions are possible), or undefined on loopback. */
  readonly net: Net | undefined;
  /** Hosts a partition of a node cuts it off from (the other nodes, etcd). */
  peersOf(node: TestNode): number[];
  /** etcd mode: the etcd member (the etcd-kill nemesis stops and restarts it). */
  readonly etcd: TestEtcd | undefined;
  /** The cluster token (promotions). */
  readonly token: string;
  printLogs(lines?: number): void;
  destroy(): Promise<void>;
}

/** Starts three nodes (master + 2 slaves) in `mode`; namespaces when this process may make them. */
export async function startRig(mode: Mode, log: (s: string) => void = () => {}): Promise<Rig> {
  const useNet = netnsAvailable();
  if (mode === 'etcd') {
    if (!useNet) throw new Error('etcd mode runs on network namespaces: run as root');
    const ha = await startHaNet({ table: 'jepsen_probe' });
    log(`etcd mode: nodes ${ha.nodes.map((n) => n.url).join(' ')}, etcd ${ha.etcd.url}`);
    const args = ha.nodes[0]!.spec.extraArgs ?? [];
    return {
      mode, nodes: ha.nodes, net: ha.net, etcd: ha.etcd, token: args[args.indexOf('--cluster-token') + 1]!,
      peersOf: (n) => [...ha.nodes.filter((x) => x !== n).map((x) => x.id), ha.etcdHost],
      printLogs: (lines) => ha.printLogs(lines),
      destroy: () => ha.destroy(),
    };
  }
  if (!useNet) {
    const c = await startCluster({ slaves: 2 });
    log(`static mode on loopback (no namespaces: no partitions): ${c.nodes.map((n) => n.url).join(' ')}`);
    return { mode, nodes: c.nodes, net: undefined, etcd: undefined, token: clusterToken(c.dataDir), peersOf: () => [], printLogs: (l) => printLogs(c.nodes, l), destroy: () => c.stop() };
  }
  const net = await createNet({ hosts: 3 });
  const dirs = [0, 1, 2].map(() => tempDir('sqlfleet-jepsen-'));
  const nodes: TestNode[] = [];
  const token = randomBytes(24).toString('hex');
  const destroy = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
    net.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  try {
    for (let id = 0; id < 3; id++) {
      nodes.push(new TestNode({
        role: id === 0 ? 'master' : 'slave', id, numSlaves: 2, dataDir: dirs[id]!,
        extraArgs: ['--host', net.hosts[id]!.addr, '--cluster-token', token, '--insecure'],
        spawnIn: (cmd, args, o) => net.spawn(id, cmd, args, o),
      }));
    }
    await nodes[0]!.launch();
    for (const n of nodes.slice(1)) n.spec = { ...n.spec, masterUrl: nodes[0]!.url };
    await Promise.all(nodes.slice(1).map((n) => n.launch()));
    await waitForUp(nodes[0]!, [1, 2], 30_000);
  } catch (e) {
    printLogs(nodes, 80);
    await destroy();
    throw e;
  }
  log(`static mode: nodes ${nodes.map((n) => n.url).join(' ')}`);
  return { mode, nodes, net, etcd: undefined, token, peersOf: (n) => nodes.filter((x) => x !== n).map((x) => x.id), printLogs: (l) => printLogs(nodes, l), destroy };
}

/** The node that calls itself master and that every other running node names, if any. */
export async function agreedMaster(rig: Rig): Promise<TestNode | undefined> {
  const up = rig.nodes.filter((n) => n.running);
  const s = await Promise.all(up.map((n) => status(n).catch(() => undefined)));
  const i = s.findIndex((x) => x?.role === 'master');
  if (i < 0) return undefined;
  return s.every((x) => x && x.master === up[i]!.url) ? up[i] : undefined;
}

/** Waits until every node runs, one master is agreed, and every node serves (/health). */
export async function waitHealthy(rig: Rig, timeoutMs: number): Promise<TestNode> {
  return waitFor<TestNode | undefined>(async () => {
    if (!rig.nodes.every((n) => n.running)) return undefined;
    const m = await agreedMaster(rig);
    if (!m) return undefined;
    const h = await Promise.all(rig.nodes.map((n) => fetch(`${n.url}/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)));
    return h.every(Boolean) ? m : undefined;
  }, { timeoutMs, intervalMs: 200, message: 'all nodes running, serving, one agreed master' }) as Promise<TestNode>;
}

/** Waits until every node has applied the same index under one master (for the final reads). */
export async function waitConverged(rig: Rig, timeoutMs: number): Promise<number> {
  return waitFor(async () => {
    const s = await Promise.all(rig.nodes.map((n) => status(n)));
    return s.every((x) => x.applied_index === s[0].applied_index && x.master === s[0].master && !x.diverged) ? s[0].applied_index : undefined;
  }, { timeoutMs, intervalMs: 200, message: 'every node at one index under one master' });
}
