// Command line: the only file that reads argv/env or calls process.exit.
import fs from 'node:fs';
import v8 from 'node:v8';
import { fileURLToPath } from 'node:url';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { resolveConfig, type ConfigInput, type Durability } from './config.js';
import { hashPassword, newToken } from './auth/users.js';
import { masterToken } from './cluster/token.js';
import { startNode, type RunningNode } from './node.js';
import { announceListening, runCluster } from './launcher.js';
import { armFailpoints } from './failpoints.js';

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
    .option('tx-timeout', { type: 'number', default: 5000, describe: 'ms an interactive (Hrana) transaction may stay open before it is rolled back' })
    .option('max-streams', { type: 'number', default: 1000, describe: 'open Hrana streams per node' })
    .option('max-streams-per-user', { type: 'number', default: 200, describe: 'open Hrana streams per user' })
    .option('stream-idle', { type: 'number', default: 10000, describe: 'ms after which an idle Hrana stream expires' })
    // Tests only (src/failpoints.ts): named places made to fail, to prove a node survives them.
    .option('failpoints', { type: 'string', hidden: true })
    .option('verify-ms', { type: 'number', default: 10000, describe: 'ms between checksum comparisons (master)' })
    .option('capture', { type: 'string', default: 'none', describe: 'change feed: tables whose row changes this node records (all, none, or t1,t2); GET /changes' })
    .option('changes-retain', { type: 'number', default: 100000, describe: 'log indexes whose change events a node keeps (older: GET /changes answers 410)' })
    .option('changes-max-subscribers', { type: 'number', default: 100, describe: 'open GET /changes feeds per node' })
    .option('cdc-url', { type: 'string', describe: 'change feed webhook: the master POSTs batches of events here, at least once, in order (needs --capture)' })
    .option('changes-heartbeat', { type: 'number', default: 15000, describe: 'ms between heartbeats on an idle GET /changes feed' })
    .option('idempotency-window', { type: 'number', default: 600, describe: 's an idempotency key is honoured (retries after it are refused or, for non-UUIDv7 keys, new)' })
    .option('etcd', { type: 'string', describe: 'etcd URLs (comma-separated): automatic failover' })
    .option('etcd-ca', { type: 'string', describe: "PEM file of the CA that signed etcd's server certificate (https:// etcd URLs)" })
    .option('etcd-cert', { type: 'string', describe: 'PEM client certificate for etcd (etcd --client-cert-auth); with --etcd-key' })
    .option('etcd-key', { type: 'string', describe: 'PEM private key of --etcd-cert' })
    .option('etcd-user', { type: 'string', describe: 'etcd user (etcd auth enabled); the password from SQLFLEET_ETCD_PASSWORD (or --etcd-password, visible in ps)' })
    .option('etcd-password', { type: 'string', describe: 'password of --etcd-user; prefer the SQLFLEET_ETCD_PASSWORD environment variable' })
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
    etcdCa: a['etcd-ca'],
    etcdCert: a['etcd-cert'],
    etcdKey: a['etcd-key'],
    etcdUser: a['etcd-user'],
    etcdPassword: a['etcd-password'],
    leaseTtlMs: a['lease-ttl'] * 1000,
    clusterName: a['cluster-name'],
    idempotencyWindowMs: a['idempotency-window'] * 1000,
    capture: a.capture,
    changesRetain: a['changes-retain'],
    changesMaxSubscribers: a['changes-max-subscribers'],
    changesHeartbeatMs: a['changes-heartbeat'],
    cdcUrl: a['cdc-url'],
    queryTimeoutMs: a['query-timeout'],
    maxRows: a['max-rows'],
    readWorkers: a['read-workers'],
    txTimeoutMs: a['tx-timeout'],
    maxStreams: a['max-streams'],
    maxStreamsPerUser: a['max-streams-per-user'],
    streamIdleMs: a['stream-idle'],
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

async function runNode(input: ConfigInput, failpoints?: string): Promise<void> {
  tuneHeap();
  armFailpoints(failpoints ?? '');
  // A backstop, not the fix: every promise and timer handles its own failure. Should one be
  // missed, a node that logs it and goes on serving beats one that exits (Node's default).
  const lastResort = (what: string) => (e: unknown) =>
    process.stderr.write(`${JSON.stringify({ level: 'error', node: input.id, msg: what, err: e instanceof Error ? (e.stack ?? e.message) : String(e) })}\n`);
  process.on('unhandledRejection', lastResort('unhandled rejection (a bug: please report it)'));
  process.on('uncaughtException', lastResort('uncaught exception (a bug: please report it)'));
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
  announceListening(input.id, node.url, () => void stop());
}

/** `cluster N`: the master and N slaves as child processes, logs prefixed by node (src/launcher.ts). */
async function cluster(a: Args, numSlaves: number, argv: string[]): Promise<void> {
  if (a.port !== undefined) {
    process.stderr.write('sqlfleet: cluster gives node <id> port --base-port + id; use --base-port, not --port\n');
    process.exit(2);
  }
  let cfg: ReturnType<typeof resolveConfig>;
  let ca: string | null;
  try {
    cfg = resolveConfig(toInput(a, 0, numSlaves));
    ca = cfg.tlsCa ? fs.readFileSync(cfg.tlsCa, 'utf8') : null;
    masterToken(cfg.clusterToken, cfg.tokenPath); // create it before the slaves look for it
  } catch (e) {
    process.stderr.write(`sqlfleet: cannot start the cluster: ${(e as Error).message}\n`);
    process.exit(2);
  }
  const passthrough = argv.slice(argv.indexOf('cluster') + 2).filter((x) => x !== '--with-etcd');
  // Children write to pipes: pass on the terminal's preference for readable logs.
  if (a.pretty ?? process.stdout.isTTY) passthrough.push('--pretty');
  const code = await runCluster({
    script: fileURLToPath(import.meta.url),
    execArgv: process.execArgv,
    numSlaves,
    host: cfg.host,
    basePort: cfg.basePort,
    dataDir: cfg.dataDir,
    tls: !!cfg.tlsCert,
    ca,
    withEtcd: !!a['with-etcd'],
    passthrough,
    say: (line) => process.stdout.write(`${line}\n`),
  });
  process.exit(code);
}

/**
 * SQLFLEET_* variables that name no option (another tool's, a typo) would make yargs' strict
 * mode refuse to start ("Unknown argument"): each is said once on stderr and ignored.
 */
function dropUnknownEnv(): void {
  const flat = (k: string) => k.toLowerCase().replace(/[-_]/g, '');
  const parser = common(yargs([])) as unknown as { getOptions(): { key: Record<string, unknown> } }; // getOptions() is untyped in @types/yargs
  const known = new Set([...Object.keys(parser.getOptions().key), 'with-etcd'].map(flat));
  for (const k of Object.keys(process.env)) {
    if (!k.startsWith('SQLFLEET_') || known.has(flat(k.slice('SQLFLEET_'.length)))) continue;
    process.stderr.write(`sqlfleet: ignoring ${k}: there is no --${k.slice('SQLFLEET_'.length).toLowerCase().replace(/_/g, '-')} option\n`);
    delete process.env[k];
  }
}

/** Refuses a count that is not a whole number >= 0 with one line (yargs turns "abc" into NaN). */
function count(name: string, value: unknown, raw: string | undefined): number {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 0) return value;
  process.stderr.write(`sqlfleet: <${name}> must be a whole number >= 0, got ${JSON.stringify(raw ?? String(value))}\n`);
  process.exit(2);
}

// The shell's history file variable: yargs' strict mode would refuse it as an unknown --history.
delete process.env.SQLFLEET_HISTORY;
dropUnknownEnv();
const argv = hideBin(process.argv);
await yargs(argv)
  .scriptName('sqlfleet')
  .env('SQLFLEET')
  .command(
    'master <numSlaves>',
    'run the master (node 0)',
    (y) => common(y).positional('numSlaves', { type: 'number', demandOption: true }),
    (a) => runNode(toInput(a as unknown as Args, 0, a.numSlaves as number), a.failpoints as string | undefined),
  )
  .command(
    'node <id> <numSlaves>',
    'run slave <id> (or the master when id is 0)',
    (y) => common(y).positional('id', { type: 'number', demandOption: true }).positional('numSlaves', { type: 'number', demandOption: true }),
    (a) => runNode(toInput(a as unknown as Args, a.id as number, a.numSlaves as number), a.failpoints as string | undefined),
  )
  .command(
    'cluster <numSlaves>',
    'run the master and <numSlaves> slaves on this machine, each its own process',
    (y) =>
      common(y)
        .positional('numSlaves', { type: 'number', demandOption: true })
        .option('with-etcd', { type: 'boolean', default: false, describe: 'start a local etcd (on PATH) and run every node with --etcd: automatic failover' }),
    (a) => cluster(a as unknown as Args, count('numSlaves', a.numSlaves, argv[argv.indexOf('cluster') + 1]), argv),
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

