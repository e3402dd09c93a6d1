// Classifies one statement that sql-parser-cst parsed, from its CST. The statement type
// gives the class; a walk over the whole tree catches what the type does not show
// (load_extension() in a subquery, internal tables in a join, TEMP objects). Pure: no I/O.

import type { Node, Statement, EntityName, Expr, Literal, Keyword, PragmaStmt } from 'sql-parser-cst';
import { classifyPragma, isInternalName, isNodeLocalSource, FORBIDDEN_PRAGMA_FUNCTIONS, type Verdict } from './pragma.js';
import { CLOCK_FUNCTIONS, CURRENT_WORDS, RANDOM_FUNCTIONS, REASONS, isSqliteName, isTempSchema } from './rules.js';
import type { InsertTarget, StatementClass } from './types.js';

/** Class of each statement type the parser can produce for SQLite that sqlfleet accepts. */
export const KIND_BY_CST_TYPE: Readonly<Record<string, StatementClass>> = {
  select_stmt: 'read', // also WITH ... SELECT and VALUES
  compound_select_stmt: 'read',
  explain_stmt: 'read', // EXPLAIN never runs its statement
  insert_stmt: 'write', // also REPLACE, upserts, WITH ... INSERT, RETURNING
  update_stmt: 'write',
  delete_stmt: 'write',
  create_table_stmt: 'schema', // also CREATE VIRTUAL TABLE
  create_index_stmt: 'schema',
  create_view_stmt: 'schema',
  create_trigger_stmt: 'schema',
  drop_table_stmt: 'schema',
  drop_index_stmt: 'schema',
  drop_view_stmt: 'schema',
  drop_trigger_stmt: 'schema',
  alter_table_stmt: 'schema',
  reindex_stmt: 'schema',
  analyze_stmt: 'schema',
  vacuum_stmt: 'schema',
  start_transaction_stmt: 'transaction',
  commit_transaction_stmt: 'transaction',
  rollback_transaction_stmt: 'transaction',
  savepoint_stmt: 'transaction',
  release_savepoint_stmt: 'transaction',
};

// The keyword a client wrote (END, not COMMIT), for the refusal message.
function transactionWord(stmt: Statement): string {
  switch (stmt.type) {
    case 'start_transaction_stmt':
      return stmt.startKw.name;
    case 'commit_transaction_stmt':
      return stmt.commitKw.name;
    case 'rollback_transaction_stmt':
      return stmt.rollbackKw.name;
    case 'savepoint_stmt':
      return stmt.savepointKw.name;
    case 'release_savepoint_stmt':
      return stmt.releaseKw.name;
    default:
      return stmt.type;
  }
}

interface EntityParts {
  schema?: string | undefined;
  name?: string | undefined;
}

// Splits a possibly qualified, aliased or INDEXED BY table reference into schema and name.
function entity(node: Node | undefined): EntityParts {
  if (!node) return {};
  switch (node.type) {
    case 'identifier':
      return { name: node.name };
    case 'member_expr':
      return {
        schema: node.object.type === 'identifier' ? node.object.name : undefined,
        name: node.property.type === 'identifier' ? node.property.name : undefined,
      };
    case 'alias':
      return entity(node.expr as Node);
    case 'indexed_table':
    case 'not_indexed_table':
      return entity(node.table);
    default:
      return {};
  }
}

// A statement that creates or changes an object: TEMP placement and SQLite's own tables are refused.
function checkTarget(node: Node | undefined, creates: boolean): string | undefined {
  const { schema, name } = entity(node);
  if (creates && isTempSchema(schema)) return REASONS.temp;
  if (name !== undefined && isSqliteName(name)) return REASONS.sqliteTable(name);
  return undefined;
}

function checkTargets(nodes: readonly Node[], creates = false): string | undefined {
  for (const n of nodes) {
    const r = checkTarget(n, creates);
    if (r) return r;
  }
  return undefined;
}

function valueText(v: Literal | Keyword | Expr): { value: string; valueIsString: boolean } {
  if (v.type === 'string_literal') return { value: v.value, valueIsString: true };
  const text = 'text' in v && typeof v.text === 'string' ? v.text : v.type;
  return { value: text, valueIsString: false };
}

/** Reduces a parsed PRAGMA to its name, schema and value, and classifies it. */
export function classifyPragmaStmt(stmt: PragmaStmt): Verdict {
  const p = stmt.pragma;
  const named = p.type === 'pragma_assignment' || p.type === 'pragma_func_call' ? p.name : p;
  const { schema, name = '' } = entity(named);
  if (p.type === 'pragma_assignment') return classifyPragma({ schema, name, ...valueText(p.value) });
  if (p.type === 'pragma_func_call') return classifyPragma({ schema, name, ...valueText(p.args.expr) });
  return classifyPragma({ schema, name });
}

// The forbidden check for one node; undefined when the node is fine.
function check(node: Node): string | undefined {
  switch (node.type) {
    case 'attach_database_stmt':
      return REASONS.attach;
    case 'detach_database_stmt':
      return REASONS.detach;
    case 'vacuum_stmt':
      return node.intoKw ? REASONS.vacuumInto : REASONS.vacuum;
    case 'constraint_generated':
      return checkGenerated(node.expr, node.storageKw?.name.toUpperCase() === 'STORED');
    case 'relation_kind': {
      const kws = Array.isArray(node.kindKw) ? node.kindKw : [node.kindKw];
      return kws.some((k) => k.name === 'TEMP' || k.name === 'TEMPORARY') ? REASONS.temp : undefined;
    }
    case 'func_call': {
      const name = (entity(node.name).name ?? '').toLowerCase();
      if (name === 'load_extension') return REASONS.loadExtension;
      if (FORBIDDEN_PRAGMA_FUNCTIONS.has(name)) return REASONS.pragmaFunction(name);
      // pragma_table_info('_sqlfleet_log') names the table in a string.
      const args = node.args?.expr.args.items ?? [];
      const hidden = args.find((a) => a.type === 'string_literal' && isInternalName(a.value));
      return name.startsWith('pragma_') && hidden?.type === 'string_literal'
        ? REASONS.internal(hidden.value)
        : undefined;
    }
    case 'identifier':
      if (isInternalName(node.name)) return REASONS.internal(node.name);
      return FORBIDDEN_PRAGMA_FUNCTIONS.has(node.name.toLowerCase()) ? REASONS.pragmaFunction(node.name) : undefined;
    case 'keyword': // the parser reads some bare names (PRAGMA arguments) as keywords
      return isInternalName(node.text) ? REASONS.internal(node.text) : undefined;
    case 'member_expr': // SQLite accepts 'name'.column with a string as the table name
      return node.object.type === 'string_literal' && isInternalName(node.object.value)
        ? REASONS.internal(node.object.value)
        : undefined;
    case 'pragma_stmt': {
      const v = classifyPragmaStmt(node);
      return v.kind === 'forbidden' ? v.reason : undefined;
    }
    case 'insert_clause':
      return checkTarget(node.table, false);
    case 'update_clause':
    case 'delete_clause':
      return checkTargets(node.tables.items);
    case 'drop_table_stmt':
      return checkTargets(node.tables.items);
    case 'drop_view_stmt':
      return checkTargets(node.views.items);
    case 'drop_index_stmt':
      return checkTargets(node.indexes.items);
    case 'drop_trigger_stmt':
      return checkTarget(node.trigger, false);
    case 'alter_table_stmt':
      return checkTarget(node.table, false);
    case 'trigger_target':
      return checkTarget(node.table, false);
    case 'create_index_stmt':
      return checkTarget(node.name, true) ?? checkTarget(node.table, false) ?? checkIndexed([node.columns, node.clauses]);
    case 'create_table_stmt':
    case 'create_view_stmt':
    case 'create_trigger_stmt':
      return checkTarget(node.name as EntityName, true);
    default:
      return undefined;
  }
}

// The lower-case name of a function call (`"Date"(…)` is date()).
const funcName = (node: Node & { type: 'func_call' }): string => (entity(node.name).name ?? '').toLowerCase();

// A call of CURRENT_TIMESTAMP, CURRENT_DATE or CURRENT_TIME (the parser reads them as calls
// without arguments), in upper case; undefined for any other node.
function currentWord(node: Node): string | undefined {
  if (node.type !== 'func_call' && node.type !== 'keyword') return undefined;
  const word = (node.type === 'func_call' ? (entity(node.name).name ?? '') : node.name).toUpperCase();
  return CURRENT_WORDS.has(word) ? word : undefined;
}

// A generated column's expression. STORED ones are computed by the writer on write and
// replicated as values; VIRTUAL ones (the default) are computed at every read, on the read
// connections, which have none of the writer's deterministic clock and random overrides:
// SQLite there refuses a date/time function that meets 'now' (in the expression or in the
// column values it reads) or a 'localtime'/'utc' modifier, so any call of one is refused.
// CURRENT_* is refused in both: SQLite refuses the whole schema for it.
function checkGenerated(expr: Node, stored: boolean): string | undefined {
  return walk(expr, (n) => {
    const word = currentWord(n);
    if (word) return REASONS.currentInSchema(word, 'a generated column');
    if (stored || n.type !== 'func_call') return undefined;
    const name = funcName(n);
    return CLOCK_FUNCTIONS.has(name) || RANDOM_FUNCTIONS.has(name) ? REASONS.virtualClock(name) : undefined;
  });
}

// True when an expression reads a column (a name that is not a function's).
function readsColumn(expr: Node): boolean {
  let found = false;
  walk(expr, (n) => {
    if (n.type === 'identifier' || n.type === 'member_expr') found = true;
    return found ? 'column' : undefined;
  }, (n) => (n.type === 'func_call' ? [n.args] : undefined));
  return found;
}

// An index's expressions and partial-index WHERE: values stored in the index, computed by
// the writer; reads use them without recomputing. SQLite outside the writer refuses the
// whole schema for CURRENT_*, and recomputes the expressions in PRAGMA integrity_check
// (and restoring a backup runs it), where a date/time function that reads the clock fails:
// a call of one on no column can only be a constant or the clock, so it is refused.
// `date(s)` stays allowed (its column values are what it reads).
function checkIndexed(parts: unknown): string | undefined {
  return walk(parts, (n) => {
    const word = currentWord(n);
    if (word) return REASONS.currentInSchema(word, 'an index');
    if (n.type !== 'func_call') return undefined;
    const name = funcName(n);
    return CLOCK_FUNCTIONS.has(name) && !readsColumn(n) ? REASONS.indexClock(name) : undefined;
  });
}

// Inside a write or schema statement (whose results are stored on every replica), what
// reads the node's own state: total_changes(), and the pragma functions and dbstat that
// report the file's layout, the build or the connection (pragma.ts isNodeLocalSource).
function checkStored(node: Node): string | undefined {
  switch (node.type) {
    case 'func_call': {
      const name = funcName(node);
      if (name === 'total_changes') return REASONS.totalChanges;
      return isNodeLocalSource(name) ? REASONS.nodeLocal(name) : undefined;
    }
    case 'identifier': // FROM pragma_page_count, FROM main.dbstat
      return isNodeLocalSource(node.name) ? REASONS.nodeLocal(node.name.toLowerCase()) : undefined;
    default:
      return undefined;
  }
}

// Depth-first search of a tree for the first node `visit` refuses, in document order;
// `children` may narrow which parts of a node are searched. An explicit stack, not
// recursion: a long chained expression (`1 OR 1 OR …`) is a tree as deep as it is long,
// and recursing over it overflowed the stack (a 500).
function walk(
  root: unknown,
  visit: (node: Node) => string | undefined,
  children: (node: Node) => unknown[] | undefined = () => undefined,
): string | undefined {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const value = stack.pop();
    if (Array.isArray(value)) {
      for (let i = value.length - 1; i >= 0; i--) stack.push(value[i]);
      continue;
    }
    if (value === null || typeof value !== 'object') continue;
    let next: unknown[] | undefined;
    if ('type' in value) {
      const r = visit(value as Node);
      if (r) return r;
      next = children(value as Node);
    }
    const kids = next ?? Object.values(value);
    for (let i = kids.length - 1; i >= 0; i--) {
      const v: unknown = kids[i];
      if (v !== null && typeof v === 'object') stack.push(v);
    }
  }
  return undefined;
}

const findForbidden = (root: unknown): string | undefined => walk(root, check);

/** Classifies one parsed statement: forbidden anywhere in its tree first, then by type. */
export function classifyStatement(stmt: Statement): Verdict {
  const forbidden = findForbidden(stmt);
  if (forbidden) return { kind: 'forbidden', reason: forbidden };
  if (stmt.type === 'pragma_stmt') return classifyPragmaStmt(stmt);
  const kind = KIND_BY_CST_TYPE[stmt.type];
  if (kind === undefined) return { kind: 'forbidden', reason: REASONS.unsupported(stmt.type) };
  if (kind === 'transaction') return { kind, reason: REASONS.transaction(transactionWord(stmt)) };
  const stored = kind === 'write' || kind === 'schema' ? walk(stmt, checkStored) : undefined;
  if (stored) return { kind: 'forbidden', reason: stored };
  if (stmt.type === 'insert_stmt') {
    const into = insertTarget(stmt.clauses.find((c) => c.type === 'insert_clause')?.table);
    if (into) return { kind, reason: stmt.type, into };
  }
  return { kind, reason: stmt.type };
}

// The table of an INSERT clause; SQLite also takes a string literal as its name ('t').
function insertTarget(node: Node | undefined): InsertTarget | undefined {
  if (node?.type === 'string_literal') return { name: node.value };
  const { schema, name } = entity(node);
  if (name === undefined) return undefined;
  return schema === undefined ? { name } : { schema, name };
}
