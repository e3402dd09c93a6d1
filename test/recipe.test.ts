// Issue 17: the README's "Running across machines" recipe, run as written on three hosts with
// their own addresses (network namespaces on one bridge, test/helpers/netns.ts). The commands
// come from the README's code block itself (after the `<!-- recipe:across-machines` marker):
// its placeholder addresses 10.0.0.1/2/3 become the namespaces' addresses, /etc/sqlfleet a
// temporary directory, /var/lib/sqlfleet a data directory per host. The setup lines run once,
// each `npm run master|node` line in the namespace of its `--host`, and the show-all line from
// the root namespace. Then: a write through a slave, read back on every node, and show-all
// must say identical. So the test fails whenever the README and the program disagree.

import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { after, before, test } from 'node:test';
import { Agent } from 'undici';
import { REPO_ROOT, get, ok, parseJsonLine, post, rows, waitFor, type RequestOptions } from './helpers/cluster.js';
import { basic } from './helpers/hardening.js';
import { createNet, netnsAvailable, netnsUnavailableReason, type Net } from './helpers/netns.js';

const MARKER = '<!-- recipe:across-machines';
const PLACEHOLDER = /\b10\.0\.0\.(\d+)\b/g;
const CONF = '/etc/sqlfleet';
const DATA = '/var/lib/sqlfleet';
const START_TIMEOUT_MS = 25_000;

const HAVE_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const missing = !netnsAvailable() ? netnsUnavailableReason() : !HAVE_OPENSSL ? 'openssl is not installed (the recipe makes its certificate with it)' : '';
const SKIP = missing ? `recipe test skipped: ${missing}` : false;

if (missing && process.env.CI === 'true') {
  test('the README recipe test runs in CI', () => {
    assert.fail(`${missing}: CI must run the across-machines recipe on network namespaces`);
  });
}

/** The recipe's commands, sorted by where they run. */
interface Recipe {
  /** Lines run once before any node starts ("on any machine"). */
  readonly setup: string[];
  /** Node commands with the placeholder address of their `--host`. */
  readonly nodes: Array<{ readonly line: string; readonly host: string }>;
  /** The show-all command. */
  readonly check: string;
}

/** Extracts the fenced block after the marker; joins `\` continuations and drops comments. */
function readRecipe(readme: string): Recipe {
  const at = readme.indexOf(MARKER);
  assert.ok(at >= 0, `README.md has no ${MARKER} marker before the across-machines recipe`);
  const fence = /```(?:sh|bash)?\n([\s\S]*?)\n```/.exec(readme.slice(at));
  assert.ok(fence, 'no fenced code block after the recipe marker');
  const commands = fence[1]!
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const recipe: { setup: string[]; nodes: Array<{ line: string; host: string }>; check: string } = { setup: [], nodes: [], check: '' };
  for (const line of commands) {
    if (/\bnpm run (master|node)\b/.test(line)) {
      const host = /--host[= ](\S+)/.exec(line)?.[1];
      assert.ok(host, `a node command without --host: ${line}`);
      recipe.nodes.push({ line, host });
    } else if (/\bnpm run show-all\b/.test(line)) {
      recipe.check = line;
    } else {
      assert.equal(recipe.nodes.length, 0, `a setup command after the node commands: ${line}`);
      recipe.setup.push(line);
    }
  }
  return recipe;
}

/** Replaces the placeholders: 10.0.0.N → host N-1's address, the directories → temporary ones. */
function substitute(line: string, net: Net, conf: string, data?: string): string {
  let out = line.replace(PLACEHOLDER, (_, n: string) => {
    const h = net.hosts[Number(n) - 1];
    assert.ok(h, `the recipe uses 10.0.0.${n}; the test has hosts 10.0.0.1..${net.hosts.length}`);
    return h.addr;
  });
  out = out.split(CONF).join(conf);
  if (out.includes(DATA)) {
    assert.ok(data, `${DATA} outside a node command: ${line}`);
    out = out.split(DATA).join(data);
  }
  return out;
}

/** The environment the commands run in: this one, minus anything that would set sqlfleet flags behind the README's back. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SQLFLEET_') && k !== 'NODE_EXTRA_CA_CERTS') env[k] = v;
  return env;
}

/** A node started from the recipe: its process, its log, and the URL from its ready line. */
interface RecipeNode {
  readonly id: number;
  readonly child: ChildProcess;
  readonly log: string[];
  url: string;
}

let net: Net | undefined;
let dir = '';
let recipe: Recipe | undefined;
const nodes: RecipeNode[] = [];
let access: RequestOptions = {};
let dispatcher: Agent | undefined;
let setupLog = '';

function printLogs(): void {
  if (setupLog) console.error(`--- recipe setup ---\n${setupLog}`);
  for (const n of nodes) console.error(`--- node ${n.id} (${n.url || 'not ready'}) ---\n${n.log.slice(-60).join('\n')}`);
}

/** A test that prints the nodes' logs when it fails. */
function it(name: string, fn: () => Promise<void>): void {
  test(name, { skip: SKIP, timeout: 40_000 }, async () => {
    try {
      await fn();
    } catch (e) {
      printLogs();
      throw e;
    }
  });
}

function startRecipeNode(n: Net, line: string, host: string, conf: string): RecipeNode {
  const i = Number(/^10\.0\.0\.(\d+)$/.exec(host)?.[1]) - 1;
  assert.ok(n.hosts[i], `--host ${host} is not one of the placeholders 10.0.0.1..${n.hosts.length}`);
  const cmd = substitute(line, n, conf, join(dir, `data-${i + 1}`));
  const id = Number(/npm run master/.test(line) ? 0 : /npm run node -- (\d+)/.exec(line)?.[1]);
  const child = n.spawn(i, 'bash', ['-c', cmd], { cwd: REPO_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  const node: RecipeNode = { id, child, log: [], url: '' };
  for (const stream of [child.stdout!, child.stderr!]) {
    readline.createInterface({ input: stream }).on('line', (l) => {
      node.log.push(l);
      if (node.log.length > 400) node.log.shift();
      const j = parseJsonLine(l);
      if (j?.msg === 'ready' && typeof j.url === 'string') node.url = j.url;
    });
  }
  nodes.push(node);
  return node;
}

before(async () => {
  if (SKIP) return;
  const t0 = Date.now();
  recipe = readRecipe(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'));
  dir = mkdtempSync(join(tmpdir(), 'sqlfleet-recipe-'));
  net = await createNet({ hosts: 3 });
  const conf = join(dir, 'etc');
  const setup = spawnSync('bash', ['-euo', 'pipefail', '-c', recipe.setup.map((l) => substitute(l, net!, conf)).join('\n')], {
    cwd: REPO_ROOT,
    env: cleanEnv(),
    encoding: 'utf8',
    timeout: 30_000,
  });
  setupLog = `${setup.stdout}${setup.stderr}`;
  assert.equal(setup.status, 0, `the recipe's setup lines failed:\n${setupLog}`);
  const ca = readFileSync(join(conf, 'ca.pem'), 'utf8');
  dispatcher = new Agent({ connect: { ca } });
  access = { dispatcher, headers: basic('admin', readFileSync(join(conf, 'admin.password'), 'utf8').trim()), timeoutMs: 10_000 };
  for (const { line, host } of recipe.nodes) startRecipeNode(net, line, host, conf);
  try {
    const exited = () => nodes.find((n) => n.child.exitCode !== null || n.child.signalCode !== null);
    await waitFor(() => exited() || nodes.every((n) => n.url), {
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 100,
      message: 'every node of the recipe printed its ready line',
    });
    const gone = exited();
    assert.ok(!gone, `node ${gone?.id} exited (${gone?.child.exitCode ?? gone?.child.signalCode}) before it was ready`);
    await waitFor(async () => {
      const all = await Promise.all(nodes.map((n) => get(`${n.url}/health`, { dispatcher, timeoutMs: 2_000 })));
      return all.every((r) => r.status === 200);
    }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, message: 'GET /health 200 on every node' });
  } catch (e) {
    printLogs();
    throw e;
  }
  console.log(`# recipe: 3 hosts up in ${Date.now() - t0} ms`);
});

after(() => {
  net?.destroy();
  void dispatcher?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const master = () => nodes.find((n) => n.id === 0)!;
const slaves = () => nodes.filter((n) => n.id !== 0);

it('the recipe is complete and safe: one master, two slaves, --auth, TLS and the token on every node', async () => {
  assert.ok(recipe);
  assert.equal(recipe.nodes.filter((n) => /npm run master/.test(n.line)).length, 1, 'one master command');
  assert.equal(recipe.nodes.length, 3, 'a master and two slaves');
  for (const { line } of recipe.nodes) {
    assert.match(line, /--auth \S+/, `--auth on every node: ${line}`);
    assert.match(line, /--tls-cert \S+ --tls-key \S+ --tls-ca \S+/, `TLS on every node: ${line}`);
    assert.match(line, /SQLFLEET_CLUSTER_TOKEN=|--cluster-token/, `the cluster token on every node: ${line}`);
  }
  assert.ok(recipe.check, 'the recipe ends with npm run show-all');
});

it('each node serves HTTPS on its own host address, and the master sees both slaves up', async () => {
  for (const n of nodes) {
    const i = n.id; // master on host 1, slave k on host k+1, as the recipe says
    assert.equal(new URL(n.url).hostname, net!.hosts[i]!.addr, `node ${n.id} ready at ${n.url}`);
    assert.equal(new URL(n.url).protocol, 'https:');
  }
  await waitFor(async () => {
    const r = await get(`${master().url}/status`, access);
    assert.equal(r.status, 200, `master /status: ${r.status} ${r.text}`);
    const s = r.body;
    const up = (s.nodes as Array<{ id: number; state: string; url: string }>).filter((x) => x.id !== 0 && x.state === 'up');
    return up.length === 2 && up.every((x) => x.url === nodes.find((n) => n.id === x.id)?.url);
  }, { timeoutMs: 15_000, message: 'slaves 1 and 2 up at their https URLs in the master /status' });
});

it('without credentials a node answers 401', async () => {
  for (const n of nodes) {
    const r = await post(n.url, { query: 'SELECT 1' }, { dispatcher, timeoutMs: 5_000 });
    assert.equal(r.status, 401, `node ${n.id}: ${r.status} ${r.text}`);
  }
});

it('a write through a slave is read back on every node, and show-all says identical', async () => {
  const ddl = ok(await post(master().url, { query: 'CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)' }, access), 'DDL on the master');
  const w = ok(await post(slaves()[0]!.url, { query: 'INSERT INTO notes(body) VALUES (?), (?)', params: ['across', 'machines'] }, access), 'write via slave 1');
  assert.ok(w.index > ddl.index);
  assert.deepEqual([...w.replicated_to].sort(), [1, 2], `replicated_to: ${JSON.stringify(w)}`);
  for (const n of nodes) {
    const got = rows(await post(n.url, { command: 'query', query: 'SELECT body FROM notes ORDER BY id', min_index: w.index }, access), `read on node ${n.id}`);
    assert.deepEqual(got, [['across'], ['machines']], `node ${n.id}`);
  }
  const check = substitute(recipe!.check, net!, join(dir, 'etc'));
  const run = spawnSync('bash', ['-euo', 'pipefail', '-c', check], { cwd: REPO_ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
  const out = `${run.stdout}${run.stderr}`;
  assert.equal(run.status, 0, `show-all failed (exit ${run.status}):\n${out}`);
  assert.match(out, /^identical: 3 nodes at index \d+$/m, out);
  assert.match(out, /machines/, `show-all prints the table's rows:\n${out}`);
});
