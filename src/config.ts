// resolveConfig(): turns loose CLI/env input into one frozen Config. No I/O here.
import path from 'node:path';

/** SQLite durability: `normal` = synchronous NORMAL in WAL, `full` = synchronous FULL. */
export type Durability = 'normal' | 'full';

/** A node's role in the cluster. */
export type Role = 'master' | 'slave';

/** Everything a node needs to run, resolved once. */
export interface Config {
  readonly id: number;
  readonly role: Role;
  readonly numSlaves: number;
  readonly host: string;
  /** Port to listen on; 0 lets the OS choose (tests). */
  readonly port: number;
  readonly basePort: number;
  /** URL other nodes use to reach this node; null = derived from host and the bound port. */
  readonly advertiseUrl: string | null;
  readonly dataDir: string;
  readonly dbPath: string;
  readonly tokenPath: string;
  /** Master URL (slaves). */
  readonly masterUrl: string;
  /** Explicit cluster token; null = read or create `<dataDir>/cluster.token`. */
  readonly clusterToken: string | null;
  /** Master URL to register at runtime with (a slave outside the numSlaves range). */
  readonly join: string | null;
  readonly maxBody: number;
  readonly maxStatements: number;
  readonly ackTimeoutMs: number;
  readonly readWaitMs: number;
  readonly forwardTimeoutMs: number;
  readonly heartbeatMs: number;
  /** A slave with no contact for this long is `down`. */
  readonly downAfterMs: number;
  readonly durability: Durability;
  /** Log entries the master keeps beyond what every slave has applied. */
  readonly logRetain: number;
  /** Max entries (and bytes) shipped to a slave in one request. */
  readonly batchMaxEntries: number;
  readonly batchMaxBytes: number;
  readonly logLevel: string;
  /** Human-readable logs instead of JSON lines. */
  readonly pretty: boolean;
  /** A read running longer is stopped and answered 504. */
  readonly queryTimeoutMs: number;
  /** Most rows one statement returns; more are cut and flagged `truncated`. */
  readonly maxRows: number;
  /** Threads running client reads. */
  readonly readWorkers: number;
  /** An interactive transaction open longer is rolled back and frees the writer (DESIGN §8). */
  readonly txTimeoutMs: number;
  /** Open Hrana streams per node, and per user; an idle stream expires after streamIdleMs. */
  readonly maxStreams: number;
  readonly maxStreamsPerUser: number;
  readonly streamIdleMs: number;
  /** Users file for client auth; null = no client auth (loopback only unless insecure). */
  readonly authFile: string | null;
  /** Allow binding a non-loopback address without --auth. */
  readonly insecure: boolean;
  /** TLS for clients and node-to-node traffic. */
  readonly tlsCert: string | null;
  readonly tlsKey: string | null;
  readonly tlsCa: string | null;
  /** How often the master compares slaves' checksums with its own. */
  readonly verifyMs: number;
  /** etcd endpoints: automatic failover (DESIGN §6); empty = static mode. */
  readonly etcd: readonly string[];
  /** etcd client TLS (CA, client certificate and key: PEM files) and user; the password comes from --etcd-password or SQLFLEET_ETCD_PASSWORD. */
  readonly etcdCa: string | null;
  readonly etcdCert: string | null;
  readonly etcdKey: string | null;
  readonly etcdUser: string | null;
  readonly etcdPassword: string | null;
  /** Leader lease TTL in etcd mode. */
  readonly leaseTtlMs: number;
  /** Names the cluster: its keys in etcd, and a check that nodes talking to each other belong together. */
  readonly clusterName: string;
  /** Idempotency keys are honoured this long (ms); kept IDEMPOTENCY_GRACE_MS longer for clock skew. */
  readonly idempotencyWindowMs: number;
  /** Change feed (DESIGN §9): tables whose row changes this node records, and how many recent log indexes' events it keeps. */
  readonly capture: CaptureSpec;
  readonly changesRetain: number;
  /** Open GET /changes feeds per node, and how often an idle one gets a heartbeat. */
  readonly changesMaxSubscribers: number;
  readonly changesHeartbeatMs: number;
  /** Change feed webhook: the master POSTs batches of events here (null: none). */
  readonly cdcUrl: string | null;
}

/** Which tables a node captures for the change feed: every user table, none, or the named ones. */
export type CaptureSpec = 'all' | 'none' | readonly string[];

/** Parses --capture: "all", "none", or a comma-separated list of table names. */
export function parseCapture(v: string | readonly string[] | undefined): CaptureSpec {
  if (Array.isArray(v)) return parseCapture(v.join(','));
  const s = String(v ?? 'none').trim();
  if (s === '' || s === 'none') return 'none';
  if (s === 'all') return 'all';
  const names = s.split(',').map((n) => n.trim()).filter(Boolean);
  for (const n of names) if (n.startsWith('_sqlfleet_') || n.startsWith('sqlite_')) throw new Error(`--capture: ${n} is an internal table`);
  return names;
}

/** Loose input: what the CLI or a test hands over. */
export type ConfigInput = Partial<Omit<Config, 'role' | 'dbPath' | 'tokenPath' | 'capture'>> & { id: number; numSlaves: number; capture?: CaptureSpec | string };

/** Extra time applied idempotency keys are kept past the window: tolerated client/master clock skew. */
export const IDEMPOTENCY_GRACE_MS = 60_000;

/** How long a node keeps applied idempotency keys: the window plus the skew grace (no more than the window itself). */
export function idempotencyRetainMs(c: Pick<Config, 'idempotencyWindowMs'>): number {
  return c.idempotencyWindowMs + Math.min(IDEMPOTENCY_GRACE_MS, c.idempotencyWindowMs);
}

/** Builds the frozen Config; throws a plain Error with a user-facing message on bad input. */
export function resolveConfig(input: ConfigInput): Config {
  const id = input.id;
  if (!Number.isInteger(id) || id < 0) throw new Error(`node id must be a non-negative integer, got ${id}`);
  const numSlaves = input.numSlaves;
  if (!Number.isInteger(numSlaves) || numSlaves < 0) throw new Error(`numSlaves must be a non-negative integer, got ${numSlaves}`);
  const host = input.host ?? '127.0.0.1';
  const basePort = input.basePort ?? 8080;
  const port = input.port ?? basePort + id;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`port out of range: ${port}`);
  const dataDir = path.resolve(input.dataDir ?? './data');
  const scheme = input.tlsCert ? 'https' : 'http';
  const masterUrl = stripSlash(input.masterUrl ?? input.join ?? `${scheme}://${urlHost(host)}:${basePort}`);
  const heartbeatMs = positive('heartbeat-ms', input.heartbeatMs ?? 500);
  if (!!input.tlsCert !== !!input.tlsKey) throw new Error('--tls-cert and --tls-key go together');
  if (!isLoopback(host) && !input.authFile && !input.insecure) {
    throw new Error(
      `refusing to bind ${host} without --auth: anyone who can reach it could read and write the database. ` +
        'Give --auth <users file>, or --insecure if the network itself is trusted.',
    );
  }
  return Object.freeze({
    id,
    role: id === 0 ? 'master' : 'slave',
    numSlaves,
    host,
    port,
    basePort,
    advertiseUrl: input.advertiseUrl ? stripSlash(input.advertiseUrl) : null,
    dataDir,
    dbPath: path.join(dataDir, `node-${id}.db`),
    tokenPath: path.join(dataDir, 'cluster.token'),
    masterUrl,
    clusterToken: input.clusterToken ?? null,
    join: input.join ? stripSlash(input.join) : null,
    maxBody: positive('max-body', input.maxBody ?? 1024 * 1024),
    maxStatements: positive('max-statements', input.maxStatements ?? 1000),
    ackTimeoutMs: positive('ack-timeout', input.ackTimeoutMs ?? 5000),
    readWaitMs: positive('read-wait', input.readWaitMs ?? 5000),
    forwardTimeoutMs: positive('forward-timeout', input.forwardTimeoutMs ?? 10000),
    heartbeatMs,
    downAfterMs: positive('down-after', input.downAfterMs ?? heartbeatMs * 4),
    durability: input.durability ?? 'normal',
    logRetain: positive('log-retain', input.logRetain ?? 10000),
    batchMaxEntries: positive('batch-max-entries', input.batchMaxEntries ?? 1000),
    batchMaxBytes: positive('batch-max-bytes', input.batchMaxBytes ?? 4 * 1024 * 1024),
    logLevel: input.logLevel ?? 'info',
    pretty: input.pretty ?? false,
    verifyMs: positive('verify-ms', input.verifyMs ?? 10_000),
    etcd: etcdUrls(input.etcd),
    ...etcdSecurity(input),
    leaseTtlMs: leaseTtl(input.leaseTtlMs ?? 3000),
    clusterName: clusterName(input.clusterName ?? 'sqlfleet'),
    idempotencyWindowMs: positive('idempotency-window', input.idempotencyWindowMs ?? 600_000),
    authFile: input.authFile ?? null,
    insecure: input.insecure ?? false,
    tlsCert: input.tlsCert ?? null,
    tlsKey: input.tlsKey ?? null,
    tlsCa: input.tlsCa ?? null,
    queryTimeoutMs: positive('query-timeout', input.queryTimeoutMs ?? 5_000),
    maxRows: positive('max-rows', input.maxRows ?? 100_000),
    readWorkers: positive('read-workers', input.readWorkers ?? 2),
    txTimeoutMs: positive('tx-timeout', input.txTimeoutMs ?? 5_000),
    maxStreams: positive('max-streams', input.maxStreams ?? 1000),
    maxStreamsPerUser: positive('max-streams-per-user', input.maxStreamsPerUser ?? 200),
    streamIdleMs: positive('stream-idle', input.streamIdleMs ?? 10_000),
    capture: parseCapture(input.capture),
    changesRetain: positive('changes-retain', input.changesRetain ?? 100_000),
    changesMaxSubscribers: positive('changes-max-subscribers', input.changesMaxSubscribers ?? 100),
    changesHeartbeatMs: positive('changes-heartbeat', input.changesHeartbeatMs ?? 15_000),
    cdcUrl: cdcUrl(input.cdcUrl ?? null),
  });
}

function cdcUrl(v: string | null): string | null {
  if (v === null || v === '') return null;
  if (!/^https?:\/\/[^/]+/.test(v)) throw new Error(`--cdc-url: "${v}" is not an http(s) URL`);
  return v;
}

function etcdUrls(v: readonly string[] | undefined): string[] {
  const urls = (v ?? []).flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean);
  for (const u of urls) if (!/^https?:\/\/[^/]+/.test(u)) throw new Error(`--etcd: "${u}" is not an http(s) URL such as http://127.0.0.1:2379`);
  return urls;
}

function etcdSecurity(input: ConfigInput): Pick<Config, 'etcdCa' | 'etcdCert' | 'etcdKey' | 'etcdUser' | 'etcdPassword'> {
  const s = { etcdCa: input.etcdCa ?? null, etcdCert: input.etcdCert ?? null, etcdKey: input.etcdKey ?? null, etcdUser: input.etcdUser ?? null, etcdPassword: input.etcdPassword ?? null };
  if (!s.etcdCert !== !s.etcdKey) throw new Error('--etcd-cert and --etcd-key go together (a client certificate and its key)');
  if (s.etcdPassword !== null && !s.etcdUser) throw new Error('--etcd-password (SQLFLEET_ETCD_PASSWORD) needs --etcd-user');
  if ((s.etcdCa || s.etcdCert) && input.etcd?.some((u) => u.split(',').some((x) => x.trim().startsWith('http://')))) throw new Error('--etcd-ca/--etcd-cert need https:// etcd URLs');
  return s;
}

function leaseTtl(ms: number): number {
  // etcd leases have whole seconds; a master renews every third of it.
  if (!Number.isFinite(ms) || ms < 1000 || ms % 1000 !== 0) throw new Error(`--lease-ttl must be a whole number of seconds >= 1, got ${ms / 1000}`);
  return ms;
}

function clusterName(v: string): string {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(v)) throw new Error(`--cluster-name must be 1-64 letters, digits, '.', '_' or '-', got "${v}"`);
  return v;
}

function positive(name: string, v: number): number {
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got ${v}`);
  return v;
}

function stripSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/** True for addresses only this machine can reach. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || /^127\./.test(host) || host === '::1' || host === '[::1]';
}

/** Host part of a URL: IPv6 literals need brackets. */
export function urlHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
