// Shared command line of scripts/backup.ts and scripts/restore.ts: one file argument and
// the cluster options show-all takes (--master-url or --base-port/--host, --user/--token).
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';

/** Where the cluster is and how to authenticate. */
export interface ClusterOptions {
  masterUrl: string;
  headers: Record<string, string>;
  timeoutMs: number;
}

/** Parses `<file>` and the cluster options; `extra` adds script-specific options. */
export async function clusterArgs<T>(name: string, extra: (y: Argv) => Argv<T>) {
  const argv = await extra(
    yargs(hideBin(process.argv))
      .scriptName(name)
      .usage(`$0 <file> [--master-url URL | --base-port PORT] [--user NAME:PASSWORD | --token TOKEN]`)
      .env('SQLFLEET')
      .option('master-url', { type: 'string', describe: "a node's URL (default http://<host>:<base-port>, the master)" })
      .option('base-port', { type: 'number', default: 8080, describe: "the master's port on --host" })
      .option('host', { type: 'string', default: '127.0.0.1' })
      .option('timeout', { type: 'number', default: 60_000, describe: 'ms for the request' })
      .option('user', { type: 'string', describe: "NAME:PASSWORD of a user in the nodes' --auth file (HTTP Basic)" })
      .option('token', { type: 'string', describe: "an API token of the nodes' --auth file (Bearer)" })
      .conflicts('user', 'token')
      .demandCommand(1, 1, 'give the file', 'one file only')
      .strict()
      .help(),
  ).parse();
  const a = argv as unknown as { _: (string | number)[]; masterUrl?: string; host: string; basePort: number; timeout: number; user?: string; token?: string };
  const authorization = a.token ? `Bearer ${a.token}` : a.user ? `Basic ${Buffer.from(a.user).toString('base64')}` : undefined;
  const opts: ClusterOptions = {
    masterUrl: (a.masterUrl ?? `http://${a.host}:${a.basePort}`).replace(/\/+$/, ''),
    headers: authorization ? { authorization } : {},
    timeoutMs: a.timeout,
  };
  return { file: String(a._[0]), opts, argv };
}
