// A sqlfleet cluster for the benchmark (master + N slaves on free loopback ports, one temp
// data dir) and the baseline server.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getJson, Proc, start, until } from './procs.js';

const CLI = 'bin/sqlfleet.js'; // what `npm run master` runs
const temps: string[] = [];

function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

/** Removes every data dir this module created (call after the processes stopped). */
export function removeTempDirs(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** Status of one node as the master reports it. */
export interface NodeState {
  id: number;
  state: string;
  applied_index: number;
  url: string;
}

/** A running cluster. */
export interface BenchCluster {
  readonly dataDir: string;
  readonly master: Proc;
  readonly slaves: Proc[];
  /** Restarts slave `id` (1-based) on its previous port after it was stopped. */
  restartSlave(id: number): Promise<Proc>;
}

/** Starts a master and `n` slaves (optionally with extra node flags, e.g. --cpu-prof); waits until all are up. */
export async function startCluster(n: number, masterNodeFlags: readonly string[] = [], slaveNodeFlags: readonly (readonly string[])[] = []): Promise<BenchCluster> {
  const dataDir = tempDir('sqlfleet-bench-');
  const master = await start('master', CLI, ['master', String(n), '--port', '0', '--data-dir', dataDir], masterNodeFlags);
  const slaveArgs = (id: number, port: number) => ['node', String(id), String(n), '--port', String(port), '--data-dir', dataDir, '--master-url', master.url];
  const slaves = await Promise.all(Array.from({ length: n }, (_, i) => start(`slave ${i + 1}`, CLI, slaveArgs(i + 1, 0), slaveNodeFlags[i])));
  const allUp = await until(async () => {
    const s = await getJson<{ nodes: NodeState[] }>(master.url, '/status');
    return s.nodes.length === n + 1 && s.nodes.every((x) => x.state === 'up');
  }, 20_000);
  if (!allUp) throw new Error(`cluster not up within 20 s: ${JSON.stringify(await getJson(master.url, '/status'))}`);
  return {
    dataDir,
    master,
    slaves,
    restartSlave: async (id) => {
      const port = Number(new URL(slaves[id - 1].url).port);
      const p = await start(`slave ${id}`, CLI, slaveArgs(id, port), slaveNodeFlags[id - 1]);
      slaves[id - 1] = p;
      return p;
    },
  };
}

/** Starts the baseline server on a fresh database file. */
export async function startBaseline(): Promise<Proc> {
  const dir = tempDir('sqlfleet-baseline-');
  return start('baseline', 'bench/baseline.ts', [join(dir, 'baseline.db')]);
}

/** Applied index of a node, from its own /status. */
export async function appliedIndex(url: string): Promise<number> {
  return (await getJson<{ applied_index: number }>(url, '/status')).applied_index;
}
