// startNode(config): wires store, SQL classifier, replication, cluster and HTTP into one
// running node, and stops it cleanly.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { idempotencyRetainMs, urlHost, type Config } from './config.js';
import { Users } from './auth/users.js';
import { SqlfleetError } from './errors.js';
import { Executor, type ExecutorDeps } from './core/executor.js';
import { createHrana } from './hrana/index.js';
import { IndexWaiter } from './core/index-waiter.js';
import { masterToken, slaveToken } from './cluster/token.js';
import { createApp, type AppDeps } from './http/app.js';
import { clusterTokenCheck } from './http/auth.js';
import { withReplicationLane, type LaneDeps } from './http/lane.js';
import { serveReplicationStream } from './http/stream.js';
import { createLogger, type LogFn } from './log.js';
import { PeerClient } from './replication/client.js';
import { createClassifier } from './sql/classify.js';
import { Store } from './store/store.js';
import { oneSqliteLibrary } from './store/driver.js';
import { Portable } from './store/portable.js';
import { splitStatements } from './sql/split.js';
import { legacyStrings } from './sql/dqs.js';
import { HaLoop, type CopyFn } from './ha/loop.js';
import { Promoter } from './wiring/promote.js';
import { Roles, readRole, rolePath, type SavedRole } from './wiring/roles.js';
import { Metrics } from './metrics.js';
import { Webhook } from './changes/webhook.js';

/** A running node. */
export interface RunningNode {
  readonly url: string;
  readonly config: Config;
  stop(): Promise<void>;
  /** Threads stuck in SQLite: Node cannot exit normally while any runs. */
  stuckThreads(): number;
}

/**
 * Says at start what the data dir brought from an earlier run: a saved role decides over the
 * command line (a node failed over stays what it became), which surprises whoever forgot it.
 */
function announceSaved(config: Config, saved: SavedRole | null, store: Store, log: LogFn): void {
  const fresh = 'remove the data dir (or pass another --data-dir) to start fresh';
  if (saved) {
    log('info', 'found a saved role: it decides over the command line', {
      from: rolePath(config),
      role: saved.role,
      epoch: saved.epoch,
      ...(saved.master ? { master: saved.master } : {}),
      command_line_role: config.role,
      db: config.dbPath,
      applied_index: store.appliedIndex,
      hint: fresh,
    });
  } else if (store.appliedIndex > 0) {
    log('info', 'found an existing database', { from: config.dbPath, applied_index: store.appliedIndex, epoch: store.epoch, hint: fresh });
  } else log('info', 'starting with an empty database', { db: config.dbPath, role: config.role });
}

/** Starts a node and resolves once it listens. */
export async function startNode(config: Config, log: LogFn = createLogger(config.id, config.logLevel, config.pretty)): Promise<RunningNode> {
  const token =
    config.role === 'master' ? masterToken(config.clusterToken, config.tokenPath) : await slaveToken(config.clusterToken, config.tokenPath, 15_000);
  const store = new Store({
    path: config.dbPath,
    durability: config.durability,
    readWorkers: config.readWorkers,
    queryTimeoutMs: config.queryTimeoutMs,
    maxRows: config.maxRows,
    idempotencyRetainMs: idempotencyRetainMs(config),
    capture: config.capture,
    changesRetain: config.changesRetain,
    log,
    onCommitGroup: (n) => metrics.commitGroup(n), // called on writes only, after metrics exists
  });
  // The read workers have loaded their driver once ready: a process holding two SQLite
  // libraries (a copied install, driver.ts) stops here instead of serving corrupt reads.
  await withTimeout(store.ready(), 60_000, 'the read workers did not start within 60 s');
  oneSqliteLibrary();
  const classifier = createClassifier({ probe: store.probe, maxStatements: config.maxStatements });
  // Backup, load and declared column types for rqlite's /db/* (DESIGN §7).
  const portable = new Portable({
    dbPath: config.dbPath,
    scratchDir: config.dataDir,
    split: splitStatements,
    rewrite: legacyStrings,
    lastWrite: () => store.lastClientWrite(),
    vet: (sql) => {
      const c = classifier.classify(sql);
      if (c.kind === 'forbidden') throw new SqlfleetError('BAD_REQUEST', `the SQL dump holds a statement no node may run: ${c.statements.find((s) => s.kind === 'forbidden')?.reason ?? sql}`);
    },
  });
  const waiter = new IndexWaiter(() => store.appliedIndex);
  const client = new PeerClient(token, config.tlsCa ? { ca: fs.readFileSync(config.tlsCa, 'utf8') } : {});
  // Gauges read the role lazily at scrape time.
  let roles: Roles | undefined = undefined;
  const metrics: Metrics = new Metrics(config.id, config.role, { appliedIndex: () => store.appliedIndex, pointReads: () => store.pointReads, nodes: (): Record<string, unknown>[] => roles?.current.nodes() ?? [], masterless: () => ha?.masterless() ?? null, changes: () => ({ feeds: store.changes.feeds, webhook: webhook?.status() ?? null }) });
  roles = new Roles({ config, store, client, waiter, log, metrics });
  let url = '';
  // etcd mode: etcd decides who is master; every node starts as a follower of nobody yet.
  const ha = config.etcd.length ? new HaLoop({ config, store, roles, log, selfUrl: () => url }) : null;
  if (ha) roles.ha = ha.hooks;
  const saved = readRole(config);
  announceSaved(config, saved, store, log);
  if (ha) roles.initFollower(saved);
  else roles.init(saved, await startFollowing(saved, config, store.epoch, client, log));
  const execDeps: ExecutorDeps = {
    config,
    store,
    classify: (sql) => classifier.classify(sql),
    applied: waiter,
    role: () => roles.current.kind,
    replicate: roles.replicate,
    forward: (body, onBehalf, epoch) => {
      const f = roles.current.forward;
      if (!f) throw new SqlfleetError('NOT_MASTER', 'this node became master while the request was routed; retry', { outcome: 'not_applied' });
      return f(body, onBehalf, epoch);
    },
    epoch: () => store.epoch,
    knownEpoch: () => {
      const cur = roles.current;
      return cur.kind === 'slave' ? cur.knownEpoch() : store.epoch;
    },
    masterUrl: () => roles.current.masterUrl(),
    diverged: () => roles.current.diverged(),
  };
  const executor = new Executor(execDeps);
  // Hrana (libSQL's protocol) and interactive transactions over the same dependencies (DESIGN §8).
  const hrana = createHrana({ deps: execDeps, config, token, log });
  hrana.registerMetrics(metrics.registry);
  const promoter = new Promoter({ config, store, client, roles, log, selfUrl: () => url, automatic: () => ha !== null, ...(ha ? { force: (copy: CopyFn) => ha.force(copy), switchover: (target: number | null) => ha.switchover(target) } : {}) });
  const role = {
    nodes: () => roles.current.nodes(),
    statusExtra: () => ({ ...roles.current.statusExtra(), ...(ha ? ha.status() : {}) }),
  };
  let ready = false;
  // Change feed webhook (--cdc-url): only the master sends; the delivered mark is replicated (changes/webhook.ts).
  const webhook = config.cdcUrl
    ? new Webhook({ url: config.cdcUrl, store, isMaster: () => roles.current.kind === 'master', replicate: roles.replicate, epoch: () => store.epoch, notify: () => waiter.notify(), ackTimeoutMs: config.ackTimeoutMs, log })
    : null;
  if (webhook) store.changes.hold = () => webhook.deliveredIndex();

  // One batch holds up to --batch-max-bytes plus one entry, which can be as large as a
  // client body; nodes may run different --max-body values, hence the headroom.
  const maxAppendBody = 64 * 1024 * 1024 + config.batchMaxBytes + 2 * config.maxBody;
  const observeRequest = (r: string, c: string) => metrics.request(r, c);
  const appDeps: AppDeps = {
    observe: { request: observeRequest, statement: (k, s) => metrics.statement(k, s) },
    token,
    users: config.authFile ? Users.load(config.authFile) : null,
    maxBody: config.maxBody,
    maxStatements: config.maxStatements,
    log,
    rqlite: portable,
    hrana: hrana.streams,
    changes: { source: store.changes, maxSubscribers: config.changesMaxSubscribers, heartbeatMs: config.changesHeartbeatMs },
    api: {
      execute: (req, raw, who) => executor.execute(req, raw, who),
      status: () => ({ node: config.id, role: roles.current.kind, url, applied_index: store.appliedIndex, ...role.statusExtra(), ...(webhook ? { cdc: webhook.status() } : {}), nodes: role.nodes() }),
      knownEpoch: execDeps.knownEpoch,
      checksum: () => store.checksum(),
      metrics: () => metrics.render(),
      ready: () => ready && roles.current.ready() && (ha?.ready() ?? true),
      heartbeat: (body) => roles.current.heartbeat(body),
      removeNode: (id) => roles.removeNode(id),
      resyncNode: (id) => roles.current.resyncNode(id),
      installSnapshot: (body) => roles.current.installSnapshot(body),
      promote: (id, force) => promoter.promote(id, force),
      promoteOrder: (body) => promoter.obey(body),
      logEntries: (from, max) => ({ status: 200, body: { ok: true, entries: store.entriesJson(from, max, 8 * 1024 * 1024).map((e) => JSON.parse(e.json) as unknown) } }),
      primary: () => roles.current.kind === 'master',
    },
  };
  const app = createApp(appDeps);

  // Replication appends and client queries take the lane on node:http; the rest goes to hono.
  const lane: LaneDeps = { hasClusterToken: clusterTokenCheck(token), append: (body) => roles.current.append(body), maxBody: maxAppendBody, observe: observeRequest, log, query: appDeps };
  const listener = withReplicationLane(lane, getRequestListener(app.fetch));
  const server: http.Server = await new Promise((resolve, reject) => {
    const tls = config.tlsCert && config.tlsKey ? { key: fs.readFileSync(config.tlsKey), cert: fs.readFileSync(config.tlsCert) } : null;
    const s = tls ? https.createServer(tls, listener) : http.createServer(listener);
    // Idle keep-alive connections are closed by the client first (undici: 4 s, browsers and
    // load balancers: up to 60 s): a server that closes first races a client reusing the
    // socket, whose request then fails with "other side closed" (seen under load in the
    // 10-minute stress run with Node's 5 s default).
    s.keepAliveTimeout = 65_000;
    s.headersTimeout = 66_000;
    s.once('error', reject);
    s.listen(config.port, config.host, () => resolve(s));
  });
  const closeStreams = serveReplicationStream(server, lane);
  hrana.attachWs(server, appDeps.users, clusterTokenCheck(token));
  const port = (server.address() as AddressInfo).port;
  url = config.advertiseUrl ?? `${config.tlsCert ? 'https' : 'http'}://${urlHost(config.host)}:${port}`;
  roles.start(url);
  ha?.start();
  webhook?.start();
  ready = true;
  log('info', 'ready', { role: roles.current.kind, url, applied_index: store.appliedIndex, data: config.dbPath, master: roles.current.kind === 'slave' ? roles.current.masterUrl() : url });

  return {
    url,
    config,
    stuckThreads: () => store.stuckReaders,
    stop: async () => {
      ready = false;
      await webhook?.stop();
      store.changes.shutdown(); // ends open GET /changes feeds, or server.close() would wait for them
      await ha?.stop();
      await roles.stop();
      waiter.cancelAll();
      closeStreams();
      await hrana.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await client.close();
      portable.close();
      await store.close();
      log('info', 'stopped');
    },
  };
}

/**
 * Whom to follow at start (static mode). A node that would start as master first asks the
 * peers it knew whether one of them is master in a newer epoch (it was failed over while
 * down): then it follows that one. A slave asks its saved master, the command line's
 * `--master-url` and its peers, and follows whichever answers as master in the highest
 * epoch (the command line may name a master the role file has not seen yet). Null: no
 * answer, start as saved or configured.
 */
async function startFollowing(saved: SavedRole | null, config: Config, epoch: number, client: PeerClient, log: LogFn): Promise<string | null> {
  const asMaster = (saved?.role ?? config.role) === 'master';
  if (asMaster && !saved) return null;
  const urls = new Set((saved?.peers ?? []).map((p) => p.url).filter((u): u is string => !!u));
  if (!asMaster) {
    if (saved?.master) urls.add(saved.master);
    urls.add(config.masterUrl);
  }
  const answers = await Promise.all(
    [...urls].map(async (url) => {
      try {
        const res = await client.get<{ role?: string; epoch?: number; url?: string }>(url, '/status', { timeoutMs: 1500 });
        const b = res.body;
        return res.status === 200 && b?.role === 'master' && typeof b.epoch === 'number' && (!asMaster || b.epoch > epoch) ? { url: b.url ?? url, epoch: b.epoch } : null;
      } catch {
        return null;
      }
    }),
  );
  const best = answers.filter((a) => a !== null).sort((a, b) => b.epoch - a.epoch)[0];
  if (best && asMaster) log('warn', 'a newer master exists; starting as its follower', { master: best.url, epoch: best.epoch, own_epoch: epoch });
  return best?.url ?? null;
}

/** Resolves as `p` does, or rejects with `message` after `ms`. */
async function withTimeout<T>(p: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
