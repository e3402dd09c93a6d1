// Hrana over HTTP (HTTP_V2_SPEC, HRANA_3_SPEC): POST /v2/pipeline, /v3/pipeline and
// /v3/cursor, and the version probes GET /v2 and /v3. A thin translator: streams are held
// by batons, requests run on the stream's Session (core/session.ts).
import type { Context, Hono } from 'hono';
import { SqlfleetError } from '../errors.js';
import type { Principal } from '../auth/users.js';
import { parseEpochStamp } from '../core/request.js';
import { batch, streamRequest, type StepObserver } from './requests.js';
import type { HStream, Streams } from './streams.js';
import { encodeError } from './values.js';

/** What the HTTP routes need. */
export interface HranaHttpDeps {
  streams: Streams;
  /** Authenticates the request (Authorization: Bearer <API token>, or the cluster token). */
  principal(c: Context): Promise<Principal>;
  readBody(c: Context): Promise<string>;
}

function bad(msg: string): SqlfleetError {
  return new SqlfleetError('BAD_REQUEST', msg, { hrana_code: 'PROTO_ERROR' });
}

/** An HTTP error answer as @libsql/hrana-client reads it: {message, code}. */
function failure(c: Context, e: unknown): Response {
  const status = e instanceof SqlfleetError ? e.status : 500;
  return c.json(encodeError(e), status as 400);
}

function parse(raw: string): Record<string, unknown> {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch (e) {
    throw bad(`malformed JSON: ${(e as Error).message}`);
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw bad('body must be a JSON object');
  return body as Record<string, unknown>;
}

/** The stream of a request: the baton's, or a new one. */
function streamOf(d: Pick<HranaHttpDeps, 'streams'>, baton: unknown, who: Principal, stamp?: number): HStream {
  if (baton === null || baton === undefined) return d.streams.open(who, stamp);
  if (typeof baton !== 'string') throw bad('"baton" must be a string or null');
  return d.streams.byBaton(baton, who);
}

/** Runs `fn` after the stream's earlier requests. */
function queued<T>(s: HStream, fn: () => Promise<T>): Promise<T> {
  const run = s.chain.then(fn, fn);
  s.chain = run.catch(() => undefined);
  return run;
}

/** The answer to a failed Hrana HTTP request: its status and the {message, code} body @libsql/hrana-client reads. */
export function pipelineFailure(e: unknown): { status: number; body: Record<string, unknown> } {
  return { status: e instanceof SqlfleetError ? e.status : 500, body: encodeError(e) as unknown as Record<string, unknown> };
}

/**
 * One POST /v2|v3/pipeline: the requests of `raw` run in order on the baton's stream (or a
 * new one) for `who`; the answer body. Transport-neutral: hono's route below and the
 * node:http lane (http/lane.ts, the path a node serves) both call it. Throws for a refused
 * request as a whole (bad JSON, unknown baton); a failing request inside is a result.
 */
export async function runPipeline(streams: Streams, who: Principal, raw: string, epochHeader?: string): Promise<Record<string, unknown>> {
  const stamp = parseEpochStamp(epochHeader);
  if (stamp !== undefined) streams.fence(stamp);
  const d = { streams };
  const body = parse(raw);
  if (!Array.isArray(body.requests)) throw bad('"requests" must be an array');
  const s = streamOf(d, body.baton, who, stamp);
  return queued(s, async () => {
    const results: Record<string, unknown>[] = [];
    for (const req of body.requests as unknown[]) {
      s.lastUsed = Date.now();
      if (s.closed) {
        results.push({ type: 'error', error: { message: 'the stream is closed', code: 'STREAM_CLOSED' } });
        continue;
      }
      try {
        if (req === null || typeof req !== 'object') throw bad('a request must be an object');
        const r = req as Record<string, unknown>;
        if (r.type === 'close') {
          await d.streams.close(s);
          results.push({ type: 'ok', response: { type: 'close' } });
          continue;
        }
        results.push({ type: 'ok', response: await streamRequest(s.session, r, s.sqls) });
      } catch (e) {
        results.push({ type: 'error', error: encodeError(e) });
      }
    }
    s.lastUsed = Date.now();
    // sqlfleet_index: the log index of this stream's last write (a slave relaying to the master waits for it).
    return { baton: s.closed ? null : d.streams.issueBaton(s), base_url: null, results, sqlfleet_index: s.session.lastIndex };
  });
}

/** Registers the Hrana routes on `app`. */
export function registerHrana(app: Hono, d: HranaHttpDeps): void {
  for (const v of ['v2', 'v3']) app.get(`/${v}`, (c) => c.text(`Hrana ${v} is supported`));

  const pipeline = async (c: Context) => {
    try {
      const who = await d.principal(c);
      return c.json(await runPipeline(d.streams, who, await d.readBody(c), c.req.header('x-sqlfleet-epoch')));
    } catch (e) {
      return failure(c, e);
    }
  };
  app.post('/v2/pipeline', pipeline);
  app.post('/v3/pipeline', pipeline);

  // The cursor: one batch, its results as newline-delimited JSON entries.
  app.post('/v3/cursor', async (c) => {
    try {
      const who = await d.principal(c);
      const body = parse(await d.readBody(c));
      const s = streamOf(d, body.baton, who);
      const lines: unknown[] = [];
      await queued(s, async () => {
        s.lastUsed = Date.now();
        const obs: StepObserver = {
          begin: () => undefined,
          ok: (step, r) => {
            lines.push({ type: 'step_begin', step, cols: r.cols });
            for (const row of r.rows as unknown[]) lines.push({ type: 'row', row });
            lines.push({ type: 'step_end', affected_row_count: r.affected_row_count, last_insert_rowid: r.last_insert_rowid });
          },
          error: (step, error) => lines.push({ type: 'step_error', step, error }),
        };
        try {
          await batch(s.session, body.batch, s.sqls, obs);
        } catch (e) {
          lines.push({ type: 'error', error: encodeError(e) });
        }
        s.lastUsed = Date.now();
      });
      const head = { baton: s.closed ? null : d.streams.issueBaton(s), base_url: null };
      return c.body([head, ...lines].map((l) => JSON.stringify(l)).join('\n') + '\n', 200, { 'content-type': 'text/plain' });
    } catch (e) {
      return failure(c, e);
    }
  });
}
