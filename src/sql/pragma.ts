// Which PRAGMAs a client may run. A PRAGMA's syntax does not say whether it reads or
// changes state (`table_info(t)` vs `wal_checkpoint(TRUNCATE)`), so the decision is by
// name against allow-lists, never by form. Pure: no I/O.

import type { ClassifiedStatement } from './types.js';

/** A class with its reason, as decided for one statement. */
export type Verdict = Pick<ClassifiedStatement, 'kind' | 'reason' | 'into'>;

/** PRAGMAs that only report state; a client may run them without a value. */
export const READ_ONLY_PRAGMAS: ReadonlySet<string> = new Set([
  'application_id', 'auto_vacuum', 'collation_list', 'compile_options', 'data_version',
  'encoding', 'journal_mode', 'foreign_key_check', 'foreign_key_list', 'foreign_keys', 'freelist_count',
  'function_list', 'index_info', 'index_list', 'index_xinfo', 'integrity_check',
  'module_list', 'page_count', 'page_size', 'pragma_list', 'quick_check', 'schema_version',
  'table_info', 'table_list', 'table_xinfo', 'user_version',
]);

/**
 * Read-only PRAGMAs whose argument only selects what to report (a table, an index, a row
 * limit): `PRAGMA table_info(t)` and `PRAGMA table_info = t` are both reads.
 */
export const PRAGMAS_WITH_ARGUMENT: ReadonlySet<string> = new Set([
  'foreign_key_check', 'foreign_key_list', 'index_info', 'index_list', 'index_xinfo',
  'integrity_check', 'quick_check', 'table_info', 'table_list', 'table_xinfo',
]);

/** PRAGMAs whose assignment to an integer is a replicated schema change (stored in the file header). */
export const SCHEMA_PRAGMAS: ReadonlySet<string> = new Set(['user_version', 'application_id']);

/** Table-valued pragma functions a client may not read: database_list reveals the node's file paths. */
export const FORBIDDEN_PRAGMA_FUNCTIONS: ReadonlySet<string> = new Set(['pragma_database_list']);

/**
 * Table-valued pragma functions whose answer is the same on every replica: the schema of
 * user tables and the replicated header values. Every other pragma_* function reports the
 * node's own file layout (page_count, freelist_count), its build (compile_options,
 * function_list, module_list, pragma_list, collation_list), its connection or file settings
 * (cache_size, journal_mode, data_version, schema_version, foreign_keys, ...), the state of
 * its file (integrity_check, quick_check) or its internal tables (table_list lists them,
 * and they differ between nodes, e.g. with --capture): refused inside writes and schema
 * statements, whose results are stored; reads keep them all.
 */
export const REPLICATED_PRAGMA_FUNCTIONS: ReadonlySet<string> = new Set([
  'pragma_table_info', 'pragma_table_xinfo', 'pragma_index_info', 'pragma_index_list', 'pragma_index_xinfo',
  'pragma_foreign_key_list', 'pragma_foreign_key_check', 'pragma_user_version', 'pragma_application_id',
  'pragma_encoding',
]);

/**
 * True for a table or function name that reports node-local state when read: every
 * pragma_* function not in REPLICATED_PRAGMA_FUNCTIONS, and dbstat (the file's pages).
 */
export const isNodeLocalSource = (name: string): boolean => {
  const lower = name.toLowerCase();
  return lower === 'dbstat' || (lower.startsWith('pragma_') && !REPLICATED_PRAGMA_FUNCTIONS.has(lower));
};

/** Names with this prefix (case-insensitive) are sqlfleet's internal tables. */
export const INTERNAL_PREFIX = '_sqlfleet_';

/** True when `name` names one of sqlfleet's internal tables. */
export const isInternalName = (name: string): boolean => name.toLowerCase().startsWith(INTERNAL_PREFIX);

/** A PRAGMA statement reduced to what the decision needs. */
export interface PragmaForm {
  /** Schema qualifier (`main` in `PRAGMA main.user_version`), if any. */
  readonly schema?: string | undefined;
  readonly name: string;
  /** The value or argument as written (`= v` and `(v)` are the same to SQLite), if any. */
  readonly value?: string | undefined;
  /** True when the value is a string literal (its content is `value`). */
  readonly valueIsString?: boolean;
}

const INTEGER = /^[+-]?\d+$/;
const forbidden = (reason: string): Verdict => ({ kind: 'forbidden', reason });

/** Decides the class of a PRAGMA from its name and whether it carries a value. */
export function classifyPragma(p: PragmaForm): Verdict {
  const name = p.name.toLowerCase();
  const label = `PRAGMA ${name}`;
  if (p.value === undefined) {
    return READ_ONLY_PRAGMAS.has(name)
      ? { kind: 'read', reason: 'pragma_stmt' }
      : forbidden(`${label} is not allowed: it is not one of the read-only PRAGMAs sqlfleet accepts`);
  }
  if (PRAGMAS_WITH_ARGUMENT.has(name)) {
    // The argument names a table to report on; internal tables stay hidden.
    return isInternalName(p.value)
      ? forbidden(`${label}(${p.value}) is not allowed: ${p.value} is an internal sqlfleet table`)
      : { kind: 'read', reason: 'pragma_stmt' };
  }
  if (SCHEMA_PRAGMAS.has(name)) {
    const schema = p.schema?.toLowerCase();
    if (schema !== undefined && schema !== 'main') {
      return forbidden(`${label} can only be set on the main database`);
    }
    return !p.valueIsString && INTEGER.test(p.value)
      ? { kind: 'schema', reason: 'pragma_stmt' }
      : forbidden(`${label} can only be set to an integer`);
  }
  return forbidden(
    `${label} with a value is not allowed: it would change connection or file settings` +
      ' outside replication (only user_version and application_id can be set)',
  );
}
