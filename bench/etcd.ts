// A throw-away etcd for `npm run bench -- --etcd`: Debian's etcd-server (/usr/bin/etcd, or
// $BENCH_ETCD), one member on two free loopback ports, data in a temp dir. The nodes then
// run with `--etcd <url>` (automatic failover, DESIGN §6), so the bench measures what the
// leader lease and the sync set add to the write path.
import { spawn, type ChildProcess } from 'node:child_process';
import { tempDir } from './cluster.js';
import { freePort, until } from './procs.js';

/** A running etcd member. */
export interface Etcd {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** Starts etcd and resolves once its /health says true. */
export async function startEtcd(): Promise<Etcd> {
  const bin = process.env.BENCH_ETCD ?? '/usr/bin/etcd';
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const args = [
    '--name', 'bench', '--data-dir', tempDir('sqlfleet-etcd-'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl,
    '--initial-cluster', `bench=${peerUrl}`, '--log-level', 'error',
  ];
  const child: ChildProcess = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-2000)));
  const exited = new Promise<void>((res) => child.once('exit', () => res()));
  child.once('error', (e) => (err += String(e)));
  const kill = (sig: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null && child.pid) process.kill(child.pid, sig);
  };
  process.on('exit', () => kill('SIGKILL'));
  const healthy = await until(async () => {
    const r = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000) });
    return ((await r.json()) as { health?: string }).health === 'true';
  }, 15_000, 100);
  if (!healthy) {
    kill('SIGKILL');
    throw new Error(`etcd (${bin}) not healthy within 15 s: ${err.slice(-500)}`);
  }
  return {
    url,
    pid: child.pid ?? -1,
    stop: async () => {
      kill('SIGTERM');
      const t = setTimeout(() => kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}
