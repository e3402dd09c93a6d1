// Worker thread: checkpoints the WAL on its own connection, so the copy of pages back into
// the database file (and its fsyncs) never runs inside a commit on the node's event loop.
// PASSIVE: it takes no lock that a reader or the writer waits for, and stops where a reader
// still needs the WAL (the next round goes on from there). Plain JS: workers do not get tsx.
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const { path, intervalMs, driver } = workerData;
// The main thread's driver, by path (driver.ts): never a second SQLite in the process.
const Database = createRequire(import.meta.url)(driver);
const db = new Database(path, { fileMustExist: true });
db.pragma('busy_timeout = 0');
db.pragma('wal_autocheckpoint = 0'); // this connection never writes; nothing of its own to checkpoint
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)');
let timer = null;
let stopped = false;

function round() {
  timer = null;
  if (stopped) return;
  try {
    checkpoint.get();
  } catch (e) {
    parentPort.postMessage({ error: String(e && e.message ? e.message : e) });
  }
  timer = setTimeout(round, intervalMs);
}

parentPort.on('message', (m) => {
  if (m !== 'stop') return;
  stopped = true;
  if (timer) clearTimeout(timer);
  // Ended because the database went idle (checkpoint.ts): what the WAL still holds goes now.
  try {
    checkpoint.get();
  } catch {
    // busy: the writer's own checkpoint (or the next worker) takes it
  }
  db.close();
  parentPort.close();
});
// Started because the WAL changed (checkpoint.ts): the first round at once.
timer = setTimeout(round, 0);
