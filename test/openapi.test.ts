// Issue 7.4: GET /openapi.json is true. Its paths are exactly the public routes of
// createApp(); every documented operation answers on a running cluster with a documented
// status, content type and schema; its request fields are the ones the node accepts; every
// error code a client can see is documented with its status. The Postman collection in
// docs/ runs against the same cluster with the answers its scripts expect.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES } from '../src/errors.js';
import { createApp, type AppDeps } from '../src/http/app.js';
import { openapiDocument } from '../src/http/openapi.js';
import { REPO_ROOT, get, post, useCluster, waitForIndex } from './helpers/cluster.js';

/** Codes nodes only send each other (replication): no client request produces them. */
const NODE_TO_NODE = new Set(['STALE_EPOCH', 'DIVERGED']);
/** Public codes no route returns today (documented as reserved). */
const NEVER_RETURNED = new Set<string>();
/** The body fields POST / accepts, if src/core/request.ts does not export FIELDS. */
const FALLBACK_FIELDS = ['command', 'query', 'params', 'queries', 'transaction', 'is_master', 'ack', 'min_index', 'consistency'];

type Json = any;
const doc: Json = openapiDocument();

const { it, cluster } = useCluster({ slaves: 2, extraArgs: ['--read-wait', '300'] });

// ---- a validator for the JSON Schema subset the document uses ----------------------------

function resolve(schema: Json): Json {
  if (!schema?.$ref) return schema;
  const name = String(schema.$ref).replace('#/components/schemas/', '');
  assert.ok(doc.components.schemas[name], `dangling $ref ${schema.$ref}`);
  return resolve(doc.components.schemas[name]);
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

/** Problems of `value` against `schema`, as "path: reason" strings (empty when valid). */
function validate(value: unknown, raw: Json, path = '$'): string[] {
  const s = resolve(raw);
  const out: string[] = [];
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    const t = typeOf(value);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) return [`${path}: ${t} is not ${types.join('|')}`];
  }
  if (s.const !== undefined && value !== s.const) out.push(`${path}: ${JSON.stringify(value)} is not ${JSON.stringify(s.const)}`);
  if (s.enum && !s.enum.includes(value)) out.push(`${path}: ${JSON.stringify(value)} not in ${JSON.stringify(s.enum)}`);
  if (typeof value === 'number' && s.minimum !== undefined && value < s.minimum) out.push(`${path}: ${value} < ${s.minimum}`);
  if (typeof value === 'string') {
    if (s.minLength !== undefined && value.length < s.minLength) out.push(`${path}: shorter than ${s.minLength}`);
    if (s.pattern && !new RegExp(s.pattern).test(value)) out.push(`${path}: does not match ${s.pattern}`);
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems) out.push(`${path}: fewer than ${s.minItems} items`);
    if (s.items) value.forEach((v, i) => out.push(...validate(v, s.items, `${path}[${i}]`)));
  }
  if (typeOf(value) === 'object') {
    const o = value as Record<string, unknown>;
    for (const k of s.required ?? []) if (!(k in o)) out.push(`${path}: missing ${k}`);
    for (const [k, v] of Object.entries(o)) {
      if (s.propertyNames?.pattern && !new RegExp(s.propertyNames.pattern).test(k)) out.push(`${path}: bad property name ${k}`);
      if (s.properties?.[k]) out.push(...validate(v, s.properties[k], `${path}.${k}`));
      else if (s.additionalProperties === false) out.push(`${path}: unexpected property ${k}`);
      else if (s.additionalProperties && typeof s.additionalProperties === 'object') out.push(...validate(v, s.additionalProperties, `${path}.${k}`));
    }
  }
  if (s.oneOf) {
    const matches = s.oneOf.filter((alt: Json) => validate(value, alt, path).length === 0).length;
    if (matches !== 1) out.push(`${path}: matches ${matches} of oneOf (want 1)`);
  }
  return out;
}

function assertValid(value: unknown, schema: Json, what: string): void {
  const problems = validate(value, schema);
  assert.deepEqual(problems, [], `${what} does not match its documented schema: ${JSON.stringify(value)}`);
}

// ---- helpers over the document ------------------------------------------------------------

const METHODS = ['get', 'post', 'put', 'delete', 'patch'];

/** Every documented operation as [METHOD, path, operation]. */
function operations(): Array<[string, string, Json]> {
  const out: Array<[string, string, Json]> = [];
  for (const [path, item] of Object.entries<Json>(doc.paths)) {
    for (const m of METHODS) if (item[m]) out.push([m.toUpperCase(), path, item[m]]);
  }
  return out;
}

function mediaType(header: string | null): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}

/** Checks an answer against the operation's documented responses; returns the parsed body. */
function checkAnswer(op: Json, what: string, status: number, contentType: string | null, text: string): unknown {
  const documented = op.responses[String(status)];
  assert.ok(documented, `${what}: answered ${status}, documented: ${Object.keys(op.responses).join(', ')}; body ${text.slice(0, 300)}`);
  const types = Object.keys(documented.content ?? {});
  assert.ok(types.includes(mediaType(contentType)), `${what}: content type ${contentType}, documented ${types.join(', ')}`);
  if (mediaType(contentType) !== 'application/json') return text;
  const body = JSON.parse(text);
  assertValid(body, documented.content['application/json'].schema, `${what} (${status})`);
  if (body?.ok === false) {
    const listed = Object.keys(documented.content['application/json'].examples ?? {});
    assert.ok(listed.includes(body.error.code), `${what}: error ${body.error.code} is not among the codes documented for ${status}: ${listed.join(', ')}`);
  }
  return body;
}

// ---- tests ---------------------------------------------------------------------------------

test('the document is OpenAPI 3.1 and every $ref resolves', () => {
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.info.title && doc.info.version);
  const refs = JSON.stringify(doc).match(/"\$ref":"[^"]+"/g) ?? [];
  assert.ok(refs.length > 10);
  for (const r of refs) resolve({ $ref: JSON.parse(`{${r}}`).$ref });
});

test('documented paths are exactly the public routes of createApp()', () => {
  const stub = { api: {}, token: 't', users: null, maxBody: 1024, maxStatements: 10, log: () => {} } as unknown as AppDeps;
  const routes = new Set(
    createApp(stub)
      .routes.filter((r) => METHODS.includes(r.method.toLowerCase()) && !r.path.startsWith('/internal/'))
      .map((r) => `${r.method.toUpperCase()} ${r.path.replace(/:([A-Za-z_]+)/g, '{$1}')}`),
  );
  const documented = new Set(operations().map(([m, p]) => `${m} ${p}`));
  assert.deepEqual([...documented].sort(), [...routes].sort());
});

test('request fields in the schema are the fields POST / accepts', async () => {
  const mod: Record<string, unknown> = await import('../src/core/request.js');
  const accepted = mod.FIELDS instanceof Set ? [...(mod.FIELDS as Set<string>)] : FALLBACK_FIELDS;
  const schema = doc.components.schemas.QueryRequest;
  assert.deepEqual(Object.keys(schema.properties).sort(), [...accepted].sort());
  assert.equal(schema.additionalProperties, false, 'unknown fields are refused, so the schema must say so');
});

test('every error code a client can see is documented with its status', () => {
  const enumCodes: string[] = doc.components.schemas.ErrorCode.enum;
  const inResponses = new Map<string, Set<string>>();
  for (const [m, p, op] of operations()) {
    for (const [status, r] of Object.entries<Json>(op.responses)) {
      for (const code of Object.keys(r.content?.['application/json']?.examples ?? {})) {
        if (!(code in ERROR_CODES)) continue;
        assert.equal(String(ERROR_CODES[code as keyof typeof ERROR_CODES].status), status, `${m} ${p}: ${code} documented under ${status}`);
        inResponses.set(code, (inResponses.get(code) ?? new Set()).add(`${m} ${p}`));
      }
    }
  }
  for (const code of Object.keys(ERROR_CODES)) {
    if (NODE_TO_NODE.has(code)) continue;
    assert.ok(enumCodes.includes(code), `ErrorCode enum lacks ${code}`);
    assert.ok(doc.components.schemas.ErrorCode.description.includes(`\`${code}\` | ${ERROR_CODES[code as keyof typeof ERROR_CODES].status} |`), `${code} row`);
    if (!NEVER_RETURNED.has(code)) assert.ok(inResponses.has(code), `no operation documents ${code}`);
  }
  for (const code of enumCodes) assert.ok(code in ERROR_CODES, `documented code ${code} does not exist in errors.ts`);
});

it('every documented operation answers on a running node with a documented status, type and schema', async () => {
  const { master, slaves } = cluster();
  for (const [method, path, op] of operations()) {
    for (const node of [master, slaves[0]!]) {
      const url = node.url + path.replace('{id}', '99');
      const what = `${method} ${path} on ${node.label()}`;
      const init: RequestInit = { method, signal: AbortSignal.timeout(10_000) };
      if (method === 'POST' && path === '/') {
        init.body = JSON.stringify({ command: 'query', query: 'SELECT 1 AS one' });
        init.headers = { 'content-type': 'application/json' };
      }
      const res = await fetch(url, init);
      const text = await res.text();
      if (res.status === 404) assert.doesNotMatch(text, /no such endpoint/, `${what}: the route is missing`);
      checkAnswer(op, what, res.status, res.headers.get('content-type'), text);
    }
  }
});

it("the request examples (the README's requests) run in order with documented answers", async () => {
  const { master, slaves, nodes } = cluster();
  const op = doc.paths['/'].post;
  const examples = Object.entries<Json>(op.requestBody.content['application/json'].examples);
  assert.ok(examples.length >= 8);
  let i = 0;
  for (const [name, ex] of examples) {
    assertValid(ex.value, op.requestBody.content['application/json'].schema, `example ${name}`);
    // Schema changes go to the master; the rest alternate over the slaves, as in the README.
    const node = /CREATE/i.test(ex.value.query ?? '') ? master : slaves[i++ % slaves.length]!;
    const reply = await post(node.url, ex.value);
    const body: Json = checkAnswer(op, `example ${name} on ${node.label()}`, reply.status, reply.headers.get('content-type'), reply.text);
    assert.equal(body.ok, true, `example ${name}: ${reply.text}`);
    if (name === 'createTable') await waitForIndex(nodes, body.index);
  }
});

it('error answers match the Error schema and their documented status', async () => {
  const { master, slaves } = cluster();
  const op = doc.paths['/'].post;
  const cases: Array<[unknown, string]> = [
    ['{not json', 'BAD_REQUEST'],
    [{ query: 'SELECT 1', bogus: 1 }, 'BAD_REQUEST'],
    [{ query: 'SELEC 1' }, 'SQL_SYNTAX'],
    [{ query: 'SELECT * FROM nope' }, 'SQL_ERROR'],
    [{ command: 'query', query: "INSERT INTO users(username) VALUES ('x')" }, 'READ_ONLY_COMMAND'],
    [{ query: 'BEGIN' }, 'TRANSACTION_CONTROL'],
    [{ query: "INSERT INTO users(username) VALUES ('bob')" }, 'CONSTRAINT'],
    [{ query: 'CREATE TABLE t (a)' }, 'SCHEMA_ON_SLAVE'],
    [{ query: "ATTACH 'x.db' AS x" }, 'FORBIDDEN_STATEMENT'],
    [{ query: 'SELECT 1', is_master: true }, 'FORBIDDEN'],
    [{ command: 'query', query: 'SELECT 1', min_index: 1_000_000 }, 'TIMEOUT'],
  ];
  for (const [body, code] of cases) {
    const node = code === 'SCHEMA_ON_SLAVE' ? slaves[0]! : master;
    const reply = await post(node.url, body, { timeoutMs: 20_000 });
    const parsed: Json = checkAnswer(op, `${code} case`, reply.status, reply.headers.get('content-type'), reply.text);
    assert.equal(parsed.error?.code, code, reply.text);
    assert.equal(reply.status, ERROR_CODES[code as keyof typeof ERROR_CODES].status);
  }
});

it('each documented request field is accepted, an undocumented one is refused', async () => {
  const { master } = cluster();
  for (const field of Object.keys(doc.components.schemas.QueryRequest.properties)) {
    if (field === 'query') continue;
    const reply = await post(master.url, { query: 'SELECT 1', [field]: null });
    assert.doesNotMatch(reply.text, /unknown field/, `${field} is documented but refused as unknown`);
  }
  const reply = await post(master.url, { query: 'SELECT 1', querys: 'SELECT 2' });
  assert.equal(reply.status, 400);
  assert.match(reply.body.error.message, /unknown field "querys"/);
});

it('unknown paths answer 404 NOT_FOUND', async () => {
  const { master } = cluster();
  for (const [method, path] of [['GET', '/nope'], ['POST', '/query'], ['GET', '/status/x'], ['PUT', '/'], ['GET', '/internal']]) {
    const res = await fetch(master.url + path, { method, body: method === 'GET' ? undefined : '{}' });
    const body = (await res.json()) as Json;
    assert.equal(res.status, 404, `${method} ${path}`);
    assert.equal(body.error.code, 'NOT_FOUND', `${method} ${path}`);
  }
});

it('GET /openapi.json serves this document', async () => {
  const reply = await get(`${cluster().master.url}/openapi.json`);
  assert.equal(reply.status, 200);
  assert.deepEqual(reply.body, JSON.parse(JSON.stringify(doc)));
});

// ---- the Postman collection ------------------------------------------------------------------

/** A Postman v2.1 request, flattened out of its folders. */
interface PostmanRequest {
  readonly name: string;
  readonly method: string;
  readonly url: string;
  readonly body: string | undefined;
  readonly script: string;
}

function flatten(items: Json[], folder = ''): PostmanRequest[] {
  return items.flatMap((it: Json) => {
    if (Array.isArray(it.item)) return flatten(it.item, `${folder}${it.name} / `);
    const script = (it.event ?? []).filter((e: Json) => e.listen === 'test').flatMap((e: Json) => e.script.exec).join('\n');
    return [{ name: folder + it.name, method: it.request.method, url: it.request.url.raw, body: it.request.body?.raw, script }];
  });
}

it('the Postman collection (docs/) runs in order with the answers its tests expect', async () => {
  const { master, slaves } = cluster();
  await post(master.url, { query: 'DROP TABLE IF EXISTS users' });
  const collection: Json = JSON.parse(readFileSync(join(REPO_ROOT, 'docs', 'sqlfleet.postman_collection.json'), 'utf8'));
  assert.equal(collection.info.schema, 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json');
  const declared: Record<string, string> = Object.fromEntries((collection.variable as Json[]).map((v) => [v.key, String(v.value)]));
  for (const k of ['master', 'slave1', 'slave2']) assert.match(declared[k] ?? '', /^http:\/\/127\.0\.0\.1:808\d$/, `variable ${k}`);
  const vars: Record<string, string> = { ...declared, master: master.url, slave1: slaves[0]!.url, slave2: slaves[1]!.url };
  const requests = flatten(collection.item);
  assert.ok(requests.length >= 12, `${requests.length} requests`);
  const fill = (s: string) => s.replace(/\{\{(\w+)\}\}/g, (_m, k: string) => {
    assert.ok(k in vars, `unknown variable {{${k}}}`);
    return vars[k]!;
  });
  for (const r of requests) {
    const res = await fetch(fill(r.url), {
      method: r.method,
      body: r.body === undefined ? undefined : fill(r.body),
      headers: r.body === undefined ? {} : { 'content-type': 'application/json' },
      signal: AbortSignal.timeout(15_000),
    });
    const text = await res.text();
    const wantStatus = Number(/pm\.response\.to\.have\.status\((\d+)\)/.exec(r.script)?.[1]);
    assert.ok(wantStatus, `${r.name}: its test script names no status`);
    assert.equal(res.status, wantStatus, `${r.name}: ${text.slice(0, 300)}`);
    const wantCode = /error\.code\)\.to\.eql\('([A-Z_]+)'\)/.exec(r.script)?.[1];
    if (wantCode) assert.equal(JSON.parse(text).error.code, wantCode, `${r.name}: ${text}`);
    if (/collectionVariables\.set\('last_index'/.test(r.script)) vars.last_index = String(JSON.parse(text).index);
  }
});
