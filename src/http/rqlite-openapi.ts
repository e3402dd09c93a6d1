// The OpenAPI entries of rqlite's API (rqlite.ts, DESIGN §7), spread into openapi.ts's
// document. Built from openapi.ts's own helpers so error responses stay in one form.

/** The helpers of openapi.ts this needs (passed in: openapi.ts imports this file). */
export interface OpenapiHelpers {
  errors: (...codes: never[]) => Record<string, unknown>;
  ref: (name: string) => Record<string, unknown>;
  json: (schema: unknown) => Record<string, unknown>;
  secured: unknown[];
}

const param = (name: string, description: string, schema: Record<string, unknown> = { type: 'string' }) => ({ name, in: 'query', required: false, description, schema });

const COMMON = [
  param('transaction', "Run all statements in one transaction: it stops at the first error and rolls back. Without it, each statement runs (and is logged) on its own, as rqlite does. A flag: present means on (`false` or `0` mean off)."),
  param('associative', 'Rows as objects keyed by column (`{"types": {...}, "rows": [...]}`).'),
  param('blob_array', 'BLOB columns as arrays of byte values instead of base64 text.'),
  param('timings', 'Add `time` (seconds) to each result and to the response.'),
  param('pretty', 'Indented JSON.'),
  param('redirect', 'On a slave, answer 301 with the master\'s URL instead of forwarding.'),
  param('raft_index', "Add `raft_index`: sqlfleet's replication log index of the write."),
  param('timeout', 'Accepted (Go duration); `--ack-timeout` and `--forward-timeout` bound the wait.'),
  param('db_timeout', 'Accepted (Go duration); `--query-timeout` bounds each statement.'),
];

const READ_PARAMS = [
  param('level', '`none`: answered here; `weak` (default) and `strong`: answered by the master (a slave forwards); `linearizable`: answered here once this node applied the index the master had when asked.', {
    enum: ['none', 'weak', 'linearizable', 'strong', 'auto'],
  }),
  param('freshness', 'With `level=none` on a slave: `{"error": "stale read"}` when the master is unreachable (Go duration; heartbeats bound the precision).'),
  param('freshness_strict', 'With `freshness`: also stale when this slave is behind the index the master had at the last heartbeat.'),
];

const STATEMENTS = {
  description: 'rqlite statements: `["SQL", ["SQL ?", 1, "a"], ["SQL :n", {"n": 1}]]`; `text/plain` is one SQL text.',
  content: {
    'application/json': {
      schema: {
        type: 'array',
        minItems: 1,
        items: { oneOf: [{ type: 'string', minLength: 1 }, { type: 'array', minItems: 1, prefixItems: [{ type: 'string' }] }] },
      },
      example: ['CREATE TABLE foo (id INTEGER PRIMARY KEY, name TEXT)', ['INSERT INTO foo(name) VALUES(?)', 'fiona'], ['SELECT * FROM foo WHERE name = :n', { n: 'fiona' }]],
    },
    'text/plain': { schema: { type: 'string' } },
  },
};

const RESULTS = {
  type: 'object',
  description: 'rqlite\'s shape. Each result is `{columns, types, values}` (rows), `{types, rows}` (associative), `{last_insert_id, rows_affected}` (changes; zero fields omitted) or `{error}`: per-statement errors come under HTTP 200.',
  properties: {
    results: { type: 'array', items: { type: 'object' } },
    error: { type: 'string' },
    time: { type: 'number' },
    raft_index: { type: 'integer' },
  },
};

/** Paths of the rqlite API for openapi.ts. */
export function rqlitePaths(h: OpenapiHelpers): Record<string, unknown> {
  const e = h.errors as (...codes: string[]) => Record<string, unknown>;
  const dbErrors = e('BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'PAYLOAD_TOO_LARGE', 'MASTER_UNAVAILABLE', 'TIMEOUT', 'UNAVAILABLE', 'INTERNAL');
  const ok = { description: 'results (per-statement errors inside)', content: h.json(RESULTS) };
  const redirect = { description: 'with `redirect` on a slave: the same request at the master (Location)' };
  const op = (summary: string, parameters: unknown[], body: boolean) => ({
    tags: ['rqlite'],
    summary,
    security: h.secured,
    parameters,
    ...(body ? { requestBody: { required: true, ...STATEMENTS } } : {}),
    responses: { '200': ok, '301': redirect, ...dbErrors },
  });
  return {
    '/db/execute': { post: op('rqlite: run writes (on a slave: forwarded to the master, schema changes included)', COMMON, true) },
    '/db/query': {
      get: op('rqlite: run a read given as `q=`', [param('q', 'The SQL text.'), ...COMMON, ...READ_PARAMS], false),
      post: op('rqlite: run reads; a write is a per-statement error', [...COMMON, ...READ_PARAMS], true),
    },
    '/db/request': { post: op('rqlite: run reads and writes, each as its class needs', [...COMMON, ...READ_PARAMS], true) },
    '/db/backup': {
      get: {
        tags: ['rqlite'],
        summary: "A consistent SQLite file of this node's user tables (no internal tables), or a SQL dump with `fmt=sql`",
        security: h.secured,
        parameters: [param('fmt', '`sql` for a dump; anything else (or none) for a SQLite file.')],
        responses: {
          '200': { description: 'the backup; `X-Sqlfleet-Index` says which log index it holds', content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } }, 'text/plain': { schema: { type: 'string' } } } },
          ...e('UNAUTHORIZED', 'FORBIDDEN', 'INTERNAL'),
        },
      },
    },
    '/db/load': {
      post: {
        tags: ['rqlite'],
        summary: 'Replace the whole database on every node from a SQLite file or a SQL dump (admin; a slave passes it to the master)',
        description: 'Validated first (header, page size, length, integrity_check, no `_sqlfleet_*` tables, at most 32 MiB): a bad upload is 400 and nothing changes. Then one log entry drops every user object and recreates the upload, so it replicates like any write.',
        security: h.secured,
        parameters: [param('redirect', "On a slave, answer 301 with the master's URL instead of passing the load on.")],
        requestBody: { required: true, content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } }, 'text/plain': { schema: { type: 'string' } } } },
        responses: {
          '200': { description: 'loaded', content: h.json({ type: 'object', properties: { results: { type: 'array' }, raft_index: { type: 'integer' }, statements: { type: 'integer' } }, required: ['results'] }) },
          '301': redirect,
          ...e('BAD_REQUEST', 'UNAUTHORIZED', 'FORBIDDEN', 'PAYLOAD_TOO_LARGE', 'MASTER_UNAVAILABLE', 'INTERNAL'),
        },
      },
    },
    '/readyz': {
      get: {
        tags: ['rqlite'],
        summary: "rqlite's readiness probe (`noleader` skips the master check)",
        parameters: [param('noleader', 'Only check that this node answers.')],
        responses: { '200': { description: 'ready', content: { 'text/plain': { schema: { type: 'string' } } } }, '503': { description: 'not ready', content: { 'text/plain': { schema: { type: 'string' } } } } },
      },
    },
    '/nodes': {
      get: {
        tags: ['rqlite'],
        summary: "rqlite's node list: an object keyed by node id, or `{nodes: [...]}` with `ver=2`",
        security: h.secured,
        parameters: [param('ver', '`2` for the array form.'), param('pretty', 'Indented JSON.')],
        responses: { '200': { description: 'nodes', content: h.json({ type: 'object' }) }, ...e('UNAUTHORIZED', 'FORBIDDEN') },
      },
    },
    '/leader': {
      get: {
        tags: ['rqlite'],
        summary: "rqlite's leader: the master as a node object",
        security: h.secured,
        responses: {
          '200': { description: 'the master', content: h.json({ type: 'object', properties: { id: { type: 'string' }, api_addr: { type: 'string' }, leader: { const: true } }, required: ['id', 'api_addr'] }) },
          ...e('UNAUTHORIZED', 'FORBIDDEN', 'MASTER_UNAVAILABLE'),
        },
      },
    },
  };
}
