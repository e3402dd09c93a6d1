// Issue 5 hardening: a data-driven matrix of bad, hostile and borderline requests against a
// real master + slave, each answered with its documented status and code (README "Errors").
// The matrix sends no valid write: afterwards every node must still serve, and every
// replica's checksum and applied index must be exactly what they were before it.
// Runaway reads come last (their abandoned worker threads burn CPU until the node stops),
// then the membership endpoints, whose refusal is what is tested there.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { Agent } from 'undici';
import { assertError, checksums, printLogs, status, useCluster, waitFor, waitForIndex, type Reply, type TestNode } from './helpers/cluster.js';
import { PATIENT, send } from './helpers/hardening.js';

const MAX_BODY = 65_536;
const QUERY_TIMEOUT_MS = 1_500;
const MAX_ROWS = 1_000;
const READ_WAIT_MS = 500;
const TABLE_ROWS = 2_000;

let token = '';
let baseline: { checksums: any[]; applied: number[] } | undefined;

// ---------------------------------------------------------------------------------------
// The matrix

type Target = 'master' | 'slave';

interface Case {
  readonly name: string;
  readonly node: Target;
  readonly method?: string;
  readonly path?: string;
  /** An object is JSON-encoded; a string or Buffer is sent byte for byte. */
  readonly body?: unknown;
  readonly headers?: Record<string, string> | (() => Record<string, string>);
  readonly chunked?: boolean;
  /** Use a connection of its own (the server may drop a connection whose body it did not read). */
  readonly fresh?: boolean;
  readonly expectStatus: number;
  /** The error code; absent for a 200 `{ok:true}` answer. */
  readonly expectCode?: string;
  /** Extra assertions on the answer. */
  readonly check?: (r: Reply) => void;
  /** Sent after the runaway reads: membership endpoints, which would remove or re-seed slave 1 if wrongly accepted. */
  readonly late?: boolean;
}

type Spec = Omit<Case, 'node'>;
const cases: Case[] = [];
const on = (node: Target, spec: Spec): void => {
  cases.push({ ...spec, node, name: `${spec.name} @${node}` });
};
const both = (spec: Spec): void => {
  on('master', spec);
  on('slave', spec);
};
/** Spreads a group over both nodes, alternating. */
const alternate = (specs: Spec[]): void => specs.forEach((s, i) => on(i % 2 === 0 ? 'master' : 'slave', s));

const bad = (name: string, body: unknown, extra: Partial<Spec> = {}): Spec => ({ name, body, expectStatus: 400, expectCode: 'BAD_REQUEST', ...extra });
const forbidden = (name: string, body: unknown): Spec => ({ name, body, expectStatus: 403, expectCode: 'FORBIDDEN_STATEMENT' });
const q = (sql: string, extra: Record<string, unknown> = {}) => ({ query: sql, ...extra });
const firstRows = (r: Reply): unknown[][] => r.body?.results?.[0]?.rows as unknown[][];
const expectRows = (want: unknown[][]) => (r: Reply) => assert.deepEqual(firstRows(r), want, r.text.slice(0, 300));
const bytes = (...parts: Array<string | number[]>): Buffer =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))));

// 1. Malformed JSON.
for (const [name, raw] of [
  ['empty body', ''],
  ['one space', ' '],
  ['plain text', 'SELECT 1'],
  ['lone {', '{'],
  ['lone }', '}'],
  ['lone [', '['],
  ['unterminated value', '{"query":'],
  ['missing closing brace', '{"query":"SELECT 1"'],
  ['trailing comma', '{"query":"SELECT 1",}'],
  ['single quotes', "{'query':'SELECT 1'}"],
  ['unquoted key', '{query:"SELECT 1"}'],
  ['double comma', '{"query":"SELECT 1",,"command":"query"}'],
  ['missing comma', '{"query":"SELECT 1" "command":"query"}'],
  ['extra closing brace', '{"query":"SELECT 1"}}'],
  ['trailing garbage', '{"query":"SELECT 1"} x'],
  ['two objects', '{"query":"SELECT 1"}{"query":"SELECT 2"}'],
  ['NaN literal', '{"query":"SELECT ?","params":[NaN]}'],
  ['Infinity literal', '{"query":"SELECT ?","params":[Infinity]}'],
  ['bad escape', '{"query":"SELECT \\x41"}'],
  ['raw newline in string', '{"query":"SELECT\n1"}'],
  ['raw tab in string', '{"query":"SELECT\t1"}'],
  ['unterminated string', '{"query":"SELECT 1}'],
  ['comment in JSON', '{"query":"SELECT 1" /* c */}'],
  ['leading zero number', '{"query":"SELECT ?","params":[01]}'],
  ['truncated literal', '{"query":"SELECT 1","transaction":tru}'],
  ['params trailing comma', '{"query":"SELECT ?","params":[1,]}'],
  ['NUL byte alone', '\u0000'],
] as const) {
  both(bad(`malformed JSON: ${name}`, raw));
}
// Valid JSON that is not an object.
for (const [name, raw] of [
  ['null', 'null'],
  ['true', 'true'],
  ['number', '42'],
  ['string', '"SELECT 1"'],
  ['empty array', '[]'],
  ['array of a request', '[{"query":"SELECT 1"}]'],
] as const) {
  both(bad(`JSON ${name} instead of an object`, raw));
}

// 2. Truncations of a valid body: every proper prefix of a JSON object is malformed.
const VALID = JSON.stringify({ command: 'query', query: 'SELECT ? AS a, ? AS b', params: [1, 'two'], consistency: 'local', transaction: false });
both({ name: 'the untruncated body (control)', body: VALID, expectStatus: 200, check: expectRows([[1, 'two']]) });
{
  const cuts = new Set<number>();
  for (let i = 0; i < VALID.length; i += 3) cuts.add(i);
  for (let i = VALID.length - 6; i < VALID.length; i++) cuts.add(i);
  alternate([...cuts].sort((a, b) => a - b).map((n) => bad(`truncated at byte ${n}/${VALID.length}`, VALID.slice(0, n))));
}

// 3. Wrong types for every field.
const wrongTypes: Array<[string, unknown[]]> = [
  ['command', [42, true, null, ['exec'], {}, '']],
  ['query', [42, true, null, [], ['SELECT 1'], {}, 1.5]],
  ['params', ['x', 7, true, false, [{}], [[1]], { a: {} }, { a: [1] }, { 'a-b': 1 }, { '': 1 }]],
  ['queries', ['SELECT 1', 42, {}, [], [42], [null], [true], [['SELECT 1']], [{ query: 1 }], [{ params: [1] }], [{ query: 'SELECT 1', extra: 1 }], [{ query: 'SELECT ?', params: 'x' }]]],
  ['transaction', ['yes', 1, null, []]],
  ['is_master', ['true', 1, null, 'false']],
  ['ack', [1, true, null, ['all']]],
  ['min_index', [-1, 1.5, '3', true, 2 ** 53, null, []]],
  ['consistency', [1, null, true, {}]],
];
for (const [field, values] of wrongTypes) {
  alternate(
    values.map((v) => {
      const body: Record<string, unknown> = field === 'queries' ? {} : field === 'query' ? {} : { query: field === 'params' ? 'SELECT :a' : 'SELECT 1' };
      body[field] = v;
      return bad(`wrong type: ${field} = ${JSON.stringify(v)}`, body);
    }),
  );
}
alternate([
  bad('both query and queries', { query: 'SELECT 1', queries: ['SELECT 2'] }),
  bad('params beside queries', { queries: ['SELECT ?'], params: [1] }),
  bad('params with a multi-statement query', { query: 'SELECT ?; SELECT ?', params: [1, 2] }),
  bad('too few params', { query: 'SELECT ?, ?', params: [1] }),
  bad('params null, one placeholder', { query: 'SELECT ?', params: null }),
  bad('missing named parameter', { query: 'SELECT :a', params: { b: 1 } }),
]);

// 4. Missing fields.
for (const [name, body] of [
  ['empty object', {}],
  ['command exec only', { command: 'exec' }],
  ['command query only', { command: 'query' }],
  ['params only', { params: [1] }],
  ['ack only', { ack: 'all' }],
  ['transaction only', { transaction: true }],
  ['consistency only', { consistency: 'strong' }],
  ['min_index only', { min_index: 0 }],
  ['is_master false only', { is_master: false }],
] as const) {
  both(bad(`missing query: ${name}`, body));
}

// 5. Empty or whitespace-only SQL.
for (const [name, body] of [
  ['empty string', q('')],
  ['one space', q(' ')],
  ['whitespace mix', q('\n\t \r ')],
  ['a lone semicolon', q(';')],
  ['semicolons', q(';;;')],
  ['spaced semicolons', q(' ; ; ')],
  ['a line comment', q('-- nothing here')],
  ['a block comment', q('/* nothing */')],
  ['comments and semicolons', q('/* a */ ; -- b')],
  ['queries: empty string', { queries: [''] }],
  ['queries: blank string', { queries: ['   '] }],
  ['queries: empty item query', { queries: [{ query: '' }] }],
  ['queries: a tab', { queries: [{ query: '\t' }] }],
  ['queries: second item empty', { queries: ['SELECT 1', ''] }],
] as const) {
  both(bad(`empty query: ${name}`, body));
}

// 6. Unknown fields.
for (const [name, raw] of [
  ['foo', '{"query":"SELECT 1","foo":1}'],
  ['Query (case)', '{"Query":"SELECT 1"}'],
  ['isMaster (camelCase)', '{"query":"SELECT 1","isMaster":true}'],
  ['command with a trailing space', '{"query":"SELECT 1","command ":"query"}'],
  ['__proto__', '{"query":"SELECT 1","__proto__":{"is_master":true}}'],
  ['constructor', '{"query":"SELECT 1","constructor":{}}'],
  ['timeout', '{"query":"SELECT 1","timeout":100000}'],
  ['user', '{"query":"SELECT 1","user":"admin"}'],
  ['role', '{"query":"SELECT 1","role":"master"}'],
  ['cluster_token', '{"query":"SELECT 1","cluster_token":"x"}'],
  ['queries item field', '{"queries":[{"query":"SELECT 1","ack":"all"}]}'],
] as const) {
  both(bad(`unknown field: ${name}`, raw));
}

// 7. Unknown command, ack and consistency values.
alternate([
  ...['execute', 'select', 'write', 'read', 'EXEC', 'Query', ' exec', 'exec '].map((v) => bad(`unknown command "${v}"`, { command: v, query: 'SELECT 1' })),
  ...['quorum', 'none', 'majority', 'ALL', '2', ''].map((v) => bad(`unknown ack "${v}"`, { ack: v, query: 'SELECT 1' })),
  ...['eventual', 'linearizable', 'Strong', 'local ', ''].map((v) => bad(`unknown consistency "${v}"`, { consistency: v, query: 'SELECT 1' })),
]);

// 8. Bodies over --max-body: 413, also when sent chunked (no Content-Length).
const MIB = 1024 * 1024;
const tooLarge = (name: string, body: unknown, extra: Partial<Spec> = {}): Spec => ({
  name,
  body,
  fresh: true,
  expectStatus: 413,
  expectCode: 'PAYLOAD_TOO_LARGE',
  ...extra,
});
const padded = (size: number): string => {
  const head = '{"query":"SELECT 1 -- ';
  return head + 'x'.repeat(size - head.length - 2) + '"}';
};
both(tooLarge('a 1 MiB string literal', q(`SELECT '${'x'.repeat(MIB)}'`)));
both(tooLarge('a 1 MiB body sent chunked', JSON.stringify(q(`SELECT '${'x'.repeat(MIB)}'`)), { chunked: true }));
alternate([
  tooLarge('a 1 MiB parameter', q('SELECT ?', { params: ['y'.repeat(MIB)] })),
  tooLarge('queries totalling 1 MiB', { queries: Array.from({ length: 200 }, () => `SELECT 1 -- ${'z'.repeat(5000)}`) }),
  tooLarge('1 MiB in an unknown field', { query: 'SELECT 1', junk: 'j'.repeat(MIB) }),
  tooLarge('1 MiB of whitespace', ' '.repeat(MIB)),
  tooLarge('100 KB sent chunked', JSON.stringify(q(`SELECT '${'x'.repeat(100_000)}'`)), { chunked: true }),
  tooLarge('40000 params (80 KB)', q('SELECT ?', { params: Array(40_000).fill(0) })),
]);
both(tooLarge(`${MAX_BODY + 1} bytes (one over the limit)`, padded(MAX_BODY + 1)));
both({ name: `exactly ${MAX_BODY} bytes (at the limit)`, body: padded(MAX_BODY), expectStatus: 200, check: expectRows([[1]]) });

// 9. Deeply nested JSON: refused with 400, never a crash.
const nest = (open: string, close: string, n: number, inner = ''): string => open.repeat(n) + inner + close.repeat(n);
for (const [name, raw] of [
  ['10k unclosed [', '['.repeat(10_000)],
  ['30k unclosed [', '['.repeat(30_000)],
  ['10k closed []', nest('[', ']', 10_000)],
  ['6k nested objects', nest('{"a":', '}', 6_000, '1')],
  ['10k-deep params', `{"query":"SELECT ?","params":${nest('[', ']', 10_000)}}`],
  ['10k-deep named param', `{"query":"SELECT :a","params":{"a":${nest('[', ']', 10_000)}}}`],
  ['10k-deep queries', `{"queries":${nest('[', ']', 10_000)}}`],
  ['5k-deep query object', `{"query":${nest('{"a":', '}', 5_000, '1')}}`],
  ['10k unclosed { in params', `{"query":"SELECT 1","params":${'{"a":'.repeat(10_000)}`],
] as const) {
  both(bad(`deep JSON: ${name}`, raw));
}

// 10. Invalid UTF-8. The body is decoded as UTF-8 with replacement characters (U+FFFD):
// outside strings that makes the JSON malformed; inside a string it is just text.
const hasReplacement = (r: Reply) => assert.match(String(firstRows(r)?.[0]?.[0]), /\uFFFD/, r.text.slice(0, 300));
both(bad('invalid UTF-8: FF FE between tokens', bytes('{"query":"SELECT 1"', [0xff, 0xfe], '}')));
both(bad('invalid UTF-8: a lone continuation byte first', bytes([0x80], '{"query":"SELECT 1"}')));
both(bad('invalid UTF-8: body cut inside a 2-byte sequence', bytes(`{"query":"SELECT '`, [0xc3])));
alternate([
  bad('invalid UTF-8: in a field name', bytes('{"que', [0xff], 'ry":"SELECT 1"}')),
  bad('invalid UTF-8: in the command', bytes('{"command":"ex', [0xff], 'ec","query":"SELECT 1"}')),
  bad('invalid UTF-8: in ack', bytes('{"ack":"al', [0xfe], 'l","query":"SELECT 1"}')),
  bad('invalid UTF-8: UTF-16LE body', Buffer.from('{"query":"SELECT 1"}', 'utf16le')),
  { name: 'invalid UTF-8: as an SQL identifier', body: bytes('{"query":"SELECT ', [0xc3], '"}'), expectStatus: 400, expectCode: 'SQL_ERROR' },
  { name: 'invalid UTF-8: in a string literal (decoded as U+FFFD)', body: bytes(`{"query":"SELECT '`, [0xff, 0xfe], `'"}`), expectStatus: 200, check: hasReplacement },
  { name: 'invalid UTF-8: overlong C0 AF in a literal', body: bytes(`{"query":"SELECT '`, [0xc0, 0xaf], `'"}`), expectStatus: 200, check: hasReplacement },
  { name: 'invalid UTF-8: encoded surrogate ED A0 80', body: bytes(`{"query":"SELECT '`, [0xed, 0xa0, 0x80], `'"}`), expectStatus: 200, check: hasReplacement },
  { name: 'invalid UTF-8: in a parameter', body: bytes('{"query":"SELECT ?","params":["', [0xf8, 0x88, 0x80], '"]}'), expectStatus: 200, check: hasReplacement },
]);

// 11. NUL bytes inside SQL text. SQLite stops reading a statement at its first NUL, so
// what the classifier saw and what would run could differ: such text is refused.
both(bad('NUL after a complete SELECT', q('SELECT 1\u0000')));
both(bad('NUL hides a write from a "query" command', q('SELECT 1\u0000; DELETE FROM t', { command: 'query' })));
both(bad('NUL before an ATTACH', q("SELECT 1 \u0000; ATTACH 'x.db' AS y")));
alternate([
  bad('NUL before the statement', q('\u0000SELECT 1')),
  bad('NUL inside a string literal', q("SELECT 'a\u0000b'")),
  bad('NUL inside a comment', q('SELECT 1 /*\u0000*/')),
  bad('NUL splitting load_extension', q("SELECT load_ext\u0000ension('x')")),
  { name: 'NUL inside a parameter (bound, round-trips)', body: q('SELECT ?', { params: ['a\u0000b'] }), expectStatus: 200, check: expectRows([['a\u0000b']]) },
  bad('NUL inside the command', q('SELECT 1', { command: 'query\u0000' })),
  bad('NUL inside a field name', '{"query":"SELECT 1","query\\u0000":"SELECT 2"}'),
]);

// 12. Huge params arrays.
both(bad('5000 params for one placeholder', q('SELECT ?', { params: Array(5_000).fill(1) })));
alternate([
  bad('30000 params for one placeholder', q('SELECT ?', { params: Array(30_000).fill(0) })),
  bad('5000 params, the last an object', q('SELECT ?', { params: [...Array(4_999).fill(1), { x: 1 }] })),
  bad('5000 named params, the used one missing', q('SELECT :a', { params: Object.fromEntries(Array.from({ length: 5_000 }, (_, i) => [`k${i}`, i])) })),
  bad('1001 queries (over --max-statements)', { queries: Array(1_001).fill('SELECT 1') }),
]);
// The cap on statements also holds for many statements in one text.
on('master', bad('1001 statements in one query text (over --max-statements)', q('SELECT 1;'.repeat(1_001))));

// 13. Spoofed is_master.
const spoof = (name: string, body: Record<string, unknown>): Spec => ({ name: `is_master true: ${name}`, body: { ...body, is_master: true }, expectStatus: 403, expectCode: 'FORBIDDEN' });
both(spoof('a read', q('SELECT 1')));
both(spoof('a write', q("INSERT INTO t(v) VALUES ('spoofed')")));
both(spoof('a batch', { queries: ["UPDATE t SET v = 'x' WHERE id = 1"], transaction: true }));
on('master', spoof('a schema change', q('CREATE TABLE spoofed (a)')));
on('slave', spoof('a schema change', q('CREATE TABLE spoofed (a)')));
on('slave', spoof('a strong read', q('SELECT 1', { consistency: 'strong' })));
both({ name: 'is_master false is accepted', body: q('SELECT 1', { is_master: false }), expectStatus: 200, check: expectRows([[1]]) });
// A forwarded request's epoch stamp (x-sqlfleet-epoch): not an integer is a bad request; an
// epoch older than the node's (a write held up across a failover) is refused, nothing applied.
for (const v of ['abc', '-1', '1.5', '', '99999999999999999999']) both(bad(`x-sqlfleet-epoch "${v}"`, q('SELECT 1'), { headers: { 'x-sqlfleet-epoch': v } }));
both({
  name: 'x-sqlfleet-epoch older than the node\'s: a write is refused, not applied',
  body: q("INSERT INTO t(v) VALUES ('late')"),
  headers: { 'x-sqlfleet-epoch': '0' },
  expectStatus: 503,
  expectCode: 'MASTER_UNAVAILABLE',
  check: (r) => assert.equal(r.body.error.outcome, 'not_applied', r.text),
});

// 14. Internal endpoints without or with a wrong cluster token: 401.
const unauthorized = (name: string, path: string, headers: Spec['headers'], body: unknown = '{}', extra: Partial<Spec> = {}): Spec => ({
  name,
  path,
  headers,
  body,
  expectStatus: 401,
  expectCode: 'UNAUTHORIZED',
  ...extra,
});
const snapshotBody = Buffer.from('SQLite format 3\u0000 not really');
for (const path of ['/internal/append', '/internal/heartbeat', '/internal/snapshot']) {
  const body = path === '/internal/snapshot' ? snapshotBody : path === '/internal/heartbeat' ? { id: 1, url: 'http://127.0.0.1:1', applied_index: 0 } : { entries: [] };
  both(unauthorized(`POST ${path} without a token`, path, {}, body));
  both(unauthorized(`POST ${path} with a wrong token`, path, { authorization: 'Bearer wrong' }, body));
  on('master', unauthorized(`POST ${path} with Basic credentials`, path, () => ({ authorization: `Basic ${Buffer.from(`cluster:${token}`).toString('base64')}` }), body));
  on('slave', unauthorized(`POST ${path} with "bearer" in lower case`, path, () => ({ authorization: `bearer ${token}` }), body));
  on('master', unauthorized(`POST ${path} with the token plus one character`, path, () => ({ authorization: `Bearer ${token}x` }), body));
  on('slave', unauthorized(`POST ${path} with the token minus one character`, path, () => ({ authorization: `Bearer ${token.slice(0, -1)}` }), body));
}
both(unauthorized('POST /internal/append, 1 MiB, without a token', '/internal/append', {}, 'x'.repeat(MIB), { fresh: true }));
// Membership endpoints (README: "replication and membership endpoints need the cluster token").
for (const [method, path] of [
  ['POST', '/nodes/1/resync'],
  ['DELETE', '/nodes/1'],
] as const) {
  for (const [how, headers] of [
    ['without a token', {}],
    ['with a wrong token', { authorization: 'Bearer wrong' }],
  ] as const) {
    both(unauthorized(`${method} ${path} ${how}`, path, headers, undefined, { method, late: true }));
  }
}

// 15. Forbidden statement families: 403 FORBIDDEN_STATEMENT on every node.
const forbiddenSql: Array<[string, unknown]> = [
  // ATTACH / DETACH
  ['ATTACH a file', q("ATTACH 'x.db' AS x")],
  ['ATTACH DATABASE :memory:', q("ATTACH DATABASE ':memory:' AS m")],
  ['attach (lower case) a URI', q("attach database 'file:x?mode=memory' as y")],
  ['ATTACH after a SELECT in one text', q("SELECT 1; ATTACH 'x.db' AS x")],
  ['ATTACH in a queries batch', { queries: ['SELECT 1', "ATTACH 'x.db' AS x"], transaction: true }],
  ['DETACH', q('DETACH x')],
  ['DETACH DATABASE main', q('DETACH DATABASE main')],
  // load_extension anywhere
  ['load_extension in the SELECT list', q("SELECT load_extension('/tmp/evil.so')")],
  ['load_extension in WHERE', q("SELECT 1 FROM t WHERE load_extension('x') IS NULL")],
  ['load_extension in a subquery', q("SELECT * FROM t WHERE id IN (SELECT load_extension('x'))")],
  ['load_extension in INSERT VALUES', q("INSERT INTO t(v) VALUES (load_extension('x'))")],
  ['load_extension in a trigger body', q("CREATE TRIGGER evil AFTER INSERT ON t BEGIN SELECT load_extension('x'); END")],
  ['load_extension in UPDATE SET', q("UPDATE t SET v = load_extension('x')")],
  ['load_extension in DELETE WHERE', q("DELETE FROM t WHERE load_extension('x')")],
  ['load_extension in ORDER BY', q('SELECT v FROM t ORDER BY load_extension(v)')],
  ['load_extension in a CTE', q("WITH x AS (SELECT load_extension('a') AS y) SELECT y FROM x")],
  ['load_extension in a CASE', q("SELECT CASE WHEN 1 THEN load_extension('x') END")],
  ['load_extension in a JOIN ON', q("SELECT * FROM t JOIN a ON load_extension('x') = a.x")],
  ['load_extension in a view', q("CREATE VIEW evil AS SELECT load_extension('x')")],
  ['load_extension in a CHECK', q("CREATE TABLE evil (a CHECK (load_extension('x')))")],
  ['load_extension in a DEFAULT', q("CREATE TABLE evil (a DEFAULT (load_extension('x')))")],
  ['load_extension in an index expression', q('CREATE INDEX evil ON t (load_extension(v))')],
  ['"load_extension" quoted', q(`SELECT "load_extension"('x')`)],
  ['[load_extension] bracketed', q("SELECT [load_extension]('x')")],
  ['load_extension/**/( with a comment', q("SELECT load_extension/**/('x')")],
  ['LOAD_EXTENSION upper case, two args', q("SELECT LOAD_EXTENSION('x', 'entry')")],
  ['load_extension behind a parser gap (AVG(ALL))', q("SELECT AVG(ALL id), load_extension('x') FROM t")],
  ['load_extension as a parameter-fed call', q('SELECT load_extension(?)', { params: ['/tmp/x.so'] })],
  // VACUUM INTO
  ['VACUUM INTO', q("VACUUM INTO '/tmp/sqlfleet-stolen.db'")],
  ['VACUUM main INTO', q("VACUUM main INTO 'stolen.db'")],
  ['vacuum into (lower case)', q("vacuum into 'file:stolen.db'")],
  // TEMP objects
  ['CREATE TEMP TABLE', q('CREATE TEMP TABLE tt (a)')],
  ['CREATE TEMPORARY TABLE AS', q('CREATE TEMPORARY TABLE tt AS SELECT 1')],
  ['CREATE TEMP VIEW', q('CREATE TEMP VIEW tv AS SELECT 1')],
  ['CREATE TEMP TRIGGER', q('CREATE TEMP TRIGGER tr AFTER INSERT ON t BEGIN SELECT 1; END')],
  ['CREATE TABLE temp.x', q('CREATE TABLE temp.x (a)')],
  ['CREATE TABLE "temp".x', q('CREATE TABLE "temp".x (a)')],
  ['CREATE TABLE TEMP.x', q('CREATE TABLE TEMP.x (a)')],
  ['CREATE VIEW temp.v', q('CREATE VIEW temp.v AS SELECT 1')],
  ['CREATE TRIGGER temp.tr', q('CREATE TRIGGER temp.tr AFTER INSERT ON t BEGIN SELECT 1; END')],
  ['CREATE INDEX temp.i', q('CREATE INDEX temp.i ON t (v)')],
  // internal tables (reads and writes)
  ['SELECT from _sqlfleet_log', q('SELECT * FROM _sqlfleet_log')],
  ['SELECT from _sqlfleet_meta', q('SELECT count(*) FROM _sqlfleet_meta')],
  ['main._sqlfleet_meta', q('SELECT * FROM main._sqlfleet_meta')],
  ['"_SQLFLEET_LOG" quoted, upper case', q('SELECT * FROM "_SQLFLEET_LOG"')],
  ["'_sqlfleet_log' as a string", q("SELECT * FROM '_sqlfleet_log'")],
  ['[_sqlfleet_log] bracketed', q('SELECT * FROM [_sqlfleet_log]')],
  ['_sqlfleet_log in a JOIN', q('SELECT * FROM t JOIN _sqlfleet_log l ON l.rowid = t.id')],
  ['_sqlfleet_meta in a subquery', q('SELECT (SELECT value FROM _sqlfleet_meta LIMIT 1)')],
  ['_sqlfleet_log in a CTE', q('WITH x AS (SELECT * FROM _sqlfleet_log) SELECT * FROM x')],
  ['INSERT INTO _sqlfleet_log', q('INSERT INTO _sqlfleet_log DEFAULT VALUES')],
  ['UPDATE _sqlfleet_meta', q("UPDATE _sqlfleet_meta SET value = 0 WHERE key = 'applied_index'")],
  ['DELETE FROM _sqlfleet_log', q('DELETE FROM _sqlfleet_log')],
  ['DROP TABLE _sqlfleet_log', q('DROP TABLE _sqlfleet_log')],
  ['ALTER TABLE _sqlfleet_meta', q('ALTER TABLE _sqlfleet_meta ADD COLUMN z')],
  ['a trigger on _sqlfleet_log', q('CREATE TRIGGER tl AFTER INSERT ON _sqlfleet_log BEGIN SELECT 1; END')],
  ['a view over _sqlfleet_log', q('CREATE VIEW lv AS SELECT * FROM _sqlfleet_log')],
  ['a write to _sqlfleet_meta in a trigger body', q("CREATE TRIGGER tm AFTER INSERT ON t BEGIN UPDATE _sqlfleet_meta SET value = 0; END")],
  ['PRAGMA table_info(_sqlfleet_log)', q('PRAGMA table_info(_sqlfleet_log)')],
  ["pragma_table_info('_sqlfleet_meta')", q("SELECT * FROM pragma_table_info('_sqlfleet_meta')")],
  ['UPDATE sqlite_master', q("UPDATE sqlite_master SET sql = ''")],
  ['DELETE FROM sqlite_sequence', q('DELETE FROM sqlite_sequence')],
  // PRAGMAs that change state, and database_list
  ['PRAGMA journal_mode=DELETE', q('PRAGMA journal_mode=DELETE')],
  ['PRAGMA journal_mode = WAL', q('PRAGMA journal_mode = WAL')],
  ['PRAGMA main.journal_mode=DELETE', q('PRAGMA main.journal_mode=DELETE')],
  ['PRAGMA synchronous=OFF', q('PRAGMA synchronous=OFF')],
  ['PRAGMA synchronous = 0', q('PRAGMA synchronous = 0')],
  ['PRAGMA writable_schema=1', q('PRAGMA writable_schema=1')],
  ['PRAGMA writable_schema=ON', q('PRAGMA writable_schema=ON')],
  ['PRAGMA wal_checkpoint(TRUNCATE)', q('PRAGMA wal_checkpoint(TRUNCATE)')],
  ['PRAGMA wal_checkpoint', q('PRAGMA wal_checkpoint')],
  ['PRAGMA foreign_keys=OFF', q('PRAGMA foreign_keys=OFF')],
  ['PRAGMA foreign_keys = 0', q('PRAGMA foreign_keys = 0')],
  ['PRAGMA database_list', q('PRAGMA database_list')],
  ['pragma_database_list table function', q('SELECT * FROM pragma_database_list')],
  ['PRAGMA temp_store=MEMORY', q('PRAGMA temp_store=MEMORY')],
  ['PRAGMA cache_size=10', q('PRAGMA cache_size=10')],
  ['PRAGMA query_only=1', q('PRAGMA query_only=1')],
  ['PRAGMA locking_mode=EXCLUSIVE', q('PRAGMA locking_mode=EXCLUSIVE')],
  ['PRAGMA mmap_size=268435456', q('PRAGMA mmap_size=268435456')],
  ["PRAGMA user_version='abc'", q("PRAGMA user_version='abc'")],
  ['PRAGMA temp.user_version=3', q('PRAGMA temp.user_version=3')],
  ['PRAGMA recursive_triggers=ON', q('PRAGMA recursive_triggers=ON')],
  ['PRAGMA optimize', q('PRAGMA optimize')],
  ['PRAGMA shrink_memory', q('PRAGMA shrink_memory')],
  ['PRAGMA incremental_vacuum(10)', q('PRAGMA incremental_vacuum(10)')],
  ['a state PRAGMA after a SELECT in one text', q('SELECT 1; PRAGMA synchronous=OFF')],
];
for (const [name, body] of forbiddenSql) both(forbidden(`forbidden: ${name}`, body));

// 16. Transaction control alone.
const txn = (name: string, body: unknown): Spec => ({ name: `transaction control: ${name}`, body, expectStatus: 400, expectCode: 'TRANSACTION_CONTROL' });
for (const sql of ['BEGIN', 'BEGIN TRANSACTION', 'BEGIN IMMEDIATE', 'BEGIN EXCLUSIVE', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT s1', 'RELEASE s1', 'ROLLBACK TO s1', 'BEGIN; SELECT 1; COMMIT']) {
  both(txn(sql, q(sql)));
}
both(txn('queries ["BEGIN"]', { queries: ['BEGIN'] }));
both(txn('queries [.., "COMMIT"]', { queries: ["UPDATE t SET v = v WHERE id = 1", 'COMMIT'] }));

// 17. Other refusals that must leave every replica as it was.
alternate([
  { name: 'READ_ONLY_COMMAND: INSERT with command query', body: q("INSERT INTO t(v) VALUES ('ro')", { command: 'query' }), expectStatus: 400, expectCode: 'READ_ONLY_COMMAND' },
  { name: 'READ_ONLY_COMMAND: UPDATE with command query', body: q("UPDATE t SET v = 'ro'", { command: 'query' }), expectStatus: 400, expectCode: 'READ_ONLY_COMMAND' },
  { name: 'READ_ONLY_COMMAND: DELETE with command query', body: q('DELETE FROM t', { command: 'query' }), expectStatus: 400, expectCode: 'READ_ONLY_COMMAND' },
  { name: 'READ_ONLY_COMMAND: DROP with command query', body: q('DROP TABLE t', { command: 'query' }), expectStatus: 400, expectCode: 'READ_ONLY_COMMAND' },
  { name: 'SQL_SYNTAX: SELEC', body: q('SELEC 1'), expectStatus: 400, expectCode: 'SQL_SYNTAX' },
  { name: 'SQL_SYNTAX: INSERT INTO', body: q('INSERT INTO'), expectStatus: 400, expectCode: 'SQL_SYNTAX' },
  { name: 'SQL_SYNTAX: unbalanced parenthesis', body: q('SELECT (1'), expectStatus: 400, expectCode: 'SQL_SYNTAX' },
  { name: 'SQL_ERROR: no such table', body: q('SELECT * FROM nope'), expectStatus: 400, expectCode: 'SQL_ERROR' },
  { name: 'SQL_ERROR: no such column', body: q('SELECT nope FROM t'), expectStatus: 400, expectCode: 'SQL_ERROR' },
  { name: 'SQL_ERROR: write to a missing table', body: q('INSERT INTO nope VALUES (1)'), expectStatus: 400, expectCode: 'SQL_ERROR' },
  { name: 'CONSTRAINT: duplicate UNIQUE value', body: q("INSERT INTO t(v) VALUES ('a')"), expectStatus: 409, expectCode: 'CONSTRAINT' },
  { name: 'CONSTRAINT: NOT NULL', body: q('INSERT INTO t(v) VALUES (NULL)'), expectStatus: 409, expectCode: 'CONSTRAINT' },
  { name: 'CONSTRAINT: a batch whose second write fails (first rolled back)', body: { queries: ["INSERT INTO t(v) VALUES ('rolled-back')", "INSERT INTO t(v) VALUES ('a')"], transaction: true }, expectStatus: 409, expectCode: 'CONSTRAINT' },
  { name: 'CONSTRAINT: a multi-statement text whose last write fails', body: q("UPDATE t SET v = v || '!' WHERE id = 1; INSERT INTO t(id, v) VALUES (2, 'dup-pk')"), expectStatus: 409, expectCode: 'CONSTRAINT' },
  { name: 'TIMEOUT: min_index far ahead', body: q('SELECT 1', { min_index: 1_000_000_000 }), expectStatus: 504, expectCode: 'TIMEOUT' },
  { name: 'NOT_FOUND: PUT /', method: 'PUT', body: q('SELECT 1'), expectStatus: 404, expectCode: 'NOT_FOUND' },
  { name: 'NOT_FOUND: POST /query', path: '/query', body: q('SELECT 1'), expectStatus: 404, expectCode: 'NOT_FOUND' },
  { name: 'NOT_FOUND: GET /internal/append', method: 'GET', path: '/internal/append', expectStatus: 404, expectCode: 'NOT_FOUND' },
]);
for (const sql of ['CREATE TABLE nope (a)', 'DROP TABLE t', 'CREATE INDEX ti ON t (v)', 'ALTER TABLE t ADD COLUMN w']) {
  on('slave', { name: `SCHEMA_ON_SLAVE: ${sql}`, body: q(sql), expectStatus: 403, expectCode: 'SCHEMA_ON_SLAVE' });
}

// 18. Results over --max-rows are cut and flagged (reads; nothing changes).
const truncatedAt = (n: number) => (r: Reply) => {
  const res = r.body.results[0];
  assert.equal(res.truncated, true, `expected truncated: true: ${r.text.slice(0, 200)}`);
  assert.equal(res.rows.length, n);
};
both({ name: `SELECT * of a ${TABLE_ROWS}-row table: truncated at --max-rows`, body: q('SELECT * FROM a'), expectStatus: 200, check: truncatedAt(MAX_ROWS) });
alternate([
  { name: 'LIMIT 1001: truncated', body: q('SELECT x FROM a LIMIT 1001'), expectStatus: 200, check: truncatedAt(MAX_ROWS) },
  {
    name: 'LIMIT 1000: exactly --max-rows, not truncated',
    body: q('SELECT x FROM a LIMIT 1000'),
    expectStatus: 200,
    check: (r) => {
      assert.equal(r.body.results[0].truncated, undefined, r.text.slice(0, 200));
      assert.equal(r.body.results[0].rows.length, MAX_ROWS);
    },
  },
]);

const early = cases.filter((k) => !k.late);
const late = cases.filter((k) => k.late);

// ---------------------------------------------------------------------------------------
// Running it

function nodeOf(t: Target): TestNode {
  return t === 'master' ? cluster().master : cluster().slaves[0]!;
}

async function runCase(k: Case): Promise<Reply> {
  const node = nodeOf(k.node);
  const agent = k.fresh ? new Agent() : undefined;
  try {
    return await send(`${node.url}${k.path ?? '/'}`, {
      method: k.method ?? (k.body === undefined ? 'POST' : undefined),
      body: k.body,
      headers: typeof k.headers === 'function' ? k.headers() : k.headers,
      chunked: k.chunked,
      contentType: k.body instanceof Uint8Array && k.path === '/internal/snapshot' ? 'application/octet-stream' : undefined,
      ...(agent ? { dispatcher: agent } : {}),
      timeoutMs: 20_000,
    });
  } finally {
    await agent?.close();
  }
}

function assertCase(k: Case, r: Reply): void {
  const what = `${k.name} (${k.method ?? 'POST'} ${k.path ?? '/'})`;
  const want = `${k.expectStatus}${k.expectCode ? ` ${k.expectCode}` : ''}`;
  assert.equal(r.status, k.expectStatus, `${what}: expected ${want}, got ${r.status}: ${r.text.slice(0, 500)}`);
  if (k.expectCode) {
    assertError(r, k.expectStatus, k.expectCode, what);
  } else {
    assert.equal(r.status, k.expectStatus, `${what}: expected ${k.expectStatus}, got ${r.status}: ${r.text.slice(0, 500)}`);
    assert.equal(r.body?.ok, true, `${what}: expected ok:true, got ${r.text.slice(0, 500)}`);
  }
  k.check?.(r);
}

function caseTest(k: Case, i: number): void {
  test(`#${i + 1} ${k.name}`, { timeout: 60_000 }, async () => {
    const r = await runCase(k);
    try {
      assertCase(k, r);
    } catch (e) {
      printLogs([nodeOf(k.node)], 20);
      throw e;
    }
  });
}

const { cluster } = useCluster(
  {
    slaves: 1,
    extraArgs: [
      '--max-body', String(MAX_BODY),
      '--query-timeout', String(QUERY_TIMEOUT_MS),
      '--max-rows', String(MAX_ROWS),
      '--read-wait', String(READ_WAIT_MS),
    ],
    ...PATIENT,
  },
  async (c) => {
    token = readFileSync(join(c.dataDir, 'cluster.token'), 'utf8').trim();
    const { master, nodes } = c;
    const setup = async (sql: string): Promise<number> => {
      const r = await send(master.url, { body: { command: 'exec', query: sql }, timeoutMs: 30_000 });
      assert.equal(r.status, 200, `setup ${sql}: ${r.text}`);
      return r.body.index as number;
    };
    await setup('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
    await setup("INSERT INTO t(v) VALUES ('a'), ('b'), ('c')");
    await setup('CREATE TABLE a (x INTEGER); CREATE TABLE b (x INTEGER); CREATE TABLE probe (id INTEGER PRIMARY KEY, v TEXT)');
    await setup(`WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < ${TABLE_ROWS}) INSERT INTO a SELECT x FROM n`);
    const last = await setup('INSERT INTO b SELECT x FROM a');
    await waitForIndex(nodes, last, 20_000);
    const sums = await checksums(nodes);
    assert.deepEqual(sums[1], sums[0], 'replicas differ before the matrix');
    const applied = await Promise.all(nodes.map(async (n) => (await status(n)).applied_index as number));
    baseline = { checksums: sums, applied };
  },
);

test(`the matrix has at least 200 cases (${cases.length})`, () => {
  assert.ok(cases.length >= 200, `only ${cases.length} cases`);
  const names = new Set(cases.map((k) => k.name));
  assert.equal(names.size, cases.length, 'case names are unique');
});

early.forEach((k, i) => caseTest(k, i));

test('after the matrix: every node serves, replicas equal and unchanged, applied index unmoved', { timeout: 60_000 }, async () => {
  const { nodes, master } = cluster();
  assert.ok(baseline, 'no baseline');
  try {
    for (const n of nodes) {
      assert.ok(n.running, `${n.label()} exited`);
      const h = await send(`${n.url}/health`);
      assert.equal(h.status, 200, `${n.label()} /health: ${h.status} ${h.text}`);
    }
    const applied = await Promise.all(nodes.map(async (n) => (await status(n)).applied_index as number));
    assert.deepEqual(applied, baseline.applied, 'applied index moved: a refused request was logged or applied');
    const sums = await checksums(nodes);
    assert.deepEqual(sums[1], sums[0], 'slave checksum differs from master');
    assert.deepEqual(sums, baseline.checksums, 'a replica changed during the matrix');
    const s = await status(master);
    const slave = (s.nodes as Array<{ id: number; state: string }>).find((x) => x.id === 1);
    assert.equal(slave?.state, 'up', `slave 1 in master /status: ${JSON.stringify(s.nodes)}`);
  } catch (e) {
    printLogs(nodes, 60);
    throw e;
  }
});

// ---------------------------------------------------------------------------------------
// Runaway reads (last: abandoned worker threads keep running until the node stops)

const ENDLESS_ROWS = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c';
const ENDLESS_COUNT = 'SELECT count(*) FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c)';
const CARTESIAN = 'SELECT count(*) FROM a, b, a AS c';
const FAST_MS = 1_000;
const TIMEOUT_BOUND_MS = 3_500;

test('runaway: endless WITH RECURSIVE returning rows → 200, cut at --max-rows with truncated: true', { timeout: 60_000 }, async () => {
  const r = await send(cluster().slaves[0]!.url, { body: q(ENDLESS_ROWS) });
  assert.equal(r.status, 200, r.text.slice(0, 300));
  const res = r.body.results[0];
  assert.equal(res.truncated, true);
  assert.equal(res.rows.length, MAX_ROWS);
  assert.deepEqual(res.rows.at(-1), [MAX_ROWS]);
});

test('runaway: endless recursive aggregate → 504 TIMEOUT in ~2 s while reads, writes and /health answer in < 1 s', { timeout: 60_000 }, async () => {
  const { master, slaves, nodes } = cluster();
  const slave = slaves[0]!;
  const timings: string[] = [];
  try {
    const t0 = performance.now();
    let finished = false;
    const runaway = send(slave.url, { body: q(ENDLESS_COUNT), timeoutMs: 30_000 }).finally(() => (finished = true));
    await new Promise((r) => setTimeout(r, 100));
    let rounds = 0;
    let k = 0;
    while (!finished) {
      rounds++;
      const probes: Array<[string, () => Promise<Reply>]> = [
        ['read on the slave', () => send(slave.url, { body: q('SELECT count(*) FROM t') })],
        ['read on the master', () => send(master.url, { body: q('SELECT count(*) FROM t') })],
        ['write on the master', () => send(master.url, { body: q('INSERT INTO probe(v) VALUES (?)', { params: [`m${++k}`] }) })],
        ['write via the slave', () => send(slave.url, { body: q('INSERT INTO probe(v) VALUES (?)', { params: [`s${++k}`] }) })],
        ['/health on the slave', () => send(`${slave.url}/health`)],
        ['/health on the master', () => send(`${master.url}/health`)],
      ];
      for (const [what, fn] of probes) {
        const r = await fn();
        timings.push(`${what}: ${r.status} ${Math.round(r.ms)} ms`);
        assert.equal(r.status, 200, `${what} during the runaway: ${r.status} ${r.text}`);
        assert.ok(r.ms < FAST_MS, `${what} took ${Math.round(r.ms)} ms during the runaway (limit ${FAST_MS})`);
      }
    }
    const r = await runaway;
    const ms = performance.now() - t0;
    assertError(r, 504, 'TIMEOUT', 'endless aggregate');
    assert.ok(ms >= QUERY_TIMEOUT_MS - 100, `answered after ${Math.round(ms)} ms, before --query-timeout`);
    assert.ok(ms < TIMEOUT_BOUND_MS, `answered after ${Math.round(ms)} ms (bound ${TIMEOUT_BOUND_MS})`);
    assert.ok(rounds >= 1, 'no probe round completed during the runaway');
    // The slave still reads (on a fresh worker) and every write reached it.
    const after = await send(slave.url, { body: q('SELECT count(*) FROM probe') });
    assert.equal(after.status, 200, after.text);
    assert.equal(after.body.results[0].rows[0][0], k);
  } catch (e) {
    process.stderr.write(`\nprobe timings during the runaway:\n${timings.join('\n')}\n`);
    printLogs(nodes, 40);
    throw e;
  }
});

const BURST = 8;
let burst: Reply[] = [];
test(`runaway: cartesian join of two ${TABLE_ROWS}-row tables → 504 TIMEOUT`, { timeout: 60_000 }, async () => {
  const { master } = cluster();
  const t0 = performance.now();
  const runaway = send(master.url, { body: q(CARTESIAN), timeoutMs: 30_000 });
  await new Promise((r) => setTimeout(r, 150));
  // A small burst of concurrent reads lands while the runaway holds one read worker.
  const reads = Promise.all(Array.from({ length: BURST }, () => send(master.url, { body: q('SELECT count(*) FROM t'), timeoutMs: 30_000 })));
  const r = await runaway;
  const ms = performance.now() - t0;
  burst = await reads;
  assertError(r, 504, 'TIMEOUT', 'cartesian join');
  assert.ok(ms < TIMEOUT_BOUND_MS, `answered after ${Math.round(ms)} ms (bound ${TIMEOUT_BOUND_MS})`);
});

test('runaway: concurrent reads sent during the cartesian runaway are answered 200, not refused', () => {
  assert.equal(burst.length, BURST, 'the burst did not run');
  const summary = burst.map((r) => `${r.status} ${r.body?.error?.code ?? ''} ${Math.round(r.ms)} ms`).join('; ');
  for (const r of burst) assert.equal(r.status, 200, `burst of ${BURST} reads during a runaway: ${summary}; e.g. ${r.text}`);
});

test('after the runaways: every node serves and the replicas are equal', { timeout: 60_000 }, async () => {
  const { nodes, master } = cluster();
  for (const n of nodes) {
    const h = await send(`${n.url}/health`);
    assert.equal(h.status, 200, `${n.label()} /health: ${h.text}`);
  }
  const index = (await status(master)).applied_index as number;
  await waitForIndex(nodes, index, 20_000);
  await waitFor(async () => {
    const sums = await checksums(nodes);
    assert.deepEqual(sums[1], sums[0]);
    return true;
  }, { timeoutMs: 15_000, intervalMs: 100, message: 'equal checksums' });
});

// ---------------------------------------------------------------------------------------
// Membership endpoints without the cluster token (last: if wrongly accepted, they act)

late.forEach((k, i) => caseTest(k, early.length + i));

test('at the end: every node still serves', { timeout: 60_000 }, async () => {
  for (const n of cluster().nodes) {
    await waitFor(async () => (await send(`${n.url}/health`)).status === 200, { timeoutMs: 15_000, intervalMs: 100, message: `${n.label()} /health 200` });
  }
});
