// The largest rowid, and why the master refuses an INSERT that leaves it in a table.
//
// SQLite gives a new row of a rowid table the largest rowid + 1; when the largest is
// already 9223372036854775807 it picks rowids at random instead (sqlite3_randomness,
// which no SQL function or driver call makes deterministic). Every replica replays the
// INSERT and would pick its own: replicas that differ, under a statement every node
// accepted. So the master checks, after each INSERT or REPLACE the parser named a table
// for (sql/cst.ts, `into`), that the table does not hold that rowid, and refuses the
// statement otherwise (its write rolls back and takes no index). A table that holds it
// already (loaded, restored, or set by an UPDATE) takes no further INSERT until that row
// goes. Tables a trigger inserts into (read from the triggers' text) are checked after
// every write statement while any trigger does. Views, virtual tables and WITHOUT ROWID
// tables are not checked: SQLite picks no rowid for them.
import type { Database as Db, Statement } from 'better-sqlite3';
import { SqlfleetError } from '../errors.js';
import { insertTargetsIn } from '../sql/targets.js';
import type { InsertTarget } from '../sql/types.js';

export const MAX_ROWID = 9223372036854775807n;

const quoteName = (s: string) => `"${s.replace(/"/g, '""')}"`;
const quoteText = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The master's check, with one `SELECT max(rowid)` kept per table until the schema changes. */
export class RowidCeiling {
  /** null: not a rowid table (or no such table): nothing to check. */
  private readonly probes = new Map<string, Statement | null>();
  /** Tables some trigger inserts into; null until read for the current schema. */
  private triggered: InsertTarget[] | null = null;
  private cookie = -1;

  constructor(private readonly db: Db) {}

  /**
   * Throws SQL_ERROR (for statement `statement` of the request) when `t` holds the largest
   * rowid now; call it inside the statement's transaction, right after the statement ran.
   * `schemaCookie`: the schema version the cached probes belong to.
   */
  check(t: InsertTarget, statement: number, schemaCookie: number): void {
    this.fresh(schemaCookie);
    this.verify(t, statement, false);
  }

  /** As check(), for every table a trigger inserts into: call it after each write statement. */
  checkTriggered(statement: number, schemaCookie: number): void {
    this.fresh(schemaCookie);
    this.triggered ??= this.triggerTargets();
    for (const t of this.triggered) this.verify(t, statement, true);
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

  private verify(t: InsertTarget, statement: number, byTrigger: boolean): void {
    const key = `${t.schema ?? ''}.${t.name}`.toLowerCase();
    let top: unknown;
    try {
      top = this.probe(key, t)?.get();
    } catch {
      // The table changed under a cached probe (dropped and made again in the same group
      // commit): ask once more with what the schema says now.
      this.probes.delete(key);
      top = this.probe(key, t)?.get();
    }
    if (top === MAX_ROWID) {
      const what = byTrigger ? `a trigger inserts into table ${quoteName(t.name)}, which would hold` : `after this INSERT table ${quoteName(t.name)} would hold`;
      throw new SqlfleetError(
        'SQL_ERROR',
        `refused: ${what} the largest rowid (${MAX_ROWID}), and SQLite then picks every later rowid of that table at random, differently on each replica. Nothing was applied. Use smaller ids, or delete that row first`,
        { statement },
      );
    }
  }

  private probe(key: string, t: InsertTarget): Statement | null {
    let p = this.probes.get(key);
    if (p !== undefined) return p;
    const schema = t.schema ?? 'main';
    const row = this.db.prepare(`PRAGMA ${quoteName(schema)}.table_list(${quoteText(t.name)})`).get() as { name: string; type: string; wr: number } | undefined;
    p = null;
    if (row && row.type === 'table' && row.wr === 0) {
      const table = `${quoteName(schema)}.${quoteName(row.name)}`;
      // A column may take the name rowid; SQLite's other names for it then still work.
      const columns = new Set((this.db.prepare(`PRAGMA ${quoteName(schema)}.table_xinfo(${quoteText(row.name)})`).all() as { name: string }[]).map((c) => c.name.toLowerCase()));
      const alias = ['rowid', '_rowid_', 'oid'].find((a) => !columns.has(a));
      if (alias) p = this.db.prepare(`SELECT max(${alias}) FROM ${table}`).pluck().safeIntegers(true);
    }
    this.probes.set(key, p);
    return p;
  }
}
