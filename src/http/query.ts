// POST / from the body text on: parse, execute, metrics and the log line. Shared by the
// hono route (app.ts) and the node:http lane (lane.ts), which answers it without building
// Web Request/Response objects.
import { parseBody, parseRequest } from '../core/request.js';
import type { Outcome } from '../core/executor.js';
import type { Principal } from '../auth/users.js';
import { SqlfleetError } from '../errors.js';
import type { AppDeps } from './app.js';
import type { HeaderFn } from './principal.js';

/** What running a query needs from the app's dependencies. */
export type QueryDeps = Pick<AppDeps, 'api' | 'maxStatements' | 'log' | 'observe'>;

const round2 = (ms: number) => Math.round(ms * 100) / 100;

/**
 * Runs the request in `raw` for `who`. Refusals (a thrown SqlfleetError) are logged at
 * info and rethrown for the caller's error mapping. A request that succeeded is logged
 * only at debug (`--log-level debug`), schema changes excepted (rare, worth an audit
 * line): at info, a log line per write with its full SQL
 * cost more CPU than some writes and filled the log (32 MB for 118k writes). Answers
 * that are not 200 (an error the master returned to a forwarded write) stay at info.
 */
export async function runQuery(d: QueryDeps, who: Principal, rid: string, header: HeaderFn, raw: string, started: number): Promise<Outcome> {
  try {
    const req = parseRequest(parseBody(raw), d.maxStatements, header('idempotency-key'), header('x-sqlfleet-epoch'));
    const out = await d.api.execute(req, raw, who);
    const ms = performance.now() - started;
    d.observe?.statement(out.cls ?? 'unknown', ms / 1000);
    const failed = out.status !== 200;
    const level = failed || out.cls === 'schema' ? 'info' : 'debug';
    if (level === 'debug' && d.log.debugOn === false) return out; // not built for nothing: a line per write
    d.log(level, out.cls ?? 'request', {
      req: rid, user: who.user, status: out.status, index: out.body.index, ms: round2(ms),
      ...(failed ? { error: (out.body.error as { code?: string })?.code } : {}),
      ...(out.cls === 'read' ? {} : { sql: req.stmts.map((s) => s.sql) }),
    });
    return out;
  } catch (e) {
    if (e instanceof SqlfleetError) {
      d.log('info', 'refused', { req: rid, user: who.user, status: e.status, error: e.code, message: e.message, ms: round2(performance.now() - started) });
    }
    throw e;
  }
}
