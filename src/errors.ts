// One error class for the whole node, and the single table that maps codes to HTTP statuses.

/** Every error code a client can see, with its HTTP status and meaning (DESIGN §2). */
export const ERROR_CODES = {
  BAD_REQUEST: { status: 400, meaning: 'malformed JSON, missing/empty query, wrong field types, unknown command' },
  SQL_SYNTAX: { status: 400, meaning: 'the SQL does not parse' },
  SQL_ERROR: { status: 400, meaning: 'SQLite refused the statement' },
  READ_ONLY_COMMAND: { status: 400, meaning: 'a write sent with "command": "query"' },
  TRANSACTION_CONTROL: { status: 400, meaning: 'BEGIN/COMMIT/ROLLBACK/SAVEPOINT sent alone: use queries + transaction' },
  CONSTRAINT: { status: 409, meaning: 'UNIQUE, NOT NULL, CHECK or FOREIGN KEY violation' },
  STALE_EPOCH: { status: 409, meaning: 'replication entry from a deposed master (lower epoch)' },
  IDEMPOTENCY_KEY_EXPIRED: { status: 409, meaning: 'a write retried with an idempotency key older than --idempotency-window: not applied again' },
  PROMOTION_REFUSED: { status: 409, meaning: 'the node cannot be promoted now (already master, down, behind, another promotion running, etcd mode without --force or with a master holding the leader key)' },
  SCHEMA_ON_SLAVE: { status: 403, meaning: 'schema change sent to a slave' },
  FORBIDDEN_STATEMENT: { status: 403, meaning: 'statement not allowed on any node' },
  FORBIDDEN: { status: 403, meaning: 'privileged field or operation requested by a client' },
  UNAUTHORIZED: { status: 401, meaning: 'missing or wrong credentials' },
  NOT_FOUND: { status: 404, meaning: 'no such route or node' },
  CHANGES_TRIMMED: { status: 410, meaning: 'GET /changes from an index whose events this node no longer keeps: re-read the tables, then follow from the index the read answered' },
  PAYLOAD_TOO_LARGE: { status: 413, meaning: 'body over --max-body' },
  MASTER_UNAVAILABLE: { status: 503, meaning: 'the master cannot be reached' },
  NOT_MASTER: { status: 503, meaning: 'this node is not the master' },
  DIVERGED: { status: 503, meaning: 'this replica diverged from the master and stopped applying' },
  UNAVAILABLE: { status: 503, meaning: 'node is starting or stopping' },
  TIMEOUT: { status: 504, meaning: 'query or wait ran past its limit' },
  INTERNAL: { status: 500, meaning: 'unexpected error (logged on the node)' },
} as const;

/** A stable, upper-case error code. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** The one error type thrown across sqlfleet; `details` are extra JSON fields for the client. */
export class SqlfleetError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, details: Record<string, unknown> = {}) {
    super(message);
    this.name = 'SqlfleetError';
    this.code = code;
    this.details = details;
  }

  /** HTTP status for this error's code. */
  get status(): number {
    return ERROR_CODES[this.code].status;
  }

  /** The JSON body a client receives. */
  toJSON(): { ok: false; error: Record<string, unknown> } {
    return { ok: false, error: { code: this.code, message: this.message, ...this.details } };
  }
}

/** True when `e` is a SqlfleetError, optionally of one code. */
export function isSqlfleetError(e: unknown, code?: ErrorCode): e is SqlfleetError {
  return e instanceof SqlfleetError && (code === undefined || e.code === code);
}
