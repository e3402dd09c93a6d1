// Which better_sqlite3.node files this process has mapped, read from /proc/self/maps
// (process-wide: a worker thread sees the main thread's libraries too). No import.meta:
// the read worker's CommonJS bundle includes this file.
import fs from 'node:fs';

/** Distinct paths of loaded better_sqlite3.node libraries; [] where /proc is not there. */
export function sqliteLibraries(): string[] {
  let maps: string;
  try {
    maps = fs.readFileSync('/proc/self/maps', 'utf8');
  } catch {
    return [];
  }
  const found = new Set<string>();
  for (const line of maps.split('\n')) {
    const i = line.indexOf('/');
    if (i >= 0 && line.endsWith('better_sqlite3.node')) found.add(line.slice(i));
  }
  return [...found];
}
