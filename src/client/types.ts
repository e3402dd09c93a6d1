// Public types of sqlfleet/client: configuration, statements and results. No I/O here.

/** A value SQLite stores and returns: blobs arrive as base64 strings. */
export type SqlValue = string | number | bigint | null;

/** Positional (`?`, `?NNN`) or named (`:a`, `@a`, `$a`) parameters; booleans are sent as 1/0. */
export type Params = readonly (SqlValue | boolean)[] | Readonly<Record<string, SqlValue | boolean>>;

/** One statement of a batch. */
export type Statement = string | { sql: string; params?: Params };

/** Credentials: HTTP Basic (`--auth` users) or a bearer token. */
export type Auth = { username: string; password: string } | { token: string };

/** Options of createClient. */
export interface ClientConfig {
  /** One or more node URLs (any role); the client learns the master and the other nodes from them. */
  urls: string | readonly string[];
  auth?: Auth;
  /** TLS: a CA (PEM) to trust for https:// nodes, and whether to verify certificates (default true). */
  tls?: { ca?: string | Buffer; rejectUnauthorized?: boolean };
  /** Deadline of every call, retries included (default 10 000 ms). */
  timeoutMs?: number;
  /** Longest single request within a call (default: half of timeoutMs, at least 1 000 ms). */
  attemptTimeoutMs?: number;
  /** Reads wait for this client's last write (min_index) on whatever node answers; default true. */
  readYourWrites?: boolean;
  /** Default acknowledgement level of writes (the server's default is "all"). */
  ack?: 'all' | 'one' | 'master';
  /** Also send reads to nodes the cluster lists in /status (default true). */
  discover?: boolean;
}

/** Options every call takes. */
export interface CallOptions {
  signal?: AbortSignal;
  /** This call's deadline instead of the client's timeoutMs. */
  timeoutMs?: number;
}

/** Options of a write (execute, batch). */
export interface WriteOptions extends CallOptions {
  ack?: 'all' | 'one' | 'master';
  /** Your own idempotency key (default: a new UUIDv7 per call). Reuse it to retry a call yourself. */
  idempotencyKey?: string;
}

/** Options of a read. */
export interface QueryOptions extends CallOptions {
  /** `local` (default): any healthy node; `strong`: answered by the master. */
  consistency?: 'local' | 'strong';
  /** Wait for at least this log index (default: this client's last write, when readYourWrites). */
  minIndex?: number;
}

/** What one statement produced, as the server sends it. */
export interface StatementResult {
  columns?: string[];
  rows?: SqlValue[][];
  changes?: number;
  last_insert_rowid?: number;
  truncated?: boolean;
}

/** The answer to a read. */
export interface QueryResult<R extends readonly SqlValue[] = SqlValue[]> {
  columns: string[];
  rows: R[];
  /** The log index the answering node had applied. */
  index: number;
  /** Id of the node that answered. */
  node: number;
  /** True when the server cut the rows at --max-rows. */
  truncated: boolean;
}

/** The answer to a write. */
export interface ExecuteResult {
  changes: number;
  lastInsertRowid: number;
  /** Rows of a RETURNING clause (empty otherwise). */
  columns: string[];
  rows: SqlValue[][];
  /** The write's log index. */
  index: number;
  /** True when the server had applied this call's key before: the first answer, not a second apply. */
  replayed: boolean;
  /** Slaves that had applied it when it was acknowledged. */
  replicatedTo: number[];
  /** How many requests it took (1 without failures). */
  attempts: number;
}

/** The answer to a batch: one result per statement, in order. */
export interface BatchResult {
  results: StatementResult[];
  index: number;
  replayed: boolean;
  replicatedTo: number[];
  attempts: number;
}

/** One node as /status lists it. */
export interface NodeStatus {
  id: number;
  url: string;
  role: 'master' | 'slave' | string;
  state: 'up' | 'down' | 'catching_up' | 'diverged' | string;
  applied_index?: number;
  lag?: number;
}

/** GET /status of a node (the fields the client relies on; the server sends more). */
export interface ClusterStatus {
  node: number;
  role: 'master' | 'slave' | string;
  url: string;
  applied_index: number;
  master: string;
  epoch?: number;
  nodes: NodeStatus[];
  [field: string]: unknown;
}
