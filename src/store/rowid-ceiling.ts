// The largest rowid, and why the master refuses an INSERT that leaves it in a table.
//
// SQLite gives a new row of a rowid table the largest rowid + 1; when the largest is
// already 9223372036854775807 it picks rowids at random instead (sqlite3_randomness,
// which no SQL function or driver call makes deterministic). Every replica replays the
// INSERT and would pick its own: replicas that differ, under a statement every node
// accepted. So the master checks, before and after each INSERT or REPLACE the parser named
// a table for (sql/cst.ts, `into`), that the table does not hold that rowid, and refuses
// the statement otherwise (its write rolls back and takes no index). Before: the row
// holding it may be gone by the end of the statement (a REPLACE deleting it, a trigger),
// after its INSERT drew at random. After: the statement put it there. A table that holds
// it already (loaded, restored, set by an UPDATE) takes no INSERT until that row goes.
// Tables a trigger inserts into (read from the triggers' text) are checked around every
// write statement while any trigger does. Virtual tables (FTS5, R*Tree) draw at random
// too: their shadow tables that hold the rowids are checked. Views and WITHOUT ROWID
// tables have no rowid to draw.
import type { Database as Db, Statement } from 'better-sqlite3';
import { SqlfleetError } from '../errors.js';
import { insertTargetsIn } from '../sql/targets.js';
import type { InsertTarget } from '../sql/types.js';
import { quoteIdent } from './checksum.js';

export const MAX_ROWID = 9223372036854775807n;

/** The master's check, with the `SELECT max(rowid)` probes of each table kept until the schema changes. */
export class RowidCeiling {
  /** Per table: the probes of its rowid tables (itself, or a virtual table's shadows); empty: nothing to check. */
  private readonly probes = new Map<string, Statement[]>();
  /** Tables some trigger inserts into; null until read for the current schema. */
  private triggered: InsertTarget[] | null = null;
  private cookie = -1;
  /** Each target's cache key, computed once per target object (the classifier keeps them). */
  private readonly keys = new WeakMap<InsertTarget, string>();

  constructor(private readonly db: Db) {}

  /**
   * Throws SQL_ERROR (for statement `statement` of the request) when `t` holds the largest
   * rowid now; call it inside the statement's transaction, right before (`after` false)
   * and right after the statement runs. `schemaCookie`: the schema version now.
   */
  check(t: InsertTarget, statement: number, schemaCookie: number, after: boolean): void {
    this.fresh(schemaCookie);
    this.verify(t, statement, after ? 'after' : 'before');
  }

  /** As check(), for every table a trigger inserts into: call it around each write statement. */
  checkTriggered(statement: number, schemaCookie: number): void {
    this.fresh(schemaCookie);
    this.triggered ??= this.triggerTargets();
    for (const t of this.triggered) this.verify(t, statement, 'trigger');
  }

  private fresh(schemaCookie: number): void {
    if (schemaCookie === this.cookie) return;
    this.probes.clear();
    this.triggered = null;
    this.cookie = schemaCookie;
  }

  private triggerTargets(): InsertTarget[] {
    const bodies = this.db.prepare("SELECT sql FROM main.sqlite_schema WHERE type = 'trigger' AND sql IS NOT NULL").pluck().all() as string[];
    return insertTargetsIn(bodies.join(';\n'));
  }

  private verify(t: InsertTarget, statement: number, when: 'before' | 'after' | 'trigger'): void {
    let key = this.keys.get(t);
    if (key === undefined) this.keys.set(t, (key = `${t.schema ?? ''}.${t.name}`.toLowerCase()));
    let full: boolean;
    try {
      full = this.probe(key, t).some((p) => p.get() === MAX_ROWID);
    } catch {
      // The table changed under a cached probe (dropped and made again in the same group
      // commit): ask once more with what the schema says now.
      this.probes.delete(key);
      full = this.probe(key, t).some((p) => p.get() === MAX_ROWID);
    }
    if (!full) return;
    const table = quoteIdent(t.name);
    const what =
      when === 'before'
        ? `table ${table} holds the largest rowid (${MAX_ROWID}), so SQLite would pick this INSERT's rowids at random`
        : when === 'after'
          ? `after this INSERT table ${table} would hold the largest rowid (${MAX_ROWID}), and SQLite then picks its later rowids at random`
          : `table ${table}, which a trigger inserts into, would hold the largest rowid (${MAX_ROWID}), and SQLite then picks its rowids at random`;
    throw new SqlfleetError('SQL_ERROR', `refused: ${what}, differently on each replica. Nothing was applied. Use smaller ids, or delete that row first`, { statement });
  }

  private probe(key: string, t: InsertTarget): Statement[] {
    let p = this.probes.get(key);
    if (p !== undefined) return p;
    const schema = t.schema ?? 'main';
    const row = this.db.prepare('SELECT name, type, wr FROM pragma_table_list WHERE schema = ? AND name = ? COLLATE NOCASE').get(schema, t.name) as
      | { name: string; type: string; wr: number }
      | undefined;
    p = [];
    if (row?.type === 'table' && row.wr === 0) p = this.rowidProbe(schema, row.name);
    else if (row?.type === 'virtual') {
      // A virtual table keeps its rowids in shadow tables (FTS5's t_content and t_docsize,
      // R*Tree's t_rowid); their other shadows hold small ids only.
      const shadows = this.db
        .prepare(`SELECT name FROM pragma_table_list WHERE schema = ? AND type = 'shadow' AND wr = 0 AND substr(lower(name), 1, ?) = ?`)
        .pluck()
        .all(schema, row.name.length + 1, `${row.name.toLowerCase()}_`) as string[];
      p = shadows.flatMap((name) => this.rowidProbe(schema, name));
    }
    this.probes.set(key, p);
    return p;
  }

  /** `SELECT max(rowid)` of one rowid table (by another of its names when a column took `rowid`). */
  private rowidProbe(schema: string, name: string): Statement[] {
    const columns = new Set((this.db.prepare('SELECT lower(name) FROM pragma_table_xinfo(?, ?)').pluck().all(name, schema) as string[]));
    const alias = ['rowid', '_rowid_', 'oid'].find((a) => !columns.has(a));
    return alias ? [this.db.prepare(`SELECT max(${alias}) FROM ${quoteIdent(schema)}.${quoteIdent(name)}`).pluck().safeIntegers(true)] : [];
  }
}
