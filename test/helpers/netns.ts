// Test hosts with their own addresses, on this machine: one Linux bridge and one network
// namespace per host, each joined to the bridge by a veth pair (iproute2, as root). The
// root namespace gets an address on the bridge too, so a test talks to every host directly.
// A host can be cut off (its link taken down: its processes keep running, a real partition)
// and healed. Used by the README recipe test and the failover partition tests: one helper,
// not two. Everything a net creates is named after this process's pid, removed by
// destroy(), and removed at process exit as well when a test failed before destroy ran.

import { execFileSync, spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { killOnExit } from './cluster.js';

/** What `createNet` needs; every field is optional. */
export interface NetOptions {
  /** Number of hosts; default 3. */
  readonly hosts?: number;
  /** Third octet of 10.213.X.0/24; default: chosen from the pid, skipping subnets in use. */
  readonly subnet?: number;
}

/** One host: a network namespace with one interface (`eth0`) on the bridge. */
export interface NetHost {
  /** 0-based position in `net.hosts`. */
  readonly index: number;
  /** The namespace's name (`ip netns exec <ns> …`). */
  readonly ns: string;
  /** The host's IPv4 address, e.g. 10.213.57.1. */
  readonly addr: string;
  /** The root-namespace end of the host's veth pair (cut/heal act on it). */
  readonly veth: string;
  /** The host's MAC address on the bridge. */
  readonly mac: string;
}

/** A set of hosts on one bridge, made by `createNet`. */
export interface Net {
  readonly hosts: readonly NetHost[];
  /** The root namespace's address on the bridge (the hosts reach the test process there). */
  readonly bridgeAddr: string;
  /** Runs `cmd args` inside host i; the child's PID is the command's own (ip netns exec execs it), so kill(pid, SIGKILL/SIGSTOP) hits it. */
  spawn(i: number, cmd: string, args: readonly string[], opts?: SpawnOptions): ChildProcess;
  /** Takes host i's link down: nothing reaches it or leaves it, its processes keep running. */
  cut(i: number): void;
  /** Brings host i's link back up. */
  heal(i: number): void;
  /** Silently drops traffic between hosts i and j only (both directions); each still reaches everyone else. */
  cutBetween(i: number, j: number): void;
  /** Undoes `cutBetween(i, j)`. */
  healBetween(i: number, j: number): void;
  /** Kills every process in the hosts and removes the namespaces, veths and bridge. Idempotent. */
  destroy(): void;
}

const SUBNET_PREFIX = '10.213';
/** Names start with this, then the pid in base 36: a later run can tell leftovers of dead runs. */
const NAME_PREFIX = 'sfn';
let counter = 0;
const open = new Set<Net>();
let exitHooked = false;

function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Like `ip`, but a failure (already gone) is ignored: for cleanup. */
function ipQuiet(...args: string[]): void {
  spawnSync('ip', args, { stdio: 'ignore' });
}

/** True when this process may make namespaces: root, and `ip netns` works. */
export function netnsAvailable(): boolean {
  if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
  return spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0;
}

/** Why `netnsAvailable()` is false, for a skip message (or a CI failure). */
export function netnsUnavailableReason(): string {
  if (process.platform !== 'linux') return 'network namespaces need Linux';
  if (process.getuid?.() !== 0) return 'network namespaces need root (run the tests as root)';
  return '`ip netns` does not work here (iproute2 missing?)';
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes namespaces and links an earlier test process (now dead) left behind. */
function removeLeftovers(): void {
  const dead = (name: string): boolean => {
    const m = new RegExp(`^${NAME_PREFIX}([0-9a-z]+)x`).exec(name);
    return m !== null && !pidAlive(parseInt(m[1]!, 36));
  };
  for (const line of ip('netns', 'list').split('\n')) {
    const ns = line.split(' ')[0];
    if (ns && dead(ns)) {
      killNamespace(ns);
      ipQuiet('netns', 'del', ns);
    }
  }
  for (const line of ip('-o', 'link', 'show').split('\n')) {
    const name = /^\d+:\s+([^:@\s]+)/.exec(line)?.[1];
    if (name && dead(name)) ipQuiet('link', 'del', name);
  }
}

function killNamespace(ns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '';
  for (const p of pids.split('\n').map(Number).filter((n) => n > 0)) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

function chooseSubnet(wanted: number | undefined): number {
  const used = ip('-4', '-o', 'addr', 'show');
  const free = (x: number) => !used.includes(` ${SUBNET_PREFIX}.${x}.`);
  if (wanted !== undefined) {
    if (!Number.isInteger(wanted) || wanted < 1 || wanted > 254) throw new Error(`subnet must be 1..254, got ${wanted}`);
    if (!free(wanted)) throw new Error(`${SUBNET_PREFIX}.${wanted}.0/24 is already in use on this machine`);
    return wanted;
  }
  const start = (process.pid * 7 + counter * 31) % 254;
  for (let k = 0; k < 254; k++) {
    const x = ((start + k) % 254) + 1;
    if (free(x)) return x;
  }
  throw new Error(`no free ${SUBNET_PREFIX}.X.0/24 subnet`);
}

function hookExit(): void {
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    for (const net of [...open]) net.destroy();
  });
  // A test run that is interrupted still removes its namespaces, then dies of the signal.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      for (const net of [...open]) net.destroy();
      process.kill(process.pid, sig);
    });
  }
}

/** Makes a bridge and `hosts` namespaces on it (10.213.X.1..n/24, the bridge .254); call `destroy()` in `after()`. */
// async so that a later version may wait for something (etcd, say) without changing callers.
export async function createNet(opts: NetOptions = {}): Promise<Net> {
  if (!netnsAvailable()) throw new Error(netnsUnavailableReason());
  const count = opts.hosts ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > 200) throw new Error(`hosts must be 1..200, got ${count}`);
  removeLeftovers();
  hookExit();
  const tag = `${NAME_PREFIX}${process.pid.toString(36)}x${(counter++).toString(36)}`;
  // Interface names are at most 15 characters.
  if (tag.length > 11) throw new Error(`name prefix too long: ${tag}`);
  const x = chooseSubnet(opts.subnet);
  const bridge = `${tag}b`;
  const bridgeAddr = `${SUBNET_PREFIX}.${x}.254`;
  const hosts: NetHost[] = [];
  const children = new Set<ChildProcess>();
  let destroyed = false;

  const destroy = (): void => {
    if (destroyed) return;
    destroyed = true;
    open.delete(net);
    for (const c of children) {
      if (c.pid !== undefined && c.exitCode === null && c.signalCode === null) {
        try {
          process.kill(-c.pid, 'SIGKILL'); // its process group: npm's children too
        } catch {
          // already gone
        }
      }
    }
    for (const h of hosts) {
      killNamespace(h.ns);
      ipQuiet('netns', 'del', h.ns);
      ipQuiet('link', 'del', h.veth);
    }
    ipQuiet('link', 'del', bridge);
  };

  const host = (i: number): NetHost => {
    const h = hosts[i];
    if (!h) throw new Error(`no host ${i}: this net has hosts 0..${hosts.length - 1}`);
    if (destroyed) throw new Error('net destroyed');
    return h;
  };
  // A permanent neighbour entry pointing at a MAC nobody has: packets to that address
  // leave the host and are dropped by the bridge's other ports. No iptables or tc action
  // modules are needed (this machine has neither), and the drop is silent, as in a partition.
  const BLACKHOLE_MAC = '02:00:00:00:de:ad';

  const net: Net = {
    hosts,
    bridgeAddr,
    spawn(i, cmd, args, spawnOpts = {}) {
      const h = host(i);
      // Own process group, so destroy() also reaches what the command starts (npm → sh → node).
      const child = spawn('ip', ['netns', 'exec', h.ns, cmd, ...args], { detached: true, ...spawnOpts });
      children.add(child);
      killOnExit(child);
      child.once('exit', () => children.delete(child));
      return child;
    },
    cut(i) {
      ip('link', 'set', host(i).veth, 'down');
    },
    heal(i) {
      ip('link', 'set', host(i).veth, 'up');
    },
    cutBetween(i, j) {
      const a = host(i), b = host(j);
      ip('-n', a.ns, 'neigh', 'replace', b.addr, 'lladdr', BLACKHOLE_MAC, 'dev', 'eth0', 'nud', 'permanent');
      ip('-n', b.ns, 'neigh', 'replace', a.addr, 'lladdr', BLACKHOLE_MAC, 'dev', 'eth0', 'nud', 'permanent');
    },
    healBetween(i, j) {
      const a = host(i), b = host(j);
      ipQuiet('-n', a.ns, 'neigh', 'del', b.addr, 'dev', 'eth0');
      ipQuiet('-n', b.ns, 'neigh', 'del', a.addr, 'dev', 'eth0');
    },
    destroy,
  };
  open.add(net);

  try {
    ip('link', 'add', bridge, 'type', 'bridge');
    ip('addr', 'add', `${bridgeAddr}/24`, 'dev', bridge);
    ip('link', 'set', bridge, 'up');
    for (let i = 0; i < count; i++) {
      const ns = `${tag}h${i}`;
      const veth = `${tag}v${i}`;
      const peer = `${tag}p${i}`;
      const addr = `${SUBNET_PREFIX}.${x}.${i + 1}`;
      ip('netns', 'add', ns);
      hosts.push({ index: i, ns, addr, veth, mac: '' });
      ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', peer);
      ip('link', 'set', peer, 'netns', ns);
      ip('link', 'set', veth, 'master', bridge);
      ip('link', 'set', veth, 'up');
      ip('-n', ns, 'link', 'set', peer, 'name', 'eth0');
      ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', 'eth0');
      ip('-n', ns, 'link', 'set', 'eth0', 'up');
      ip('-n', ns, 'link', 'set', 'lo', 'up');
      const mac = /link\/ether ([0-9a-f:]+)/.exec(ip('-n', ns, 'link', 'show', 'eth0'))?.[1] ?? '';
      hosts[i] = { index: i, ns, addr, veth, mac };
    }
  } catch (e) {
    destroy();
    throw e;
  }
  return net;
}

