// The client's one error class. Server errors keep the server's stable code; failures of
// the client itself (network, deadline, abort) get client codes of the same style.

/** Whether a failed write may have been applied: `not_applied` is certain, `unknown` is not. */
export type WriteOutcome = 'not_applied' | 'unknown';

/** Codes the client produces itself (the server's codes pass through unchanged). */
export type ClientCode =
  /** No node answered: connection refused, reset, TLS failure. */
  | 'NETWORK'
  /** The call's deadline (timeoutMs) passed. */
  | 'DEADLINE'
  /** The caller's AbortSignal fired. */
  | 'ABORTED'
  /** A node answered something that is not sqlfleet's JSON. */
  | 'BAD_RESPONSE'
  /** No master could be found before the deadline. */
  | 'NO_MASTER'
  /** The client was closed. */
  | 'CLOSED';

/** What a SqlfleetClientError carries besides its message. */
export interface ClientErrorInit {
  code: string;
  status?: number;
  statement?: number;
  outcome?: WriteOutcome;
  node?: string;
  attempts?: number;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** Every failure of a client call: match on `code` (the server's, e.g. CONSTRAINT, or a ClientCode). */
export class SqlfleetClientError extends Error {
  /** Stable upper-case code: the server's error code, or a ClientCode. */
  readonly code: string;
  /** HTTP status of the server's answer; undefined when no answer came. */
  readonly status: number | undefined;
  /** Index of the statement that failed in a batch or multi-statement query. */
  readonly statement: number | undefined;
  /** Writes only: whether the write may have been applied. Reads: undefined. */
  readonly outcome: WriteOutcome | undefined;
  /** URL of the node that answered (or failed) last. */
  readonly node: string | undefined;
  /** How many requests the call sent before giving up. */
  readonly attempts: number;
  /** Other fields of the server's error body (master, sqlite_code, applied_index, ...). */
  readonly details: Record<string, unknown>;

  constructor(message: string, init: ClientErrorInit) {
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'SqlfleetClientError';
    this.code = init.code;
    this.status = init.status;
    this.statement = init.statement;
    this.outcome = init.outcome;
    this.node = init.node;
    this.attempts = init.attempts ?? 0;
    this.details = init.details ?? {};
  }
}
