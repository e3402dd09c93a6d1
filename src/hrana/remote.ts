// A slave's stream on the master (DESIGN §8): writes and write transactions that start on
// a slave run in a Hrana stream the slave holds on the master, over the master's own
// /v2/pipeline, with the cluster token on behalf of the client's user. The client keeps
// talking to the slave (HTTP and WebSocket alike), so nothing depends on whether it can
// reach the master's address.
import { request } from 'undici';
import { SqlfleetError } from '../errors.js';
import type { Principal } from '../auth/users.js';
import type { RemoteConn } from '../core/session.js';
import type { Stmt } from '../store/types.js';
import { decodeResult, encodeStmt } from './values.js';

/** How to reach the master. */
export interface RemoteDeps {
  masterUrl(): string;
  /** The epoch of that master as this node knows it: stamped on every request (x-sqlfleet-epoch). */
  epoch(): number;
  /** Resend the stream's first request once when refused for an old stamp (false when passing a relayed stream on). */
  resend: boolean;
  token: string;
  timeoutMs: number;
}

type PipelineAnswer = { baton: string | null; results: { type: string; response?: Record<string, unknown>; error?: { message: string; code?: string } }[]; sqlfleet_index?: number };

/** Opens a relay stream on the master for `who` (nothing is sent until the first statement). */
export function openRemote(d: RemoteDeps, who: Principal): RemoteConn {
  let baton: string | null = null;
  let started = false;
  const base = d.masterUrl(); // a stream lives on one master: a new master means a lost stream
  // Stamped with the epoch it was opened in: held up in the network and delivered after a
  // failover, a request is refused there (executor.ts fenceForwarded), not run late.
  let stamp = d.epoch();
  const headers: Record<string, string> = { authorization: `Bearer ${d.token}`, 'content-type': 'application/json', 'x-sqlfleet-epoch': String(stamp) };
  if (!who.cluster && who.user !== 'anonymous') headers['x-sqlfleet-user'] = who.user;

  const pipeline = async (requests: unknown[]): Promise<PipelineAnswer> => {
    if (started && baton === null) throw new SqlfleetError('MASTER_UNAVAILABLE', 'the stream on the master is closed', { hrana_code: 'STREAM_EXPIRED' });
    const opening = !started;
    started = true;
    try {
      return await send(requests);
    } catch (e) {
      // The stream's first request refused for a stamp older than the master's epoch: this
      // node had not heard of that epoch yet (a switchover a moment ago). Nothing ran: once more.
      const newer = (e as SqlfleetError).details?.master_epoch;
      if (!d.resend || !opening || typeof newer !== 'number' || newer <= stamp) throw e;
      stamp = newer;
      headers['x-sqlfleet-epoch'] = String(stamp);
      return send(requests);
    }
  };

  const send = async (requests: unknown[]): Promise<PipelineAnswer> => {
    let status: number;
    let text: string;
    try {
      // undici's request, not fetch: the relay is inside the writer's hold on the master,
      // and fetch's Web Request/Response layer costs the slave about twice the CPU per call.
      const res = await request(`${base}/v2/pipeline`, { method: 'POST', headers, body: JSON.stringify({ baton, requests }), signal: AbortSignal.timeout(d.timeoutMs) });
      status = res.statusCode;
      text = await res.body.text();
    } catch (e) {
      baton = null;
      throw new SqlfleetError('MASTER_UNAVAILABLE', `cannot reach the master at ${base}: ${(e as Error).message}`);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      baton = null;
      throw new SqlfleetError('MASTER_UNAVAILABLE', `the master answered ${status} without JSON`);
    }
    if (status !== 200) {
      baton = null;
      const code = typeof body.code === 'string' ? body.code : 'MASTER_UNAVAILABLE';
      const epoch = status === 503 && typeof body.epoch === 'number' ? { master_epoch: body.epoch } : {};
      throw new SqlfleetError(status === 400 ? 'BAD_REQUEST' : 'MASTER_UNAVAILABLE', `the master refused: ${String(body.message)}`, { hrana_code: code, ...epoch });
    }
    const answer = body as unknown as PipelineAnswer;
    baton = answer.baton;
    return answer;
  };

  return {
    async execute(s: Stmt, once = false) {
      // once: a statement outside a transaction; the stream closes in the same round trip.
      const a = await pipeline([{ type: 'execute', stmt: encodeStmt(s) }, once ? { type: 'close' } : { type: 'get_autocommit' }]);
      const [r, auto] = a.results;
      const autocommit = once || (auto?.type === 'ok' ? auto.response?.is_autocommit === true : true);
      if (r?.type !== 'ok') {
        const err = r?.error ?? { message: 'no answer from the master' };
        // The master's error, as it gave it (code included), to the client.
        const e = new SqlfleetError('SQL_ERROR', err.message, { hrana_code: err.code ?? 'SQLITE_ERROR', remote_autocommit: autocommit });
        throw e;
      }
      return { result: decodeResult(r.response!.result as Record<string, unknown>), autocommit, index: Number(a.sqlfleet_index ?? 0) };
    },
    async batch(payload: unknown) {
      const a = await pipeline([{ type: 'batch', batch: payload }, { type: 'get_autocommit' }]);
      const [r, auto] = a.results;
      const autocommit = auto?.type === 'ok' ? auto.response?.is_autocommit === true : true;
      if (r?.type !== 'ok') {
        const err = r?.error ?? { message: 'no answer from the master' };
        throw new SqlfleetError('SQL_ERROR', err.message, { hrana_code: err.code ?? 'SQLITE_ERROR', remote_autocommit: autocommit });
      }
      return { result: r.response!.result, autocommit, index: Number(a.sqlfleet_index ?? 0) };
    },
    async close() {
      if (baton === null) return;
      await pipeline([{ type: 'close' }]).catch(() => undefined);
      baton = null;
    },
  };
}
