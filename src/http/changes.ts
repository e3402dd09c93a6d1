// GET /changes (DESIGN §9): a node's change feed as Server-Sent Events, served from its own
// replica. `id:` is `<index>.<pos>`, so a client's Last-Event-ID resumes right after the
// last event it saw; an `id:` of `<index>` alone (sent with heartbeats when nothing matched)
// says the client has seen everything through that index, so a filtered or quiet feed
// does not fall behind the retention while nothing reaches it.
import type { Context, Hono } from 'hono';
import { SqlfleetError } from '../errors.js';
import type { Role } from '../auth/users.js';

/** A stored event as the feed reads it: position, filter fields, and its JSON text. */
export interface FeedEvent {
  index: number;
  pos: number;
  table: string;
  op: string;
  json: string;
}

/** What the feed needs from a node (the store's ChangeLog implements it). */
export interface ChangeSource {
  readonly enabled: boolean;
  /** The lowest index whose events are all kept. */
  oldest(): number;
  /** Events after (index, pos), in order, at most `limit`. */
  read(index: number, pos: number, limit: number): FeedEvent[];
  /** Called after every commit; returns the unsubscribe function. */
  subscribe(fn: (index: number) => void): () => void;
  /** The node's applied index now. */
  applied(): number;
  /** Calls `fn` when the node stops; returns the unsubscribe function. */
  onShutdown?(fn: () => void): () => void;
}

/** Options of the feed route. */
export interface ChangesRouteOptions {
  source: ChangeSource;
  need: (role: Role) => (c: Context, next: () => Promise<void>) => Promise<void>;
  /** Open feeds per node; one more is answered 503. */
  maxSubscribers: number;
  /** A comment (or a progress id) is sent this often on an idle feed (default 15 s). */
  heartbeatMs: number;
}

const CHUNK = 256;
const OPS = new Set(['insert', 'update', 'delete', 'schema']);
const enc = new TextEncoder();

/** Where a feed starts: after event (index, pos); pos -1 = before the first event of index. */
interface Cursor {
  index: number;
  pos: number;
}

/** Parses a Last-Event-ID: "<index>.<pos>" (after that event) or "<index>" (after all of that index). */
export function parseEventId(v: string): Cursor {
  const m = /^\s*(\d+)(?:\.(\d+))?\s*$/.exec(v);
  if (!m) throw new SqlfleetError('BAD_REQUEST', `Last-Event-ID "${v.slice(0, 40)}" is not <index>.<pos> or <index>`);
  const index = Number(m[1]);
  return m[2] === undefined ? { index, pos: Number.MAX_SAFE_INTEGER } : { index, pos: Number(m[2]) };
}

/** Registers GET /changes on the app. */
export function registerChanges(app: Hono, o: ChangesRouteOptions): void {
  let open = 0;
  app.get('/changes', o.need('read'), (c) => {
    const src = o.source;
    if (!src.enabled) throw new SqlfleetError('BAD_REQUEST', 'change capture is off on this node: start it with --capture all (or a list of tables)');
    const lastId = c.req.header('last-event-id') ?? c.req.query('last_event_id');
    const from = c.req.query('from');
    let cursor: Cursor;
    if (lastId !== undefined && lastId !== '') cursor = parseEventId(lastId);
    else if (from !== undefined) {
      const n = Number(from);
      if (!Number.isInteger(n) || n < 0) throw new SqlfleetError('BAD_REQUEST', `from must be a log index (an integer >= 0), got "${from}"`);
      cursor = n > 0 ? { index: n - 1, pos: Number.MAX_SAFE_INTEGER } : { index: 0, pos: -1 }; // events of index >= n
    } else cursor = { index: src.applied(), pos: Number.MAX_SAFE_INTEGER }; // only what comes next
    const oldest = src.oldest();
    // The first index the client still needs: the cursor's own when it is inside an index.
    const needs = cursor.pos === Number.MAX_SAFE_INTEGER ? cursor.index + 1 : cursor.index;
    if (needs < oldest && oldest > 1) {
      throw new SqlfleetError('CHANGES_TRIMMED', `events before index ${oldest} are no longer kept on this node; re-read the tables (a read answers its index) and follow from that index + 1`, {
        oldest,
        applied_index: src.applied(),
      });
    }
    const tables = list(c.req.query('table'));
    const ops = list(c.req.query('op'));
    for (const op of ops ?? []) if (!OPS.has(op)) throw new SqlfleetError('BAD_REQUEST', `op must be insert, update, delete or schema, got "${op}"`);
    const hbQuery = c.req.query('heartbeat');
    const heartbeatMs = hbQuery === undefined ? o.heartbeatMs : Math.min(Math.max(Number(hbQuery) || o.heartbeatMs, 100), 300_000);
    if (open >= o.maxSubscribers) throw new SqlfleetError('UNAVAILABLE', `this node already serves ${o.maxSubscribers} change feeds (--changes-max-subscribers); try another node`);
    open++;
    let closed = false;
    let scheduled = false;
    let progress = Math.min(cursor.index, src.applied()); // highest index the client is known to have seen in full
    let caughtUp = false;
    let unsubscribe = () => {};
    let unShutdown: () => void = () => {};
    let timer: NodeJS.Timeout | undefined;
    let ctl!: ReadableStreamDefaultController<Uint8Array>;
    const stop = () => {
      if (closed) return;
      closed = true;
      open--;
      unsubscribe();
      unShutdown();
      clearInterval(timer);
    };
    const send = (text: string) => ctl.enqueue(enc.encode(text));
    // Reads and sends while the client keeps up; resumes on the next commit or pull.
    const pump = () => {
      scheduled = false;
      if (closed) return;
      try {
        while ((ctl.desiredSize ?? 1) > 0) {
          const applied = src.applied(); // before the read: every event up to it is visible to it
          const rows = src.read(cursor.index, cursor.pos, CHUNK);
          let out = '';
          for (const e of rows) {
            cursor = { index: e.index, pos: e.pos };
            if ((tables && !tables.has(e.table)) || (ops && !ops.has(e.op))) continue;
            out += `id: ${e.index}.${e.pos}\ndata: ${e.json}\n\n`;
            progress = e.index - 1;
          }
          if (out) send(out);
          if (rows.length < CHUNK) {
            caughtUp = true;
            // Every event through `applied` was visible to the read and is passed now.
            if (applied >= cursor.index) cursor = { index: applied, pos: Number.MAX_SAFE_INTEGER };
            return;
          }
          caughtUp = false;
        }
      } catch (e) {
        stop();
        ctl.error(e);
      }
    };
    const schedule = () => {
      if (scheduled || closed) return;
      scheduled = true;
      setImmediate(pump);
    };
    const body = new ReadableStream<Uint8Array>(
      {
        start(controller) {
          ctl = controller;
          send(`retry: 1000\n: sqlfleet change feed from index ${needs}\n\n`);
          unsubscribe = src.subscribe(schedule);
          unShutdown =
            src.onShutdown?.(() => {
              stop();
              try {
                ctl.close();
              } catch {
                // already closed by the client
              }
            }) ?? unShutdown;
          timer = setInterval(() => {
            if (closed) return;
            // A caught-up feed passed every event through its cursor: say so with a bare id.
            if (caughtUp && cursor.pos === Number.MAX_SAFE_INTEGER && cursor.index > progress) {
              progress = cursor.index;
              send(`id: ${cursor.index}\n\n`);
            } else send(': heartbeat\n\n');
          }, heartbeatMs);
          timer.unref();
          schedule();
        },
        pull: schedule,
        cancel: stop,
      },
      { highWaterMark: 256 * 1024, size: (chunk) => chunk.byteLength },
    );
    c.req.raw.signal?.addEventListener('abort', stop);
    return new Response(body, {
      status: 200,
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-accel-buffering': 'no', connection: 'keep-alive' },
    });
  });
}

function list(v: string | undefined): Set<string> | null {
  if (v === undefined || v === '') return null;
  return new Set(v.split(',').map((s) => s.trim()).filter(Boolean));
}
