// The README's Drizzle example ("Using libSQL clients and ORMs") runs as written against a
// master and against a slave, and leaves the replicas identical.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after } from 'node:test';
import { REPO_ROOT, assertSameChecksums, query, useCluster, waitForIndex } from './helpers/cluster.js';

const { cluster, it } = useCluster({ slaves: 1 });
const file = join(REPO_ROOT, `.readme-drizzle-${process.pid}.mts`); // .mts as README says; in the repo: its imports resolve to our node_modules
after(() => rmSync(file, { force: true }));

function example(): string {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf('<!-- example:drizzle -->');
  assert.ok(at >= 0, 'README.md has no <!-- example:drizzle --> marker');
  const m = /```ts\n([\s\S]*?)```/.exec(readme.slice(at));
  assert.ok(m, 'no ts code block after the marker');
  return m[1]!;
}

it('the Drizzle example runs as written, via the master and via a slave', async () => {
  const { master, slaves, nodes } = cluster();
  writeFileSync(file, example());
  for (const [i, node] of [master, slaves[0]!].entries()) {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', file], { cwd: REPO_ROOT, env: { ...process.env, DATABASE_URL: node.url }, timeout: 60_000 });
    assert.match(stdout, /owner: 'ana', balance: 70/, stdout);
    assert.match(stdout, /owner: 'bob', balance: 30/, stdout);
    assert.equal(stdout.match(/owner:/g)?.length, 2, `run ${i}: ${stdout}`);
  }
  await waitForIndex(nodes, Number((await query(master, 'SELECT 1')).body.index));
  await assertSameChecksums(nodes);
});
