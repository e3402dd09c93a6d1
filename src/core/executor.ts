// Policy: what a node does with a request, given its role and the statements' classes.
// Decides; the HTTP layer only maps the outcome (or the thrown SqlfleetError) to a response.
import type { Config } from '../config.js';
import { SqlfleetError } from '../errors.js';
import type { AckLevel, AckResult } from '../replication/acks.js';
import { CLASS_RANK, type Classification, type InsertTarget, type StatementClass } from '../sql/types.js';
import type { Store } from '../store/store.js';
import type { Entry, StatementResult, Stmt } from '../store/types.js';
import { hasRole, type Principal, type Role } from '../auth/users.js';
import type { IndexWaiter } from './index-waiter.js';
import { checkKeyAge } from './idempotency.js';
import { forwardBody, type QueryRequest } from './request.js';

/** A JSON answer with its HTTP status. */
export interface Outcome {
  status: number;
  body: Record<string, unknown>;
  /** What was done, for metrics and logs: read, write, schema, forwarded. */
  cls?: string;
}

/**
 * Sends a request body to the master; rejects with MASTER_UNAVAILABLE when it cannot.
 * `epoch`: the stamp of a request this node passes on (else its own view's epoch is sent).
 */
export type ForwardFn = (body: string, onBehalfOf: string | null, epoch?: number) => Promise<Outcome>;

/** The master's side of a write: admission, shipping, acknowledgement. */
export interface Replicate {
  /** Throws (503, not applied) unless this node may write now: it is master, not handing over, its lease (etcd) valid. Pair with done(). */
  admit(): void;
  /** The test of admit() alone, repeated when the write commits. */
  check(): void;
  /** Called once per admitted write, after it was answered or failed. */
  done(): void;
  /** Called with every committed entry. */
  onWrite(entry: Entry, json: string): void;
  waitAcks(index: number, level: AckLevel, timeoutMs: number): Promise<AckResult>;
  /** Throws (503, outcome unknown) if this node stopped being master in `epoch` while write `index` waited; else it is acknowledged. */
  settle(epoch: number, index: number): void;
}

/** What the executor needs from the rest of the node. */
export interface ExecutorDeps {
  config: Config;
  store: Store;
  classify: (sql: string) => Classification;
  applied: IndexWaiter;
  /** The node's role now (it changes at failover and switchover). */
  role: () => 'master' | 'slave';
  /** The current master parts' write side (a stub that refuses when this node is not master). */
  replicate: () => Replicate;
  /** Slave: forwards writes and strong reads to the master. */
  forward: ForwardFn;
  epoch: () => number;
  /** The newest epoch this node knows of (a follower may know its new master's before its entries). */
  knownEpoch: () => number;
  masterUrl: () => string;
  /** Non-null when this replica stopped applying. */
  diverged: () => string | null;
}

/** Runs client requests according to DESIGN §3. */
export class Executor {
  constructor(private readonly d: ExecutorDeps) {}

  /** Classifies, then reads locally, writes (master), forwards (slave) or refuses. */
  async execute(req: QueryRequest, rawBody: string, who: Principal): Promise<Outcome> {
    const stamp = req.forwardedEpoch;
    if (stamp !== undefined) fenceForwarded(stamp, this.d);
    const { stmts, kind, reason, into } = this.classifyAll(req);
    if (kind === 'forbidden' || kind === 'transaction') throw refusal(kind, reason);
    const role: Role = kind === 'read' ? 'read' : kind === 'write' ? 'write' : 'admin';
    if (!hasRole(who, role)) {
      throw new SqlfleetError('FORBIDDEN', `user "${who.user}" (role ${who.role}) may not run ${kind === 'schema' ? 'schema changes' : `${kind}s`}: needs role ${role}`);
    }
    const onBehalf = who.cluster || who.user === 'anonymous' ? null : who.user;
    const isMaster = this.d.role() === 'master';
    if (kind === 'read') {
      if (req.consistency === 'strong') {
        if (!isMaster) return this.forward(rawBody, onBehalf, stamp);
        return withClass(await this.strongRead(stmts, req.minIndex), 'read');
      }
      return withClass(await this.read(stmts, req.minIndex), 'read');
    }
    if (req.command === 'query') {
      throw new SqlfleetError('READ_ONLY_COMMAND', `"command": "query" runs only reads; this ${kind === 'schema' ? 'schema change' : 'write'} needs "command": "exec"`);
    }
    if (!isMaster) {
      // With no master known yet, a schema change is refused like a write (503, nothing
      // applied, retry), not with a SCHEMA_ON_SLAVE that names no master to send it to.
      if (kind === 'schema' && !req.forwardSchema && this.d.masterUrl()) {
        throw new SqlfleetError('SCHEMA_ON_SLAVE', `schema changes are accepted only by the master; send this to ${this.d.masterUrl()}`, { master: this.d.masterUrl() });
      }
      return this.forward(forwardBody(req, rawBody), onBehalf, stamp);
    }
    return withClass(await this.write(stmts, req.ack, req.idempotencyKey, into), kind);
  }

  private classifyAll(req: QueryRequest): { stmts: Stmt[]; kind: StatementClass; reason: string; into: (InsertTarget | undefined)[] } {
    const out: Stmt[] = [];
    const into: (InsertTarget | undefined)[] = []; // an INSERT's table, by statement (store.ts checks it)
    let kind: StatementClass = 'read';
    let reason = '';
    for (const s of req.stmts) {
      const c = this.d.classify(s.sql);
      if (c.statements.length > 1 && s.params !== undefined) {
        throw new SqlfleetError('BAD_REQUEST', 'params need a single statement per query; send several with "queries"');
      }
      if (!req.bulk && out.length + c.statements.length > this.d.config.maxStatements) {
        throw new SqlfleetError('BAD_REQUEST', `too many statements: more than ${this.d.config.maxStatements} (--max-statements)`);
      }
      for (const cs of c.statements) {
        if (cs.into) into[out.length] = cs.into;
        out.push(cs.sql === s.sql || s.params === undefined ? { sql: cs.sql, params: s.params } : { sql: cs.sql });
        if (CLASS_RANK[cs.kind] > CLASS_RANK[kind]) {
          kind = cs.kind;
          reason = cs.reason;
        }
      }
    }
    return { stmts: out, kind, reason, into };
  }

  private async read(stmts: Stmt[], minIndex: number | undefined): Promise<Outcome> {
    if (minIndex !== undefined && this.d.store.appliedIndex < minIndex) {
      const reached = await this.d.applied.wait(minIndex, this.d.config.readWaitMs);
      if (!reached) {
        throw new SqlfleetError('TIMEOUT', `index ${minIndex} not applied here within ${this.d.config.readWaitMs} ms (at ${this.d.store.appliedIndex})`, {
          applied_index: this.d.store.appliedIndex,
        });
      }
    }
    const { index, results } = await this.d.store.read(stmts);
    return this.ok(index, results);
  }

  /**
   * A strong read on the master is linearizable, not just "the master's file": with etcd it
   * shows only what the cluster holds (the index it read at is acknowledged as an ack "all"
   * write is, so a write this master committed but could still lose is never shown), and only while this
   * node is certainly the master (after the read, not deposed and, with etcd, its lease still
   * valid: no other master can have taken over while it read). Else 503 NOT_MASTER: retry,
   * and the client finds the master. Jepsen's register workload found deposed masters
   * answering strong reads with stale values before this (issue 27).
   */
  private async strongRead(stmts: Stmt[], minIndex: number | undefined): Promise<Outcome> {
    const rep = this.d.replicate();
    const epoch = this.d.epoch();
    const out = await this.read(stmts, minIndex);
    const index = Number(out.body.index);
    try {
      // With etcd a failover keeps only what the sync set holds; in static mode nothing
      // acknowledged is dropped by a promotion (it waits for the target), so the wait is not needed there.
      if (this.d.config.etcd.length > 0) await rep.waitAcks(index, 'all', this.d.config.ackTimeoutMs);
      rep.settle(epoch, index);
      // Also not while handing over (a switchover's pause): the target may already serve
      // writes this node will never see (Jepsen, static mode: a stale strong read at a slow handover).
      rep.check();
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new SqlfleetError('NOT_MASTER', `this strong read cannot be confirmed by the master (${why}); nothing was changed, retry`, { outcome: 'not_applied', master: this.d.masterUrl() });
    }
    return out;
  }

  private async write(stmts: Stmt[], ack: AckLevel, key: string | undefined, into?: readonly (InsertTarget | undefined)[]): Promise<Outcome> {
    const rep = this.d.replicate();
    rep.admit();
    try {
      const epoch = this.d.epoch();
      // A key already applied gets the first answer back (acknowledged like any write). The
      // store looks it up inside the commit: concurrent duplicates cannot both apply.
      if (key !== undefined) checkKeyAge(key, Date.now(), this.d.config.idempotencyWindowMs);
      const { index, results, fresh } = await this.d.store.write(stmts, epoch, key, {
        into,
        check: () => rep.check(),
        onCommit: (entry, json) => {
          this.d.applied.notify();
          rep.onWrite(entry, json);
        },
      });
      const acks = await rep.waitAcks(index, ack, this.d.config.ackTimeoutMs);
      rep.settle(epoch, index);
      const out = this.ok(index, results);
      out.body.replicated_to = acks.replicated_to;
      if (acks.lagging.length > 0) out.body.lagging = acks.lagging;
      if (acks.missing.length > 0) out.body.missing = acks.missing;
      if (!fresh) out.body.idempotent_replay = true;
      return out;
    } finally {
      rep.done();
    }
  }

  private async forward(rawBody: string, onBehalf: string | null, stamp: number | undefined): Promise<Outcome> {
    const res = await this.d.forward(rawBody, onBehalf, stamp);
    if (res.status !== 200 || res.body.ok !== true) return { ...res, cls: 'forwarded' };
    const index = Number(res.body.index);
    // Answer only once this replica has applied the write, so the client reads it back here.
    const here = await this.d.applied.wait(index, this.d.config.ackTimeoutMs);
    return {
      status: 200,
      cls: 'forwarded',
      body: { ...res.body, node: this.d.config.id, role: this.d.role(), forwarded_to: this.d.masterUrl(), ...(here ? {} : { applied_here: false }) },
    };
  }

  private ok(index: number, results: StatementResult[]): Outcome {
    return { status: 200, body: { ok: true, node: this.d.config.id, role: this.d.role(), index, results } };
  }
}

/**
 * Refuses a request another node forwarded (or relayed) to the master of epoch `stamp`
 * when this node knows a newer epoch. Such a request was held up in the network (a cut link
 * delivers it once healed, TCP retransmits for minutes) or sent by a node that had not heard
 * of the new master; its sender answered or will answer it as failed, so applying it now
 * would be a write applied after its client was told "unknown". Nothing is applied.
 */
export function fenceForwarded(stamp: number, d: Pick<ExecutorDeps, 'knownEpoch' | 'masterUrl'>): void {
  const known = d.knownEpoch();
  if (stamp >= known) return;
  throw new SqlfleetError(
    'MASTER_UNAVAILABLE',
    `this request was forwarded to the master of epoch ${stamp}; this node is in epoch ${known}: the master changed meanwhile; nothing was applied, retry`,
    { outcome: 'not_applied', master: d.masterUrl(), epoch: known, retry_after_ms: 100 },
  );
}

/** `out` with its class set (an object spread per request took V8's slow path). */
function withClass(out: Outcome, cls: string): Outcome {
  out.cls = cls;
  return out;
}

function refusal(kind: 'forbidden' | 'transaction', reason: string): SqlfleetError {
  if (kind === 'forbidden') return new SqlfleetError('FORBIDDEN_STATEMENT', reason || 'statement not allowed');
  return new SqlfleetError('TRANSACTION_CONTROL', reason || 'transaction control statements cannot be sent alone: use "queries" with "transaction": true');
}
