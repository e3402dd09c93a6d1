// Stores opened directly (no node process) in one test file's temp folder: each closed after
// its test when the test left it open, so a failed test fails instead of hanging on the
// store's read workers, and the folder removed after the file.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach } from 'node:test';
import { Store, type StoreOptions } from '../../src/store/store.js';

/** Registers the hooks; `path()` names a fresh database file, `open()` opens a store (1 read worker, 5 s queries, 1000 rows unless `options` say otherwise). */
export function tempStores(prefix: string): { dir: string; path: () => string; open: (path: string, options?: Partial<StoreOptions>) => Store } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  let seq = 0;
  const opened = new Set<Store>();
  afterEach(async () => {
    for (const s of opened) await s.close().catch(() => {});
    opened.clear();
  });
  after(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    path: () => join(dir, `n${++seq}.db`),
    open(path, options = {}) {
      const s = new Store({ path, durability: 'normal', readWorkers: 1, queryTimeoutMs: 5000, maxRows: 1000, ...options });
      opened.add(s);
      const close = s.close.bind(s);
      s.close = () => {
        opened.delete(s);
        return close();
      };
      return s;
    },
  };
}
