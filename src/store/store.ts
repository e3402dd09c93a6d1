// Store: the only owner of the SQLite files. A writer connection (with the deterministic
// overrides) applies log entries; a read-only connection answers reads.
import { hash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Database as Db } from 'better-sqlite3';
import { SqlfleetError, type ErrorCode } from '../errors.js';
import type { Durability } from '../config.js';
import type { Checksum } from './checksum.js';
import { installDeterminism } from './determinism.js';
import { StatementCache, prepareFresh, runStatement, schemaCookieReader, toJsonValue, translateError } from './exec.js';
import { BACKSTOP_PAGES, Checkpointer } from './checkpoint.js';
import { PointReads } from './point-read.js';
import { ReadSnapshot, WriterTx, describeOn, type Description } from './interactive.js';
import { ReadPool } from './read-pool.js';
import { createInternalTables, prepareInternal, readApplied, type InternalStatements } from './internal.js';
import { DEFAULT_IDEMPOTENCY_RETAIN_MS, PRUNE_EVERY_MS, decodeResults, encodeResults } from './idempotency.js';
import type { Entry, StatementResult, Stmt } from './types.js';
import { ChangeLog, type CaptureSpec } from './changes.js';
import { randomText } from '../random.js';
import { RowidCeiling } from './rowid-ceiling.js';
import type { InsertTarget } from '../sql/types.js';

/**
 * Hash of an entry chained to its predecessor (as Bedrock does), over the entry's header
 * and its statements as JSON text (serialized once, and the same text on every node).
 */
export function entryHash(prevHash: string, e: Omit<Entry, 'hash' | 'stmts'>, stmtsJson: string): string {
  // One-shot hash: a Hash object per entry cost about twice as much (bench/cost.ts, catch-up).
  // An idempotency key (no newlines: request.ts) is covered too; keyless entries hash as before.
  const key = e.key === undefined || e.key === null ? '' : `\n${e.key}`;
  return hash('sha256', `${prevHash}\n${e.index},${e.epoch},${e.ts},${e.seed}\n${stmtsJson}${key}`, 'hex');
}

/** An entry as JSON text for shipping, built from its parts without re-serializing statements. */
export function entryJson(e: Omit<Entry, 'stmts'>, stmtsJson: string): string {
  const key = e.key === undefined || e.key === null ? '' : `,"key":${JSON.stringify(e.key)}`;
  return `{"index":${e.index},"epoch":${e.epoch},"ts":${e.ts},"seed":"${e.seed}","hash":"${e.hash}","stmts":${stmtsJson}${key}}`;
}


/** What a write gave: its index and results; `fresh` unless its idempotency key had already been applied (a replay). */
export interface Written {
  index: number;
  results: StatementResult[];
  fresh?: { entry: Entry; json: string };
}

/** How a write joins the group commit. */
export interface WriteHooks {
  /**
   * Throws when this node may no longer write. Checked again at commit time: the write
   * waits up to one turn of the event loop, in which the node can lose its role or lease.
   */
  check(): void;
  /** Called right after the commit, in index order, before any write of the group is answered. */
  onCommit(entry: Entry, json: string): void;
  /**
   * The master's INSERT targets, one per statement (undefined: not an INSERT, or the parser
   * named no table): each is checked around its statement for the largest rowid, and so are
   * the tables triggers insert into (rowid-ceiling.ts). Absent on slaves: they replay.
   */
  into?: readonly (InsertTarget | undefined)[];
}

/** A write of a group after the commit: what it gave, or why it failed. */
type Settled = { written: Written } | { error: unknown };

interface PendingWrite {
  stmts: readonly Stmt[];
  epoch: number;
  key: string | undefined;
  hooks: WriteHooks;
  resolve: (w: Written) => void;
  reject: (e: unknown) => void;
}

/** Options for opening a node's database. */
export interface StoreOptions {
  path: string;
  durability: Durability;
  /** Client reads: workers, per-query timeout, most rows returned per statement. */
  readWorkers: number;
  queryTimeoutMs: number;
  maxRows: number;
  /** Applied idempotency keys are kept this long (entry time), then pruned. */
  idempotencyRetainMs?: number;
  log?: (level: 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
  /** Observes the number of writes in each group commit. */
  onCommitGroup?: (writes: number) => void;
  /** WAL checkpoints by a worker thread this often (default 100 ms); 0: SQLite's own, inside commits. */
  checkpointIntervalMs?: number;
  /** Change capture (DESIGN §9): which tables, and events of how many recent entries are kept. */
  capture?: CaptureSpec;
  changesRetain?: number;
}

const DEFAULT_CHECKPOINT_INTERVAL_MS = 100;

/** A node's SQLite database: data, replication log and applied index. */
export class Store {
  private writer!: Db;
  private reader!: Db;
  private points!: PointReads;
  /** Reads answered as point reads since the process started (a snapshot install keeps it). */
  private pointReadCount = 0;
  private wcache!: StatementCache;
  private q!: InternalStatements;
  private det!: ReturnType<typeof installDeterminism>;
  private pool!: ReadPool;
  private checkpointer: Checkpointer | null = null;
  private applied = 0;
  private hash = '';
  private epochCache = 0;
  /** Schema cookie as of the last commit; read workers re-read their schema when it moves (issue 12). */
  private schemaCookie = 0;
  private readCookie!: () => number;
  private lastPrune = 0;
  private writeTx!: (e: Entry, stmtsJson: string, into?: readonly (InsertTarget | undefined)[]) => StatementResult[];
  /** The master's largest-rowid check of INSERTs (rowid-ceiling.ts); made with the writer. */
  private ceiling!: RowidCeiling;
  private applyTx!: (entries: readonly Entry[], jsons: string[]) => void;
  private groupTx!: (jobs: readonly PendingWrite[], out: Settled[]) => Entry | undefined;
  private trimTx!: (upTo: number) => number;
  /** Writes waiting for the group commit at the end of this turn of the event loop. */
  private pending: PendingWrite[] = [];
  /** The interactive transaction holding the writer (DESIGN §8): group commits wait for it. */
  private tx: WriterTx | null = null;
  /** Callers of beginTx() waiting for the writer, in order; work deferred until it is free. */
  private txWaiters: (() => void)[] = [];
  private afterTx: (() => void)[] = [];
  private declCache = new Map<string, { cookie: number; types: (string | null)[] }>();
  /** The change feed (store/changes.ts); outlives reopenings of the file. */
  readonly changes: ChangeLog;

  constructor(readonly options: StoreOptions) {
    fs.mkdirSync(path.dirname(options.path), { recursive: true });
    this.changes = new ChangeLog({ capture: options.capture ?? 'none', retain: options.changesRetain ?? 100_000, applied: () => this.applied });
    this.open();
  }

  private open(): void {
    const options = this.options;
    this.writer = new Database(options.path);
    this.writer.pragma('journal_mode = WAL');
    this.writer.pragma(`synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`);
    this.writer.pragma('foreign_keys = ON');
    this.writer.pragma('busy_timeout = 5000');
    createInternalTables(this.writer);
    const every = options.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS;
    if (every > 0) {
      this.writer.pragma(`wal_autocheckpoint = ${BACKSTOP_PAGES}`);
      this.checkpointer = new Checkpointer({ path: options.path, intervalMs: every, log: options.log });
    }
    this.reader = new Database(options.path, { readonly: true });
    this.reader.pragma('busy_timeout = 5000');
    this.points = new PointReads(this.reader);
    this.wcache = new StatementCache(this.writer);
    // last_insert_rowid() and changes() in SQL count from the start of the entry being
    // applied (exec.ts entryRowid): the same on every replica, whatever each node ran before.
    // Not deterministic for SQLite (as the built-ins): refused in indexes and generated columns.
    const wcache = this.wcache;
    this.writer.function('last_insert_rowid', { safeIntegers: true }, () => wcache.entryRowid);
    this.writer.function('changes', () => wcache.entryChanges);
    this.q = prepareInternal(this.writer);
    this.det = this.changes.attach(this.writer, this.reader, this.wcache, installDeterminism(this.writer));
    ({ index: this.applied, hash: this.hash } = readApplied(this.writer));
    this.epochCache = Number(this.q.getMeta.get('epoch'));
    this.readCookie = schemaCookieReader(this.writer);
    this.schemaCookie = this.readCookie();
    // Built once: better-sqlite3 wraps a function per transaction() call.
    // The applied point is the log's last row (internal.ts): no metadata row per commit.
    this.ceiling = new RowidCeiling(this.writer);
    const w = this.writer.transaction((e: Entry, stmtsJson: string, into?: readonly (InsertTarget | undefined)[]) => {
      const results = this.runEntry(e, stmtsJson, into);
      this.schemaCookie = this.readCookie(); // ~60 ns inside the transaction
      return results;
    });
    this.writeTx = (e, j, into) => w.immediate(e, j, into);
    const a = this.writer.transaction((entries: readonly Entry[], jsons: string[]) => {
      entries.forEach((e, i) => this.runEntry(e, jsons[i]));
      this.schemaCookie = this.readCookie();
    });
    this.applyTx = (entries, jsons) => a.immediate(entries, jsons);
    // Nested in the group's transaction, better-sqlite3 runs this as a savepoint: a failing
    // write rolls back alone and takes no index.
    const one = this.writer.transaction((e: Entry, stmtsJson: string, into?: readonly (InsertTarget | undefined)[]) => this.runEntry(e, stmtsJson, into));
    const g = this.writer.transaction((jobs: readonly PendingWrite[], out: Settled[]) => {
      let prev = this.hash;
      let last: Entry | undefined;
      for (const job of jobs) {
        try {
          job.hooks.check();
          const prior = job.key === undefined ? undefined : this.replayOf(job.key); // sees this group's keys too
          if (prior) {
            out.push({ written: { index: prior.index, results: prior.results } });
            continue;
          }
          const { entry, stmtsJson } = this.nextEntry(job, prev, (last?.index ?? this.applied) + 1);
          const results = one(entry, stmtsJson, job.hooks.into);
          out.push({ written: { index: entry.index, results, fresh: { entry, json: entryJson(entry, stmtsJson) } } });
          prev = entry.hash;
          last = entry;
        } catch (e) {
          // An error SQLite answers by rolling back the whole transaction (I/O, disk full)
          // must fail the group: the next savepoint would otherwise run, and commit, alone.
          if (!this.writer.inTransaction) throw e;
          out.push({ error: e });
        }
      }
      if (last) this.schemaCookie = this.readCookie();
      return last;
    });
    this.groupTx = (jobs, out) => g.immediate(jobs, out);
    // The meta row takes the applied point before any log row goes: an emptied log still
    // leaves it known (internal.ts).
    const t = this.writer.transaction((upTo: number) => {
      this.q.setApplied.run(this.applied, this.hash);
      return this.q.trimLog.run(upTo).changes;
    });
    this.trimTx = (upTo) => t.immediate(upTo);
    this.pool = new ReadPool({
      path: options.path,
      size: options.readWorkers,
      timeoutMs: options.queryTimeoutMs,
      maxRows: options.maxRows,
      onAbandon: (n) => options.log?.('error', 'a query overran --query-timeout inside SQLite; its worker was abandoned', { abandoned: n }),
    });
  }

  /** sqlite3_changes() and last_insert_rowid() of the writer as a client sees them (exec.ts): where a load's statements start from. */
  lastClientWrite(): { changes: number; rowid: number | bigint } {
    return { changes: this.wcache.lastUserChanges, rowid: toJsonValue(this.wcache.lastUserRowid) as number | bigint };
  }

  /** Reads answered on the event loop as point reads since the process started. */
  get pointReads(): number {
    return this.pointReadCount;
  }

  /** Read threads still stuck inside SQLite after their query overran (they block a clean exit). */
  get stuckReaders(): number {
    return this.pool.stuck;
  }

  /** Resolves once the read workers have opened the database. */
  ready(): Promise<void> {
    return this.pool.ready();
  }

  /** Highest log index applied to this database. */
  get appliedIndex(): number {
    return this.applied;
  }

  /** Hash of the last applied entry ('' before the first). */
  get lastHash(): string {
    return this.hash;
  }

  /** Highest master epoch this node has seen (persisted). */
  get epoch(): number {
    return this.epochCache;
  }

  /** Records a new highest epoch. */
  setEpoch(epoch: number): void {
    if (epoch > this.epochCache) this.abortTx('NOT_MASTER', `a newer master (epoch ${epoch}) took over; the transaction was rolled back`);
    this.q.setMeta.run('epoch', epoch);
    this.epochCache = epoch;
  }

  /** Reads a metadata value (JSON-decoded); used for membership. */
  getMeta<T>(key: string): T | undefined {
    const v = this.q.getMeta.get(key);
    return v === undefined ? undefined : (JSON.parse(String(v)) as T);
  }

  /** Stores a metadata value as JSON. */
  setMeta(key: string, value: unknown): void {
    if (this.tx) {
      this.afterTx.push(() => this.setMeta(key, value)); // not inside a client's transaction
      return;
    }
    this.q.setMeta.run(key, JSON.stringify(value));
  }

  /** Tells SQLite whether a statement would only read (the classifier's fallback). */
  probe = (sql: string): { readonly: boolean } => ({ readonly: prepareFresh(this.reader, sql).readonly });

  /**
   * Runs client reads on a read worker (bounded by --query-timeout and --max-rows), or
   * here when the read is one lookup by a unique key (point-read.ts).
   * `index` is what this node had applied when the read started: a lower bound.
   */
  async read(stmts: readonly Stmt[], raw = false): Promise<{ index: number; results: StatementResult[] }> {
    const index = this.applied;
    const cookie = this.schemaCookie;
    // This file's verdicts: a snapshot installed meanwhile (replaceFile) starts new ones.
    const points = this.points;
    const route = stmts.length === 1 ? points.route(stmts[0].sql, cookie) : 'worker';
    if (route === 'run') {
      // A lookup of at most one row by a unique key runs here, without the worker round trip.
      try {
        const limits = { maxRows: this.options.maxRows, deadline: Date.now() + this.options.queryTimeoutMs };
        this.pointReadCount++;
        const r = points.run(stmts[0], limits);
        return { index, results: [raw ? r : toJsonResult(r)] };
      } catch (e) {
        throw translateError(e, 0);
      }
    }
    let answer;
    try {
      answer = await this.pool.read(stmts, cookie, route === 'judge');
    } catch (e) {
      if (route === 'judge') points.record(stmts[0].sql, cookie, false); // never judged again, so it cannot fail twice for it
      throw e;
    }
    if (route === 'judge' && answer.point !== undefined) points.record(stmts[0].sql, cookie, answer.point);
    const { results } = answer;
    return { index, results: raw ? results : results.map(toJsonResult) }; // raw: bigint integers, byte blobs
  }

  /**
   * Master: gives `stmts` the next log index and applies them with the log row and applied
   * index in one transaction. A failing statement rolls its write back and logs nothing.
   * A write whose idempotency `key` was already applied is not run again: its first answer
   * comes back (no `fresh`).
   *
   * Group commit: writes submitted in the same turn of the event loop (concurrent clients)
   * commit in one SQLite transaction, each in its own savepoint, in submission order; each
   * still is its own log entry. One commit then writes the pages they share (table, log,
   * applied index) to the WAL once instead of once per write.
   */
  write(stmts: readonly Stmt[], epoch: number, key: string | undefined, hooks: WriteHooks): Promise<Written> {
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => this.flush());
      this.pending.push({ stmts, epoch, key, hooks, resolve, reject });
    });
  }

  private flush(): void {
    if (this.tx) return; // the transaction's release() flushes what waited
    const jobs = this.pending;
    this.pending = [];
    this.options.onCommitGroup?.(jobs.length);
    const out: Settled[] = [];
    let last: Entry | undefined;
    try {
      last = jobs.length === 1 ? this.writeAlone(jobs[0], out) : this.groupTx(jobs, out);
    } catch (e) {
      // BEGIN or COMMIT failed (disk full, I/O error): none of the group was applied.
      const err = translateError(e);
      for (const job of jobs) job.reject(err);
      return;
    }
    if (last) this.committed(last);
    // Runs from setImmediate: a hook that throws must not become an uncaught exception (it
    // would end the process); the write is committed, so its caller still gets its answer.
    out.forEach((s, i) => {
      if (!('written' in s) || !s.written.fresh) return;
      try {
        jobs[i].hooks.onCommit(s.written.fresh.entry, s.written.fresh.json);
      } catch (e) {
        this.options.log?.('error', 'a commit hook failed; the write is committed', { index: s.written.fresh.entry.index, err: e instanceof Error ? e.message : String(e) });
      }
    });
    out.forEach((s, i) => ('written' in s ? jobs[i].resolve(s.written) : jobs[i].reject(s.error)));
  }

  /** One write in its own transaction (no savepoint needed: its failure rolls back everything). */
  private writeAlone(job: PendingWrite, out: Settled[]): Entry | undefined {
    try {
      job.hooks.check();
      const prior = job.key === undefined ? undefined : this.replayOf(job.key);
      if (prior) {
        out.push({ written: { index: prior.index, results: prior.results } });
        return undefined;
      }
      const { entry, stmtsJson } = this.nextEntry(job, this.hash, this.applied + 1);
      const results = this.writeTx(entry, stmtsJson, job.hooks.into);
      out.push({ written: { index: entry.index, results, fresh: { entry, json: entryJson(entry, stmtsJson) } } });
      return entry;
    } catch (e) {
      out.push({ error: e });
      return undefined;
    }
  }

  private nextEntry(job: PendingWrite, prevHash: string, index: number): { entry: Entry; stmtsJson: string } {
    const stmtsJson = JSON.stringify(job.stmts);
    // Plain literals: object spreads took V8's slow property-definition path on every write.
    const entry: { -readonly [K in keyof Entry]: Entry[K] } = { index, epoch: job.epoch, ts: Date.now(), seed: randomText(8, 'hex'), hash: '', stmts: job.stmts as Stmt[] };
    if (job.key !== undefined) entry.key = job.key;
    entry.hash = entryHash(prevHash, entry, stmtsJson);
    return { entry, stmtsJson };
  }

  /**
   * Waits (at most `waitMs`) until no other interactive transaction holds the writer, then
   * opens one on it (BEGIN IMMEDIATE). Writes queued meanwhile wait for its end; the writer
   * goes to them first, then to the next transaction. TRANSACTION_BUSY when it stays held.
   */
  async beginTx(waitMs: number, maxRows = this.options.maxRows): Promise<WriterTx> {
    const deadline = Date.now() + waitMs;
    while (this.tx) {
      const left = deadline - Date.now();
      if (left <= 0) throw new SqlfleetError('TIMEOUT', `another transaction held the writer for more than ${waitMs} ms`, { hrana_code: 'TRANSACTION_BUSY' });
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          this.txWaiters = this.txWaiters.filter((w) => w !== wake);
          resolve();
        }, left);
        this.txWaiters.push(wake);
      });
    }
    const tx: WriterTx = new WriterTx({
      db: this.writer,
      cache: this.wcache,
      det: this.det,
      maxRows,
      append: (stmts, epoch, ts, seed) => {
        const stmtsJson = JSON.stringify(stmts);
        const base = { index: this.applied + 1, epoch, ts, seed };
        const entry: Entry = { ...base, hash: entryHash(this.hash, base, stmtsJson), stmts };
        this.q.appendLog.run(entry.index, epoch, ts, seed, entry.hash, stmtsJson, null);
        return { entry, json: entryJson(entry, stmtsJson) };
      },
      committed: (entry) => {
        this.schemaCookie = this.readCookie();
        this.committed(entry);
      },
      ceiling: (t, after) => this.ceilings(t, 0, after),
      release: () => {
        if (this.tx !== tx) return;
        this.tx = null;
        for (const fn of this.afterTx.splice(0)) fn();
        if (this.pending.length > 0) setImmediate(() => this.flush());
        const next = this.txWaiters.shift();
        if (next) setImmediate(next);
      },
    });
    this.tx = tx;
    return tx;
  }

  /**
   * Declared types of a read's result columns (Hrana's decltype; the read workers return
   * names only): prepared once per text and schema on the read-only connection, never run.
   */
  declTypes(sql: string): (string | null)[] {
    const hit = this.declCache.get(sql);
    if (hit && hit.cookie === this.schemaCookie) return hit.types;
    let types: (string | null)[] = [];
    try {
      const st = prepareFresh(this.reader, sql);
      if (st.reader) types = st.columns().map((c) => c.type);
    } catch {
      /* the read itself reported it */
    }
    if (this.declCache.size >= 1000) this.declCache.clear();
    this.declCache.set(sql, { cookie: this.schemaCookie, types });
    return types;
  }

  /** Describes a statement without running it (prepared on the read-only connection). */
  describe(sql: string): Description {
    return describeOn(this.reader, sql);
  }

  /** A read-only transaction on its own connection: one snapshot of the database. */
  openSnapshot(maxRows = this.options.maxRows): ReadSnapshot {
    return new ReadSnapshot(this.options.path, maxRows);
  }

  /** Rolls back the open interactive transaction, if any (the node stops writing or replaces its file). */
  abortTx(code: ErrorCode, message: string): void {
    this.tx?.abort(new SqlfleetError(code, message, { hrana_code: code === 'NOT_MASTER' ? 'NOT_MASTER' : 'TRANSACTION_ABORTED' }));
  }

  /**
   * Slave: applies a batch of entries in one transaction. Each must follow the last one
   * applied and chain to its hash; otherwise nothing is applied and an error says why.
   * `texts`: each entry's statements as the master shipped them (replication/frame.ts):
   * the hash is checked over that text and the log row keeps it, with no JSON.stringify
   * per entry; without them the parsed statements are serialized again.
   */
  apply(entries: readonly Entry[], texts?: readonly string[]): void {
    if (entries.length === 0) return;
    this.abortTx('NOT_MASTER', 'this node follows another master now; the transaction was rolled back');
    let prev = this.hash;
    let next = this.applied + 1;
    const jsons: string[] = [];
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i];
      if (e.index !== next) throw new SqlfleetError('BAD_REQUEST', `entry ${e.index} does not follow ${next - 1}`);
      const stmtsJson = (texts?.length === entries.length ? texts[i] : undefined) ?? JSON.stringify(e.stmts);
      if (entryHash(prev, e, stmtsJson) !== e.hash) throw new SqlfleetError('DIVERGED', `entry ${e.index} does not chain to this node's log`);
      jsons.push(stmtsJson);
      prev = e.hash;
      next++;
    }
    this.applyTx(entries, jsons);
    this.committed(entries[entries.length - 1]);
  }

  /** The first answer of the write that carried idempotency `key`, if it is still kept. */
  replayOf(key: string): { index: number; results: StatementResult[] } | undefined {
    const row = this.q.getIdem.get(key) as { idx: number; results: string } | undefined;
    return row && { index: row.idx, results: decodeResults(row.results) };
  }

  /** Log entries from `from` on as JSON texts for shipping, at most `max` entries and about `maxBytes`. */
  entriesJson(from: number, max: number, maxBytes = Infinity): { index: number; json: string }[] {
    const out: { index: number; json: string }[] = [];
    let bytes = 0;
    // Rows as arrays, read in chunks with all() (iterate() costs more per row); each entry's
    // text is built by SQLite (internal.ts LOG_JSON_SQL), the text entryJson() gives.
    const CHUNK = 256;
    for (let at = from; out.length < max && bytes < maxBytes; ) {
      const rows = this.q.readLogJson.all(at, Math.min(CHUNK, max - out.length)) as [number, string][];
      for (const [idx, json] of rows) {
        bytes += json.length;
        out.push({ index: idx, json });
        if (bytes >= maxBytes) break;
      }
      if (rows.length < CHUNK) break;
      at = rows[rows.length - 1][0] + 1;
    }
    return out;
  }

  /** Hash of the log entry at `index`, or null when the log no longer (or never) held it. */
  hashAt(index: number): string | null {
    if (index === this.applied) return this.hash;
    const row = this.q.readLog.all(index, 1)[0] as LogRow | undefined;
    return row && row[0] === index ? row[4] : null;
  }

  /** Lowest index still in the log (applied + 1 when the log is empty). */
  firstLogIndex(): number {
    const v = this.q.firstLog.get() as number | null;
    return v ?? this.applied + 1;
  }

  /** Deletes log entries up to and including `upTo`. */
  trimLog(upTo: number): number {
    if (this.tx) return 0; // the next trim does it
    return this.trimTx(upTo);
  }

  /** Digests of user tables at the applied index, computed on a read worker. */
  checksum(): Promise<Checksum> {
    return this.pool.checksum();
  }

  /**
   * Replaces this replica's database with a verified snapshot file: closes the
   * connections, swaps the file in with a rename (atomic), and reopens.
   */
  async replaceFile(snapshot: string): Promise<void> {
    this.abortTx('NOT_MASTER', 'the database is being replaced by a snapshot');
    await this.close();
    for (const suffix of ['-wal', '-shm']) fs.rmSync(this.options.path + suffix, { force: true });
    fs.renameSync(snapshot, this.options.path);
    const dir = fs.openSync(path.dirname(this.options.path), 'r');
    try {
      fs.fsyncSync(dir); // make the rename itself durable
    } finally {
      fs.closeSync(dir);
    }
    this.open();
  }

  /** Stops the read workers and closes both connections (checkpointing the WAL). */
  async close(): Promise<void> {
    this.abortTx('UNAVAILABLE', 'the node is stopping; the transaction was rolled back');
    await this.pool.close();
    await this.checkpointer?.stop();
    this.checkpointer = null;
    this.wcache.clear();
    this.reader.close();
    this.writer.close();
  }

  private runEntry(e: Entry, stmtsJson: string, into?: readonly (InsertTarget | undefined)[]): StatementResult[] {
    this.wcache.beginEntry();
    // The master: this statement's INSERT target, and tables triggers insert into, may not
    // hold the largest rowid before it runs or after (rowid-ceiling.ts). What the previous
    // statement's after-check saw is this one's before (nothing ran between): a batch of
    // INSERTs into one table checks each table once per statement, not twice.
    let checked: InsertTarget | null | undefined; // undefined: nothing checked yet in this entry
    const results = this.det.withEntry({ ts: e.ts, seed: e.seed }, () =>
      e.stmts.map((s, i) => {
        if (s.fails) return this.failing(s);
        if (into) {
          const t = into[i];
          if (checked === undefined) this.ceilings(t, i, false, true);
          else if (t && t !== checked) this.ceilings(t, i, false, false);
        }
        const r = this.guard(i, () => runStatement(this.wcache, s));
        if (into) {
          this.ceilings(into[i], i, true, true);
          checked = into[i] ?? null;
        }
        return r;
      }),
    );
    this.q.appendLog.run(e.index, e.epoch, e.ts, e.seed, e.hash, stmtsJson, e.key ?? null);
    // Keys are recorded by master and slaves alike, in the entry's transaction, so a promoted
    // slave finds them; pruned by entry time, the same window on every node.
    if (e.key !== undefined && e.key !== null) this.q.putIdem.run(e.key, e.index, e.ts, encodeResults(results));
    if (e.ts - this.lastPrune >= PRUNE_EVERY_MS) {
      this.lastPrune = e.ts;
      this.q.pruneIdem.run(e.ts - (this.options.idempotencyRetainMs ?? DEFAULT_IDEMPOTENCY_RETAIN_MS));
    }
    return results;
  }

  private committed(last: Entry): void {
    this.applied = last.index;
    this.hash = last.hash;
    this.changes.committed(last.index);
  }

  /** The largest-rowid checks around a write statement on the master (rowid-ceiling.ts); `triggered`: the trigger targets too. */
  private ceilings(t: InsertTarget | undefined, statement: number, after: boolean, triggered = true): void {
    const cookie = this.readCookie();
    if (t) this.ceiling.check(t, statement, cookie, after);
    if (triggered) this.ceiling.checkTriggered(statement, cookie);
  }

  /** A statement that failed inside an interactive transaction on the master: it fails here too, changing nothing. */
  private failing(s: Stmt): StatementResult {
    try {
      runStatement(this.wcache, s);
    } catch {
      return { changes: 0, last_insert_rowid: 0 };
    }
    throw new SqlfleetError('DIVERGED', `a statement that failed on the master succeeded here: ${s.sql.slice(0, 200)}`);
  }

  private guard<T>(i: number, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      throw translateError(e, i);
    }
  }
}

/** A log row as readLog returns it (raw): idx, epoch, ts, seed, hash, stmts, idempotency key. */
type LogRow = [number, number, number, string, string, string, string | null];

/** Rows from a worker carry raw bigints and Buffers: make them JSON-ready. */
function toJsonResult(r: StatementResult): StatementResult {
  if ('rows' in r) r.rows = r.rows.map((row) => row.map(toJsonValue));
  if ('last_insert_rowid' in r) r.last_insert_rowid = toJsonValue(r.last_insert_rowid) as number | bigint;
  return r;
}
