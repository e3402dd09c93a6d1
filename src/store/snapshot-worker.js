// Worker thread: copies the database with VACUUM INTO on its own read-only connection,
// so a large snapshot never blocks the node's event loop (plain JS: workers do not get tsx).
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

// The main thread's driver, by path (driver.ts): never a second SQLite in the process.
const Database = createRequire(import.meta.url)(workerData.driver);

const db = new Database(workerData.dbPath, { readonly: true, fileMustExist: true });
try {
  db.pragma('busy_timeout = 5000');
  db.prepare('VACUUM INTO ?').run(workerData.out);
  parentPort.postMessage({ ok: true });
} catch (e) {
  parentPort.postMessage({ ok: false, error: String(e && e.message ? e.message : e) });
} finally {
  db.close();
}
