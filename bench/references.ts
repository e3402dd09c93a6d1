// Which reference servers and wrk script the bench uses. The task's references live in
// ../shared/bench/ (limit.mjs, yardstick.mjs, sql.lua); when the checkout sits beside that
// folder they are the ones every ratio is divided by. A clone without it uses bench/'s own
// copies (same design, written here), so it still benchmarks by itself. Every bench prints
// `referenceLine()` so a reader knows which set produced its ratios.
//
//   BENCH_REFERENCES=bench        force bench/'s own set even when ../shared/bench/ exists
//   BENCH_REFERENCES=<dir>        any other folder holding the three files
//   BENCH_YARDSTICK, BENCH_LIMIT, BENCH_SQL_LUA   one file each, over the folder's
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { ROOT } from './procs.js';

const SHARED = resolve(ROOT, '../shared/bench');
const OWN = resolve(ROOT, 'bench');

/** The reference folder for a checkout at `root`: `asked`, else `../shared/bench/` when it holds limit.mjs, yardstick.mjs and sql.lua, else `bench/`. */
export function pickReferenceDir(root: string, asked?: string): string {
  if (asked) return resolve(root, asked);
  const shared = resolve(root, '../shared/bench');
  return ['limit.mjs', 'yardstick.mjs', 'sql.lua'].every((f) => existsSync(join(shared, f))) ? shared : resolve(root, 'bench');
}

/** The folder the references come from. */
export const REFERENCE_DIR = pickReferenceDir(ROOT, process.env.BENCH_REFERENCES || undefined);
/** hono + better-sqlite3, one commit per write: the older, weaker reference. */
export const YARDSTICK = resolve(ROOT, process.env.BENCH_YARDSTICK ?? join(REFERENCE_DIR, 'yardstick.mjs'));
/** node:http + better-sqlite3 + group commit: the single-node limit (issue 29's goals divide by it). */
export const LIMIT = resolve(ROOT, process.env.BENCH_LIMIT ?? join(REFERENCE_DIR, 'limit.mjs'));
/** The wrk script that sends the same bodies to every server. */
export const SQL_LUA = resolve(ROOT, process.env.BENCH_SQL_LUA ?? join(REFERENCE_DIR, 'sql.lua'));

/** One line for a bench's output: which reference files it used. */
export function referenceLine(): string {
  const rel = (p: string) => relative(ROOT, p) || '.';
  const which = REFERENCE_DIR === SHARED ? '../shared/bench/ (the shared references)' : REFERENCE_DIR === OWN ? "bench/'s own (../shared/bench/ not found)" : rel(REFERENCE_DIR);
  return `references: ${which}: limit ${rel(LIMIT)}, yardstick ${rel(YARDSTICK)}, wrk script ${rel(SQL_LUA)}`;
}
