// A real etcd (Debian's etcd-server, /usr/bin/etcd) for failover tests: its own data dir
// and free loopback ports (or a given address), stopped by PID in after().
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { readFileSync } from 'node:fs';
import { Agent } from 'undici';
import { killOnExit, waitFor } from './cluster.js';

/** True when an etcd binary is on PATH. */
export function etcdAvailable(): boolean {
  return spawnSync('etcd', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Skip reason, or false; under CI=true a missing etcd fails instead (.ci/run installs it). */
export function etcdSkip(): string | false {
  if (etcdAvailable()) return false;
  if (process.env.CI === 'true') throw new Error('etcd is not installed; .ci/run installs Debian etcd-server');
  return 'etcd not installed (apt-get install etcd-server)';
}

/** A free TCP port on 127.0.0.1, from the OS. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** etcd serving client TLS (PEM files): its certificate, and with `clientCa` client certificates required (--client-cert-auth). */
export interface EtcdTls {
  cert: string;
  key: string;
  clientCa?: string;
  /** For the harness's own /health probe: a CA trusting `cert`, and a client certificate when required. */
  probe: { ca: string; cert?: string; key?: string };
}

/** One running etcd member. */
export class TestEtcd {
  proc!: ChildProcess;
  readonly url: string;
  private readonly dir = mkdtempSync(join(tmpdir(), 'sqlfleet-etcd-'));
  private out = '';

  constructor(
    private readonly clientPort: number,
    private readonly peerPort: number,
    private readonly host = '127.0.0.1',
    private readonly spawnIn?: (cmd: string, args: string[]) => ChildProcess,
    private readonly tls?: EtcdTls,
  ) {
    this.url = `${tls ? 'https' : 'http'}://${host}:${clientPort}`;
  }

  /** Starts etcd and waits until it answers /health. */
  async start(): Promise<void> {
    const peer = `http://${this.host}:${this.peerPort}`;
    const args = [
      '--name', 'test', '--data-dir', join(this.dir, 'data'),
      '--listen-client-urls', this.url, '--advertise-client-urls', this.url,
      '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `test=${peer}`, '--initial-cluster-state', 'new',
      '--log-level', 'error', '--logger', 'zap',
      ...(this.tls ? ['--cert-file', this.tls.cert, '--key-file', this.tls.key, ...(this.tls.clientCa ? ['--client-cert-auth', '--trusted-ca-file', this.tls.clientCa] : [])] : []),
    ];
    this.proc = this.spawnIn ? this.spawnIn('etcd', args) : spawn('etcd', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(this.proc);
    this.proc.stdout?.on('data', (d) => (this.out += d));
    this.proc.stderr?.on('data', (d) => (this.out += d));
    const p = this.tls?.probe;
    const dispatcher = p ? new Agent({ connect: { ca: readFileSync(p.ca), ...(p.cert && p.key ? { cert: readFileSync(p.cert), key: readFileSync(p.key) } : {}) } }) : undefined;
    try {
      await waitFor(async () => (await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1000), ...(dispatcher ? { dispatcher } : {}) } as RequestInit)).ok, { timeoutMs: 20_000, message: `etcd at ${this.url}: ${this.out.slice(-500)}` });
    } finally {
      await dispatcher?.close();
    }
  }

  /** Stops it (SIGKILL, like a crash; data kept) and waits for the exit. */
  async kill(): Promise<void> {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once('exit', r));
    this.proc.kill('SIGKILL');
    await exited;
    await delay(50);
  }

  /** Stops it and removes its data. */
  async destroy(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Its output, for failure reports. */
  logs(): string {
    return this.out;
  }
}

/** Starts an etcd on free loopback ports (serving TLS when `tls` is given). */
export async function startEtcd(tls?: EtcdTls): Promise<TestEtcd> {
  const e = new TestEtcd(await freePort(), await freePort(), '127.0.0.1', undefined, tls);
  await e.start();
  assert.ok(e.url);
  return e;
}
