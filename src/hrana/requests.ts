// Hrana's stream requests (execute, batch, sequence, describe, store_sql, close_sql,
// get_autocommit, close) over one Session; shared by the HTTP and WebSocket transports.
import { SqlfleetError } from '../errors.js';
import type { Session } from '../core/session.js';
import { txControl } from '../core/session.js';
import type { TypedResult } from '../store/interactive.js';
import { decodeStmt, encodeDescribe, encodeError, encodeResult, encodeStmt, resolveSql, type HError } from './values.js';

/** A batch step condition (HRANA_3_SPEC "Batches"). */
type Cond = { type: 'ok' | 'error'; step: number } | { type: 'not'; cond: Cond } | { type: 'and' | 'or'; conds: Cond[] } | { type: 'is_autocommit' };

/** A batch's outcome: per step a result or an error (or neither when its condition failed). */
export interface BatchResult {
  step_results: (Record<string, unknown> | null)[];
  step_errors: (HError | null)[];
}

function bad(msg: string): SqlfleetError {
  return new SqlfleetError('BAD_REQUEST', msg, { hrana_code: 'PROTO_ERROR' });
}

/** Runs one statement of the stream. */
export async function execute(session: Session, stmt: unknown, sqls: Map<number, string>): Promise<Record<string, unknown>> {
  const s = decodeStmt(stmt, sqls);
  const started = performance.now();
  const r = await session.execute({ sql: s.sql, ...(s.params === undefined ? {} : { params: s.params }) });
  return encodeResult(r, s.wantRows, started);
}

/**
 * Runs a batch step by step with its conditions. A batch that only reads (steps that are
 * reads or BEGIN/COMMIT/ROLLBACK, as @libsql/client's batch() of SELECTs) runs as a
 * read-only transaction on this node: it needs neither the master nor its writer.
 */
export async function batch(session: Session, b: unknown, sqls: Map<number, string>, onStep?: StepObserver): Promise<BatchResult> {
  if (b === null || typeof b !== 'object' || !Array.isArray((b as { steps?: unknown }).steps)) throw bad('batch needs "steps"');
  const steps = (b as { steps: { condition?: Cond | null; stmt: unknown }[] }).steps;
  const stmts = steps.map((st) => decodeStmt(st?.stmt, sqls));
  // Only a batch that opens and also ends its transaction (client.batch()): a transaction
  // object's first batch (BEGIN + a SELECT, more to come) must hold the writer.
  const ends = stmts.some((s) => txControl(s.sql)?.op === 'commit');
  const readOnly =
    ends &&
    session.autocommit &&
    stmts.every((s) => {
      const ctl = txControl(s.sql);
      return ctl ? ctl.op !== 'savepoint' : session.isRead(s.sql);
    });
  const needsMaster = () =>
    stmts.some((s) => {
      const ctl = txControl(s.sql);
      return ctl ? ctl.op === 'begin' && !ctl.readonly : !session.isRead(s.sql);
    });
  if (!readOnly && session.relaysBatches && (session.onMaster || needsMaster())) {
    // A slave: the batch runs on the master as a whole (its conditions there too), with the
    // SQL texts resolved here (stored SQL ids are this stream's).
    const payload = { steps: steps.map((st, i) => ({ ...(st.condition ? { condition: st.condition } : {}), stmt: { ...encodeStmt(stmts[i]), want_rows: stmts[i].wantRows } })) };
    const res = (await session.relayBatch(payload)) as BatchResult;
    if (onStep) {
      res.step_results.forEach((r, i) => {
        if (r) onStep.ok(i, r);
        else if (res.step_errors[i]) onStep.error(i, res.step_errors[i]!);
      });
    }
    return res;
  }
  const out: BatchResult = { step_results: [], step_errors: [] };
  for (let i = 0; i < steps.length; i++) {
    const s = stmts[i];
    if (!evalCond(steps[i].condition, out, session, i)) {
      out.step_results.push(null);
      out.step_errors.push(null);
      continue;
    }
    const ctl = txControl(s.sql);
    const sql = readOnly && ctl?.op === 'begin' ? 'BEGIN TRANSACTION READONLY' : s.sql;
    const started = performance.now();
    onStep?.begin(i);
    try {
      const r: TypedResult = await session.execute({ sql, ...(s.params === undefined ? {} : { params: s.params }) });
      const enc = encodeResult(r, s.wantRows, started);
      out.step_results.push(enc);
      out.step_errors.push(null);
      onStep?.ok(i, enc);
    } catch (e) {
      const err = encodeError(e);
      out.step_results.push(null);
      out.step_errors.push(err);
      onStep?.error(i, err);
    }
  }
  return out;
}

/** Lets the cursor endpoint report steps as they finish. */
export interface StepObserver {
  begin(step: number): void;
  ok(step: number, result: Record<string, unknown>): void;
  error(step: number, error: HError): void;
}

function evalCond(c: Cond | null | undefined, out: BatchResult, session: Session, at: number): boolean {
  if (c === null || c === undefined) return true;
  switch (c.type) {
    case 'ok':
    case 'error': {
      if (!Number.isInteger(c.step) || c.step < 0 || c.step >= at) throw bad(`condition refers to step ${c.step}, which does not precede step ${at}`);
      return c.type === 'ok' ? out.step_results[c.step] !== null : out.step_errors[c.step] !== null;
    }
    case 'not':
      return !evalCond(c.cond, out, session, at);
    case 'and':
      return c.conds.every((x) => evalCond(x, out, session, at));
    case 'or':
      return c.conds.some((x) => evalCond(x, out, session, at));
    case 'is_autocommit':
      return session.autocommit;
    default:
      throw bad(`unknown condition ${JSON.stringify((c as { type?: unknown }).type)}`);
  }
}

/** Runs a text of several statements, without results (Hrana's sequence). */
export async function sequence(session: Session, sql: unknown, sqlId: unknown, sqls: Map<number, string>): Promise<void> {
  const text = resolveSql(sql, sqlId, sqls);
  for (const one of session.split(text)) await session.execute({ sql: one });
}

/**
 * One request of a stream (HTTP's StreamRequest); returns its response. `close` is the
 * caller's business (it ends the stream).
 */
export async function streamRequest(session: Session, req: Record<string, unknown>, sqls: Map<number, string>): Promise<Record<string, unknown>> {
  switch (req.type) {
    case 'execute':
      return { type: 'execute', result: await execute(session, req.stmt, sqls) };
    case 'batch':
      return { type: 'batch', result: await batch(session, req.batch, sqls) };
    case 'sequence':
      await sequence(session, req.sql, req.sql_id, sqls);
      return { type: 'sequence' };
    case 'describe':
      return { type: 'describe', result: encodeDescribe(session.describe(resolveSql(req.sql, req.sql_id, sqls))) };
    case 'store_sql':
      storeSql(sqls, req.sql_id, req.sql);
      return { type: 'store_sql' };
    case 'close_sql':
      sqls.delete(Number(req.sql_id));
      return { type: 'close_sql' };
    case 'get_autocommit':
      return { type: 'get_autocommit', is_autocommit: session.autocommit };
    default:
      throw bad(`unknown request type ${JSON.stringify(req.type)}`);
  }
}

/** Most SQL texts one stream (or WebSocket connection) may store. */
export const MAX_STORED_SQL = 1000;

/** store_sql: keeps a SQL text under a client-chosen id. */
export function storeSql(sqls: Map<number, string>, id: unknown, sql: unknown): void {
  if (!Number.isInteger(id) || typeof sql !== 'string') throw bad('store_sql needs an integer "sql_id" and a "sql" string');
  if (sqls.has(id as number)) throw bad(`sql_id ${String(id)} is already in use`);
  if (sqls.size >= MAX_STORED_SQL) throw new SqlfleetError('BAD_REQUEST', `more than ${MAX_STORED_SQL} stored SQL texts`, { hrana_code: 'SQL_STORE_FULL' });
  sqls.set(id as number, sql);
}
