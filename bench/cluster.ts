// A sqlfleet cluster for the benchmark (master + N slaves on free loopback ports, one temp
// data dir), the reference servers (bench/references.ts) and the older baseline server (bench/cost.ts).
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, getJson, Proc, start, stopAll, until } from './procs.js';
import { LIMIT, YARDSTICK } from './references.js';

const CLI = 'bin/sqlfleet.js'; // what `npm run master` runs
const temps: string[] = [];

/** A temp dir removed by removeTempDirs(). */
export function tempDir(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  temps.push(d);
  return d;
}

/** Removes every data dir this module created (call after the processes stopped). */
export function removeTempDirs(): void {
  for (const d of temps.splice(0)) rmSync(d, { recursive: true, force: true });
}

/**
 * Runs a bench script's `main`: on Ctrl-C, on failure (exit code 1, named `name`) and at the
 * end, every process it started is stopped by PID and its data dirs are removed.
 */
export async function runScript(name: string, main: () => Promise<void>): Promise<void> {
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    await main();
  } catch (e) {
    console.error(`${name} failed: ${(e as Error).stack ?? e}`);
    process.exitCode = 1;
  } finally {
    await stopAll();
    removeTempDirs();
  }
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

/**
 * Starts a master and `n` slaves (optionally with extra node flags, e.g. --cpu-prof, and
 * extra sqlfleet arguments for every node, e.g. `--etcd <url>`); waits until all are up.
 */
export async function startCluster(
  n: number,
  masterNodeFlags: readonly string[] = [],
  slaveNodeFlags: readonly (readonly string[])[] = [],
  nodeArgs: readonly string[] = [],
): Promise<BenchCluster> {
  const dataDir = tempDir('sqlfleet-bench-');
  const master = await start('master', CLI, ['master', String(n), '--port', '0', '--data-dir', dataDir, ...nodeArgs], masterNodeFlags);
  const slaveArgs = (id: number, port: number) => ['node', String(id), String(n), '--port', String(port), '--data-dir', dataDir, '--master-url', master.url, ...nodeArgs];
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

/** Starts a reference server (references.ts: YARDSTICK or LIMIT) on a free port and a fresh database file. */
async function startReference(label: string, script: string): Promise<Proc> {
  if (!existsSync(script)) throw new Error(`the ${label} ${script} is missing (see bench/references.ts)`);
  const dir = tempDir(`sqlfleet-${label}-`);
  return start(label, script, [], [], { PORT: String(await freePort()), HOST: '127.0.0.1', DB: join(dir, `${label}.db`) });
}

/** The replicated floor (bench/floor.mjs): a bare master and two slaves. */
export interface Floor {
  readonly master: Proc;
  readonly slaves: Proc[];
}

/** Starts bench/floor.mjs as two slaves and a master that ships to them, on free ports, fresh files. */
export async function startFloor(): Promise<Floor> {
  const dir = tempDir('sqlfleet-floor-');
  const slaves: Proc[] = [];
  for (const i of [1, 2]) {
    slaves.push(await start(`floor slave ${i}`, 'bench/floor.mjs', [], [], { ROLE: 'slave', PORT: String(await freePort()), HOST: '127.0.0.1', DB: join(dir, `s${i}.db`) }));
  }
  const SLAVES = slaves.map((s) => s.url.replace('tcp://', '')).join(',');
  const master = await start('floor master', 'bench/floor.mjs', [], [], { ROLE: 'master', PORT: String(await freePort()), HOST: '127.0.0.1', DB: join(dir, 'm.db'), SLAVES });
  return { master, slaves };
}

/** Starts the yardstick (hono, one commit per write). */
export const startYardstick = (): Promise<Proc> => startReference('yardstick', YARDSTICK);
/** Starts the single-node limit (node:http, group commit). */
export const startLimit = (): Promise<Proc> => startReference('limit', LIMIT);

/** Applied index of a node, from its own /status. */
export async function appliedIndex(url: string): Promise<number> {
  return (await getJson<{ applied_index: number }>(url, '/status')).applied_index;
}
