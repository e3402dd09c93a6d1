// The node:http lane: POST /internal/append and POST / handled on Node's own request and
// response, ahead of hono. Every replicated write crosses the append route once per slave
// and every client query crosses POST /, and on these paths the Web-standard
// Request/Response objects of the hono adapter cost more than the work itself (a trivial
// hono route: ~420 µs of CPU per request at one client, the same route on node:http
// ~240 µs, bench notes in bench/README.md). The checks and answers are the routes' own:
// cluster token or principal (principal.ts), byte limit (body.ts), JSON, the query path
// (query.ts) and SqlfleetError mapping (errorOutcome); everything else goes on to hono.
// Hrana's POST /v2/pipeline and /v3/pipeline take the lane too (an interactive transaction is
// four of them, and the writer is held across them): the same principal and body checks,
// then hrana/http.ts's runPipeline, as its hono route does.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, OutgoingHttpHeaders, RequestListener, ServerResponse } from 'node:http';
import type { Outcome } from '../core/executor.js';
import { errorOutcome, parseJson, type AppDeps } from './app.js';
import { clusterTokenRequired } from './auth.js';
import { readIncoming } from './body.js';
import { failpoint } from '../failpoints.js';
import { stringify } from './json.js';
import { principalOf, requireRole, type HeaderFn } from './principal.js';
import { runQuery } from './query.js';
import { pipelineFailure, runPipeline } from '../hrana/http.js';

/** What the lane needs. */
export interface LaneDeps {
  hasClusterToken: (authorization: string | undefined) => boolean;
  append: (body: unknown) => Outcome;
  maxBody: number;
  observe?: (route: string, status: string) => void;
  log: AppDeps['log'];
  /** The app's dependencies: when given, POST / is answered here too. */
  query?: AppDeps;
}

const ROUTE = '/internal/append';

const isPath = (url: string, path: string) => url === path || (url.startsWith(path) && url[path.length] === '?');

/** Wraps `next` (hono's listener): appends (and POST / when `d.query` is set) are answered here, everything else goes on. */
export function withReplicationLane(d: LaneDeps, next: RequestListener): RequestListener {
  return (req, res) => {
    const url = req.url ?? '';
    if (req.method === 'POST' && isPath(url, ROUTE)) handle(d, req, res).catch((e: unknown) => failed(d, res, e));
    else if (req.method === 'POST' && d.query && isPath(url, '/')) handleQuery(d, d.query, req, res).catch((e: unknown) => failed(d, res, e));
    else if (req.method === 'POST' && d.query?.hrana && (isPath(url, '/v2/pipeline') || isPath(url, '/v3/pipeline'))) {
      handlePipeline(d, d.query, url.slice(0, 12), req, res).catch((e: unknown) => failed(d, res, e));
    }
    else next(req, res);
  };
}

/** The last resort of a lane request: logged, its response destroyed, the node goes on. */
function failed(d: LaneDeps, res: ServerResponse, e: unknown): void {
  d.log('error', 'request failed unexpectedly', { err: e instanceof Error ? e.message : String(e) });
  res.destroy();
}

async function handle(d: LaneDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let out: Outcome;
  try {
    if (!d.hasClusterToken(req.headers.authorization)) {
      throw clusterTokenRequired();
    }
    out = d.append(parseJson(await readIncoming(req, d.maxBody)));
  } catch (e) {
    out = errorOutcome(e, d.log, ROUTE);
  }
  reply(res, out, { 'content-type': 'application/json' }, d.log);
  d.observe?.(ROUTE, String(out.status));
}

/** A request's header by lower-case name, repeated headers joined as HTTP joins them. */
function headerOf(req: IncomingMessage): HeaderFn {
  return (name) => {
    const v = req.headers[name];
    return Array.isArray(v) ? v.join(', ') : v;
  };
}

/** POST /, as app.ts's route with need('read'): principal, role, body, runQuery, error mapping. */
async function handleQuery(d: LaneDeps, q: AppDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers: OutgoingHttpHeaders = { 'content-type': 'application/json' };
  const header = headerOf(req);
  let out: Outcome;
  try {
    const who = await principalOf(q.users, d.hasClusterToken, header, (value) => (headers['www-authenticate'] = value));
    requireRole(who, 'read');
    const started = performance.now();
    const rid = header('x-request-id') ?? randomUUID();
    const raw = await readIncoming(req, q.maxBody);
    out = await runQuery(q, who, rid, header, raw, started);
    headers['x-request-id'] = rid;
  } catch (e) {
    out = errorOutcome(e, q.log, '/');
    // A refused body may be unread (too large, or the principal failed first): drop it so
    // the answer can be sent and the connection reused.
    if (!req.readableEnded) req.resume();
  }
  reply(res, out, headers, q.log);
  q.observe?.request('/', String(out.status));
}

/** POST /v2|v3/pipeline, as hrana/http.ts's hono route: principal, body, runPipeline; errors as {message, code}. */
async function handlePipeline(d: LaneDeps, q: AppDeps, route: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers: OutgoingHttpHeaders = { 'content-type': 'application/json' };
  const header = headerOf(req);
  let out: Outcome;
  try {
    const who = await principalOf(q.users, d.hasClusterToken, header, (value) => (headers['www-authenticate'] = value));
    out = { status: 200, body: await runPipeline(q.hrana!, who, await readIncoming(req, q.maxBody), header('x-sqlfleet-epoch')) };
  } catch (e) {
    out = pipelineFailure(e);
    if (out.status >= 500) q.log('error', 'request failed', { route, err: e instanceof Error ? e.message : String(e) });
    if (!req.readableEnded) req.resume();
  }
  reply(res, out, headers, q.log);
  q.observe?.request(route, String(out.status));
}

/**
 * Sends `out`. Never throws: an answer that cannot be encoded (a RangeError from a string
 * too long for V8) becomes a 500, and a failure to write (the client went away, headers
 * already sent) destroys the response; both are logged.
 */
function reply(res: ServerResponse, out: Outcome, headers: OutgoingHttpHeaders, log?: AppDeps['log']): void {
  try {
    failpoint('lane.reply');
    let json: string;
    try {
      json = stringify(out.body);
    } catch (e) {
      log?.('error', 'answer could not be encoded', { err: e instanceof Error ? e.message : String(e) });
      out = { status: 500, body: { ok: false, error: { code: 'INTERNAL', message: 'the answer could not be encoded (too large?); see the node log' } } };
      json = JSON.stringify(out.body);
    }
    headers['content-length'] = Buffer.byteLength(json);
    res.writeHead(out.status, headers);
    res.end(json);
  } catch (e) {
    log?.('error', 'could not send an answer', { err: e instanceof Error ? e.message : String(e) });
    res.destroy();
  }
}
