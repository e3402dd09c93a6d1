// Session: one client connection's statements with their transaction state (DESIGN §8).
// The protocol fronts (Hrana over HTTP and WebSocket) are thin translators over it; it
// decides where a statement runs (locally, in the transaction holding the master's writer,
// in a read snapshot, or on the master through a relay) and enforces --tx-timeout.
import { SqlfleetError } from '../errors.js';
import { hasRole, type Principal, type Role } from '../auth/users.js';
import type { ReadSnapshot, TypedResult, WriterTx } from '../store/interactive.js';
import type { Stmt } from '../store/types.js';
import type { InsertTarget } from '../sql/types.js';
import type { ExecutorDeps } from './executor.js';
import { Lru } from '../sql/lru.js';

/** A stream on the master, used by a slave's session for writes and write transactions. */
export interface RemoteConn {
  /** Runs one statement there; `autocommit` is the remote stream's state after it, `index` the master's applied index. */
  execute(s: Stmt, once?: boolean): Promise<{ result: TypedResult; autocommit: boolean; index: number }>;
  /** Runs a whole batch there in one round trip (its payload is the front's own, opaque here). */
  batch(payload: unknown): Promise<{ result: unknown; autocommit: boolean; index: number }>;
  close(): Promise<void>;
}

/** What sessions need from the node. */
export interface SessionDeps extends ExecutorDeps {
  txTimeoutMs: number;
  /**
   * Slave: opens a stream on the current master on behalf of `who`. `stamp`: the epoch stamp
   * of a relayed stream this node passes on (kept, and never resent; see hrana/remote.ts).
   */
  openRemote(who: Principal, stamp?: number): RemoteConn;
  /** How each write transaction ended on this node (metrics). */
  observeTx?(outcome: 'commit' | 'rollback' | 'timeout' | 'aborted'): void;
}

type TxControl =
  | { op: 'begin'; readonly: boolean }
  | { op: 'commit' }
  | { op: 'rollback' }
  | { op: 'savepoint' };

const controls = new Lru<string, TxControl | null>(1000);

/** Recognises transaction control statements, including libSQL's `BEGIN TRANSACTION READONLY` (the verdict is kept per text). */
export function txControl(sql: string): TxControl | null {
  if (sql.length > 200) return parseTxControl(sql); // no long text is kept
  let c = controls.get(sql);
  if (c === undefined) {
    c = parseTxControl(sql);
    controls.set(sql, c);
  }
  return c;
}

function parseTxControl(sql: string): TxControl | null {
  const t = sql
    .replace(/--[^\n]*|\/\*[\s\S]*?\*\//g, ' ')
    .trim()
    .replace(/;\s*$/, '')
    .trim()
    .toUpperCase();
  if (/^BEGIN(\s+(DEFERRED|IMMEDIATE|EXCLUSIVE))?(\s+TRANSACTION)?$/.test(t)) return { op: 'begin', readonly: false };
  if (/^BEGIN(\s+TRANSACTION)?\s+READONLY$/.test(t)) return { op: 'begin', readonly: true };
  if (/^(COMMIT|END)(\s+TRANSACTION)?$/.test(t)) return { op: 'commit' };
  if (/^ROLLBACK(\s+TRANSACTION)?$/.test(t)) return { op: 'rollback' };
  if (/^(SAVEPOINT\s|RELEASE\s|ROLLBACK(\s+TRANSACTION)?\s+TO\s)/.test(t)) return { op: 'savepoint' };
  return null;
}

const EMPTY: TypedResult = { cols: [], rows: [], changes: 0, lastInsertRowid: null, readonly: true };

/** SQLite's own message when a statement needs a transaction that is not open. */
function noTx(what: string): SqlfleetError {
  return new SqlfleetError('SQL_ERROR', `cannot ${what} - no transaction is active`, { sqlite_code: 'SQLITE_ERROR' });
}

/**
 * One client connection (a Hrana stream). Statements run one at a time (the front
 * serialises them). Autocommit reads run on this node; autocommit writes on the master are
 * one-statement transactions; on a slave, writes and write transactions go to the master.
 */
export class Session {
  private write: WriterTx | null = null;
  /**
   * BEGIN was accepted on the master but the writer is taken only with the transaction's
   * first statement: nothing can be observed in between, and the writer is not held
   * across the round trip that brings that statement (a third of a short transaction).
   */
  private pendingWrite = false;
  private read: ReadSnapshot | null = null;
  private remote: RemoteConn | null = null;
  private timers: NodeJS.Timeout[] = [];
  /** Why the open transaction was rolled back behind the client's back; reported until it ends it. */
  private aborted: SqlfleetError | null = null;
  private closed = false;
  /** Highest log index this session's writes got (read-your-writes for the front). */
  lastIndex = 0;

  constructor(
    private readonly d: SessionDeps,
    readonly who: Principal,
    /** The x-sqlfleet-epoch of the request that opened this stream, when another node relayed it. */
    private readonly stamp?: number,
  ) {}

  /** True when no transaction is open (Hrana's is_autocommit). */
  get autocommit(): boolean {
    return !this.write && !this.pendingWrite && !this.read && !this.remote && !this.aborted;
  }

  /** Runs one statement (Hrana's execute, or a step of a batch). */
  async execute(s: Stmt): Promise<TypedResult> {
    if (this.closed) throw new SqlfleetError('BAD_REQUEST', 'the stream is closed', { hrana_code: 'STREAM_CLOSED' });
    const ctl = txControl(s.sql);
    if (this.aborted) {
      const why = this.aborted;
      if (ctl?.op === 'rollback') {
        this.aborted = null;
        return EMPTY;
      }
      if (ctl?.op === 'commit') this.aborted = null;
      throw why;
    }
    if (this.remote) return this.onRemote(s, ctl);
    if (ctl) return this.control(ctl, s);
    const { kind, into } = this.classify(s.sql);
    if (this.pendingWrite) await this.takeWriter();
    if (this.write) return this.write.run(s, into, kind !== 'read');
    if (this.read) {
      if (kind !== 'read') throw new SqlfleetError('READ_ONLY_COMMAND', 'cannot write in a read-only transaction (BEGIN TRANSACTION READONLY)', { hrana_code: 'SQLITE_READONLY' });
      return this.read.run(s);
    }
    if (kind === 'read') {
      const { results } = await this.d.store.read([s], true);
      return fromStore(results[0] as unknown as Record<string, unknown>, this.d.store.declTypes(s.sql));
    }
    if (this.d.role() !== 'master') {
      const conn = this.d.openRemote(this.who, this.stamp);
      try {
        return (await this.relay(conn, s, true)).result;
      } finally {
        await conn.close().catch(() => undefined);
      }
    }
    // An autocommit write: a transaction of one statement (one entry, acked like any write).
    await this.beginWrite();
    this.arm();
    try {
      const r = this.write!.run(s, into, true);
      await this.commitWrite();
      return r;
    } catch (e) {
      this.endWrite();
      throw e;
    }
  }

  /**
   * True when a batch that writes should run on the master as a whole (this node is a
   * slave, or the session already holds a stream there): one round trip, not one per step.
   */
  get relaysBatches(): boolean {
    return !this.closed && !this.aborted && (this.remote !== null || (this.autocommit && this.d.role() !== 'master'));
  }

  /** True while this session holds a stream on the master (a transaction relayed from a slave). */
  get onMaster(): boolean {
    return this.remote !== null;
  }

  /** Runs a batch on the master (see relaysBatches); the session stays there while the batch left a transaction open. */
  async relayBatch(payload: unknown): Promise<unknown> {
    const conn = this.remote ?? this.d.openRemote(this.who, this.stamp);
    let out;
    try {
      out = await conn.batch(payload);
    } catch (e) {
      if (this.remote) {
        await this.endRemote();
        this.aborted = new SqlfleetError('MASTER_UNAVAILABLE', `the transaction on the master was lost: ${(e as Error).message}`, { hrana_code: 'TRANSACTION_ABORTED' });
      } else await conn.close().catch(() => undefined);
      throw e;
    }
    if (out.index > this.lastIndex) this.lastIndex = out.index;
    if (out.autocommit) {
      if (this.remote) await this.endRemote();
      else await conn.close().catch(() => undefined);
      if (out.index > this.d.store.appliedIndex) await this.d.applied.wait(out.index, this.d.config.ackTimeoutMs);
    } else this.remote = conn;
    return out.result;
  }

  /** True when `sql` only reads (the classifier's verdict; false when it does not parse). */
  isRead(sql: string): boolean {
    try {
      return this.d.classify(sql).kind === 'read';
    } catch {
      return false;
    }
  }

  /** Splits a text of several statements (Hrana's sequence). */
  split(sql: string): string[] {
    return this.d.classify(sql).statements.map((s) => s.sql);
  }

  /** Describes a statement without running it (Hrana's describe). */
  describe(sql: string): { params: { name: string | null }[]; cols: { name: string; decltype: string | null }[]; isExplain: boolean; isReadonly: boolean } {
    const c = this.d.classify(sql);
    if (c.kind === 'forbidden') throw new SqlfleetError('FORBIDDEN_STATEMENT', c.statements.find((x) => x.kind === 'forbidden')?.reason ?? 'statement not allowed');
    return this.d.store.describe(sql);
  }

  /** Ends the session: an open transaction rolls back. */
  async close(): Promise<void> {
    this.closed = true;
    this.pendingWrite = false;
    this.endWrite();
    this.endRead();
    await this.endRemote();
  }

  /** Rolls back an open transaction because the stream expired or the node stops. */
  abort(e: SqlfleetError): void {
    if (this.write) this.write.abort(e);
    else if (this.read || this.pendingWrite) {
      this.endRead();
      this.pendingWrite = false;
      this.aborted = e;
    }
  }

  private classify(sql: string): { kind: 'read' | 'write' | 'schema'; into: InsertTarget | undefined } {
    const c = this.d.classify(sql);
    if (c.statements.length > 1) throw new SqlfleetError('BAD_REQUEST', 'one statement per execute; use a sequence or a batch for several');
    if (c.kind === 'forbidden') throw new SqlfleetError('FORBIDDEN_STATEMENT', c.statements[0]?.reason || 'statement not allowed');
    if (c.kind === 'transaction') throw new SqlfleetError('TRANSACTION_CONTROL', c.statements[0]?.reason || 'unsupported transaction statement');
    const kind = c.kind;
    const role: Role = kind === 'read' ? 'read' : kind === 'write' ? 'write' : 'admin';
    if (!hasRole(this.who, role)) throw new SqlfleetError('FORBIDDEN', `user "${this.who.user}" (role ${this.who.role}) needs role ${role}`);
    return { kind, into: c.statements[0]?.into };
  }

  private async control(ctl: TxControl, s: Stmt): Promise<TypedResult> {
    switch (ctl.op) {
      case 'begin':
        if (!this.autocommit) throw new SqlfleetError('SQL_ERROR', 'cannot start a transaction within a transaction', { sqlite_code: 'SQLITE_ERROR' });
        if (ctl.readonly) {
          this.read = this.d.store.openSnapshot();
          this.arm();
          return EMPTY;
        }
        if (!hasRole(this.who, 'write')) throw new SqlfleetError('FORBIDDEN', `user "${this.who.user}" (role ${this.who.role}) needs role write for a write transaction; use BEGIN TRANSACTION READONLY`);
        if (this.d.role() !== 'master') {
          this.remote = this.d.openRemote(this.who, this.stamp);
          return this.onRemote(s, ctl);
        }
        this.pendingWrite = true;
        this.arm(); // --tx-timeout counts from BEGIN
        return EMPTY;
      case 'commit':
        if (this.pendingWrite) return this.endPending(), EMPTY;
        if (this.read) return this.endRead(), EMPTY;
        if (!this.write) throw noTx('commit');
        await this.commitWrite();
        return EMPTY;
      case 'rollback':
        if (this.pendingWrite) return this.endPending(), EMPTY;
        if (this.read) return this.endRead(), EMPTY;
        if (!this.write) throw noTx('rollback');
        this.endWrite();
        return EMPTY;
      case 'savepoint':
        if (this.read) return this.read.run(s);
        if (this.pendingWrite) await this.takeWriter();
        if (!this.write) throw new SqlfleetError('TRANSACTION_CONTROL', 'savepoints need an open transaction here: send BEGIN first', { sqlite_code: 'SQLITE_ERROR' });
        return this.write.run(s);
    }
  }

  /** The first statement after BEGIN: the transaction takes the writer now. */
  private async takeWriter(): Promise<void> {
    try {
      await this.beginWrite();
    } catch (e) {
      this.endPending();
      throw e;
    }
    this.pendingWrite = false;
  }

  private endPending(): void {
    this.pendingWrite = false;
    this.disarm();
  }

  private async beginWrite(): Promise<void> {
    if (this.d.role() !== 'master') throw new SqlfleetError('NOT_MASTER', 'this node is no longer the master; the transaction cannot start here', { hrana_code: 'NOT_MASTER' });
    const tx = await this.d.store.beginTx(this.d.txTimeoutMs);
    if (this.closed || this.aborted) {
      tx.rollback(); // the stream ended or the transaction timed out while it waited for the writer
      throw this.aborted ?? new SqlfleetError('BAD_REQUEST', 'the stream is closed', { hrana_code: 'STREAM_CLOSED' });
    }
    this.write = tx;
    tx.onAbort((e) => {
      this.d.observeTx?.(e.details.hrana_code === 'TRANSACTION_TIMEOUT' ? 'timeout' : 'aborted');
      if (this.write !== tx) return;
      this.write = null;
      this.disarm();
      this.aborted = e;
    });
    // A master that loses its role (switchover, lease, newer epoch) rolls back at once.
    this.timers.push(
      setInterval(() => {
        try {
          if (this.d.role() !== 'master') throw new SqlfleetError('NOT_MASTER', 'this node stopped being the master; the transaction was rolled back');
          this.d.replicate().check();
        } catch (e) {
          tx.abort(e instanceof SqlfleetError ? new SqlfleetError(e.code, e.message, { ...e.details, hrana_code: 'NOT_MASTER' }) : new SqlfleetError('NOT_MASTER', String(e)));
        }
      }, 100),
    );
  }

  /** Starts the --tx-timeout clock of the transaction just opened. */
  private arm(): void {
    const ms = this.d.txTimeoutMs;
    this.timers.push(
      setTimeout(() => {
        const e = new SqlfleetError('TIMEOUT', `the transaction was open for more than ${ms} ms (--tx-timeout) and was rolled back`, { hrana_code: 'TRANSACTION_TIMEOUT' });
        if (this.write) this.write.abort(e);
        else if (this.read || this.pendingWrite) {
          this.endRead();
          this.pendingWrite = false;
          this.aborted = e;
        }
      }, ms),
    );
  }

  private disarm(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers = [];
  }

  private async commitWrite(): Promise<void> {
    const tx = this.write!;
    const rep = this.d.replicate();
    try {
      rep.admit();
    } catch (e) {
      this.endWrite();
      throw e;
    }
    try {
      const epoch = this.d.epoch();
      this.write = null;
      this.disarm();
      const written = tx.commit(epoch, () => rep.check());
      this.d.observeTx?.('commit');
      if (!written) return;
      this.d.applied.notify();
      rep.onWrite(written.entry, written.json);
      const index = written.entry.index;
      this.lastIndex = index;
      await rep.waitAcks(index, 'all', this.d.config.ackTimeoutMs);
      rep.settle(epoch, index);
    } finally {
      rep.done();
    }
  }

  private endWrite(): void {
    const tx = this.write;
    this.write = null;
    this.disarm();
    if (tx?.open) this.d.observeTx?.('rollback');
    tx?.rollback();
  }

  private endRead(): void {
    this.read?.close();
    this.read = null;
    this.disarm();
  }

  private async endRemote(): Promise<void> {
    const r = this.remote;
    this.remote = null;
    this.disarm();
    await r?.close().catch(() => undefined);
  }

  /** Slave: the statement runs in the stream this session holds on the master. */
  private async onRemote(s: Stmt, ctl: TxControl | null): Promise<TypedResult> {
    if (!ctl) this.classify(s.sql); // forbidden and role checks here, before the master sees it
    try {
      // COMMIT and ROLLBACK end the master's transaction whatever their outcome (a failed
      // COMMIT there rolls back): the stream closes in the same round trip.
      const out = await this.relay(this.remote!, s, ctl?.op === 'commit' || ctl?.op === 'rollback');
      if (out.autocommit) await this.endRemote();
      return out.result;
    } catch (e) {
      if (e instanceof SqlfleetError && e.details.remote_autocommit === true) await this.endRemote();
      if (e instanceof SqlfleetError && (e.code === 'MASTER_UNAVAILABLE' || e.details.hrana_code === 'STREAM_EXPIRED')) {
        await this.endRemote();
        this.aborted = new SqlfleetError('MASTER_UNAVAILABLE', `the transaction on the master was lost: ${e.message}`, { hrana_code: 'TRANSACTION_ABORTED' });
      }
      throw e;
    }
  }

  private async relay(conn: RemoteConn, s: Stmt, once = false): Promise<{ result: TypedResult; autocommit: boolean }> {
    const out = await conn.execute(s, once);
    if (out.index > this.lastIndex) this.lastIndex = out.index;
    // Answer once this replica has the write, so the client reads it back here.
    if (out.autocommit && out.index > this.d.store.appliedIndex) await this.d.applied.wait(out.index, this.d.config.ackTimeoutMs);
    return out;
  }
}

/** A store read result (raw values) as a TypedResult. */
function fromStore(r: Record<string, unknown>, decltypes: (string | null)[]): TypedResult {
  if (Array.isArray(r.columns)) {
    return { cols: (r.columns as string[]).map((name, i) => ({ name, decltype: decltypes[i] ?? null })), rows: r.rows as TypedResult['rows'], changes: 0, lastInsertRowid: null, readonly: true };
  }
  return { cols: [], rows: [], changes: Number(r.changes ?? 0), lastInsertRowid: null, readonly: true };
}
