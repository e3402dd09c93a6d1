// Digests of user tables computed from rows in primary-key order, so equal data at equal
// index gives equal digests whatever the page layout (DESIGN §2 GET /checksum).
import { createHash, type Hash } from 'node:crypto';
import type { Database as Db } from 'better-sqlite3';
import { INTERNAL_PREFIX } from './types.js';

/** The JSON of GET /checksum. */
export interface Checksum {
  index: number;
  tables: Record<string, string>;
  db: string;
}

/** User tables (not sqlite_*, not internal, not virtual), sorted by name. */
export function userTables(db: Db): { name: string; withoutRowid: boolean }[] {
  const rows = db
    .prepare(
      `SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         AND substr(name, 1, ${INTERNAL_PREFIX.length}) <> '${INTERNAL_PREFIX}' ORDER BY name`,
    )
    .all() as { name: string; sql: string | null }[];
  return rows
    .filter((r) => !/^\s*CREATE\s+VIRTUAL/i.test(r.sql ?? ''))
    .map((r) => ({ name: r.name, withoutRowid: /WITHOUT\s+ROWID\s*$/i.test(r.sql ?? '') }));
}

/** Quotes an identifier for SQLite. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** Computes the checksum on `db` in one read transaction together with `readIndex()`. */
export function computeChecksum(db: Db, readIndex: () => number): Checksum {
  return db.transaction(() => {
    const index = readIndex();
    const tables: Record<string, string> = {};
    const whole = createHash('sha256');
    const schema = db
      .prepare(
        `SELECT type, name, tbl_name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
           AND substr(tbl_name, 1, ${INTERNAL_PREFIX.length}) <> '${INTERNAL_PREFIX}' ORDER BY type, name`,
      )
      .raw(true)
      .all();
    whole.update(JSON.stringify(schema));
    for (const t of userTables(db)) {
      const h = createHash('sha256');
      const order = t.withoutRowid ? primaryKeyOrder(db, t.name) : 'rowid';
      const cols = t.withoutRowid ? '*' : 'rowid, *';
      const stmt = db.prepare(`SELECT ${cols} FROM ${quoteIdent(t.name)} ORDER BY ${order}`).raw(true).safeIntegers(true);
      for (const row of stmt.iterate() as Iterable<unknown[]>) hashRow(h, row);
      tables[t.name] = h.digest('hex');
      whole.update(`${t.name}\0${tables[t.name]}\n`);
    }
    return { index, tables, db: whole.digest('hex') };
  }).deferred();
}

function primaryKeyOrder(db: Db, table: string): string {
  const cols = db.prepare(`SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk`).pluck().all(table) as string[];
  return cols.map(quoteIdent).join(', ') || '1';
}

/** Type-tagged encoding so 1, '1' and x'31' hash differently. */
function hashRow(h: Hash, row: unknown[]): void {
  for (const v of row) {
    if (v === null) h.update('n;');
    else if (typeof v === 'bigint') h.update(`i${v};`);
    else if (typeof v === 'number') h.update(`r${v};`);
    else if (typeof v === 'string') h.update(`t${Buffer.byteLength(v)}:${v};`);
    else if (Buffer.isBuffer(v)) {
      h.update(`b${v.length}:`);
      h.update(v);
    }
  }
  h.update('\n');
}
