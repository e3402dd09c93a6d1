// The replication lane: POST /internal/append handled on Node's own request and response,
// ahead of hono. Every replicated write crosses it once per slave, and on this path the
// Web-standard Request/Response objects of the hono adapter cost more than the apply
// itself (a trivial hono route: ~420 µs of CPU per request at one client, the same route
// on node:http ~240 µs, bench notes in bench/README.md). Same checks and answers as the
// route in app.ts: cluster token, byte limit, JSON, SqlfleetError mapping.
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { SqlfleetError } from '../errors.js';
import type { Outcome } from '../core/executor.js';
import { errorOutcome, parseJson, type AppDeps } from './app.js';
import { readIncoming } from './body.js';
import { stringify } from './json.js';

/** What the lane needs. */
export interface LaneDeps {
  hasClusterToken: (authorization: string | undefined) => boolean;
  append: (body: unknown) => Outcome;
  maxBody: number;
  observe?: (route: string, status: string) => void;
  log: AppDeps['log'];
}

const ROUTE = '/internal/append';

/** Wraps `next` (hono's listener): appends are answered here, everything else goes on. */
export function withReplicationLane(d: LaneDeps, next: RequestListener): RequestListener {
  return (req, res) => {
    const url = req.url ?? '';
    if (req.method !== 'POST' || (url !== ROUTE && !url.startsWith(`${ROUTE}?`))) {
      next(req, res);
      return;
    }
    void handle(d, req, res);
  };
}

async function handle(d: LaneDeps, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let out: Outcome;
  try {
    if (!d.hasClusterToken(req.headers.authorization)) {
      throw new SqlfleetError('UNAUTHORIZED', 'internal endpoint: a valid cluster token is required');
    }
    out = d.append(parseJson(await readIncoming(req, d.maxBody)));
  } catch (e) {
    out = errorOutcome(e, d.log, ROUTE);
  }
  const json = stringify(out.body);
  res.writeHead(out.status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(json) });
  res.end(json);
  d.observe?.(ROUTE, String(out.status));
}
