// Issue 17: the README's "Running across machines" recipes, run as written on three hosts with
// their own addresses (network namespaces on one bridge, test/helpers/netns.ts). The commands
// come from the README's code blocks themselves (after the `<!-- recipe:across-machines` and
// `<!-- recipe:etcd` markers): the placeholder addresses 10.0.0.1/2/3 become the namespaces'
// addresses, /etc/sqlfleet a temporary directory, /var/lib/sqlfleet a data directory per host.
// The setup lines run once, each `etcd` line in the namespace of its listen address, each
// `npm run master|node` line in the namespace of its `--host`, and the show-all line from the
// root namespace. So the test fails whenever the README and the program disagree.
//
// Static recipe: a write through a slave, read back on every node, show-all says identical.
// etcd recipe (it reuses the static recipe's step 1 files: its setup lines run first): three
// etcd members and three nodes; one master elected with both others in its sync set, a write
// through a slave read everywhere, show-all; then the master's host is killed (its etcd member
// and its node, SIGKILL by PID), one of the two others must take writes (the time to the first
// acknowledged write is printed), show-all through a survivor reports the dead node; then the
// host's two commands are run again, unchanged, and it must rejoin as a slave.

import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import readline from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Agent } from 'undici';
import { REPO_ROOT, get, ok, parseJsonLine, post, rows, waitFor, type RequestOptions } from './helpers/cluster.js';
import { etcdAvailable } from './helpers/etcd.js';
import { basic } from './helpers/hardening.js';
import { createNet, netnsAvailable, netnsUnavailableReason, type Net } from './helpers/netns.js';

const STATIC_MARKER = '<!-- recipe:across-machines';
const ETCD_MARKER = '<!-- recipe:etcd';
const PLACEHOLDER = /\b10\.0\.0\.(\d+)\b/g;
const CONF = '/etc/sqlfleet';
const DATA = '/var/lib/sqlfleet';
const START_TIMEOUT_MS = 25_000;
/** How long the survivors are watched after the failover: no role change, etcd reachable throughout. */
const STABLE_MS = 5_000;
/** Bound of one election (lease expiry included) on this loaded 2-core machine. */
const ELECTION_TIMEOUT_MS = 30_000;

const HAVE_OPENSSL = spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
const missing = !netnsAvailable() ? netnsUnavailableReason() : !HAVE_OPENSSL ? 'openssl is not installed (the recipe makes its certificate with it)' : '';
const SKIP = missing ? `recipe test skipped: ${missing}` : false;
const missingEtcd = missing || (etcdAvailable() ? '' : 'etcd is not installed (apt-get install etcd-server)');
const SKIP_ETCD = missingEtcd ? `etcd recipe test skipped: ${missingEtcd}` : false;

if (missing && process.env.CI === 'true') {
  test('the README recipe test runs in CI', () => {
    assert.fail(`${missing}: CI must run the across-machines recipe on network namespaces`);
  });
}
if (missingEtcd && !missing && process.env.CI === 'true') {
  test('the README etcd recipe test runs in CI', () => {
    assert.fail(`${missingEtcd}: CI must run the etcd recipe on network namespaces`);
  });
}

// ---------------------------------------------------------------------------------------
// Reading a recipe block

/** A long-running command of the recipe and the placeholder address of the host it runs on. */
interface HostLine {
  readonly line: string;
  readonly host: string;
}

/** A recipe's commands, sorted by where they run. */
interface Recipe {
  /** Lines run once before any member or node starts ("on any machine"). */
  readonly setup: string[];
  /** `etcd` commands with the placeholder address they listen on. */
  readonly etcd: HostLine[];
  /** Node commands with the placeholder address of their `--host`. */
  readonly nodes: HostLine[];
  /** The show-all command. */
  readonly check: string;
}

/** The placeholder address an etcd command listens on (client and peer URLs: one host). */
function etcdHost(line: string): string {
  const addrs = new Set<string>();
  for (const flag of ['--listen-client-urls', '--listen-peer-urls']) {
    const v = new RegExp(`${flag}[= ](\\S+)`).exec(line)?.[1];
    assert.ok(v, `an etcd command without ${flag}: ${line}`);
    for (const u of v.split(',')) addrs.add(new URL(u).hostname);
  }
  assert.equal(addrs.size, 1, `an etcd command listening on several hosts (${[...addrs].join(', ')}): ${line}`);
  return [...addrs][0]!;
}

/** Extracts the fenced block after `marker`; joins `\` continuations and drops comments. */
function readRecipe(readme: string, marker: string): Recipe {
  const at = readme.indexOf(marker);
  assert.ok(at >= 0, `README.md has no ${marker} marker before its recipe`);
  const fence = /```(?:sh|bash)?\n([\s\S]*?)\n```/.exec(readme.slice(at));
  assert.ok(fence, `no fenced code block after the ${marker} marker`);
  const commands = fence[1]!
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const recipe: { setup: string[]; etcd: HostLine[]; nodes: HostLine[]; check: string } = { setup: [], etcd: [], nodes: [], check: '' };
  for (const line of commands) {
    if (/\bnpm run (master|node)\b/.test(line)) {
      const host = /--host[= ](\S+)/.exec(line)?.[1];
      assert.ok(host, `a node command without --host: ${line}`);
      recipe.nodes.push({ line, host });
    } else if (/^etcd\s/.test(line)) {
      assert.equal(recipe.nodes.length, 0, `an etcd member started after the nodes: ${line}`);
      recipe.etcd.push({ line, host: etcdHost(line) });
    } else if (/\bnpm run show-all\b/.test(line)) {
      recipe.check = line;
    } else {
      assert.equal(recipe.nodes.length + recipe.etcd.length, 0, `a setup command after the long-running commands: ${line}`);
      recipe.setup.push(line);
    }
  }
  return recipe;
}

/** The value of `--flag` in a command line. */
function flag(line: string, name: string): string | undefined {
  return new RegExp(`${name}[= ](\\S+)`).exec(line)?.[1];
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

/** Host index (0-based) of a placeholder address 10.0.0.N. */
function hostIndex(net: Net, host: string): number {
  const i = Number(/^10\.0\.0\.(\d+)$/.exec(host)?.[1]) - 1;
  assert.ok(net.hosts[i], `${host} is not one of the placeholders 10.0.0.1..${net.hosts.length}`);
  return i;
}

/** The environment the commands run in: this one, minus anything that would set sqlfleet (or etcd) flags behind the README's back. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('SQLFLEET_') && !k.startsWith('ETCD_') && k !== 'NODE_EXTRA_CA_CERTS') env[k] = v;
  return env;
}

// ---------------------------------------------------------------------------------------
// Running a recipe on a net

/** A long-running command started from the recipe: its process, its log, and (nodes) the URL from its ready line. */
interface RecipeProc {
  readonly kind: 'etcd' | 'node';
  /** Node id, or the etcd member's host index. */
  readonly id: number;
  /** Host index it runs on. */
  readonly host: number;
  readonly line: string;
  readonly child: ChildProcess;
  readonly log: string[];
  url: string;
}

/** What a recipe test holds: the net, the temporary directory, every process it started. */
class RecipeRig {
  net: Net | undefined;
  dir = '';
  conf = '';
  readonly procs: RecipeProc[] = [];
  access: RequestOptions = {};
  dispatcher: Agent | undefined;
  setupLog = '';

  /** Makes the net and the directory, and runs `setup` once from the root namespace. */
  async setup(setup: readonly string[], hosts = 3): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), 'sqlfleet-recipe-'));
    this.net = await createNet({ hosts });
    this.conf = join(this.dir, 'etc');
    const run = spawnSync('bash', ['-euo', 'pipefail', '-c', setup.map((l) => substitute(l, this.net!, this.conf)).join('\n')], {
      cwd: REPO_ROOT,
      env: cleanEnv(),
      encoding: 'utf8',
      timeout: 30_000,
    });
    this.setupLog = `${run.stdout}${run.stderr}`;
    assert.equal(run.status, 0, `the recipe's setup lines failed:\n${this.setupLog}`);
    this.dispatcher = new Agent({ connect: { ca: readFileSync(join(this.conf, 'ca.pem'), 'utf8') } });
    this.access = { dispatcher: this.dispatcher, headers: basic('admin', readFileSync(join(this.conf, 'admin.password'), 'utf8').trim()), timeoutMs: 10_000 };
  }

  /** Starts one recipe line in the namespace of `host` (a placeholder address); /var/lib/sqlfleet is that host's own directory. */
  start(kind: 'etcd' | 'node', { line, host }: HostLine): RecipeProc {
    const net = this.net!;
    const i = hostIndex(net, host);
    const cmd = substitute(line, net, this.conf, join(this.dir, `data-${i + 1}`));
    const id = kind === 'etcd' ? i : Number(/npm run master/.test(line) ? 0 : /npm run node -- (\d+)/.exec(line)?.[1]);
    const child = net.spawn(i, 'bash', ['-c', cmd], { cwd: REPO_ROOT, env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const proc: RecipeProc = { kind, id, host: i, line, child, log: [], url: '' };
    for (const stream of [child.stdout!, child.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (l) => {
        proc.log.push(l);
        if (proc.log.length > 400) proc.log.shift();
        const j = parseJsonLine(l);
        if (kind === 'node' && j?.msg === 'ready' && typeof j.url === 'string') proc.url = j.url;
      });
    }
    if (kind === 'etcd') proc.url = flag(cmd, '--advertise-client-urls')!.split(',')[0]!;
    this.procs.push(proc);
    return proc;
  }

  /** The running node processes, by id (the latest start of each). */
  nodes(): RecipeProc[] {
    const latest = new Map<number, RecipeProc>();
    for (const p of this.procs) if (p.kind === 'node') latest.set(p.id, p);
    return [...latest.values()].sort((a, b) => a.id - b.id);
  }

  node(id: number): RecipeProc {
    const n = this.nodes().find((p) => p.id === id);
    assert.ok(n, `no node ${id}`);
    return n;
  }

  /** Waits until each of `procs` printed its ready line and answers GET /health 200. */
  async waitReady(procs: readonly RecipeProc[]): Promise<void> {
    const exited = () => procs.find((p) => !alive(p));
    await waitFor(() => exited() || procs.every((p) => p.url), {
      timeoutMs: START_TIMEOUT_MS,
      intervalMs: 100,
      message: `nodes ${procs.map((p) => p.id).join(',')} printed their ready line`,
    });
    const gone = exited();
    assert.ok(!gone, `node ${gone?.id} exited (${gone?.child.exitCode ?? gone?.child.signalCode}) before it was ready`);
    await waitFor(async () => {
      const all = await Promise.all(procs.map((p) => get(`${p.url}/health`, { dispatcher: this.dispatcher, timeoutMs: 2_000 })));
      return all.every((r) => r.status === 200);
    }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 100, message: 'GET /health 200 on every node' });
  }

  /** Runs the recipe's show-all line (placeholders substituted, then `edit`) from the root namespace. */
  showAll(line: string, edit: (cmd: string) => string = (c) => c): { status: number | null; out: string } {
    const cmd = edit(substitute(line, this.net!, this.conf));
    const run = spawnSync('bash', ['-euo', 'pipefail', '-c', cmd], { cwd: REPO_ROOT, env: cleanEnv(), encoding: 'utf8', timeout: 30_000 });
    return { status: run.status, out: `${run.stdout}${run.stderr}` };
  }

  printLogs(): void {
    if (this.setupLog) console.error(`--- recipe setup ---\n${this.setupLog}`);
    for (const p of this.procs) {
      const what = p.kind === 'etcd' ? `etcd member on host ${p.host + 1}` : `node ${p.id} (${p.url || 'not ready'})`;
      console.error(`--- ${what}, pid ${p.child.pid}${alive(p) ? '' : `, exited ${p.child.exitCode ?? p.child.signalCode}`} ---\n${p.log.slice(-60).join('\n')}`);
    }
  }

  /** Kills every process it started (SIGKILL to each one's process group, by PID), the namespaces, the directory. */
  destroy(): void {
    for (const p of this.procs) if (alive(p)) killGroup(p);
    this.net?.destroy();
    void this.dispatcher?.close();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

function alive(p: RecipeProc): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** SIGKILL to the process group the recipe line runs in (bash → npm → node, or bash → etcd): net.spawn made it its leader. */
function killGroup(p: RecipeProc): void {
  try {
    process.kill(-p.child.pid!, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** A test that prints the rig's logs when it fails. */
function itWith(rig: RecipeRig, skip: string | false, timeout: number) {
  return (name: string, fn: () => Promise<void>): void => {
    test(name, { skip, timeout }, async () => {
      try {
        await fn();
      } catch (e) {
        rig.printLogs();
        throw e;
      }
    });
  };
}

// ---------------------------------------------------------------------------------------
// The static recipe

describe('the across-machines recipe (static)', { skip: SKIP }, () => {
  const rig = new RecipeRig();
  const it = itWith(rig, SKIP, 40_000);
  let recipe: Recipe | undefined;

  before(async () => {
    if (SKIP) return;
    const t0 = Date.now();
    recipe = readRecipe(readFileSync(join(REPO_ROOT, 'README.md'), 'utf8'), STATIC_MARKER);
    try {
      await rig.setup(recipe.setup);
      for (const n of recipe.nodes) rig.start('node', n);
      await rig.waitReady(rig.nodes());
    } catch (e) {
      rig.printLogs();
      throw e;
    }
    console.log(`# recipe: 3 hosts up in ${Date.now() - t0} ms`);
  });

  after(() => rig.destroy());

  const master = () => rig.node(0);
  const slaves = () => rig.nodes().filter((n) => n.id !== 0);

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
    for (const n of rig.nodes()) {
      const i = n.id; // master on host 1, slave k on host k+1, as the recipe says
      assert.equal(new URL(n.url).hostname, rig.net!.hosts[i]!.addr, `node ${n.id} ready at ${n.url}`);
      assert.equal(new URL(n.url).protocol, 'https:');
    }
    await waitFor(async () => {
      const r = await get(`${master().url}/status`, rig.access);
      assert.equal(r.status, 200, `master /status: ${r.status} ${r.text}`);
      const s = r.body;
      const up = (s.nodes as Array<{ id: number; state: string; url: string }>).filter((x) => x.id !== 0 && x.state === 'up');
      return up.length === 2 && up.every((x) => x.url === rig.nodes().find((n) => n.id === x.id)?.url);
    }, { timeoutMs: 15_000, message: 'slaves 1 and 2 up at their https URLs in the master /status' });
  });

  it('without credentials a node answers 401', async () => {
    for (const n of rig.nodes()) {
      const r = await post(n.url, { query: 'SELECT 1' }, { dispatcher: rig.dispatcher, timeoutMs: 5_000 });
      assert.equal(r.status, 401, `node ${n.id}: ${r.status} ${r.text}`);
    }
  });

  it('a write through a slave is read back on every node, and show-all says identical', async () => {
    const access = rig.access;
    const ddl = ok(await post(master().url, { query: 'CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)' }, access), 'DDL on the master');
    const w = ok(await post(slaves()[0]!.url, { query: 'INSERT INTO notes(body) VALUES (?), (?)', params: ['across', 'machines'] }, access), 'write via slave 1');
    assert.ok(w.index > ddl.index);
    assert.deepEqual([...w.replicated_to].sort(), [1, 2], `replicated_to: ${JSON.stringify(w)}`);
    for (const n of rig.nodes()) {
      const got = rows(await post(n.url, { command: 'query', query: 'SELECT body FROM notes ORDER BY id', min_index: w.index }, access), `read on node ${n.id}`);
      assert.deepEqual(got, [['across'], ['machines']], `node ${n.id}`);
    }
    const { status, out } = rig.showAll(recipe!.check);
    assert.equal(status, 0, `show-all failed (exit ${status}):\n${out}`);
    assert.match(out, /^identical: 3 nodes at index \d+$/m, out);
    assert.match(out, /machines/, `show-all prints the table's rows:\n${out}`);
  });
});

// ---------------------------------------------------------------------------------------
// The etcd recipe

/** The parts of /status the etcd test reads. */
interface EtcdStatus {
  role: string;
  master: string;
  epoch: number;
  applied_index: number;
  sync_set?: number[];
  lease?: { valid: boolean; ms_left: number; ttl_ms: number };
  etcd?: { connected: boolean; cluster: string; error?: string; waiting?: string };
  nodes?: Array<{ id: number; url: string; state: string; role: string }>;
}

describe('the across-machines recipe with automatic failover (etcd)', { skip: SKIP_ETCD }, () => {
  const rig = new RecipeRig();
  const it = itWith(rig, SKIP_ETCD, 120_000);
  let recipe: Recipe | undefined;
  let staticSetup: string[] = [];
  /** Rows acknowledged so far; every surviving node must hold them all. */
  const acked: string[] = [];
  /** Rows sent without an acknowledgement: a node may or may not hold them. */
  const unacked = new Set<string>();
  /** Host index of the killed master's host, and its node id. */
  let killedHost = -1;
  let killedId = -1;
  let epochBefore = 0;
  let failedOver = false;

  const status = async (p: RecipeProc, timeoutMs = 3_000): Promise<EtcdStatus> => {
    const r = await get(`${p.url}/status`, { ...rig.access, timeoutMs });
    assert.equal(r.status, 200, `node ${p.id} /status: ${r.status} ${r.text}`);
    return r.body as EtcdStatus;
  };

  /** Waits until one of `among` is master, every one of `among` names it, and its sync set is the others (and `wantSync`). */
  const electedMaster = async (among: readonly RecipeProc[], timeoutMs: number): Promise<{ master: RecipeProc; s: EtcdStatus }> =>
    waitFor<{ master: RecipeProc; s: EtcdStatus } | undefined>(async () => {
      const all = await Promise.all(among.map((p) => status(p)));
      const i = all.findIndex((s) => s.role === 'master');
      if (i < 0) return undefined;
      const m = among[i]!;
      const others = among.filter((p) => p !== m).map((p) => p.id).sort((a, b) => a - b);
      const ok = all.every((s) => s.master === m.url) && JSON.stringify(all[i]!.sync_set) === JSON.stringify(others) && all[i]!.lease?.valid;
      return ok ? { master: m, s: all[i]! } : undefined;
    }, { timeoutMs, intervalMs: 200, message: `one master among nodes ${among.map((p) => p.id).join(',')} that the others follow, with them in its sync set` }) as Promise<{ master: RecipeProc; s: EtcdStatus }>;

  /** Every row acknowledged so far, read on `p` at `minIndex`. */
  const assertHasAll = async (p: RecipeProc, minIndex: number): Promise<void> => {
    const got = rows(await post(p.url, { command: 'query', query: 'SELECT body FROM notes ORDER BY id', min_index: minIndex }, rig.access), `read on node ${p.id}`).map((r) => String(r[0]));
    assert.deepEqual(acked.filter((b) => !got.includes(b)), [], `node ${p.id} holds every acknowledged row`);
    assert.deepEqual(got.filter((b) => !acked.includes(b) && !unacked.has(b)), [], `node ${p.id} holds no row that was never sent`);
    assert.equal(new Set(got).size, got.length, `node ${p.id}: no row twice`);
  };

  before(async () => {
    if (SKIP_ETCD) return;
    const t0 = Date.now();
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    recipe = readRecipe(readme, ETCD_MARKER);
    // "Step 1 and 2 of the recipe above": the static recipe's setup lines make /etc/sqlfleet.
    staticSetup = readRecipe(readme, STATIC_MARKER).setup;
    assert.deepEqual(recipe.setup, [], 'the etcd recipe reuses the static recipe\'s step 1; it has no setup lines of its own');
    try {
      await rig.setup(staticSetup);
      const members = recipe.etcd.map((e) => rig.start('etcd', e));
      // etcd answers /health 200 only once its member is part of a cluster with a leader.
      await waitFor(async () => {
        const gone = members.find((m) => !alive(m));
        assert.ok(!gone, `the etcd member on host ${gone?.host! + 1} exited (${gone?.child.exitCode ?? gone?.child.signalCode})`);
        const h = await Promise.all(members.map((m) => fetch(`${m.url}/health`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.ok, () => false)));
        return h.every(Boolean);
      }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, message: 'GET /health 200 on the three etcd members' });
      console.log(`# etcd recipe: 3 etcd members healthy after ${Date.now() - t0} ms`);
      for (const n of recipe.nodes) rig.start('node', n);
      await rig.waitReady(rig.nodes());
    } catch (e) {
      rig.printLogs();
      throw e;
    }
    console.log(`# etcd recipe: 3 hosts up in ${Date.now() - t0} ms`);
  });

  after(() => rig.destroy());

  it('the recipe is complete and safe: three etcd members, one per host, and every node with all of them, --auth, TLS and the token', async () => {
    assert.ok(recipe);
    assert.equal(recipe.etcd.length, 3, 'three etcd members');
    assert.deepEqual(recipe.etcd.map((e) => e.host).sort(), ['10.0.0.1', '10.0.0.2', '10.0.0.3'], 'one member per host');
    const names = recipe.etcd.map((e) => flag(e.line, '--name'));
    assert.equal(new Set(names).size, 3, `distinct member names: ${names.join(', ')}`);
    const expectCluster = recipe.etcd.map((e) => `${flag(e.line, '--name')}=${flag(e.line, '--initial-advertise-peer-urls')}`).sort().join(',');
    const clientUrls = recipe.etcd.map((e) => flag(e.line, '--advertise-client-urls')).sort().join(',');
    for (const { line, host } of recipe.etcd) {
      for (const f of ['--name', '--data-dir', '--listen-client-urls', '--advertise-client-urls', '--listen-peer-urls', '--initial-advertise-peer-urls', '--initial-cluster', '--initial-cluster-token']) {
        assert.ok(flag(line, f), `${f} on every etcd member: ${line}`);
      }
      assert.equal(flag(line, '--initial-cluster-state'), 'new', line);
      assert.equal(flag(line, '--initial-cluster')!.split(',').sort().join(','), expectCluster, `--initial-cluster names every member at its peer URL: ${line}`);
      assert.equal(flag(line, '--initial-cluster-token'), flag(recipe.etcd[0]!.line, '--initial-cluster-token'), 'one --initial-cluster-token');
      assert.equal(new URL(flag(line, '--advertise-client-urls')!).hostname, host, `advertises its own host: ${line}`);
      assert.equal(new URL(flag(line, '--initial-advertise-peer-urls')!).hostname, host, `advertises its own host: ${line}`);
    }
    assert.equal(recipe.nodes.filter((n) => /npm run master/.test(n.line)).length, 1, 'one master command');
    assert.equal(recipe.nodes.length, 3, 'a master and two slaves');
    for (const { line } of recipe.nodes) {
      assert.equal(flag(line, '--etcd')?.split(',').sort().join(','), clientUrls, `--etcd names the three members on every node: ${line}`);
      assert.match(line, /--auth \S+/, `--auth on every node: ${line}`);
      assert.match(line, /--tls-cert \S+ --tls-key \S+ --tls-ca \S+/, `TLS on every node: ${line}`);
      assert.match(line, /SQLFLEET_CLUSTER_TOKEN=|--cluster-token/, `the cluster token on every node: ${line}`);
      assert.doesNotMatch(line, /--insecure/, line);
    }
    assert.ok(recipe.check, 'the recipe ends with npm run show-all');
  });

  it('each node on its own host; one master elected, both others in its sync set; etcd connected everywhere', async () => {
    for (const n of rig.nodes()) {
      assert.equal(new URL(n.url).hostname, rig.net!.hosts[n.id]!.addr, `node ${n.id} ready at ${n.url}`);
      assert.equal(new URL(n.url).protocol, 'https:');
    }
    const t0 = Date.now();
    const { master, s } = await electedMaster(rig.nodes(), ELECTION_TIMEOUT_MS);
    assert.equal(master.id, 0, 'on a fresh cluster node 0 (npm run master) leads');
    for (const n of rig.nodes()) {
      const e = (await status(n)).etcd;
      assert.equal(e?.connected, true, `node ${n.id} etcd: ${JSON.stringify(e)}`);
      assert.equal(e?.cluster, 'sqlfleet');
    }
    epochBefore = s.epoch;
    console.log(`# etcd recipe: node ${master.id} master, epoch ${s.epoch}, sync set [${s.sync_set}] ${Date.now() - t0} ms after the nodes were ready`);
  });

  it('a write through a slave is read back on every node, and show-all prints master, epoch and sync set', async () => {
    const master = rig.node(0);
    const slave = rig.node(1);
    const ddl = ok(await post(master.url, { query: 'CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)' }, rig.access), 'DDL on the master');
    const w = ok(await post(slave.url, { query: 'INSERT INTO notes(body) VALUES (?), (?)', params: ['across', 'machines'] }, rig.access), 'write via slave 1');
    acked.push('across', 'machines');
    assert.ok(w.index > ddl.index);
    assert.deepEqual([...w.replicated_to].sort(), [1, 2], `replicated_to: ${JSON.stringify(w)}`);
    for (const n of rig.nodes()) await assertHasAll(n, w.index);
    // The DDL may have left the sync set for a moment; show-all runs once it is whole again.
    await electedMaster(rig.nodes(), ELECTION_TIMEOUT_MS);
    const { status: code, out } = rig.showAll(recipe!.check);
    console.log(out.replace(/^/gm, '# show-all: '));
    assert.equal(code, 0, `show-all failed (exit ${code}):\n${out}`);
    assert.match(out, /^identical: 3 nodes at index \d+$/m, out);
    assert.match(out, new RegExp(`^  master ${escape(master.url)}, epoch ${epochBefore}, sync set \\[1,2\\], lease valid`, 'm'), out);
    assert.match(out, /machines/, `show-all prints the table's rows:\n${out}`);
  });

  it("SIGKILL of the master's host (its etcd member and node): one of the two others takes writes, show-all through it reports the dead node", async () => {
    const pre = await Promise.all(rig.nodes().map((n) => status(n)));
    const m = rig.nodes()[pre.findIndex((s) => s.role === 'master')];
    assert.ok(m, 'a master before the fault');
    killedHost = m.host;
    killedId = m.id;
    const victims = rig.procs.filter((p) => p.host === killedHost && alive(p));
    assert.deepEqual(victims.map((p) => p.kind).sort(), ['etcd', 'node'], `host ${killedHost + 1} runs an etcd member and a node`);
    const survivors = rig.nodes().filter((n) => n.host !== killedHost);
    // Whether the killed member leads etcd's own raft: then the two others elect a new etcd
    // leader first, and etcd gives every lease a fresh TTL on a leader change (it adds to the time).
    const raftLeader = await etcdIsLeader(victims.find((p) => p.kind === 'etcd')!.url).catch((e: Error) => `unknown (${e.message})`);

    const exits = victims.map((p) => new Promise((r) => p.child.once('exit', r)));
    const t0 = performance.now();
    for (const p of victims) killGroup(p);
    await Promise.race([Promise.all(exits), delay(5_000)]);
    assert.ok(victims.every((p) => !alive(p)), 'the killed processes exited');
    // Nothing of the recipe runs on that host any more: it is as good as a dead machine. (The
    // group leader's exit is seen first; node, a few ms later, once the kernel has torn it down.)
    const left = () => spawnSync('ip', ['netns', 'pids', rig.net!.hosts[killedHost]!.ns], { encoding: 'utf8' }).stdout.trim();
    await waitFor(() => left() === '', { timeoutMs: 5_000, intervalMs: 20, message: `no process left on host ${killedHost + 1} after the SIGKILL` });

    // One writer per survivor, each retrying until a write is acknowledged (bounded). A write
    // that got no 200 may still have been applied (a timeout, or "may or may not have been applied").
    let n = 0;
    let firstAck: { ms: number; via: number } | undefined;
    const answers: string[] = [];
    const budget = ELECTION_TIMEOUT_MS + 15_000;
    const deadline = performance.now() + budget;
    await Promise.all(survivors.map(async (s) => {
      while (!firstAck && performance.now() < deadline) {
        const body = `after-failover-${s.id}-${n++}`;
        unacked.add(body);
        const r = await post(s.url, { query: 'INSERT INTO notes(body) VALUES (?)', params: [body] }, { ...rig.access, timeoutMs: 5_000 }).catch((e: Error) => e);
        if (!(r instanceof Error) && r.status === 200 && r.body?.ok) {
          unacked.delete(body);
          acked.push(body);
          firstAck ??= { ms: performance.now() - t0, via: s.id };
          return;
        }
        const why = r instanceof Error ? r.message : `${r.status} ${r.body?.error?.code ?? r.text.slice(0, 120)}`;
        if (answers.at(-1) !== why) answers.push(why);
        await delay(50);
      }
    }));
    assert.ok(firstAck, `no write acknowledged within ${budget} ms of the SIGKILL; answers: ${answers.slice(-8).join(' | ')}`);
    console.log(`# etcd recipe: first acknowledged write ${Math.round(firstAck.ms)} ms after the SIGKILL of host ${killedHost + 1} (node ${killedId} and its etcd member, ${raftLeader === true ? "etcd's raft leader" : raftLeader === false ? "not etcd's raft leader" : `raft leader ${raftLeader}`}), sent to node ${firstAck.via}`);

    const { master: nm, s } = await electedMaster(survivors, ELECTION_TIMEOUT_MS);
    assert.ok(s.epoch > epochBefore, `a new epoch: ${s.epoch} > ${epochBefore}`);
    // Two of three etcd members are a majority: every survivor keeps reaching etcd, and the new
    // master keeps its lease. Watched for a while, since a node reports its last HA cycle.
    const watchUntil = Date.now() + STABLE_MS;
    while (Date.now() < watchUntil) {
      for (const x of survivors) {
        const st = await status(x);
        assert.equal(st.etcd?.connected, true, `node ${x.id} says etcd is unreachable while two of its three members are up: ${JSON.stringify(st.etcd)}`);
        assert.equal(st.role, x === nm ? 'master' : 'slave', `node ${x.id} changed role after the failover (now ${st.role})`);
      }
      await delay(250);
    }
    console.log(`# etcd recipe: node ${nm.id} master in epoch ${s.epoch}, sync set [${s.sync_set}]`);
    // The new master takes writes sent to it and to the other survivor.
    for (const x of survivors) {
      const body = `via-${x.id}-after`;
      const w = ok(await post(x.url, { query: 'INSERT INTO notes(body) VALUES (?)', params: [body] }, rig.access), `write via node ${x.id} after the failover`);
      acked.push(body);
      assert.deepEqual(w.replicated_to, survivors.filter((y) => y !== nm).map((y) => y.id), `replicated to the other survivor: ${JSON.stringify(w)}`);
    }
    const index = (await status(nm)).applied_index;
    for (const x of survivors) await assertHasAll(x, index);

    // show-all as the recipe has it names the dead node's URL: through a survivor instead.
    const deadUrl = `https://${rig.net!.hosts[killedHost]!.addr}:${new URL(m.url).port}`;
    const via = survivors.find((x) => x !== nm)!;
    const { status: code, out } = rig.showAll(recipe!.check, (c) => {
      assert.ok(c.includes(`--master-url ${deadUrl}`), `the recipe's show-all names ${deadUrl}: ${c}`);
      return c.replace(`--master-url ${deadUrl}`, `--master-url ${via.url}`);
    });
    console.log(out.replace(/^/gm, '# show-all: '));
    assert.match(out, new RegExp(`^  master ${escape(nm.url)}, epoch ${s.epoch}, sync set \\[${via.id}\\], lease valid.*\\(asked ${escape(via.url)}, which follows it\\)`, 'm'), out);
    // The new master learned its peers from etcd, where the dead node's entry went with its lease: no URL.
    assert.match(out, new RegExp(`^  node ${killedId} .*DOWN\\s+no URL known$`, 'm'), `the dead node is listed DOWN:\n${out}`);
    assert.match(out, new RegExp(`^DIFFERENT: node ${killedId} is DOWN \\(no URL known\\); the 2 reachable nodes are identical at index ${index}$`, 'm'), out);
    assert.equal(code, 1, 'show-all exits 1 while a node is down');
    failedOver = true;
  });

  it("the lost host's two commands run again unchanged: its etcd member rejoins, its node comes back as a slave in the sync set", async () => {
    assert.ok(failedOver, 'the failover test passed (this one restarts the host it killed, after a failover)');
    const t0 = Date.now();
    const again = rig.procs.filter((p) => p.host === killedHost && !alive(p)).map((p) => ({ kind: p.kind, line: p.line }));
    const [e, n] = [again.find((x) => x.kind === 'etcd')!, again.find((x) => x.kind === 'node')!];
    const member = rig.start('etcd', recipe!.etcd.find((x) => x.line === e.line)!);
    const node = rig.start('node', recipe!.nodes.find((x) => x.line === n.line)!);
    await waitFor(async () => {
      assert.ok(alive(member), `the etcd member exited (${member.child.exitCode ?? member.child.signalCode})`);
      return (await fetch(`${member.url}/health`, { signal: AbortSignal.timeout(2_000) })).ok;
    }, { timeoutMs: START_TIMEOUT_MS, intervalMs: 200, message: 'the restarted etcd member healthy' });
    await rig.waitReady([node]);
    const { master, s } = await electedMaster(rig.nodes(), ELECTION_TIMEOUT_MS);
    assert.notEqual(master.id, killedId, 'the restarted node follows; it does not take over again');
    assert.deepEqual(s.sync_set, rig.nodes().filter((x) => x !== master).map((x) => x.id), 'back in the sync set');
    await assertHasAll(node, s.applied_index);
    console.log(`# etcd recipe: host ${killedHost + 1} back, node ${killedId} a slave of node ${master.id} in its sync set, ${Date.now() - t0} ms after the restart`);
    const { status: code, out } = rig.showAll(recipe!.check);
    assert.equal(code, 0, `show-all failed (exit ${code}):\n${out}`);
    assert.match(out, /^identical: 3 nodes at index \d+$/m, out);
    assert.match(out, new RegExp(`\\(asked https://${escape(rig.net!.hosts[killedHost]!.addr)}:\\d+, which follows it\\)`), `show-all through the restarted node finds the master:\n${out}`);
  });
});

/** True when the etcd member at `url` is its cluster's raft leader (etcd's v3 JSON gateway, /v3/maintenance/status). */
async function etcdIsLeader(url: string): Promise<boolean> {
  const r = await fetch(`${url}/v3/maintenance/status`, { method: 'POST', body: '{}', signal: AbortSignal.timeout(2_000) });
  const b = (await r.json()) as { leader?: string; header?: { member_id?: string } };
  assert.ok(b.leader && b.header?.member_id, `maintenance/status: ${JSON.stringify(b)}`);
  return b.leader === b.header.member_id;
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
