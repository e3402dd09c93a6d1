// Workloads of the Jepsen-style test (issue 27). Each runs a few logical processes until
// stopped; every operation is recorded invoke -> ok / fail / info. Half the processes use
// sqlfleet/client (its own instance each: master discovery, retries under one idempotency
// key), half send raw HTTP to a node chosen per operation (a slave forwards to the master).
//   register  keys 1..3 of jr(k, v): writes, consistency "strong" reads, and CAS as
//             UPDATE jr SET v = ? WHERE k = ? AND v = ? (true when one row changed)
//   bank      accounts in jb(id, balance); transfers are one atomic request (a `queries`
//             batch with transaction, or a multi-statement text) guarded so no balance goes
//             negative, or read-then-write interactive transactions over Hrana
//             (@libsql/client); reads of every balance in one statement, local and strong
//   set       unique inserts into js(v) with ack "all"; read on every node at the end

import { setTimeout as delay } from 'node:timers/promises';
import { createClient as createLibsqlClient, type Client as LibsqlClient } from '@libsql/client';
import { createClient, SqlfleetClientError, type Client } from '../../src/client/index.js';
import type { Recorder } from './history.js';

/** What a workload needs from the run. */
export interface WorkloadContext {
  readonly rec: Recorder;
  /** URLs of every node (any role), current. */
  urls(): readonly string[];
  /** True once the run should stop issuing operations. */
  stopped(): boolean;
  /** Per-request deadline, ms. */
  readonly timeoutMs: number;
}

/** A workload: its setup SQL (run on the master) and its processes. */
export interface Workload {
  readonly name: string;
  readonly setup: readonly string[];
  /** Starts the processes; resolves when all have stopped. */
  run(ctx: WorkloadContext): Promise<void>;
}

/** The answer of a raw request, or why there was none. */
interface RawAnswer {
  status: number;
  body: any;
  error?: string;
}

/** POST / to `url`; a network failure or timeout is status 0. */
export async function rawPost(url: string, payload: unknown, timeoutMs: number): Promise<RawAnswer> {
  try {
    const res = await fetch(`${url}/`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload), signal: AbortSignal.timeout(timeoutMs) });
    const text = await res.text();
    let body: any;
    try {
      body = JSON.parse(text);
    } catch {
      body = { ok: false, error: { code: 'BAD_RESPONSE', message: text.slice(0, 200) } };
    }
    return { status: res.status, body };
  } catch (e) {
    return { status: 0, body: undefined, error: (e as Error).name === 'TimeoutError' ? 'timeout' : String((e as Error & { cause?: { code?: string } }).cause?.code ?? (e as Error).message) };
  }
}

/** How a raw write's answer completes its operation: ok, fail (certainly not applied) or info. */
export function rawWriteOutcome(a: RawAnswer): 'ok' | 'fail' | 'info' {
  if (a.status === 200 && a.body?.ok === true) return 'ok';
  // Connection refused: nothing was sent. A timeout or reset after sending: unknown.
  if (a.status === 0) return a.error === 'ECONNREFUSED' ? 'fail' : 'info';
  const outcome = a.body?.error?.outcome;
  if (outcome === 'not_applied') return 'fail';
  if (outcome === 'unknown') return 'info';
  return a.status >= 400 && a.status < 500 ? 'fail' : 'info';
}

/** How a client write's error completes its operation. */
export function clientWriteOutcome(e: unknown): 'fail' | 'info' {
  if (!(e instanceof SqlfleetClientError)) return 'info';
  if (e.outcome === 'not_applied') return 'fail';
  if (e.outcome === undefined && e.status !== undefined && e.status >= 400 && e.status < 500) return 'fail';
  return 'info';
}

function errText(e: unknown): string {
  return e instanceof SqlfleetClientError ? `${e.code}${e.status ? ` ${e.status}` : ''}` : String((e as Error)?.message ?? e);
}

function rawErr(a: RawAnswer): string {
  return a.status === 0 ? `network: ${a.error}` : `${a.body?.error?.code ?? '?'} ${a.status}`;
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const randInt = (lo: number, hi: number): number => lo + Math.floor(Math.random() * (hi - lo + 1));

/** A logical process: its number changes after an info (its old op may still be in flight). */
class Proc {
  /** How its last operation ended: after a failure it waits a little (no storm of refusals). */
  last: string = 'ok';
  constructor(public id: number, private readonly stride: number) {}
  crashed(): void {
    this.id += this.stride;
  }
  invoke(ctx: WorkloadContext, workload: string, f: string, value: unknown, via?: string): ReturnType<Recorder['invoke']> {
    const done = ctx.rec.invoke(workload, this.id, f, value, via);
    return (type, result, error) => {
      this.last = type;
      done(type, result, error);
    };
  }
}

/** Runs `n` processes of `body` until stopped; even ones get a sqlfleet client, odd ones raw HTTP. */
async function processes(ctx: WorkloadContext, n: number, body: (p: Proc, client: Client | undefined) => Promise<void>): Promise<void> {
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const p = new Proc(i, n);
      const client = i % 2 === 0 ? createClient({ urls: [...ctx.urls()], timeoutMs: ctx.timeoutMs }) : undefined;
      try {
        while (!ctx.stopped()) {
          await body(p, client);
          await delay(p.last === 'ok' ? randInt(5, 25) : randInt(100, 300));
        }
      } finally {
        await client?.close();
      }
    }),
  );
}

/** The register's keys (one linearizability search each). */
export const REGISTER_KEYS = [1, 2, 3];

/** The register workload. */
export function registerWorkload(procs = 4): Workload {
  let unique = 0;
  const lastSeen = new Map<number, number | null>();
  return {
    name: 'register',
    setup: ['CREATE TABLE jr(k INTEGER PRIMARY KEY, v INTEGER)', `INSERT INTO jr(k, v) VALUES ${REGISTER_KEYS.map((k) => `(${k}, NULL)`).join(', ')}`],
    run: (ctx) =>
      processes(ctx, procs, async (p, client) => {
        const k = pick(REGISTER_KEYS);
        const r = Math.random();
        const via = client ? 'client' : pick(ctx.urls());
        if (r < 0.4) {
          const done = p.invoke(ctx, 'register', 'read', { k }, client ? 'client' : via);
          if (client) {
            try {
              const res = await client.query('SELECT v FROM jr WHERE k = ?', [k], { consistency: 'strong' });
              const v = res.rows[0]?.[0] as number | null;
              lastSeen.set(k, v);
              done('ok', v);
            } catch (e) {
              done('fail', undefined, errText(e));
            }
          } else {
            const a = await rawPost(via, { command: 'query', query: 'SELECT v FROM jr WHERE k = ?', params: [k], consistency: 'strong' }, ctx.timeoutMs);
            if (a.status === 200 && a.body?.ok) {
              const v = a.body.results[0].rows[0]?.[0] ?? null;
              lastSeen.set(k, v);
              done('ok', v);
            } else done('fail', undefined, rawErr(a)); // a read changes nothing
          }
          return;
        }
        const cas = r >= 0.7;
        const to = ++unique; // values unique over the run
        const from = cas ? (Math.random() < 0.8 ? lastSeen.get(k) ?? null : to - randInt(1, 10)) : undefined;
        if (cas && from === null) return; // v = NULL never matches: not a CAS worth sending
        const arg = cas ? { k, from, to } : { k, v: to };
        const sql = cas ? 'UPDATE jr SET v = ? WHERE k = ? AND v = ?' : 'UPDATE jr SET v = ? WHERE k = ?';
        const params = cas ? [to, k, from!] : [to, k];
        const done = p.invoke(ctx, 'register', cas ? 'cas' : 'write', arg, via);
        let changes: number;
        if (client) {
          try {
            changes = (await client.execute(sql, params)).changes;
          } catch (e) {
            const t = clientWriteOutcome(e);
            done(t, undefined, errText(e));
            if (t === 'info') p.crashed();
            return;
          }
        } else {
          const a = await rawPost(via, { command: 'exec', query: sql, params }, ctx.timeoutMs);
          const t = rawWriteOutcome(a);
          if (t !== 'ok') {
            done(t, undefined, rawErr(a));
            if (t === 'info') p.crashed();
            return;
          }
          changes = Number(a.body.results[0].changes);
        }
        if (cas) done('ok', changes === 1);
        else if (changes === 1) done('ok');
        else done('info', undefined, `a write changed ${changes} rows`);
      }),
  };
}

/** The bank's accounts and the total every read must see. */
export const BANK_ACCOUNTS = 5;
/** Sum of all balances, constant under transfers. */
export const BANK_TOTAL = 500;

/** The bank workload. */
export function bankWorkload(procs = 4): Workload {
  const ids = Array.from({ length: BANK_ACCOUNTS }, (_, i) => i + 1);
  return {
    name: 'bank',
    setup: ['CREATE TABLE jb(id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)', `INSERT INTO jb(id, balance) VALUES ${ids.map((i) => `(${i}, ${BANK_TOTAL / BANK_ACCOUNTS})`).join(', ')}`],
    run: (ctx) => Promise.all([interactiveTransfers(ctx, ids, 2), processes(ctx, procs, async (p, client) => {
        const via = client ? 'client' : pick(ctx.urls());
        if (Math.random() < 0.5) {
          const strong = Math.random() < 0.5;
          const f = strong ? 'read-strong' : 'read-local';
          const done = p.invoke(ctx, 'bank', f, null, via);
          const sql = 'SELECT id, balance FROM jb ORDER BY id';
          let rows: unknown[][];
          let index: number;
          if (client) {
            try {
              const res = await client.query(sql, undefined, strong ? { consistency: 'strong' } : {});
              rows = res.rows;
              index = res.index;
            } catch (e) {
              return done('fail', undefined, errText(e));
            }
          } else {
            const a = await rawPost(via, { command: 'query', query: sql, ...(strong ? { consistency: 'strong' } : {}) }, ctx.timeoutMs);
            if (!(a.status === 200 && a.body?.ok)) return done('fail', undefined, rawErr(a));
            rows = a.body.results[0].rows;
            index = Number(a.body.index);
          }
          done('ok', { balances: Object.fromEntries(rows.map((r) => [String(r[0]), Number(r[1])])), index });
          return;
        }
        const from = pick(ids);
        const to = pick(ids.filter((i) => i !== from));
        const amount = randInt(1, 30);
        const done = p.invoke(ctx, 'bank', 'transfer', { from, to, amount }, via);
        // The credit runs only when the debit changed a row: no balance goes below zero.
        const debit = 'UPDATE jb SET balance = balance - ? WHERE id = ? AND balance >= ?';
        const credit = 'UPDATE jb SET balance = balance + ? WHERE id = ? AND changes() = 1';
        let changes: number[];
        let index: number;
        if (client) {
          try {
            const res = await client.batch([{ sql: debit, params: [amount, from, amount] }, { sql: credit, params: [amount, to] }]);
            changes = res.results.map((r) => r.changes ?? 0);
            index = res.index;
          } catch (e) {
            const t = clientWriteOutcome(e);
            done(t, undefined, errText(e));
            if (t === 'info') p.crashed();
            return;
          }
        } else {
          const text = `${debit.replace('?', String(amount)).replace('?', String(from)).replace('?', String(amount))}; ${credit.replace('?', String(amount)).replace('?', String(to))}`;
          const a = await rawPost(via, { command: 'exec', query: text }, ctx.timeoutMs);
          const t = rawWriteOutcome(a);
          if (t !== 'ok') {
            done(t, undefined, rawErr(a));
            if (t === 'info') p.crashed();
            return;
          }
          changes = (a.body.results as { changes?: number }[]).map((r) => r.changes ?? 0);
          index = Number(a.body.index);
        }
        done('ok', { debited: changes[0] === 1, credited: changes[1] === 1, index });
      })]).then(() => undefined),
  };
}

/**
 * Bank transfers as read-then-write interactive transactions over Hrana (@libsql/client,
 * DESIGN §8): read both balances, write the new absolute values, commit. Without isolation
 * two concurrent transfers would overwrite each other and the total would change. An error
 * before COMMIT committed nothing (fail); an error at COMMIT is unknown (info). Every call is
 * raced against the deadline (the client has none of its own).
 */
async function interactiveTransfers(ctx: WorkloadContext, ids: readonly number[], n: number): Promise<void> {
  const within = <T>(x: Promise<T>): Promise<T> =>
    Promise.race([x, delay(ctx.timeoutMs, undefined, { ref: false }).then(() => Promise.reject(new Error('timeout')))]);
  await Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const p = new Proc(100 + i, n);
      let url = pick(ctx.urls());
      let c: LibsqlClient = createLibsqlClient({ url });
      try {
        while (!ctx.stopped()) {
          const from = pick(ids);
          const to = pick(ids.filter((x) => x !== from));
          const amount = randInt(1, 30);
          const done = p.invoke(ctx, 'bank', 'transfer-tx', { from, to, amount }, url);
          let committing = false;
          let tx: Awaited<ReturnType<LibsqlClient['transaction']>> | undefined;
          try {
            tx = await within(c.transaction('write'));
            const a = Number((await within(tx.execute({ sql: 'SELECT balance FROM jb WHERE id = ?', args: [from] }))).rows[0]![0]);
            if (a < amount) {
              await within(tx.rollback());
              done('ok', { debited: false });
            } else {
              const b = Number((await within(tx.execute({ sql: 'SELECT balance FROM jb WHERE id = ?', args: [to] }))).rows[0]![0]);
              await within(tx.execute({ sql: 'UPDATE jb SET balance = ? WHERE id = ?', args: [a - amount, from] }));
              await within(tx.execute({ sql: 'UPDATE jb SET balance = ? WHERE id = ?', args: [b + amount, to] }));
              committing = true;
              await within(tx.commit());
              done('ok', { debited: true, credited: true });
            }
          } catch (e) {
            done(committing ? 'info' : 'fail', undefined, String((e as Error).message ?? e).slice(0, 120));
            if (committing) p.crashed();
            // A fresh client on another node: the stream may be gone with its node.
            c.close();
            url = pick(ctx.urls());
            c = createLibsqlClient({ url });
          } finally {
            tx?.close();
          }
          await delay(p.last === 'ok' ? randInt(5, 25) : randInt(100, 300));
        }
      } finally {
        c.close();
      }
    }),
  );
}

/** The set workload; `finalRead` reads every node's elements after the run. */
export function setWorkload(procs = 2): Workload {
  let unique = 0;
  return {
    name: 'set',
    setup: ['CREATE TABLE js(v INTEGER PRIMARY KEY)'],
    run: (ctx) =>
      processes(ctx, procs, async (p, client) => {
        const v = ++unique;
        const via = client ? 'client' : pick(ctx.urls());
        const done = p.invoke(ctx, 'set', 'insert', v, via);
        if (client) {
          try {
            await client.execute('INSERT INTO js(v) VALUES (?)', [v], { ack: 'all' });
            done('ok');
          } catch (e) {
            const t = clientWriteOutcome(e);
            done(t, undefined, errText(e));
            if (t === 'info') p.crashed();
          }
          return;
        }
        const a = await rawPost(via, { command: 'exec', query: 'INSERT INTO js(v) VALUES (?)', params: [v], ack: 'all' }, ctx.timeoutMs);
        const t = rawWriteOutcome(a);
        done(t, undefined, t === 'ok' ? undefined : rawErr(a));
        if (t === 'info') p.crashed();
      }),
  };
}

/** Every element of the set on the node at `url` (a local read there). */
// A few tries: a pooled connection to a node's previous (killed) process fails once.
export async function readSet(url: string, timeoutMs: number): Promise<number[]> {
  let a: RawAnswer | undefined;
  for (let i = 0; i < 5; i++) {
    a = await rawPost(url, { command: 'query', query: 'SELECT v FROM js ORDER BY v' }, timeoutMs);
    if (a.status === 200 && a.body?.ok) return (a.body.results[0].rows as number[][]).map((r) => r[0]!);
    await delay(200);
  }
  throw new Error(`final set read on ${url}: ${rawErr(a!)}`);
}
