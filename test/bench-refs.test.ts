// npm run bench in a clone (issue 32, item 16): its reference servers and wrk script are in
// bench/ too, used when ../shared/bench/ (the task's references, preferred) is absent. Each reference answers the POST / JSON of a node (writes,
// reads, batches, errors), and sql.lua drives one with wrk and prints its RESULT line.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { LIMIT, pickReferenceDir, REFERENCE_DIR, SQL_LUA as BENCH_SQL_LUA, YARDSTICK } from '../bench/references.js';
import { REPO_ROOT, killOnExit, post, tempDir } from './helpers/cluster.js';

const dir = tempDir('sqlfleet-bench-refs-');
const procs: ChildProcess[] = [];
after(() => {
  for (const p of procs) if (p.exitCode === null) p.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

/** Starts bench/<script> on a free port; resolves its URL from the JSON line it prints. */
function start(script: string, key: string): Promise<string> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bench', script)], {
    cwd: REPO_ROOT,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', DB: join(dir, `${script}.db`) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  procs.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${script} printed no ready line in 30 s: ${out}`)), 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = new RegExp(`"${key}":"([^"]+)"`).exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`${script} exited ${code}: ${out}`)));
  });
}

const SQL_LUA = join(REPO_ROOT, 'bench', 'sql.lua');

test("the bench uses ../shared/bench/ when it is there, else bench/'s own references", () => {
  for (const f of ['yardstick.mjs', 'limit.mjs', 'sql.lua']) assert.ok(existsSync(join(REPO_ROOT, 'bench', f)), `bench/${f}`);
  for (const f of [YARDSTICK, LIMIT, BENCH_SQL_LUA]) assert.ok(existsSync(f), `${f} is missing`);
  if (!process.env.BENCH_REFERENCES) {
    const shared = resolve(REPO_ROOT, '../shared/bench');
    const want = ['limit.mjs', 'yardstick.mjs', 'sql.lua'].every((f) => existsSync(join(shared, f))) ? shared : join(REPO_ROOT, 'bench');
    assert.equal(REFERENCE_DIR, want);
  }
  // A clone alone, and one beside a complete ../shared/bench/.
  const clone = join(dir, 'a', 'clone');
  mkdirSync(join(clone, 'bench'), { recursive: true });
  assert.equal(pickReferenceDir(clone), join(clone, 'bench'));
  mkdirSync(join(dir, 'a', 'shared', 'bench'), { recursive: true });
  for (const f of ['limit.mjs', 'yardstick.mjs']) writeFileSync(join(dir, 'a', 'shared', 'bench', f), '');
  assert.equal(pickReferenceDir(clone), join(clone, 'bench'), 'an incomplete shared folder is not used');
  writeFileSync(join(dir, 'a', 'shared', 'bench', 'sql.lua'), '');
  assert.equal(pickReferenceDir(clone), join(dir, 'a', 'shared', 'bench'));
  assert.equal(pickReferenceDir(clone, 'bench'), join(clone, 'bench'), 'BENCH_REFERENCES=bench forces the own set');
});

for (const [script, key] of [['yardstick.mjs', 'yardstick'], ['limit.mjs', 'limit']] as const) {
  test(`bench/${script} answers POST / as a node does: writes, reads, atomic batches, errors; wrk with sql.lua`, { timeout: 90_000 }, async (t) => {
    const url = await start(script, key);
    const w = await post(url, { command: 'exec', query: 'INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)', params: ['k-1', 'a'] });
    assert.equal(w.status, 200, w.text);
    assert.equal(w.body.results[0].changes, 1);
    const r = await post(url, { command: 'query', query: 'SELECT v FROM kv WHERE k = ?', params: ['k-1'] });
    assert.deepEqual(r.body.results[0], { columns: ['v'], rows: [['a']] });
    // Concurrent writes (one group commit in limit.mjs), one of them failing alone.
    const many = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => post(url, { query: 'INSERT INTO kv(k,v) VALUES (?,?)', params: [`g-${i}`, 'x'] })),
      post(url, { query: 'INSERT INTO kv(k,v) VALUES (?,?)', params: ['k-1', 'dup'] }),
    ]);
    assert.deepEqual(many.map((m) => m.status), [...Array(20).fill(200), 400]);
    const batch = await post(url, { transaction: true, queries: [{ query: 'INSERT INTO kv VALUES (?,?)', params: ['b-1', 'x'] }, { query: 'INSERT INTO kv VALUES (?,?)', params: ['k-1', 'x'] }] });
    assert.equal(batch.status, 400, 'the batch fails on its duplicate key');
    const count = await post(url, { query: "SELECT count(*) FROM kv WHERE k LIKE 'g-%' OR k = 'b-1'" });
    assert.deepEqual(count.body.results[0].rows, [[20]], 'every good write committed, nothing of the failed batch');
    assert.equal((await post(url, { query: 'SELEC 1' })).status, 400);

    if (spawnSync('wrk', ['-v'], { stdio: 'ignore' }).error) return t.skip('wrk is not installed');
    const run = spawnSync('wrk', ['-t1', '-c4', '-d1s', '--latency', '-s', SQL_LUA, url, '--', 'param', 'w', '1000'], { encoding: 'utf8', timeout: 30_000 });
    const line = /^RESULT (\{.*\})$/m.exec(run.stdout);
    assert.ok(line, `no RESULT line: ${run.stdout} ${run.stderr}`);
    const result = JSON.parse(line[1]!) as { requests: number; errors: number };
    assert.ok(result.requests > 0);
    assert.equal(result.errors, 0);
  });
}

/** Starts bench/floor.mjs in `role` with `env`; resolves the URL of its ready line and the process. */
function startFloor(role: 'master' | 'slave', name: string, env: Record<string, string> = {}): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bench', 'floor.mjs')], {
    cwd: REPO_ROOT,
    env: { ...process.env, ROLE: role, PORT: '0', HOST: '127.0.0.1', DB: join(dir, `floor-${name}.db`), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  procs.push(child);
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`floor ${name} printed no ready line in 30 s: ${out}`)), 30_000);
    child.stdout!.on('data', (d) => {
      out += d;
      const m = /"url":"([^"]+)"/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1]!, child });
      }
    });
    child.stderr!.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`floor ${name} exited ${code}: ${out}`)));
  });
}

test('bench/floor.mjs (the replicated floor) answers a write once both slaves hold it; its slaves are replicas', { timeout: 90_000 }, async () => {
  const s1 = await startFloor('slave', 's1');
  const s2 = await startFloor('slave', 's2');
  const { url } = await startFloor('master', 'm', { SLAVES: [s1, s2].map((s) => s.url.replace('tcp://', '')).join(',') });
  const w = await post(url, { command: 'exec', query: 'INSERT OR REPLACE INTO kv(k,v) VALUES (?,?)', params: ['k-1', 'a'] });
  assert.equal(w.status, 200, w.text);
  assert.equal(w.body.results[0].changes, 1);
  const many = await Promise.all([
    ...Array.from({ length: 20 }, (_, i) => post(url, { query: 'INSERT INTO kv(k,v) VALUES (?,?)', params: [`g-${i}`, `x${i}`] })),
    post(url, { query: 'INSERT INTO kv(k,v) VALUES (?,?)', params: ['k-1', 'dup'] }),
  ]);
  assert.deepEqual(many.map((m) => m.status), [...Array(20).fill(200), 400]);
  const batch = await post(url, { transaction: true, queries: [{ query: 'INSERT INTO kv VALUES (?,?)', params: ['b-1', 'x'] }, { query: 'INSERT INTO kv VALUES (?,?)', params: ['k-1', 'x'] }] });
  assert.equal(batch.status, 400, 'the batch fails on its duplicate key');
  // ack "all": a write is not answered while a slave cannot apply it (stopped), and is once it can.
  s2.child.kill('SIGSTOP');
  let answered = false;
  const held = post(url, { query: 'INSERT INTO kv(k,v) VALUES (?,?)', params: ['held', 'h'] }).then((r) => ((answered = true), r));
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(answered, false, 'answered while slave 2 was stopped');
  s2.child.kill('SIGCONT');
  assert.equal((await held).status, 200);
  const rows = await post(url, { query: 'SELECT k, v FROM kv ORDER BY k' });
  assert.equal(rows.body.results[0].rows.length, 22, 'k-1, the 20 good writes and the held one; nothing of the failed batch');
  // Every answered write was acknowledged by both slaves: their files hold the same rows now.
  const { default: Database } = await import('better-sqlite3');
  for (const name of ['s1', 's2']) {
    const db = new Database(join(dir, `floor-${name}.db`), { readonly: true });
    try {
      assert.deepEqual(db.prepare('SELECT k, v FROM kv ORDER BY k').raw(true).all(), rows.body.results[0].rows, `floor slave ${name}`);
      assert.equal(db.prepare('SELECT count(*) FROM log').pluck().get(), 22, `floor slave ${name}: one log row per write`);
    } finally {
      db.close();
    }
  }
});
