// npm run promote -- [<id>] [--force] [--master-url URL | --base-port 8080 [--host H]] [--node-url URL]
//                         [--data-dir ./data | --cluster-token T | --user NAME:PASSWORD]
// Makes node <id> the master (DESIGN §6): a switchover through the master when it answers,
// else a failover ordered through node <id> itself. With --etcd: a switchover (the master moves
// the leader key to <id>, a sync-set member, once it has every acknowledged write; without <id>
// to the most advanced member), or with --force the way out when no node may take the leader
// key; the answer names what may be lost. Prints the answer; exits 1 on refusal.
import fs from 'node:fs';
import path from 'node:path';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';

async function main(): Promise<number> {
  const a = await yargs(hideBin(process.argv))
    .scriptName('promote')
    .usage('$0 [<id>] [--force]   (no <id>, --etcd clusters: the most advanced sync-set member)')
    .positional('id', { type: 'number' })
    .option('force', { type: 'boolean', default: false, describe: 'failover even if entries a reachable node has cannot be copied (they are set aside there); with --etcd: take the leader key although no sync-set member is alive (names the writes that may be lost)' })
    .option('master-url', { type: 'string', describe: "the master's URL (default http://<host>:<base-port>)" })
    .option('node-url', { type: 'string', describe: "node <id>'s URL, used when the master does not answer (default http://<host>:<base-port + id>)" })
    .option('base-port', { type: 'number', default: 8080 })
    .option('host', { type: 'string', default: '127.0.0.1' })
    .option('data-dir', { type: 'string', default: './data', describe: 'where cluster.token is (the default token source)' })
    .option('cluster-token', { type: 'string', describe: 'the cluster token' })
    .option('user', { type: 'string', describe: 'NAME:PASSWORD of an admin user (nodes started with --auth)' })
    .option('timeout', { type: 'number', default: 30000, describe: 'ms to wait for the answer' })
    .demandCommand(0, 1, '', 'give at most one node id') // under strict(), the optional <id> must be allowed here
    .strict()
    .parseAsync();
  const any = a._[0] === undefined;
  const id = any ? 0 : Number(a._[0]);
  if (any && a.force) {
    process.stderr.write('promote: --force needs the id of the node to promote\n');
    return 2;
  }
  if (!Number.isInteger(id) || id < 0) {
    process.stderr.write(`promote: bad node id "${a._[0]}"\n`);
    return 2;
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (a.user) headers.authorization = `Basic ${Buffer.from(a.user).toString('base64')}`;
  else {
    const token = a['cluster-token'] ?? readToken(path.join(a['data-dir'], 'cluster.token'));
    if (!token) {
      process.stderr.write(`promote: no cluster token: give --cluster-token, --user, or --data-dir holding cluster.token\n`);
      return 2;
    }
    headers.authorization = `Bearer ${token}`;
  }
  const master = (a['master-url'] ?? `http://${a.host}:${a['base-port']}`).replace(/\/+$/, '');
  const node = any ? master : (a['node-url'] ?? `http://${a.host}:${a['base-port'] + id}`).replace(/\/+$/, '');
  const route = any ? 'any' : String(id);
  const body = JSON.stringify({ force: a.force });
  for (const url of master === node ? [master] : [master, node]) {
    let res: Response;
    try {
      res = await fetch(`${url}/nodes/${route}/promote`, { method: 'POST', headers, body, signal: AbortSignal.timeout(a.timeout) });
    } catch (e) {
      process.stderr.write(`promote: ${url} did not answer (${(e as Error).message})${url === master ? '; asking node ' + id + ' directly' : ''}\n`);
      continue;
    }
    const text = await res.text();
    process.stdout.write(text + '\n');
    const lost = (JSON.parse(text || '{}') as { may_be_lost?: unknown }).may_be_lost;
    if (typeof lost === 'string') process.stderr.write(`promote: node ${id} is master; may be lost: ${lost}\n`);
    return res.status === 200 ? 0 : 1;
  }
  process.stderr.write('promote: no node answered\n');
  return 1;
}

function readToken(file: string): string | null {
  try {
    return fs.readFileSync(file, 'utf8').trim() || null;
  } catch {
    return null;
  }
}

process.exit(await main());
