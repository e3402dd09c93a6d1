// Command line: the only file that reads argv/env or calls process.exit.
import { spawn, type ChildProcess } from 'node:child_process';
import readline from 'node:readline';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { resolveConfig, type ConfigInput, type Durability } from './config.js';
import { hashPassword, newToken } from './auth/users.js';
import { masterToken } from './cluster/token.js';
import { startNode, type RunningNode } from './node.js';

const common = (y: Argv) =>
  y
    .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind' })
    .option('base-port', { type: 'number', default: 8080, describe: 'master port; slave <id> uses base+id' })
    .option('port', { type: 'number', describe: 'port for this node (overrides base+id; 0 = any free port)' })
    .option('data-dir', { type: 'string', default: './data', describe: 'directory of node-<id>.db and cluster.token' })
    .option('master-url', { type: 'string', describe: 'URL of the master (slaves on other machines)' })
    .option('advertise-url', { type: 'string', describe: 'URL other nodes use to reach this node' })
    .option('cluster-token', { type: 'string', describe: 'shared secret for node-to-node requests' })
    .option('join', { type: 'string', describe: 'master URL to register this slave with at runtime' })
    .option('max-body', { type: 'number', default: 1024 * 1024, describe: 'largest request body in bytes' })
    .option('max-statements', { type: 'number', default: 1000, describe: 'most statements in one request' })
    .option('ack-timeout', { type: 'number', default: 5000, describe: 'ms a write waits for slave acks' })
    .option('read-wait', { type: 'number', default: 5000, describe: 'ms a min_index read may wait' })
    .option('forward-timeout', { type: 'number', default: 10000, describe: 'ms a slave waits for the master' })
    .option('heartbeat-ms', { type: 'number', default: 500, describe: 'slave heartbeat interval' })
    .option('query-timeout', { type: 'number', default: 5000, describe: 'ms a read may run before it is stopped (504)' })
    .option('max-rows', { type: 'number', default: 100000, describe: 'most rows one statement returns (more: truncated)' })
    .option('read-workers', { type: 'number', default: 2, describe: 'threads running client reads' })
    .option('verify-ms', { type: 'number', default: 10000, describe: 'ms between checksum comparisons (master)' })
    .option('idempotency-window', { type: 'number', default: 600, describe: 's an idempotency key is honoured (retries after it are refused or, for non-UUIDv7 keys, new)' })
    .option('etcd', { type: 'string', describe: 'etcd URLs (comma-separated): automatic failover' })
    .option('lease-ttl', { type: 'number', default: 3, describe: 's the leader lease lasts in etcd (the master renews it every third)' })
    .option('cluster-name', { type: 'string', default: 'sqlfleet', describe: 'names this cluster (its keys in etcd; nodes of other clusters are refused)' })
    .option('log-retain', { type: 'number', default: 10000, describe: 'log entries the master keeps' })
    .option('durability', { choices: ['normal', 'full'] as const, default: 'normal' as Durability, describe: 'SQLite synchronous level' })
    .option('auth', { type: 'string', describe: 'users file (JSON) enabling client authentication' })
    .option('insecure', { type: 'boolean', default: false, describe: 'allow a non-loopback --host without --auth' })
    .option('tls-cert', { type: 'string', describe: 'PEM certificate: serve HTTPS' })
    .option('tls-key', { type: 'string', describe: 'PEM private key for --tls-cert' })
    .option('tls-ca', { type: 'string', describe: 'PEM CA bundle to verify other nodes' })
    .option('log-level', { choices: ['debug', 'info', 'warn', 'error'], default: 'info' })
    .option('pretty', { type: 'boolean', describe: 'readable logs (default when stdout is a terminal)' });

type Args = Awaited<ReturnType<ReturnType<typeof common>['parse']>>;

function toInput(a: Args, id: number, numSlaves: number): ConfigInput {
  return {
    id,
    numSlaves,
    host: a.host,
    basePort: a['base-port'],
    port: a.port,
    dataDir: a['data-dir'],
    masterUrl: a['master-url'],
    advertiseUrl: a['advertise-url'],
    clusterToken: a['cluster-token'],
    join: a.join,
    maxBody: a['max-body'],
    maxStatements: a['max-statements'],
    ackTimeoutMs: a['ack-timeout'],
    readWaitMs: a['read-wait'],
    forwardTimeoutMs: a['forward-timeout'],
    heartbeatMs: a['heartbeat-ms'],
    logRetain: a['log-retain'],
    verifyMs: a['verify-ms'],
    etcd: a.etcd ? [a.etcd] : [],
    leaseTtlMs: a['lease-ttl'] * 1000,
    clusterName: a['cluster-name'],
    idempotencyWindowMs: a['idempotency-window'] * 1000,
    queryTimeoutMs: a['query-timeout'],
    maxRows: a['max-rows'],
    readWorkers: a['read-workers'],
    authFile: a.auth,
    insecure: a.insecure,
    tlsCert: a['tls-cert'],
    tlsKey: a['tls-key'],
    tlsCa: a['tls-ca'],
    durability: a.durability,
    logLevel: a['log-level'],
    pretty: a.pretty ?? process.stdout.isTTY === true,
  };
}

/**
 * V8 lets the old generation grow up to 4x past live data before a full collection; a node's
 * live heap is small (tens of MB) but its garbage rate is high, so resident memory climbed
 * to ~250-390 MB over 1M writes. Growing by 20% instead (a policy, not a cap: nothing can
 * run out of memory because of it) kept the master at ~185 MB after 200k writes vs ~220 MB
 * at the same throughput (bench/rss.ts). The flag is read at each collection, so setting it
 * at startup takes effect; `node --heap-growing-percent=N` on the command line wins.
 */
function tuneHeap(): void {
  if (process.execArgv.some((f) => f.startsWith('--heap-growing-percent'))) return;
  v8.setFlagsFromString('--heap-growing-percent=20');
}

async function runNode(input: ConfigInput): Promise<void> {
  tuneHeap();
  let node: RunningNode;
  try {
    node = await startNode(resolveConfig(input));
  } catch (e) {
    process.stderr.write(`sqlfleet: cannot start node ${input.id}: ${(e as Error).message}\n`);
    process.exit(1);
  }
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    // process.exit() waits for every thread, and a read thread stuck inside SQLite never
    // ends: after a clean shutdown (the writer is closed, nothing is lost) such a process
    // ends itself with SIGKILL, and so does one whose shutdown hangs.
    const kill = () => process.kill(process.pid, 'SIGKILL');
    setTimeout(kill, 5000);
    await node.stop();
    if (node.stuckThreads() > 0) kill();
    process.exit(0);
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

/** `cluster N`: the master and N slaves as child processes, logs prefixed by node. */
function runCluster(a: Args, numSlaves: number, argv: string[]): void {
  if (a.port !== undefined) {
    process.stderr.write('sqlfleet: cluster gives node <id> port --base-port + id; use --base-port, not --port\n');
    process.exit(2);
  }
  const cfg = resolveConfig(toInput(a, 0, numSlaves));
  masterToken(cfg.clusterToken, cfg.tokenPath); // create it before the slaves look for it
  const self = fileURLToPath(import.meta.url);
  const passthrough = argv.slice(argv.indexOf('cluster') + 2).filter((x) => x !== '--with-etcd');
  // Children write to pipes: pass on the terminal's preference for readable logs.
  if (a.pretty ?? process.stdout.isTTY) passthrough.push('--pretty');
  const children: ChildProcess[] = [];
  const launch = (args: string[], label: string) => {
    const child = spawn(process.execPath, [...process.execArgv, self, ...args, ...passthrough], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[${label}] ${line}\n`));
    }
    child.on('exit', (code, signal) => process.stdout.write(`[${label}] exited (${signal ?? code})\n`));
    children.push(child);
  };
  if (a['with-etcd']) {
    // A local etcd for trying automatic failover on one machine (Debian's etcd-server).
    // etcd's usual port beside the default node ports, else the two ports after the last node's.
    const port = cfg.basePort === 8080 ? 2379 : cfg.basePort + numSlaves + 1;
    const url = `http://127.0.0.1:${port}`;
    const etcd = spawn(
      'etcd',
      ['--name', 'sqlfleet', '--data-dir', `${cfg.dataDir}/etcd`, '--listen-client-urls', url, '--advertise-client-urls', url,
        '--listen-peer-urls', `http://127.0.0.1:${port + 1}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${port + 1}`,
        '--initial-cluster', `sqlfleet=http://127.0.0.1:${port + 1}`, '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    etcd.on('error', (e) => {
      process.stderr.write(`sqlfleet: --with-etcd needs etcd on PATH (Debian: apt-get install etcd-server): ${e.message}\n`);
      process.exit(2);
    });
    for (const stream of [etcd.stdout!, etcd.stderr!]) readline.createInterface({ input: stream }).on('line', (line) => process.stdout.write(`[etcd] ${line}\n`));
    etcd.on('exit', (code, signal) => process.stdout.write(`[etcd] exited (${signal ?? code})\n`));
    children.push(etcd);
    passthrough.push('--etcd', url);
    process.stdout.write(`[cluster] etcd on ${url} (data in ${cfg.dataDir}/etcd); nodes elect their master through it\n`);
  }
  launch(['master', String(numSlaves)], 'node 0');
  for (let id = 1; id <= numSlaves; id++) launch(['node', String(id), String(numSlaves)], `node ${id}`);
  void reportReady(cfg.basePort, cfg.host, numSlaves, !!cfg.tlsCert, !!a['with-etcd']);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
    setTimeout(() => process.exit(0), 6000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  let alive = children.length;
  for (const c of children) c.on('exit', () => --alive === 0 && process.exit(0));
}

/** Prints one line once every node's /health is 200: every slave is in sync with the master. */
async function reportReady(basePort: number, host: string, numSlaves: number, tls: boolean, etcd: boolean): Promise<void> {
  const urls = Array.from({ length: numSlaves + 1 }, (_, id) => `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${basePort + id}`);
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    const ok = await Promise.all(urls.map((u) => fetch(`${u}/health`, { signal: AbortSignal.timeout(1000) }).then((r) => r.ok, () => false)));
    // With etcd, also every slave in the master's sync set: ack "all" then covers them all.
    if (ok.every(Boolean) && (!etcd || (await inSyncSet(urls, numSlaves)))) {
      process.stdout.write(`[cluster] ready: ${urls.length} nodes healthy, every slave in sync with the master (${urls.join(' ')})\n`);
      return;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** True when one of `urls` is master with `numSlaves` slaves in its sync set (etcd mode). */
async function inSyncSet(urls: string[], numSlaves: number): Promise<boolean> {
  for (const u of urls) {
    const r = await fetch(`${u}/status`, { signal: AbortSignal.timeout(1000) }).catch(() => null);
    if (r?.status === 401) return true; // --auth: /status needs credentials; /health has to do
    const s = r?.ok ? ((await r.json().catch(() => null)) as { role?: string; sync_set?: number[] } | null) : null;
    if (s?.role === 'master') return (s.sync_set?.length ?? 0) >= numSlaves;
  }
  return false;
}

const argv = hideBin(process.argv);
await yargs(argv)
  .scriptName('sqlfleet')
  .env('SQLFLEET')
  .command(
    'master <numSlaves>',
    'run the master (node 0)',
    (y) => common(y).positional('numSlaves', { type: 'number', demandOption: true }),
    (a) => runNode(toInput(a as unknown as Args, 0, a.numSlaves as number)),
  )
  .command(
    'node <id> <numSlaves>',
    'run slave <id> (or the master when id is 0)',
    (y) => common(y).positional('id', { type: 'number', demandOption: true }).positional('numSlaves', { type: 'number', demandOption: true }),
    (a) => runNode(toInput(a as unknown as Args, a.id as number, a.numSlaves as number)),
  )
  .command(
    'cluster <numSlaves>',
    'run the master and <numSlaves> slaves on this machine, each its own process',
    (y) =>
      common(y)
        .positional('numSlaves', { type: 'number', demandOption: true })
        .option('with-etcd', { type: 'boolean', default: false, describe: 'start a local etcd (on PATH) and run every node with --etcd: automatic failover' }),
    (a) => runCluster(a as unknown as Args, a.numSlaves as number, argv),
  )
  .command('hash-password', 'read a password on stdin and print its scrypt hash for the --auth file', {}, async () => {
    const chunks: Buffer[] = [];
    for await (const c of process.stdin) chunks.push(c as Buffer);
    const pw = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
    if (!pw) {
      process.stderr.write('hash-password: empty password on stdin\n');
      process.exit(1);
    }
    process.stdout.write((await hashPassword(pw)) + '\n');
  })
  .command('new-token', 'print a new API token, and the line to put in the --auth file', {}, () => {
    const { token, stored } = newToken();
    process.stdout.write(JSON.stringify({ token, tokens_entry: stored }) + '\n');
  })
  .demandCommand(1)
  .strict()
  .help()
  .parseAsync();

