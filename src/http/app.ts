// createApp(deps): the HTTP surface of a node. Routes parse and validate, call the node
// API, and map outcomes and SqlfleetErrors to responses in one place.
import { randomUUID } from 'node:crypto';
import { Hono, type Context } from 'hono';
import { SqlfleetError } from '../errors.js';
import { parseRequest, type QueryRequest } from '../core/request.js';
import type { Outcome } from '../core/executor.js';
import { ANONYMOUS_ADMIN, CLUSTER, hasRole, type Principal, type Role, type Users } from '../auth/users.js';
import { clusterTokenCheck } from './auth.js';
import { readBody } from './body.js';
import { consoleHtml } from './console.js';
import { openapiDocument } from './openapi.js';
import { stringify } from './json.js';

/** What the HTTP layer needs from a node; it never sees the store or replication. */
export interface NodeApi {
  execute(req: QueryRequest, rawBody: string, who: Principal): Promise<Outcome>;
  status(): Record<string, unknown>;
  checksum(): Promise<unknown>;
  metrics(): Promise<string>;
  ready(): boolean;
  /** Cluster-internal calls (token required); appends go through lane.ts instead. */
  heartbeat(body: unknown): Outcome;
  removeNode(id: number): Outcome;
  resyncNode(id: number): Outcome;
  /** Slave: replaces its database with the streamed snapshot. */
  installSnapshot(body: ReadableStream<Uint8Array>): Promise<Outcome>;
}

/** Dependencies of the app. */
export interface AppDeps {
  api: NodeApi;
  token: string;
  /** Client users (--auth), or null when client auth is off. */
  users: Users | null;
  maxBody: number;
  maxStatements: number;
  log: (level: 'debug' | 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
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
  // Who is asking: another node (cluster token, possibly on behalf of a user it
  // authenticated), a user of --auth, or anyone when auth is off.
  const principal = async (c: Context): Promise<Principal> => {
    const header = c.req.header('authorization');
    if (hasClusterToken(header)) {
      const onBehalf = c.req.header('x-sqlfleet-user');
      if (!onBehalf || !d.users) return CLUSTER;
      const p = d.users.byUsername(onBehalf);
      if (!p) throw new SqlfleetError('FORBIDDEN', `user "${onBehalf}" is not known to this node`);
      return p;
    }
    if (!d.users) return ANONYMOUS_ADMIN;
    const p = await d.users.authenticate(header);
    if (!p) {
      // The console asks for credentials itself; other clients get the standard challenge.
      if (!c.req.header('x-sqlfleet-console')) c.header('WWW-Authenticate', 'Basic realm="sqlfleet", charset="UTF-8"');
      throw new SqlfleetError('UNAUTHORIZED', header ? 'wrong credentials' : 'credentials required: HTTP Basic or Bearer token');
    }
    return p;
  };
  const need = (role: Role) => async (c: Context, next: () => Promise<void>) => {
    const p = await principal(c);
    if (!hasRole(p, role)) throw new SqlfleetError('FORBIDDEN', `user "${p.user}" (role ${p.role}) needs role ${role}`);
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
      throw new SqlfleetError('UNAUTHORIZED', 'internal endpoint: a valid cluster token is required');
    }
    await next();
  };

  app.use('*', async (c, next) => {
    await next();
    d.observe?.request(c.req.routePath || 'unknown', String(c.res.status));
  });

  app.get('/', (c) => c.html(consoleHtml()));
  app.get('/health', (c) => (d.api.ready() ? c.json({ ok: true }) : sendError(c, new SqlfleetError('UNAVAILABLE', 'starting'))));
  app.get('/status', need('read'), (c) => send(c, { status: 200, body: d.api.status() }));
  app.get('/checksum', need('read'), async (c) => send(c, { status: 200, body: (await d.api.checksum()) as Record<string, unknown> }));
  app.get('/openapi.json', (c) => c.json(openapiDocument()));
  app.get('/metrics', need('read'), async (c) => c.text(await d.api.metrics(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }));

  app.post('/', need('read'), async (c) => {
    const started = performance.now();
    const who = c.get('principal' as never) as Principal;
    const rid = c.req.header('x-request-id') ?? randomUUID();
    const raw = await readBody(c, d.maxBody);
    try {
      const req = parseRequest(parseJson(raw), d.maxStatements);
      const out = await d.api.execute(req, raw, who);
      const ms = performance.now() - started;
      d.observe?.statement(out.cls ?? 'unknown', ms / 1000);
      // Writes are audited at info; reads only at debug, to keep the log proportionate.
      d.log(out.cls === 'read' ? 'debug' : 'info', out.cls ?? 'request', {
        req: rid, user: who.user, status: out.status, index: out.body.index, ms: Math.round(ms * 100) / 100,
        ...(out.status === 200 ? {} : { error: (out.body.error as { code?: string })?.code }),
        ...(out.cls === 'read' ? {} : { sql: req.stmts.map((s) => s.sql) }),
      });
      c.header('x-request-id', rid);
      return send(c, out);
    } catch (e) {
      if (e instanceof SqlfleetError) {
        d.log('info', 'refused', { req: rid, user: who.user, status: e.status, error: e.code, message: e.message, ms: Math.round((performance.now() - started) * 100) / 100 });
      }
      throw e;
    }
  });

  // POST /internal/append is answered ahead of hono, in lane.ts.
  app.post('/internal/heartbeat', internal, async (c) => send(c, d.api.heartbeat(parseJson(await readBody(c, d.maxBody)))));
  app.post('/internal/snapshot', internal, async (c) => {
    if (!c.req.raw.body) throw new SqlfleetError('BAD_REQUEST', 'snapshot body missing');
    return send(c, await d.api.installSnapshot(c.req.raw.body));
  });
  app.delete('/nodes/:id', operator, (c) => send(c, d.api.removeNode(nodeId(c.req.param('id') ?? ''))));
  app.post('/nodes/:id/resync', operator, (c) => send(c, d.api.resyncNode(nodeId(c.req.param('id') ?? ''))));

  app.notFound((c) => sendError(c, new SqlfleetError('NOT_FOUND', `no such endpoint: ${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => send(c, errorOutcome(err, d.log, c.req.path)));
  return app;
}

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
