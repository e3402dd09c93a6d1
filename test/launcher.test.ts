// `sqlfleet cluster N` as a process (issue 32, items 7, 8, 11, 12, 13): it says "ready" only
// about its own children, ends with a reason and a non-zero status when a port is taken or a
// child dies before ready, trusts --tls-ca, starts quietly, announces saved state, and
// refuses a bad count with one line. Each runs the command in a child process.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { CLI, REPO_ROOT, TestNode, exec, free, freeBase, killOnExit, ok, printLogs, tempDir, waitFor } from './helpers/cluster.js';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const dir = (prefix: string) => {
  const d = tempDir(prefix);
  dirs.push(d);
  return d;
};

/** One run of `sqlfleet cluster …` in its own process group. */
interface Run {
  readonly child: ChildProcess;
  out(): string;
  /** Resolves the exit status (null: killed by a signal), or 'running' after `ms`. */
  exit(ms: number): Promise<number | null | 'running'>;
  /** SIGINT to the group, then SIGKILL if it is still there after 15 s. */
  stop(): Promise<number | null | 'hung'>;
}

function runCluster(args: string[]): Run {
  const child = spawn(process.execPath, [CLI, 'cluster', ...args], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  killOnExit(child);
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const exit = (ms: number) => Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), ms).unref())]);
  return {
    child,
    out: () => out,
    exit,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      process.kill(-child.pid!, 'SIGINT');
      const code = await exit(15_000);
      if (code !== 'running') return code;
      process.kill(-child.pid!, 'SIGKILL');
      return 'hung';
    },
  };
}

/** Runs `fn`; on failure the cluster's output is attached; the cluster is always stopped. */
async function withRun(run: Run, fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    throw new Error(`${(e as Error).message}\n--- cluster output ---\n${run.out().slice(-4000)}`);
  } finally {
    await run.stop();
  }
}

test('cluster abc: one clean line, exit 2, no stack trace', () => {
  const r = spawnSync(process.execPath, [CLI, 'cluster', 'abc', '--data-dir', dir('sqlfleet-launch-')], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 2, r.stderr);
  const lines = r.stderr.split('\n').filter((l) => l && !l.startsWith('sqlfleet: bundling'));
  assert.deepEqual(lines, ['sqlfleet: <numSlaves> must be a whole number >= 0, got "abc"']);
  for (const bad of ['1.5', '-1']) {
    const b = spawnSync(process.execPath, [CLI, 'cluster', bad], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 30_000 });
    assert.notEqual(b.status, 0, `${bad}: ${b.stderr}`);
    assert.doesNotMatch(b.stderr, /\n\s+at /, `${bad}: a stack trace`);
  }
});

test('ports answered by another server: no "ready", exit 1 naming the taken port', { timeout: 60_000 }, async () => {
  const base = await freeBase();
  // Three servers that pass for healthy nodes: /health 200 on every port.
  const servers = await Promise.all(
    [0, 1, 2].map(
      (i) =>
        new Promise<http.Server>((res) => {
          const s = http.createServer((_req, rsp) => rsp.end('{"ok":true}'));
          s.listen(base + i, '127.0.0.1', () => res(s));
        }),
    ),
  );
  try {
    const run = runCluster(['2', '--base-port', String(base), '--data-dir', dir('sqlfleet-launch-')]);
    await withRun(run, async () => {
      const code = await run.exit(45_000);
      assert.equal(code, 1, 'exit status');
      assert.doesNotMatch(run.out(), /\[cluster\] ready/);
      assert.match(run.out(), new RegExp(`port ${base} \\(node 0\\) on 127\\.0\\.0\\.1 is already in use`));
    });
  } finally {
    for (const s of servers) s.close();
  }
});

test('a node that dies before ready ends the command: exit 1 with its reason, the others stopped', { timeout: 60_000 }, async () => {
  const base = await freeBase();
  // Every node fails to load its users file; the launcher itself does not read it.
  const run = runCluster(['2', '--base-port', String(base), '--data-dir', dir('sqlfleet-launch-'), '--auth', '/nonexistent/users.json']);
  await withRun(run, async () => {
    const code = await run.exit(45_000);
    assert.equal(code, 1, 'exit status');
    assert.doesNotMatch(run.out(), /\[cluster\] ready/);
    assert.match(run.out(), /\[cluster\] node \d exited \(1\) before the cluster was ready: .*users\.json/);
    for (const p of [base, base + 1, base + 2]) assert.equal(await free(p), true, `port ${p} released`);
  });
});

test('start-up says what it does and logs no warning; a restart after a switchover names the master it found, and node 0 its saved role', { timeout: 120_000 }, async () => {
  const base = await freeBase();
  const data = dir('sqlfleet-launch-');
  const args = ['2', '--base-port', String(base), '--data-dir', data];
  let run = runCluster(args);
  await withRun(run, async () => {
    await waitFor(() => run.out().includes('[cluster] ready:'), { timeoutMs: 60_000, message: '[cluster] ready' });
    assert.match(run.out(), /^\[cluster\] starting node 0 on \S+ and nodes 1-2 on ports \d+-\d+; node 0 is the master of a new cluster, a role saved by an earlier failover wins/m, 'the first line says what starts');
    assert.match(run.out(), /\[cluster\] ready: 3 nodes healthy, master node 0 \(/, 'the ready line names the master');
    assert.match(run.out(), /kept between runs: remove it to start fresh/);
    assert.doesNotMatch(run.out(), /master unreachable|ECONNREFUSED/, 'slaves starting before their master do not warn');
    assert.match(run.out(), /\[node 1\] .*"msg":"starting with an empty database"/);
    // Move the master to node 1 (npm run promote's request), as a failover would leave it.
    const token = readFileSync(join(data, 'cluster.token'), 'utf8').trim();
    const r = await fetch(`http://127.0.0.1:${base}/nodes/1/promote`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    assert.equal(r.status, 200, await r.text());
    await waitFor(async () => ((await (await fetch(`http://127.0.0.1:${base + 1}/status`)).json()) as { role?: string }).role === 'master', { timeoutMs: 20_000, message: 'node 1 is master' });
  });
  run = runCluster(args);
  await withRun(run, async () => {
    await waitFor(() => run.out().includes('[cluster] ready:'), { timeoutMs: 60_000, message: '[cluster] ready (second run)' });
    assert.match(run.out(), /\[cluster\] ready: 3 nodes healthy, master node 1 \(http:\/\/127\.0\.0\.1:\d+\)/, 'the ready line names the master the saved roles made');
    const saved = /\[node 0\] (\{.*"msg":"found a saved role.*)$/m.exec(run.out());
    assert.ok(saved, 'node 0 announces its saved role');
    const line = JSON.parse(saved[1]!) as Record<string, unknown>;
    assert.equal(line.from, join(data, 'node-0.role.json'));
    assert.equal(line.role, 'slave');
    assert.equal(typeof line.epoch, 'number');
    assert.match(String(line.hint), /start fresh/);
  });
});

test('a slave started before its master logs no warning while the master comes up', { timeout: 60_000 }, async () => {
  const base = await freeBase(2);
  const data = dir('sqlfleet-launch-');
  const masterUrl = `http://127.0.0.1:${base}`;
  const slave = new TestNode({ role: 'slave', id: 1, numSlaves: 1, dataDir: data, masterUrl, port: base + 1, extraArgs: ['--cluster-token', 'tok', '--log-level', 'debug'] });
  const master = new TestNode({ role: 'master', id: 0, numSlaves: 1, dataDir: data, port: base, extraArgs: ['--cluster-token', 'tok'] });
  try {
    await slave.launch();
    // Several heartbeats fail before the master listens.
    await new Promise((r) => setTimeout(r, 1500));
    await master.launch();
    await waitFor(() => slave.logs().includes('in sync with the master'), { timeoutMs: 20_000, message: 'slave in sync' });
    ok(await exec(master, 'CREATE TABLE t(x)'), 'create');
    assert.doesNotMatch(slave.logs(), /"level":"warn"[^\n]*master unreachable/, 'no warning during start-up');
    assert.match(slave.logs(), /master not answering yet/, 'the early failures were logged (at debug, with --log-level debug)');
  } catch (e) {
    printLogs([slave, master], 40);
    throw e;
  } finally {
    await Promise.all([slave.kill(), master.kill()]);
  }
});

test('cluster --tls-cert/--tls-key/--tls-ca says ready: its probe trusts the CA', { timeout: 90_000 }, async (t) => {
  if (spawnSync('openssl', ['version'], { stdio: 'ignore' }).status !== 0) return t.skip('openssl is not installed');
  const d = dir('sqlfleet-launch-tls-');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
  openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
    '-subj', '/CN=launcher test CA', '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
  openssl('req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', 'node.key', '-out', 'node.csr', '-subj', '/CN=127.0.0.1');
  writeFileSync(join(d, 'node.ext'), 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n');
  openssl('x509', '-req', '-in', 'node.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'node.crt', '-days', '2', '-extfile', 'node.ext');
  const base = await freeBase(2);
  const run = runCluster(['1', '--base-port', String(base), '--data-dir', join(d, 'data'),
    '--tls-cert', join(d, 'node.crt'), '--tls-key', join(d, 'node.key'), '--tls-ca', join(d, 'ca.crt')]);
  await withRun(run, async () => {
    await waitFor(() => run.out().includes('[cluster] ready:'), { timeoutMs: 60_000, message: '[cluster] ready over TLS' });
    assert.match(run.out(), new RegExp(`https://127\\.0\\.0\\.1:${base} `));
  });
});
