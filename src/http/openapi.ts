// The OpenAPI 3.1 document of the public API, served at GET /openapi.json. Kept true by
// test/openapi.test.ts, which checks it against the routes of createApp() and a running
// cluster. Error statuses come from the one table in errors.ts.
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { rqlitePaths } from './rqlite-openapi.js';

/** Codes only nodes send each other (replication); no client request can produce them. */
const NODE_TO_NODE_CODES = ['STALE_EPOCH', 'DIVERGED'] as const;
type PublicCode = Exclude<ErrorCode, (typeof NODE_TO_NODE_CODES)[number]>;

/** When a client sees each public code, with an example message; a new code in errors.ts must be added here. */
const PUBLIC_CODES: Record<PublicCode, { when: string; example: Record<string, unknown> }> = {
  BAD_REQUEST: {
    when: 'malformed JSON, missing or empty query, wrong field types, unknown command or field, bad node id',
    example: { message: 'unknown field "qurey"' },
  },
  SQL_SYNTAX: { when: "the SQL does not parse; SQLite's message and the parser's position", example: { message: 'near "SELEC": syntax error', statement: 0 } },
  SQL_ERROR: { when: 'SQLite refused the statement (no such table, …); `statement` says which one', example: { message: 'no such table: nope', statement: 0, sqlite_code: 'SQLITE_ERROR' } },
  READ_ONLY_COMMAND: { when: 'a write sent with `"command": "query"`', example: { message: '"command": "query" runs only reads; this write needs "command": "exec"' } },
  TRANSACTION_CONTROL: { when: 'BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE sent alone: send `queries` instead', example: { message: 'transaction control statements cannot be sent alone' } },
  CONSTRAINT: { when: 'UNIQUE, NOT NULL, CHECK or FOREIGN KEY violation', example: { message: 'UNIQUE constraint failed: users.username', statement: 0, sqlite_code: 'SQLITE_CONSTRAINT_UNIQUE' } },
  SCHEMA_ON_SLAVE: { when: 'a schema change sent to a slave; `master` names the URL to use', example: { message: 'schema changes are accepted only by the master', master: 'http://127.0.0.1:8080' } },
  FORBIDDEN_STATEMENT: {
    when: 'ATTACH, DETACH, load_extension(), VACUUM and VACUUM INTO, TEMP objects, internal `_sqlfleet_*` tables, PRAGMAs that change state, SQL whose value differs per node (the clock or random() in a VIRTUAL generated column, total_changes(), dbstat and layout pragma functions in writes)',
    example: { message: 'ATTACH touches the file system and is not allowed' },
  },
  FORBIDDEN: { when: '`"is_master": true` from a client, or a user whose role does not allow the operation', example: { message: '"is_master": true is reserved for cluster-internal requests' } },
  UNAUTHORIZED: { when: 'missing or wrong credentials where they are required (`--auth`, cluster token)', example: { message: 'credentials required: HTTP Basic or Bearer token' } },
  NOT_FOUND: { when: 'no such route, or no such node', example: { message: 'node 9 is not a member' } },
  PAYLOAD_TOO_LARGE: { when: 'body over `--max-body` (default 1 MiB)', example: { message: 'body is over the 1048576-byte limit (--max-body)' } },
  MASTER_UNAVAILABLE: {
    when: 'a slave cannot reach the master for a write or a strong read; `outcome` is `not_applied` (refused) or `unknown` (timed out after sending)',
    example: { message: 'the master at http://127.0.0.1:8080 cannot be reached', master: 'http://127.0.0.1:8080', outcome: 'not_applied' },
  },
  NOT_MASTER: { when: 'a membership operation sent to a slave: send it to the master', example: { message: 'membership is managed by the master at http://127.0.0.1:8080' } },
  UNAVAILABLE: { when: 'the node is starting or stopping, or (a slave) not yet in sync with its master', example: { message: 'starting' } },
  PROMOTION_REFUSED: {
    when: '`POST /nodes/{id}/promote` cannot be done now: already master, down, not caught up, another promotion running, or etcd mode; nothing changed',
    example: { message: 'node 2 is down; promote a node that is up' },
  },
  TIMEOUT: { when: '`min_index` not applied within `--read-wait`, or a query ran past its time limit', example: { message: 'index 9 not applied here within 5000 ms (at 7)', applied_index: 7 } },
  INTERNAL: { when: 'unexpected error; details are in the node log, never in the answer', example: { message: 'internal error; see the node log' } },
  CHANGES_TRIMMED: {
    when: '`GET /changes` from an index whose events this node no longer keeps (`--changes-retain`); `oldest` is the first index it has: re-read the tables and follow from the index the read answered + 1',
    example: { message: 'events before index 5001 are no longer kept on this node', oldest: 5001, applied_index: 105000 },
  },
  IDEMPOTENCY_KEY_EXPIRED: {
    when: 'a write retried with a UUIDv7 `idempotency_key` older than `--idempotency-window`: not applied again',
    example: { message: 'idempotency key … was created 700 s ago, past the 600 s --idempotency-window', window_ms: 600000 },
  },
};

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: unknown, extra: Record<string, unknown> = {}) => ({ 'application/json': { schema, ...extra } });

/** Error responses of an operation, grouped by status, with one example per code. */
function errors(...codes: PublicCode[]): Record<string, unknown> {
  const byStatus = new Map<number, PublicCode[]>();
  for (const code of codes) byStatus.set(ERROR_CODES[code].status, [...(byStatus.get(ERROR_CODES[code].status) ?? []), code]);
  const out: Record<string, unknown> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[String(status)] = {
      description: list.map((c) => `\`${c}\`: ${PUBLIC_CODES[c].when}`).join('; '),
      content: json(ref('Error'), {
        examples: Object.fromEntries(list.map((c) => [c, { value: { ok: false, error: { code: c, ...PUBLIC_CODES[c].example } } }])),
      }),
    };
  }
  return out;
}

/** Errors every endpoint that needs a role can answer when the node runs with `--auth`. */
const AUTH_ERRORS = ['UNAUTHORIZED', 'FORBIDDEN'] as const;
const SECURED = [{}, { basicAuth: [] }, { bearerAuth: [] }];

/** The README's requests, in an order that works on an empty cluster. */
const REQUEST_EXAMPLES: Record<string, { summary: string; value: Record<string, unknown> }> = {
  createTable: {
    summary: 'schema change (master only)',
    value: {
      command: 'exec',
      query: 'CREATE TABLE IF NOT EXISTS users (id INTEGER PRIMARY KEY, username TEXT UNIQUE, email TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)',
    },
  },
  insert: { summary: 'a write with positional parameters (on a slave: forwarded)', value: { query: 'INSERT INTO users(username) VALUES (?)', params: ['ana'] } },
  namedParams: { summary: 'named parameters (:name, @name, $name)', value: { query: 'INSERT INTO users(username,email) VALUES (:u,:e)', params: { u: 'bob', e: 'b@x' } } },
  read: { summary: 'a read, answered where it lands', value: { command: 'query', query: 'SELECT id, username FROM users' } },
  multiStatement: { summary: 'several statements in one text: in order, atomically', value: { query: 'UPDATE users SET email = lower(email); DELETE FROM users WHERE email IS NULL' } },
  batch: {
    summary: 'a batch: all-or-nothing on every node',
    value: { queries: ['UPDATE users SET email = NULL WHERE id = 1', { query: 'INSERT INTO users(username) VALUES (?)', params: ['d'] }], transaction: true },
  },
  readYourWrites: { summary: "read-your-writes: wait for a write's index", value: { command: 'query', query: 'SELECT count(*) FROM users', min_index: 5 } },
  strongRead: { summary: 'a read answered by the master', value: { query: 'SELECT count(*) FROM users', consistency: 'strong' } },
};

const SCHEMAS: Record<string, unknown> = {
  SqlValue: { description: 'A bound value: booleans are stored as 1/0.', type: ['string', 'number', 'boolean', 'null'] },
  Params: {
    description: 'An array for `?` / `?NNN`, an object for `:name` / `@name` / `$name` (the prefix in the key is optional).',
    oneOf: [
      { type: 'array', items: ref('SqlValue') },
      { type: 'object', propertyNames: { pattern: '^[:@$]?[A-Za-z_0-9]+$' }, additionalProperties: ref('SqlValue') },
    ],
  },
  QueryItem: {
    oneOf: [
      { type: 'string', minLength: 1 },
      { type: 'object', properties: { query: { type: 'string', minLength: 1 }, params: ref('Params') }, required: ['query'], additionalProperties: false },
    ],
  },
  QueryRequest: {
    type: 'object',
    description: 'Send `query` or `queries`, not both. Unknown fields are refused with BAD_REQUEST.',
    additionalProperties: false,
    properties: {
      command: { enum: ['exec', 'query'], description: '`exec` runs anything allowed on this node; `query` runs only reads (a write is refused with READ_ONLY_COMMAND). Omitted: inferred from the SQL.' },
      query: { type: 'string', minLength: 1, description: 'One statement, or several separated by `;` (run in order, atomically).' },
      params: ref('Params'),
      queries: { type: 'array', minItems: 1, items: ref('QueryItem'), description: 'Instead of `query`: statements run in order as one atomic request.' },
      transaction: { type: 'boolean', description: 'Accepted; every request is atomic anyway.' },
      is_master: { type: 'boolean', description: 'Accepted from old clients when `false`; `true` is refused with 403 FORBIDDEN.' },
      ack: { enum: ['all', 'one', 'master'], default: 'all', description: 'Writes: `all` every slave that is up applied it; `one` at least one slave; `master` committed on the master.' },
      min_index: { type: 'integer', minimum: 0, description: 'Reads: wait until this node applied at least this index (`--read-wait`, then 504 TIMEOUT).' },
      consistency: { enum: ['local', 'strong'], default: 'local', description: 'Reads: `local` answered here, `strong` answered by the master.' },
      idempotency_key: {
        type: 'string', minLength: 1, maxLength: 128, pattern: '^[\\x21-\\x7e]+$',
        description: 'Writes: a client-chosen key (or the `Idempotency-Key` header). A retry with a key already applied within `--idempotency-window` gets the first answer again with `idempotent_replay: true`.',
      },
    },
    oneOf: [{ required: ['query'] }, { required: ['queries'] }],
  },
  ReadResult: {
    type: 'object',
    description: 'A read, or a write with RETURNING. Blobs are base64 strings; integers beyond 2^53 are exact JSON integers.',
    properties: { columns: { type: 'array', items: { type: 'string' } }, rows: { type: 'array', items: { type: 'array', items: { type: ['string', 'number', 'null'] } } } },
    required: ['columns', 'rows'],
  },
  WriteResult: {
    type: 'object',
    properties: { changes: { type: 'integer', minimum: 0 }, last_insert_rowid: { type: 'integer' } },
    required: ['changes', 'last_insert_rowid'],
  },
  QueryResponse: {
    type: 'object',
    properties: {
      ok: { const: true },
      node: { type: 'integer', description: 'The node that answered.' },
      role: { enum: ['master', 'slave'] },
      index: { type: 'integer', minimum: 0, description: "A write's log index; for a read, the index this node had applied when it read." },
      results: { type: 'array', items: { oneOf: [ref('ReadResult'), ref('WriteResult')] }, description: 'One per statement, in order.' },
      replicated_to: { type: 'array', items: { type: 'integer' }, description: 'Writes: ids of the slaves that had applied it when it was answered.' },
      lagging: { type: 'array', items: { type: 'integer' }, description: 'Writes: slaves that are up but missed `--ack-timeout`; the write is still committed.' },
      forwarded_to: { type: 'string', description: 'On a slave: the master the request was forwarded to.' },
      applied_here: { const: false, description: 'On a slave: present when the forwarded write was not yet applied here when answered.' },
      idempotent_replay: { const: true, description: 'Writes: this `idempotency_key` was applied before; this is its first answer, nothing was applied again.' },
    },
    required: ['ok', 'node', 'role', 'index', 'results'],
  },
  ErrorCode: {
    description: ['Stable error codes; match on these, not on messages.', '', '| code | status | when |', '| --- | --- | --- |']
      .concat(Object.entries(PUBLIC_CODES).map(([c, v]) => `| \`${c}\` | ${ERROR_CODES[c as PublicCode].status} | ${v.when} |`))
      .join('\n'),
    enum: Object.keys(PUBLIC_CODES),
  },
  Error: {
    type: 'object',
    properties: {
      ok: { const: false },
      error: {
        type: 'object',
        properties: {
          code: ref('ErrorCode'),
          message: { type: 'string' },
          statement: { type: 'integer', description: 'Which statement of the request failed (0-based).' },
          sqlite_code: { type: 'string', description: "SQLite's extended result code." },
          master: { type: 'string', description: 'SCHEMA_ON_SLAVE, MASTER_UNAVAILABLE: the master URL.' },
          outcome: { enum: ['not_applied', 'unknown'], description: 'MASTER_UNAVAILABLE: whether the write may have been applied.' },
          applied_index: { type: 'integer', description: 'TIMEOUT: the index this node had applied.' },
        },
        required: ['code', 'message'],
      },
    },
    required: ['ok', 'error'],
  },
  Health: { type: 'object', properties: { ok: { type: 'boolean' }, error: { type: 'object' } }, required: ['ok'] },
  NodeState: {
    type: 'object',
    properties: {
      id: { type: 'integer' },
      url: { type: ['string', 'null'], description: 'null until a slave has reported it.' },
      role: { enum: ['master', 'slave'] },
      state: { enum: ['up', 'down', 'catching_up', 'diverged'] },
      applied_index: { type: 'integer', minimum: 0 },
      lag: { type: 'integer', minimum: 0, description: 'Entries behind the master.' },
      last_seen_ms: { type: ['integer', 'null'], description: 'ms since the last heartbeat; null if never seen.' },
    },
    required: ['id', 'url', 'role', 'state', 'applied_index', 'lag'],
  },
  Verdict: {
    type: 'object',
    description: "The master's last checksum comparison with one slave (`--verify-ms`).",
    properties: {
      id: { type: 'integer' },
      index: { type: ['integer', 'null'], description: 'The index compared at; null when not comparable this round.' },
      equal: { type: ['boolean', 'null'], description: 'true equal, false different at the same index (the slave is marked diverged), null not compared.' },
      tables: { type: 'array', items: { type: 'string' }, description: 'Tables whose digests differ.' },
    },
    required: ['id', 'index', 'equal'],
  },
  Status: {
    type: 'object',
    properties: {
      node: { type: 'integer' },
      role: { enum: ['master', 'slave'] },
      url: { type: 'string' },
      applied_index: { type: 'integer', minimum: 0 },
      master: { type: 'string', description: "The master's URL." },
      epoch: { type: 'integer' },
      master_reachable: { type: 'boolean', description: 'Slaves: whether the last contact with the master succeeded.' },
      verified: { type: 'array', items: ref('Verdict'), description: 'Master only: the last checksum comparisons.' },
      nodes: { type: 'array', items: ref('NodeState'), description: 'Every member, master first.' },
      store: { type: 'object', description: "rqlite's store object (`ready`, `leader`, `raft`), for rqlite clients.", properties: { ready: { type: 'boolean' } }, required: ['ready'] },
      build: { type: 'object', description: "rqlite's build object." },
      http: { type: 'object', description: "rqlite's http object." },
      runtime: { type: 'object', description: "rqlite's runtime object." },
    },
    required: ['node', 'role', 'url', 'applied_index', 'nodes'],
  },
  Checksum: {
    type: 'object',
    description: 'Digests of user tables from rows in primary-key order, read in one transaction with the index: equal replicas at equal index give equal JSON.',
    properties: {
      index: { type: 'integer', minimum: 0 },
      tables: { type: 'object', additionalProperties: { type: 'string', pattern: '^[0-9a-f]+$' } },
      db: { type: 'string', pattern: '^[0-9a-f]+$' },
    },
    required: ['index', 'tables', 'db'],
  },
};

const PATHS: Record<string, unknown> = {
  '/': {
    get: {
      tags: ['operations'],
      summary: 'Web console',
      description: 'A self-contained page (no network fetch beyond this node): cluster panel, SQL box, table browser, replica view.',
      responses: { '200': { description: 'the console', content: { 'text/html': { schema: { type: 'string' } } } } },
    },
    post: {
      tags: ['query'],
      summary: 'Run SQL',
      description:
        'Reads are answered by the node that gets them; writes are ordered by the master, applied and replicated (a slave forwards them and answers once it applied them); schema changes are accepted by the master only. A request is atomic on every node.',
      security: SECURED,
      requestBody: { required: true, content: json(ref('QueryRequest'), { examples: REQUEST_EXAMPLES }) },
      responses: {
        '200': {
          description: 'success',
          content: json(ref('QueryResponse'), {
            examples: {
              write: { value: { ok: true, node: 1, role: 'slave', index: 2, results: [{ changes: 1, last_insert_rowid: 1 }], replicated_to: [1, 2], forwarded_to: 'http://127.0.0.1:8080' } },
              read: { value: { ok: true, node: 2, role: 'slave', index: 3, results: [{ columns: ['id', 'username'], rows: [[1, 'ana'], [2, 'bob']] }] } },
            },
          }),
        },
        ...errors(
          'BAD_REQUEST', 'SQL_SYNTAX', 'SQL_ERROR', 'READ_ONLY_COMMAND', 'TRANSACTION_CONTROL', 'CONSTRAINT', 'SCHEMA_ON_SLAVE',
          'FORBIDDEN_STATEMENT', 'FORBIDDEN', 'UNAUTHORIZED', 'PAYLOAD_TOO_LARGE', 'MASTER_UNAVAILABLE', 'TIMEOUT', 'INTERNAL',
          'IDEMPOTENCY_KEY_EXPIRED',
        ),
      },
    },
  },
  '/health': {
    get: {
      tags: ['operations'],
      summary: 'Liveness',
      responses: { '200': { description: 'serving', content: json(ref('Health')) }, ...errors('UNAVAILABLE') },
    },
  },
  '/primary': {
    get: {
      tags: ['operations'],
      summary: 'Load-balancer check: 200 only on the current master',
      description: 'Point a load balancer\'s write pool here: the one node that answers 200 takes writes. Elsewhere 503 `NOT_MASTER` with `master`.',
      responses: {
        '200': { description: 'this node is the master', content: json({ type: 'object', properties: { ok: { const: true }, role: { const: 'master' } }, required: ['ok', 'role'] }) },
        ...errors('NOT_MASTER'),
      },
    },
  },
  '/replica': {
    get: {
      tags: ['operations'],
      summary: 'Load-balancer check: 200 on a slave in sync with the master',
      description: 'Point a load balancer\'s read pool here: 503 `UNAVAILABLE` on the master and on a slave not (yet) in sync.',
      responses: {
        '200': { description: 'an in-sync slave', content: json({ type: 'object', properties: { ok: { const: true }, role: { const: 'slave' } }, required: ['ok', 'role'] }) },
        ...errors('UNAVAILABLE'),
      },
    },
  },
  '/nodes/{id}/promote': {
    parameters: [{ name: 'id', in: 'path', required: true, description: 'node id; `any` in etcd mode: the most advanced sync-set member', schema: { oneOf: [{ type: 'integer', minimum: 0 }, { const: 'any' }] } }],
    post: {
      tags: ['admin'],
      summary: 'Make a node the master: switchover when the master is up (static and etcd mode), failover when it is not (static mode; etcd mode: only with force)',
      description:
        'Any node. Needs the admin role when the node runs with `--auth`, or the cluster token. Switchover pauses writes until the target has every acknowledged entry; failover first copies what the target lacks from the most advanced reachable node and is refused if it cannot, unless `force`. The new master takes epoch = highest seen + 1. In etcd mode (`--etcd`) a switchover moves the leader key to a sync-set member in one etcd transaction once it has every acknowledged write (writes pause, at most 1 s before the transaction, refused `not_applied`); a target outside the sync set or not caught up is refused. Without a master, only `force` (no sync-set member alive) is taken.',
      security: SECURED,
      requestBody: { required: false, content: json({ type: 'object', properties: { force: { type: 'boolean', default: false } }, additionalProperties: false }) },
      responses: {
        '200': {
          description: 'promoted',
          content: json({ type: 'object', properties: { ok: { const: true }, mode: { enum: ['switchover', 'failover', 'forced'] }, paused_ms: { type: 'integer', description: 'switchover: how long writes were paused' }, master: { type: 'string', description: 'URL of the new master' }, epoch: { type: 'integer' }, index: { type: 'integer', description: 'last log index the new master took over' } }, required: ['ok', 'mode', 'master', 'epoch', 'index'] }),
        },
        ...errors('BAD_REQUEST', ...AUTH_ERRORS, 'NOT_FOUND', 'PROMOTION_REFUSED', 'MASTER_UNAVAILABLE', 'INTERNAL'),
      },
    },
  },
  '/status': {
    get: {
      tags: ['cluster'],
      summary: "This node, the master, and every node's state, applied index and lag",
      security: SECURED,
      responses: { '200': { description: 'status', content: json(ref('Status')) }, ...errors(...AUTH_ERRORS, 'INTERNAL') },
    },
  },
  '/checksum': {
    get: {
      tags: ['cluster'],
      summary: 'Digests of user tables at an index',
      security: SECURED,
      responses: { '200': { description: 'checksum', content: json(ref('Checksum')) }, ...errors(...AUTH_ERRORS, 'INTERNAL') },
    },
  },
  '/changes': {
    get: {
      tags: ['cluster'],
      summary: 'Change feed: row-level events of captured tables as Server-Sent Events (DESIGN §9)',
      description:
        'Any node serves the events of the entries it has applied, identical on every node. `data:` is one event `{"index","pos","table","op","key","before","after","ts"}` (`sql` on schema events), ' +
        '`id:` is `<index>.<pos>`; a bare `id: <index>` on a heartbeat says every event through that index was passed. Send `Last-Event-ID` (or `last_event_id=`) to resume right after it. ' +
        'Without `from` or an id, the feed starts with the next write. Needs `--capture` on the node (400 otherwise).',
      security: SECURED,
      parameters: [
        { name: 'from', in: 'query', schema: { type: 'integer', minimum: 0 }, description: 'first log index whose events to send' },
        { name: 'table', in: 'query', schema: { type: 'string' }, description: 'only these tables (comma-separated)' },
        { name: 'op', in: 'query', schema: { type: 'string' }, description: 'only these operations: insert, update, delete, schema (comma-separated)' },
        { name: 'last_event_id', in: 'query', schema: { type: 'string' }, description: 'as the Last-Event-ID header: `<index>.<pos>` or `<index>`' },
        { name: 'heartbeat', in: 'query', schema: { type: 'integer', minimum: 100 }, description: 'ms between heartbeats (default --changes-heartbeat)' },
      ],
      responses: {
        '200': { description: 'text/event-stream, open until the client leaves', content: { 'text/event-stream': { schema: { type: 'string' } } } },
        ...errors('BAD_REQUEST', ...AUTH_ERRORS, 'CHANGES_TRIMMED', 'UNAVAILABLE'),
      },
    },
  },
  '/metrics': {
    get: {
      tags: ['operations'],
      summary: 'Prometheus metrics',
      security: SECURED,
      responses: { '200': { description: 'Prometheus text format 0.0.4', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors(...AUTH_ERRORS) },
    },
  },
  '/openapi.json': {
    get: {
      tags: ['operations'],
      summary: 'This document',
      responses: { '200': { description: 'OpenAPI 3.1', content: json({ type: 'object', required: ['openapi', 'paths'] }) } },
    },
  },
  '/nodes/{id}': {
    parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
    delete: {
      tags: ['admin'],
      summary: 'Remove a node from the membership (releases the log it held back)',
      description: 'Master only. Needs the admin role when the node runs with `--auth`, or the cluster token.',
      security: SECURED,
      responses: {
        '200': { description: 'removed', content: json({ type: 'object', properties: { ok: { const: true }, removed: { type: 'integer' } }, required: ['ok', 'removed'] }) },
        ...errors('BAD_REQUEST', ...AUTH_ERRORS, 'NOT_FOUND', 'NOT_MASTER'),
      },
    },
  },
  '/nodes/{id}/resync': {
    parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 0 } }],
    post: {
      tags: ['admin'],
      summary: 'Re-seed a slave (for instance a diverged one) with a snapshot',
      description: 'Master only. Needs the admin role when the node runs with `--auth`, or the cluster token.',
      security: SECURED,
      responses: {
        '202': { description: 'resync started', content: json({ type: 'object', properties: { ok: { const: true }, resync: { type: 'integer' } }, required: ['ok', 'resync'] }) },
        ...errors('BAD_REQUEST', ...AUTH_ERRORS, 'NOT_FOUND', 'NOT_MASTER'),
      },
    },
  },
  ...rqlitePaths({ errors, ref, json, secured: SECURED }),
};

/** OpenAPI 3.1 description of the public endpoints (node-to-node /internal/* routes are not part of it). */
export function openapiDocument(): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'sqlfleet',
      version: '0.1.0',
      summary: 'Replicated SQLite over HTTP',
      description:
        'One master orders every write in a replication log and pushes it to every slave; send SQL as JSON to any node. Errors are `{"ok": false, "error": {"code", "message", …}}` with a stable code (see ErrorCode).',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    servers: [
      { url: '/', description: 'the node that served this document' },
      { url: 'http://{host}:{port}', description: 'any node', variables: { host: { default: '127.0.0.1' }, port: { default: '8080' } } },
    ],
    tags: [
      { name: 'query', description: 'SQL over HTTP' },
      { name: 'rqlite', description: "rqlite's HTTP API, so rqlite's clients work unchanged" },
      { name: 'cluster', description: 'replication state and proofs' },
      { name: 'operations', description: 'console, health, metrics, this document' },
      { name: 'admin', description: 'membership (master only)' },
    ],
    paths: PATHS,
    components: {
      schemas: SCHEMAS,
      securitySchemes: {
        basicAuth: { type: 'http', scheme: 'basic', description: 'A user of the `--auth` users file.' },
        bearerAuth: { type: 'http', scheme: 'bearer', description: 'An API token of the `--auth` users file, or the cluster token.' },
      },
    },
  };
}
