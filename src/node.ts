// startNode(config): wires store, SQL classifier, replication, cluster and HTTP into one
// running node, and stops it cleanly.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { urlHost, type Config } from './config.js';
import { Users } from './auth/users.js';
import { Executor } from './core/executor.js';
import { IndexWaiter } from './core/index-waiter.js';
import { masterToken, slaveToken } from './cluster/token.js';
import { createApp } from './http/app.js';
import { clusterTokenCheck } from './http/auth.js';
import { withReplicationLane } from './http/lane.js';
import { createLogger, type LogFn } from './log.js';
import { PeerClient } from './replication/client.js';
import { createClassifier } from './sql/classify.js';
import { Store } from './store/store.js';
import { wireMaster } from './wiring/master.js';
import { wireSlave } from './wiring/slave.js';
import { Metrics } from './metrics.js';

/** A running node. */
export interface RunningNode {
  readonly url: string;
  readonly config: Config;
  stop(): Promise<void>;
  /** Threads stuck in SQLite: Node cannot exit normally while any runs. */
  stuckThreads(): number;
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
    log,
  });
  const classifier = createClassifier({ probe: store.probe, maxStatements: config.maxStatements });
  const waiter = new IndexWaiter(() => store.appliedIndex);
  const client = new PeerClient(token, config.tlsCa ? { ca: fs.readFileSync(config.tlsCa, 'utf8') } : {});
  // Gauges read the role lazily at scrape time.
  const metrics = new Metrics(config.id, config.role, { appliedIndex: () => store.appliedIndex, nodes: () => role.nodes() });
  const role = (config.role === 'master' ? wireMaster : wireSlave)(config, store, client, waiter, log, metrics);
  const executor = new Executor({ config, store, classify: (sql) => classifier.classify(sql), applied: waiter, ...role.executor });
  let url = '';
  let ready = false;

  // One batch holds up to --batch-max-bytes plus one entry, which can be as large as a
  // client body; nodes may run different --max-body values, hence the headroom.
  const maxAppendBody = 64 * 1024 * 1024 + config.batchMaxBytes + 2 * config.maxBody;
  const observeRequest = (r: string, c: string) => metrics.request(r, c);
  const app = createApp({
    observe: { request: observeRequest, statement: (k, s) => metrics.statement(k, s) },
    token,
    users: config.authFile ? Users.load(config.authFile) : null,
    maxBody: config.maxBody,
    maxStatements: config.maxStatements,
    log,
    api: {
      execute: (req, raw, who) => executor.execute(req, raw, who),
      status: () => ({ node: config.id, role: config.role, url, applied_index: store.appliedIndex, ...role.statusExtra(), nodes: role.nodes() }),
      checksum: () => store.checksum(),
      metrics: () => metrics.render(),
      ready: () => ready,
      heartbeat: (body) => role.heartbeat(body),
      removeNode: (id) => role.removeNode(id),
      resyncNode: (id) => role.resyncNode(id),
      installSnapshot: (body) => role.installSnapshot(body),
    },
  });

  // Replication appends take the lane on node:http; every other request goes to hono.
  const listener = withReplicationLane(
    { hasClusterToken: clusterTokenCheck(token), append: (body) => role.append(body), maxBody: maxAppendBody, observe: observeRequest, log },
    getRequestListener(app.fetch),
  );
  const server: http.Server = await new Promise((resolve, reject) => {
    const tls = config.tlsCert && config.tlsKey ? { key: fs.readFileSync(config.tlsKey), cert: fs.readFileSync(config.tlsCert) } : null;
    const s = tls ? https.createServer(tls, listener) : http.createServer(listener);
    s.once('error', reject);
    s.listen(config.port, config.host, () => resolve(s));
  });
  const port = (server.address() as AddressInfo).port;
  url = config.advertiseUrl ?? `${config.tlsCert ? 'https' : 'http'}://${urlHost(config.host)}:${port}`;
  role.start(url);
  ready = true;
  log('info', 'ready', { role: config.role, url, applied_index: store.appliedIndex, data: config.dbPath, master: config.role === 'slave' ? config.masterUrl : url });

  return {
    url,
    config,
    stuckThreads: () => store.stuckReaders,
    stop: async () => {
      ready = false;
      await role.stop();
      waiter.cancelAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await client.close();
      await store.close();
      log('info', 'stopped');
    },
  };
}
