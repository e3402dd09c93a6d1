// Snapshots: a consistent copy of a node's database (taken off the main thread), and
// the checks a received copy must pass before it replaces a replica's file.
import fs from 'node:fs';
import { Worker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { DRIVER_PATH } from './driver.js';
import { META_TABLE, readApplied } from './internal.js';

/** A snapshot file and the log position it holds. */
export interface SnapshotFile {
  file: string;
  index: number;
  bytes: number;
  ms: number;
}

/** Copies `dbPath` to `out` with VACUUM INTO in a worker thread. */
export async function takeSnapshot(dbPath: string, out: string): Promise<SnapshotFile> {
  const started = Date.now();
  fs.rmSync(out, { force: true });
  await new Promise<void>((resolve, reject) => {
    const w = new Worker(new URL('./snapshot-worker.js', import.meta.url), { workerData: { dbPath, out, driver: DRIVER_PATH } });
    w.once('message', (m: { ok: boolean; error?: string }) => (m.ok ? resolve() : reject(new Error(`snapshot failed: ${m.error}`))));
    w.once('error', reject);
    w.once('exit', (code) => code !== 0 && reject(new Error(`snapshot worker exited with ${code}`)));
  });
  const { index } = inspectSnapshot(out);
  return { file: out, index, bytes: fs.statSync(out).size, ms: Date.now() - started };
}

/** Opens a received snapshot read-only, checks it, and returns the index it holds. */
export function inspectSnapshot(file: string): { index: number; hash: string; epoch: number } {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const ok = db.pragma('quick_check', { simple: true });
    if (ok !== 'ok') throw new Error(`snapshot is corrupt: ${String(ok)}`);
    const epoch = Number(db.prepare(`SELECT value FROM ${META_TABLE} WHERE key = 'epoch'`).pluck().get());
    return { ...readApplied(db), epoch };
  } finally {
    db.close();
  }
}
