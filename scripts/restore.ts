// restore: replaces the whole cluster's database with a backup through POST /db/load
// (a SQLite file, or a SQL dump). The master validates it first: a bad file is refused
// and nothing changes; a good one is one replicated log entry, applied by every node.
//
//   npm run restore -- <file> [--master-url URL | --base-port 8080 [--host H]]
//                     [--user NAME:PASSWORD | --token TOKEN]   (admin role with --auth)
import fs from 'node:fs';
import { clusterArgs } from './rqlite-cli.js';

async function main(): Promise<number> {
  const { file, opts } = await clusterArgs('restore', (y) => y);
  const data = fs.readFileSync(file);
  const isSqlite = data.subarray(0, 16).toString('latin1') === 'SQLite format 3\0';
  const res = await fetch(`${opts.masterUrl}/db/load`, {
    method: 'POST',
    body: new Uint8Array(data),
    headers: { ...opts.headers, 'content-type': isSqlite ? 'application/octet-stream' : 'text/plain' },
    signal: AbortSignal.timeout(Math.max(opts.timeoutMs, 300_000)),
  });
  const text = await res.text();
  if (res.status !== 200) {
    console.error(`restore: refused (${res.status}), nothing changed: ${text.slice(0, 500)}`);
    return 1;
  }
  const body = JSON.parse(text) as { raft_index?: number; statements?: number };
  console.log(`restore: ${file} loaded as log index ${body.raft_index ?? '?'} (${body.statements ?? 0} statements) via ${opts.masterUrl}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`restore: ${(e as Error).message ?? e}`);
    process.exit(1);
  },
);
