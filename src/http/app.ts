// createApp(deps): the HTTP surface of a node. Routes parse and validate, call the node
// API, and map outcomes and SqlfleetErrors to responses in one place.
import type { LogFn } from '../log.js';
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { SqlfleetError } from '../errors.js';
import type { QueryRequest } from '../core/request.js';
import type { Outcome } from '../core/executor.js';
import { hasRole, type Principal, type Role, type Users } from '../auth/users.js';
import { clusterTokenCheck, clusterTokenRequired } from './auth.js';
import { readBody } from './body.js';
import { consoleHtml } from './console.js';
import { openapiDocument } from './openapi.js';
import { principalOf, requireRole } from './principal.js';
import { runQuery } from './query.js';
import { stringify } from './json.js';
import { registerRqlite, withRqliteStatus, type RqliteSupport } from './rqlite.js';
import { registerHrana } from '../hrana/http.js';
import type { Streams } from '../hrana/streams.js';
import { registerChanges, type ChangeSource } from './changes.js';

/** What the HTTP layer needs from a node; it never sees the store or replication. */
export interface NodeApi {
  execute(req: QueryRequest, rawBody: string, who: Principal): Promise<Outcome>;
  status(): Record<string, unknown>;
  /** The newest epoch this node knows of: stamped on what a slave passes to the master. */
  knownEpoch(): number;
  checksum(): Promise<unknown>;
  metrics(): Promise<string>;
  ready(): boolean;
  /** Cluster-internal calls (token required); appends go through lane.ts instead. */
  heartbeat(body: unknown): Outcome;
  removeNode(id: number): Outcome;
  resyncNode(id: number): Outcome;
  /** Slave: replaces its database with the streamed snapshot. */
  installSnapshot(body: ReadableStream<Uint8Array>): Promise<Outcome>;
  /** Makes node `id` the master (switchover or failover, DESIGN §6). */
  promote(id: number, force: boolean): Promise<Outcome>;
  /** An order to take over, from the old master or a peer. */
  promoteOrder(body: unknown): Promise<Outcome>;
  /** Log entries from `from` (failover copies them from the most advanced follower). */
  logEntries(from: number, max: number): Outcome;
  /** True while this node is the master (GET /primary). */
  primary(): boolean;
}

/** Dependencies of the app. */
export interface AppDeps {
  api: NodeApi;
  token: string;
  /** Client users (--auth), or null when client auth is off. */
  users: Users | null;
  maxBody: number;
  maxStatements: number;
  log: LogFn;
  /** The node's database as a file, for rqlite's /db/* routes (DESIGN §7); optional so tests can build a bare app. */
  rqlite?: RqliteSupport;
  /** libSQL's Hrana over HTTP (src/hrana/, DESIGN §8); optional so tests can build a bare app. */
  hrana?: Streams;
  /** The change feed (GET /changes, DESIGN §9); optional so tests can build a bare app (the route then says capture is off). */
  changes?: { source: ChangeSource; maxSubscribers: number; heartbeatMs: number };
  /** Observers for metrics; optional so tests can build a bare app. */
  observe?: {
    request(route: string, code: string): void;
    statement(cls: string, seconds: number): void;
  };
}

/** Builds the hono app of one node. */
export function createApp(d: AppDeps): Hono {
  const app = new Hono();
  const send = (c: Context, o: Outcome) => c.body(stringify(o.body), o.status as 200, { 'content-type': 'application/json' });
  const sendError = (c: Context, e: SqlfleetError) => send(c, { status: e.status, body: e.toJSON() });
  const hasClusterToken = clusterTokenCheck(d.token);
  // Who is asking (principal.ts, shared with the node:http lane).
  const principal = (c: Context): Promise<Principal> =>
    principalOf(d.users, hasClusterToken, (name) => c.req.header(name), (value) => c.header('WWW-Authenticate', value));
  const need = (role: Role) => async (c: Context, next: () => Promise<void>) => {
    const p = await principal(c);
    requireRole(p, role);
    c.set('principal' as never, p as never);
    await next();
  };
  // Membership changes: another node, or an admin user when --auth is on. With auth off,
  // only the cluster token, so reaching a node is not enough to remove its peers.
  const operator = async (c: Context, next: () => Promise<void>) => {
    if (!hasClusterToken(c.req.header('authorization'))) {
      if (!d.users) throw new SqlfleetError('UNAUTHORIZED', 'node management needs the cluster token (or an admin user with --auth)');
      const p = await principal(c);
      if (!hasRole(p, 'admin')) throw new SqlfleetError('FORBIDDEN', `user "${p.user}" (role ${p.role}) needs role admin`);
    }
    await next();
  };
  const internal = async (c: Context, next: () => Promise<void>) => {
    if (!hasClusterToken(c.req.header('authorization'))) {
      throw clusterTokenRequired();
    }
    await next();
  };

  app.use('*', async (c, next) => {
    await next();
    d.observe?.request(c.req.routePath || 'unknown', String(c.res.status));
  });

  app.get('/', (c) => c.html(consoleHtml()));
  app.get('/health', (c) => (d.api.ready() ? c.json({ ok: true }) : sendError(c, new SqlfleetError('UNAVAILABLE', 'not serving yet: starting, or not yet in sync with the master', { status: d.api.status() }))));
  // Load-balancer checks (Patroni's): 200 on the master only, and on followers only.
  app.get('/primary', (c) => (d.api.primary() ? c.json({ ok: true, role: 'master' }) : sendError(c, new SqlfleetError('NOT_MASTER', 'this node is not the master', { master: d.api.status().master }))));
  app.get('/replica', (c) =>
    !d.api.primary() && d.api.ready() ? c.json({ ok: true, role: 'slave' }) : sendError(c, new SqlfleetError('UNAVAILABLE', d.api.primary() ? 'this node is the master' : 'not in sync with the master yet')),
  );
  app.get('/status', need('read'), (c) => send(c, { status: 200, body: withRqliteStatus(d.api.status(), d.api.ready(), d.users !== null) }));
  app.get('/checksum', need('read'), async (c) => send(c, { status: 200, body: (await d.api.checksum()) as Record<string, unknown> }));
  app.get('/openapi.json', (c) => c.json(openapiDocument()));
  app.get('/metrics', need('read'), async (c) => c.text(await d.api.metrics(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }));

  // On a node, POST / is answered by the node:http lane (lane.ts) with the same checks;
  // this route serves app.request() and any listener without the lane.
  app.post('/', need('read'), async (c) => {
    const started = performance.now();
    const who = c.get('principal' as never) as Principal;
    const rid = c.req.header('x-request-id') ?? randomUUID();
    const raw = await readBody(c, d.maxBody);
    const out = await runQuery(d, who, rid, (name) => c.req.header(name), raw, started);
    c.header('x-request-id', rid);
    return send(c, out);
  });

  // POST /internal/append is answered ahead of hono, in lane.ts.
  app.post('/internal/heartbeat', internal, async (c) => send(c, d.api.heartbeat(parseJson(await readBody(c, d.maxBody)))));
  app.post('/internal/snapshot', internal, async (c) => {
    if (!c.req.raw.body) throw new SqlfleetError('BAD_REQUEST', 'snapshot body missing');
    return send(c, await d.api.installSnapshot(c.req.raw.body));
  });
  app.delete('/nodes/:id', operator, (c) => send(c, d.api.removeNode(nodeId(c.req.param('id') ?? ''))));
  app.post('/nodes/:id/promote', operator, async (c) => {
    const raw = await readBody(c, d.maxBody);
    const body = raw.trim() ? (parseJson(raw) as { force?: unknown }) : {};
    if (body === null || typeof body !== 'object' || (body.force !== undefined && typeof body.force !== 'boolean')) {
      throw new SqlfleetError('BAD_REQUEST', 'promote takes an optional JSON body {"force": boolean}');
    }
    // `any` (etcd mode): switchover to the most advanced sync-set member.
    const id = c.req.param('id') === 'any' ? -1 : nodeId(c.req.param('id') ?? '');
    return send(c, await d.api.promote(id, body.force === true || c.req.query('force') === 'true'));
  });
  app.post('/internal/promote', internal, async (c) => send(c, await d.api.promoteOrder(parseJson(await readBody(c, d.maxBody)))));
  app.get('/internal/log', internal, (c) => {
    const from = Number(c.req.query('from'));
    const max = Number(c.req.query('max') ?? 1000);
    if (!Number.isInteger(from) || from < 1 || !Number.isInteger(max) || max < 1) throw new SqlfleetError('BAD_REQUEST', 'log needs from >= 1 and max >= 1');
    return send(c, d.api.logEntries(from, Math.min(max, 10_000)));
  });
  app.post('/nodes/:id/resync', operator, (c) => send(c, d.api.resyncNode(nodeId(c.req.param('id') ?? ''))));

  // rqlite's HTTP API on the same executor (rqlite.ts).
  registerRqlite(app, { execute: (r, raw, who) => d.api.execute(r, raw, who), status: () => d.api.status(), knownEpoch: () => d.api.knownEpoch(), ready: () => d.api.ready(), support: d.rqlite, token: d.token, maxBody: d.maxBody, maxStatements: d.maxStatements, need, log: d.log });

  // libSQL's Hrana over HTTP: /v2/pipeline, /v3/pipeline, /v3/cursor (src/hrana/).
  if (d.hrana) registerHrana(app, { streams: d.hrana, principal, readBody: (c) => readBody(c, d.maxBody) });

  // The change feed as Server-Sent Events (changes.ts).
  registerChanges(app, { source: d.changes?.source ?? NO_CHANGES, maxSubscribers: d.changes?.maxSubscribers ?? 100, heartbeatMs: d.changes?.heartbeatMs ?? 15_000, need });

  app.notFound((c) => sendError(c, new SqlfleetError('NOT_FOUND', `no such endpoint: ${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => send(c, errorOutcome(err, d.log, c.req.path)));
  return app;
}

/** A node without a change log: GET /changes says capture is off. */
const NO_CHANGES: ChangeSource = { enabled: false, oldest: () => 1, read: () => [], subscribe: () => () => {}, applied: () => 0 };

function nodeId(s: string): number {
  const id = Number(s);
  if (!Number.isInteger(id) || id < 0) throw new SqlfleetError('BAD_REQUEST', `bad node id "${s}"`);
  return id;
}

/** A request body parsed as JSON; BAD_REQUEST when it is not. */
export function parseJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch (e) {
    throw new SqlfleetError('BAD_REQUEST', `malformed JSON: ${(e as Error).message}`);
  }
}

/** The answer to a failed request: a SqlfleetError as itself, anything else as a logged 500 INTERNAL. */
export function errorOutcome(err: unknown, log: AppDeps['log'], path: string): Outcome {
  if (err instanceof SqlfleetError) return { status: err.status, body: err.toJSON() };
  log('error', 'unhandled error', { err: (err as Error)?.stack ?? String(err), path });
  return { status: 500, body: { ok: false, error: { code: 'INTERNAL', message: 'internal error; see the node log' } } };
}
