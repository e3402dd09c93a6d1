// show-all: every replica's user tables side by side, then one verdict line.
// Thin on purpose: it only uses the public HTTP API (GET /status, POST /, GET /checksum).
//
//   npm run show-all -- [--master-url URL | --base-port 8080 [--host H]] [--json]
//                       [--user NAME:PASSWORD | --token TOKEN]   (nodes started with --auth)
//   HTTPS with a private CA: NODE_EXTRA_CA_CERTS=ca.pem npm run show-all -- …
//
// Exit status: 0 when every node is reachable and all replicas are identical, 1 otherwise.

import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { stringify } from '../src/http/json.js';
import { parseExact } from '../src/json.js';

/** What the master's /status says about one node. */
interface Member {
  readonly id: number;
  readonly url: string;
  readonly role: string;
  readonly state: string;
}

/** One table as read from one node. */
interface TableView {
  readonly columns: string[];
  /** Row key -> values; the key is the rowid, the primary key (JSON) or the position. */
  readonly rows: Map<string, unknown[]>;
  readonly keyedBy: 'rowid' | 'pk' | 'position';
  /** Digest from the node's /checksum; undefined if the checksum does not list it. */
  readonly digest: string | undefined;
  readonly error?: string;
}

/** Everything read from one node. */
interface NodeView extends Member {
  readonly reachable: boolean;
  readonly error?: string;
  readonly index?: number;
  readonly db?: string;
  readonly tables: Map<string, TableView>;
}

/** A table whose content on some nodes differs from the reference node's. */
interface Difference {
  readonly table: string;
  readonly nodes: number[];
  readonly detail: string;
}

interface Options {
  /** The URL given; once listMembers ran, the current master's (a follower names it). */
  masterUrl: string;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly maxRows: number;
  readonly settleMs: number;
  readonly verify: boolean;
  /** Authorization header for nodes started with --auth; undefined = none. */
  readonly authorization: string | undefined;
}

const USER_TABLES =
  "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlfleet_%' ORDER BY name";
const ROWID = '#rowid';

async function main(): Promise<number> {
  // `npm --silent run show-all | head -5`: the reader went away; stop without an EPIPE trace.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(0);
  });
  // The shell's history file variable: yargs' strict mode would refuse it as an unknown --history.
  delete process.env.SQLFLEET_HISTORY;
  const argv = await yargs(hideBin(process.argv))
    .scriptName('show-all')
    .usage('$0 [--master-url URL | --base-port PORT] [--json]')
    .env('SQLFLEET')
    .option('master-url', { type: 'string', describe: "the master's URL (default http://<host>:<base-port>)" })
    .option('base-port', { type: 'number', default: 8080, describe: "the master's port on --host" })
    .option('host', { type: 'string', default: '127.0.0.1' })
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON document instead of tables' })
    .option('timeout', { type: 'number', default: 3000, describe: 'ms per HTTP request' })
    .option('max-rows', { type: 'number', default: 50, describe: 'identical rows printed per table' })
    .option('verify', { type: 'boolean', default: false, describe: "also print the master's own checksum comparisons (/status verified)" })
    .option('settle', { type: 'number', default: 2000, describe: 'ms to wait for nodes at different indexes to converge' })
    .option('user', { type: 'string', describe: 'NAME:PASSWORD of a user in the nodes\' --auth file (HTTP Basic)' })
    .option('token', { type: 'string', describe: 'an API token of the nodes\' --auth file, or the cluster token (Bearer)' })
    .conflicts('user', 'token')
    .strict()
    .help()
    .parse();
  const opts: Options = {
    masterUrl: (argv.masterUrl ?? `http://${argv.host}:${argv.basePort}`).replace(/\/+$/, ''),
    json: argv.json,
    timeoutMs: argv.timeout,
    maxRows: argv.maxRows,
    settleMs: argv.settle,
    verify: argv.verify,
    authorization: argv.token
      ? `Bearer ${argv.token}`
      : argv.user
        ? `Basic ${Buffer.from(argv.user).toString('base64')}`
        : undefined,
  };

  let members: Member[];
  try {
    members = await listMembers(opts);
  } catch (e) {
    // It answered (401 without credentials, say): not "cannot reach", which sends a user to the network.
    const verdict =
      e instanceof HttpError
        ? `UNKNOWN: the master at ${opts.masterUrl} refused: ${errorText(e)}${/\b401\b/.test(e.message) ? ' (give --user NAME:PASSWORD or --token)' : ''}`
        : `UNKNOWN: cannot reach the master at ${opts.masterUrl} (${errorText(e)})`;
    if (opts.json) console.log(stringify({ master: opts.masterUrl, identical: false, verdict, nodes: [] }, 2));
    else console.log(verdict);
    return 1;
  }

  const views = await settledSnapshot(members, opts);
  const reference = views.find((v) => v.reachable && v.role === 'master') ?? views.find((v) => v.reachable);
  const differences = reference ? compare(views, reference) : [];
  const judged = judge(views, differences, reference);
  let { verdict, identical } = judged;
  const verified = opts.verify ? await masterVerdicts(opts) : undefined;
  const diverged = (verified ?? []).filter((v) => v.equal === false).map((v) => v.id);
  if (diverged.length > 0) {
    identical = false;
    if (judged.identical) verdict = `DIFFERENT: the master found node ${diverged.join(', ')} diverged`;
  }
  if (opts.json) console.log(stringify({ ...(toJson(opts, views, reference, differences, verdict, identical) as object), ...(verified ? { verified } : {}) }, 2));
  else {
    printNodes(opts, views);
    for (const table of tableNames(views)) printTable(table, views, reference, differences, opts.maxRows);
    if (verified) printVerified(verified);
    console.log(verdict);
  }
  return identical ? 0 : 1;
}

/** GETs or POSTs JSON with a timeout; throws on network errors and non-2xx answers. */
async function call(url: string, opts: Options, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(url, {
    method: body === undefined ? 'GET' : 'POST',
    headers: {
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...(opts.authorization ? { authorization: opts.authorization } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(opts.timeoutMs),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = parseExact(text) as Record<string, unknown>; // ids beyond 2^53 stay exact (BigInt)
  } catch {
    json = undefined;
  }
  if (!res.ok || !json) {
    const err = (json?.error as { code?: string; message?: string } | undefined) ?? {};
    throw new HttpError(`HTTP ${res.status} ${err.code ?? ''} ${err.message ?? text.slice(0, 200)}`.replace(/\s+/g, ' ').trim());
  }
  return json;
}

/** The node answered, but with an error: it is reachable. */
class HttpError extends Error {}

function errorText(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const cause = (e as { cause?: { code?: string; message?: string } }).cause;
  if (e.name === 'TimeoutError') return 'timed out';
  return cause?.code ?? cause?.message ?? e.message;
}

/** Who leads, from the master's /status: epoch, and in etcd mode the sync set and lease. */
interface Leader {
  readonly url: string;
  readonly epoch: number | null;
  readonly syncSet?: number[];
  readonly lease?: { valid: boolean; ms_left: number; ttl_ms: number };
  /** The URL given, when it was not the master's (after a failover). */
  readonly askedVia?: string;
}
let leader: Leader | undefined;

/**
 * The cluster's members from the master's /status (master first, by id). Any node's URL
 * will do: a follower names the current master, which is then asked (after a failover
 * node 0 may be a slave).
 */
async function listMembers(opts: Options): Promise<Member[]> {
  let s = await call(`${opts.masterUrl}/status`, opts);
  const asked = opts.masterUrl;
  if (s.role !== 'master' && typeof s.master === 'string' && s.master && s.master !== opts.masterUrl) {
    const m = await call(`${String(s.master).replace(/\/+$/, '')}/status`, opts).catch(() => null);
    if (m?.role === 'master') {
      opts.masterUrl = String(s.master).replace(/\/+$/, '');
      s = m;
    }
  }
  if (s.role === 'master') {
    leader = {
      url: opts.masterUrl,
      epoch: typeof s.epoch === 'number' ? s.epoch : null,
      ...(Array.isArray(s.sync_set) ? { syncSet: s.sync_set as number[] } : {}),
      ...(s.lease && typeof s.lease === 'object' ? { lease: s.lease as Leader['lease'] } : {}),
      ...(asked !== opts.masterUrl ? { askedVia: asked } : {}),
    };
  }
  const raw = Array.isArray(s.nodes) ? (s.nodes as Array<Record<string, unknown>>) : [];
  const members = raw.map((n) => ({
    id: Number(n.id),
    url: String(n.url ?? '').replace(/\/+$/, ''),
    role: String(n.role ?? 'slave'),
    state: String(n.state ?? 'unknown'),
  }));
  if (!members.some((m) => m.role === 'master')) {
    members.push({ id: Number(s.node ?? 0), url: opts.masterUrl, role: 'master', state: 'up' });
  }
  return members.sort((a, b) => a.id - b.id);
}

/** Reads every node; while reachable nodes report different indexes, reads again (until --settle). */
async function settledSnapshot(members: Member[], opts: Options): Promise<NodeView[]> {
  const deadline = Date.now() + opts.settleMs;
  for (;;) {
    const views = await Promise.all(members.map((m) => readNode(m, opts)));
    const indexes = new Set(views.filter((v) => v.reachable).map((v) => v.index));
    if (indexes.size <= 1 || Date.now() >= deadline) return views;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Checksum, user tables and their rows of one node; unreachable nodes come back with `reachable: false`. */
async function readNode(m: Member, opts: Options): Promise<NodeView> {
  const tables = new Map<string, TableView>();
  if (!m.url) return { ...m, reachable: false, error: 'no URL known', tables };
  let sum: Record<string, unknown>;
  try {
    sum = await call(`${m.url}/checksum`, opts);
  } catch (e) {
    return { ...m, reachable: e instanceof HttpError, error: errorText(e), tables };
  }
  const digests = (sum.tables ?? {}) as Record<string, string>;
  try {
    const names = firstResult(await call(m.url, opts, { command: 'query', query: USER_TABLES })).rows.map((r) => String(r[0]));
    for (const name of names) tables.set(name, await readTable(m.url, name, digests[name], opts));
  } catch (e) {
    return { ...m, reachable: true, error: errorText(e), index: Number(sum.index), db: String(sum.db), tables };
  }
  return { ...m, reachable: true, index: Number(sum.index), db: String(sum.db), tables };
}

/**
 * Rows of one table, keyed so that nodes line up row by row: by rowid, or for a WITHOUT
 * ROWID table by its primary key (read in that order), or by position as a last resort.
 */
async function readTable(url: string, name: string, digest: string | undefined, opts: Options): Promise<TableView> {
  const quoted = quote(name);
  try {
    const result = firstResult(await call(url, opts, { command: 'query', query: `SELECT rowid AS "${ROWID}", * FROM ${quoted} ORDER BY rowid` }));
    const rows = new Map(result.rows.map((r) => [String(r[0]), r.slice(1)]));
    return { columns: result.columns.slice(1), rows, digest, keyedBy: 'rowid' };
  } catch (e) {
    if (!(e instanceof HttpError)) throw e;
  }
  try {
    const pkQuery = { command: 'query', query: 'SELECT name FROM pragma_table_info(?) WHERE pk > 0 ORDER BY pk', params: [name] };
    const pk = firstResult(await call(url, opts, pkQuery)).rows.map((r) => String(r[0]));
    const order = pk.length > 0 ? ` ORDER BY ${pk.map(quote).join(', ')}` : '';
    const result = firstResult(await call(url, opts, { command: 'query', query: `SELECT * FROM ${quoted}${order}` }));
    const at = pk.map((col) => result.columns.indexOf(col));
    const key = (r: unknown[], i: number): string => (pk.length > 0 ? stringify(at.map((j) => r[j])) : `#${i + 1}`);
    const rows = new Map(result.rows.map((r, i) => [key(r, i), r]));
    return { columns: result.columns, rows, digest, keyedBy: pk.length > 0 ? 'pk' : 'position' };
  } catch (e) {
    if (!(e instanceof HttpError)) throw e;
    return { columns: [], rows: new Map(), digest, keyedBy: 'position', error: errorText(e) };
  }
}

function quote(identifier: string): string {
  return `"${identifier.replace(/"/g, '""')}"`;
}

function firstResult(answer: Record<string, unknown>): { columns: string[]; rows: unknown[][] } {
  const results = answer.results as Array<{ columns?: string[]; rows?: unknown[][] }> | undefined;
  return { columns: results?.[0]?.columns ?? [], rows: results?.[0]?.rows ?? [] };
}

function tableNames(views: NodeView[]): string[] {
  return [...new Set(views.flatMap((v) => [...v.tables.keys()]))].sort();
}

/** A comparable fingerprint of one table on one node: its checksum digest, else its rows. */
function fingerprint(v: NodeView, table: string): string {
  const t = v.tables.get(table);
  if (!t) return 'missing';
  return t.digest ?? `rows:${stringify([...t.rows])}`;
}

/** Tables whose fingerprint on a reachable node differs from the reference node's. */
function compare(views: NodeView[], ref: NodeView): Difference[] {
  const out: Difference[] = [];
  for (const table of tableNames(views)) {
    const want = fingerprint(ref, table);
    const differing = views.filter((v) => v.reachable && v !== ref && fingerprint(v, table) !== want);
    if (differing.length === 0) continue;
    const details = differing.map((v) => describeDifference(v, ref, table));
    out.push({ table, nodes: differing.map((v) => v.id), detail: details.join('; ') });
  }
  return out;
}

function describeDifference(v: NodeView, ref: NodeView, table: string): string {
  const mine = v.tables.get(table);
  const theirs = ref.tables.get(table);
  if (!mine) return `missing on node ${v.id}`;
  if (!theirs) return `node ${v.id} has it, node ${ref.id} does not`;
  const keys = new Set([...mine.rows.keys(), ...theirs.rows.keys()]);
  let changed = 0;
  for (const k of keys) if (stringify(mine.rows.get(k)) !== stringify(theirs.rows.get(k))) changed++;
  const digests = `digest ${short(mine.digest)} vs ${short(theirs.digest)} on node ${ref.id}`;
  return `node ${v.id}: ${changed} of ${keys.size} rows differ, ${digests}`;
}

function short(digest: string | undefined): string {
  return digest ? digest.slice(0, 12) : 'none';
}

/** The one verdict line, and whether the cluster counts as identical. */
function judge(views: NodeView[], differences: Difference[], ref: NodeView | undefined): { verdict: string; identical: boolean } {
  const reachable = views.filter((v) => v.reachable);
  const problems: string[] = [];
  for (const v of views) if (!v.reachable) problems.push(`node ${v.id} is DOWN (${v.error ?? 'unreachable'})`);
  for (const v of reachable) if (v.error) problems.push(`node ${v.id} could not be read (${v.error})`);
  if (ref) {
    for (const v of reachable) {
      if (v !== ref && v.index !== ref.index) problems.push(`node ${v.id} is at index ${v.index}, node ${ref.id} at ${ref.index}`);
    }
  }
  for (const d of differences) {
    const who = d.nodes.length === 1 ? `node ${d.nodes[0]}` : `nodes ${d.nodes.join(', ')}`;
    problems.push(`table ${d.table} differs on ${who} (${d.detail})`);
  }
  if (problems.length === 0 && ref) return { verdict: `identical: ${views.length} nodes at index ${ref.index}`, identical: true };
  if (!ref) problems.push('no node could be reached');
  else if (differences.length === 0 && reachable.every((v) => v.index === ref.index && !v.error)) {
    problems.push(`the ${reachable.length} reachable nodes are identical at index ${ref.index}`);
  }
  return { verdict: `DIFFERENT: ${problems.join('; ')}`, identical: false };
}

function printNodes(opts: Options, views: NodeView[]): void {
  console.log(`sqlfleet show-all: ${views.length} nodes via ${opts.masterUrl}`);
  if (leader) {
    const ha = leader.syncSet ? `, sync set [${leader.syncSet.join(',')}], lease ${leader.lease?.valid ? `valid (${leader.lease.ms_left} of ${leader.lease.ttl_ms} ms left)` : 'NOT valid'}` : '';
    console.log(`  master ${leader.url}, epoch ${leader.epoch ?? '?'}${ha}${leader.askedVia ? ` (asked ${leader.askedVia}, which follows it)` : ''}`);
  }
  const lines = views.map((v) => [
    `node ${v.id}`,
    v.role,
    v.url || '?',
    v.reachable ? v.state : 'DOWN',
    v.reachable ? `index ${v.index}` : '',
    v.reachable ? `db ${short(v.db)}` : (v.error ?? ''),
  ]);
  for (const line of align(lines)) console.log(`  ${line}`);
}

/** One table, row by row: each distinct version of a row, with the nodes that hold it. */
function printTable(table: string, views: NodeView[], ref: NodeView | undefined, differences: Difference[], maxRows: number): void {
  const holders = views.filter((v) => v.tables.has(table));
  const base = (ref?.tables.get(table) ? ref : holders[0])!;
  const columns = base.tables.get(table)!.columns;
  const diff = differences.find((d) => d.table === table);
  const summary = views
    .map((v) => `node ${v.id}: ${!v.reachable ? 'DOWN' : v.tables.has(table) ? `${v.tables.get(table)!.rows.size} rows` : 'missing'}`)
    .join(' | ');
  console.log(`\ntable ${table}  [${summary}]${diff ? `  DIFFERS on node ${diff.nodes.join(', ')}` : ''}`);
  for (const v of holders) {
    const err = v.tables.get(table)!.error;
    if (err) console.log(`  node ${v.id}: cannot read: ${err}`);
  }

  const reachable = views.filter((v) => v.reachable);
  const keyedBy = base.tables.get(table)!.keyedBy;
  const keys = [...new Set(holders.flatMap((v) => [...v.tables.get(table)!.rows.keys()]))];
  if (keyedBy === 'rowid') keys.sort((a, b) => Number(a) - Number(b));
  // The key column is noise when it repeats the row's own first column (INTEGER PRIMARY KEY) or its primary key.
  const showKey =
    keyedBy === 'position' ||
    (keyedBy === 'rowid' && !holders.every((v) => [...v.tables.get(table)!.rows].every(([k, row]) => String(row[0]) === k)));
  const lines: string[][] = [[...(showKey ? [keyedBy === 'rowid' ? 'rowid' : '#'] : []), ...columns, 'on nodes']];
  let skipped = 0;
  for (const key of keys) {
    const versions = new Map<string, { row: unknown[] | undefined; ids: number[] }>();
    for (const v of reachable) {
      const row = v.tables.get(table)?.rows.get(key);
      const sig = stringify(row ?? null);
      const entry = versions.get(sig) ?? { row, ids: [] };
      entry.ids.push(v.id);
      versions.set(sig, entry);
    }
    const same = versions.size === 1;
    if (same && lines.length > maxRows) {
      skipped++;
      continue;
    }
    // The reference node's version first, then the others, each marked.
    const ordered = [...versions.values()].sort((a, b) => Number(b.ids.includes(base.id)) - Number(a.ids.includes(base.id)));
    ordered.forEach((ver, i) => {
      const keyCell = showKey ? [i === 0 ? key : ''] : [];
      const cells = ver.row ? ver.row.map(cell) : columns.map(() => '-');
      const on = `${ver.ids.join(' ')}${same ? '' : ver.row ? '  ≠' : '  ≠ no such row'}`;
      lines.push([...keyCell, ...cells, on]);
    });
  }
  for (const line of align(lines)) console.log(`  ${line}`);
  if (skipped) console.log(`  … ${skipped} more identical rows`);
}

function cell(value: unknown): string {
  let text: string;
  if (value === null || value === undefined) text = 'NULL';
  else if (typeof value === 'object') text = stringify(value);
  else text = String(value);
  text = text.replace(/\r?\n/g, '⏎');
  return text.length > 32 ? `${text.slice(0, 31)}…` : text;
}

/** Pads columns so they line up. */
function align(lines: string[][]): string[] {
  const widths: number[] = [];
  for (const line of lines) line.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return lines.map((line) => line.map((c, i) => (i === line.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd());
}

/** The same data as the text output, as one JSON document. */
function toJson(
  opts: Options,
  views: NodeView[],
  ref: NodeView | undefined,
  differences: Difference[],
  verdict: string,
  identical: boolean,
): unknown {
  const tables: Record<string, unknown> = {};
  for (const name of tableNames(views)) {
    const perNode: Record<string, unknown> = {};
    for (const v of views) {
      const t = v.tables.get(name);
      if (t) perNode[v.id] = { columns: t.columns, digest: t.digest ?? null, rows: [...t.rows.values()], ...(t.error ? { error: t.error } : {}) };
    }
    tables[name] = { nodes: perNode, differs_on: differences.find((d) => d.table === name)?.nodes ?? [] };
  }
  return {
    master: opts.masterUrl,
    epoch: leader?.epoch ?? null,
    ...(leader?.syncSet ? { sync_set: leader.syncSet, lease: leader.lease ?? null } : {}),
    identical,
    index: ref?.index ?? null,
    verdict,
    down: views.filter((v) => !v.reachable).map((v) => v.id),
    differences,
    nodes: views.map((v) => ({
      id: v.id,
      url: v.url,
      role: v.role,
      state: v.reachable ? v.state : 'DOWN',
      reachable: v.reachable,
      index: v.index ?? null,
      db: v.db ?? null,
      ...(v.error ? { error: v.error } : {}),
      tables: Object.fromEntries([...v.tables].map(([name, t]) => [name, t.digest ?? null])),
    })),
    tables,
  };
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    console.error(`show-all: ${e instanceof Error ? e.message : String(e)}`);
    process.exitCode = 1;
  },
);

/** One of the master's background comparisons of a slave against itself. */
interface Verified {
  id: number;
  index: number | null;
  equal: boolean | null;
  tables?: string[];
}

/** The master's latest checksum comparisons (--verify). */
async function masterVerdicts(opts: Options): Promise<Verified[]> {
  const body = (await call(`${opts.masterUrl}/status`, opts)) as { verified?: Verified[] };
  return body.verified ?? [];
}

function printVerified(list: Verified[]): void {
  console.log('master checksum comparisons (--verify):');
  if (list.length === 0) console.log('  none yet (the master compares every --verify-ms)');
  for (const v of list) {
    const what = v.equal === true ? `equal at index ${v.index}` : v.equal === false ? `DIFFERENT${v.tables?.length ? ` (${v.tables.join(', ')})` : ''}` : 'not compared (different index or unreachable)';
    console.log(`  node ${v.id}: ${what}`);
  }
}
