// The one SQLite library of this process. SQLite coordinates the connections of one process
// through state inside the library (POSIX locks belong to the process, so WAL read locks
// are tracked in the library's own tables): two copies of better_sqlite3.node loaded in
// one process do not see each other's readers, and a checkpoint of one overwrites pages a
// reader of the other still uses ("How To Corrupt An SQLite Database File", §2.2.1). So
// every worker thread loads exactly the driver this module resolved, by path, and
// oneSqliteLibrary() refuses a process that has two.
import { createRequire } from 'node:module';
import { sqliteLibraries } from './sqlite-libraries.js';

/** Absolute path of the better-sqlite3 entry this process loads; workers require() it by this path. */
export const DRIVER_PATH = createRequire(import.meta.url).resolve('better-sqlite3');

/** Throws when this process has mapped more than one better_sqlite3.node (Linux; elsewhere it cannot tell and passes). */
export function oneSqliteLibrary(): void {
  const libs = sqliteLibraries();
  if (libs.length > 1) throw new Error(twoLibrariesMessage(libs));
}

/** The error a node refuses to start with when it finds two SQLite libraries. */
export function twoLibrariesMessage(libs: readonly string[]): string {
  return `this process loaded ${libs.length} SQLite libraries (${libs.join(', ')}); two copies in one process corrupt reads. Reinstall (npm ci) in the folder you run from, or remove node_modules/.cache/sqlfleet`;
}
