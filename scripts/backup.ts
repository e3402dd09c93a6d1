// backup: saves a consistent copy of the cluster's user tables through GET /db/backup.
// Thin on purpose: only the public HTTP API, found the way show-all finds the cluster.
//
//   npm run backup -- <file> [--sql] [--master-url URL | --base-port 8080 [--host H]]
//                    [--user NAME:PASSWORD | --token TOKEN]   (nodes started with --auth)
//
// Writes a SQLite file (or, with --sql, a SQL dump) and prints one line: file, bytes, index.
import fs from 'node:fs';
import { clusterArgs } from './rqlite-cli.js';

async function main(): Promise<number> {
  const { file, opts, argv } = await clusterArgs('backup', (y) => y.option('sql', { type: 'boolean', default: false, describe: 'write a SQL dump instead of a SQLite file' }));
  const res = await fetch(`${opts.masterUrl}/db/backup${argv.sql ? '?fmt=sql' : ''}`, { headers: opts.headers, signal: AbortSignal.timeout(opts.timeoutMs) });
  const data = Buffer.from(await res.arrayBuffer());
  if (res.status !== 200) {
    console.error(`backup: ${opts.masterUrl} answered ${res.status}: ${data.toString('utf8').slice(0, 500)}`);
    return 1;
  }
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file); // never leave half a backup under the final name
  console.log(`backup: ${file} ${data.length} bytes at index ${res.headers.get('x-sqlfleet-index') ?? '?'} from ${opts.masterUrl}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`backup: ${(e as Error).message ?? e}`);
    process.exit(1);
  },
);
