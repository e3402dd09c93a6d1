// Worker thread with its own read-only connection: client reads run here so a slow or
// runaway query never blocks the node's event loop (heartbeats, replication, writes).
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';
import type DatabaseCtor from 'better-sqlite3';
import { isSqlfleetError } from '../errors.js';
import { computeChecksum } from './checksum.js';
import { StatementCache, runRead, translateError } from './exec.js';
import { APPLIED_SQL } from './internal.js';
import { MAX_JUDGED_RUN_MS, isPointRead } from './point-read.js';
import type { ReadJob, ReadReply } from './read-pool.js';
import { sqliteLibraries } from './sqlite-libraries.js';


// Exactly the driver the main thread loaded, by its absolute path (driver.ts): a worker that
// resolved 'better-sqlite3' by itself could load a second SQLite into the process.
const { path: dbPath, driver } = workerData as { path: string; driver: string };
const Database = createRequire(`${process.cwd()}/`)(driver) as typeof DatabaseCtor;
const libs = sqliteLibraries();
if (libs.length > 1) {
  // Fatal for the node (read-pool.ts): answering reads now could return corrupt pages.
  parentPort!.postMessage({ id: 0, ok: false, error: { code: 'INTERNAL', message: `two SQLite libraries in one process: ${libs.join(', ')}`, details: { libraries: libs } } } satisfies ReadReply);
  process.exit(1);
}
const db = new Database(dbPath, { readonly: true, fileMustExist: true });
db.pragma('busy_timeout = 5000');
const cache = new StatementCache(db);
const appliedIndex = db.prepare(APPLIED_SQL).pluck();

parentPort!.on('message', (job: ReadJob) => {
  let reply: ReadReply;
  try {
    if (job.kind === 'checksum') {
      reply = { id: job.id, ok: true, value: computeChecksum(db, () => Number(appliedIndex.get())) };
    } else {
      // A connection that only reads does not notice schema changes by itself (exec.ts).
      cache.sync(job.schema);
      const limits = { maxRows: job.maxRows, deadline: Date.now() + job.timeoutMs };
      const run = () =>
        job.stmts.map((s, i) => {
          try {
            return runRead(cache, s, limits);
          } catch (e) {
            throw translateError(e, i);
          }
        });
      const judge = job.judge === true && job.stmts.length === 1;
      if (judge) cache.get(job.stmts[0].sql); // prepared before the clock starts: only the run is timed
      const t0 = performance.now();
      const results = job.stmts.length === 1 ? run() : db.transaction(run).deferred();
      // A point read runs in microseconds: a slower run is not judged this time (no verdict;
      // the next request asks again), so a busy moment never marks a lookup slow for good.
      const point = judge && performance.now() - t0 <= MAX_JUDGED_RUN_MS ? isPointRead(db, cache, job.stmts[0]) : undefined;
      reply = { id: job.id, ok: true, value: point === undefined ? { results } : { results, point } };
    }
  } catch (e) {
    const err = isSqlfleetError(e) ? e : translateError(e);
    reply = { id: job.id, ok: false, error: { code: err.code, message: err.message, details: err.details } };
  }
  parentPort!.postMessage(reply);
});
parentPort!.postMessage({ id: 0, ok: true, value: 'ready' } satisfies ReadReply);
