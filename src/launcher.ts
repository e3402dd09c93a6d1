// `sqlfleet cluster N`: the master and N slaves on this machine, each a child process,
// logs prefixed by node. "ready" is said only about this run's own children: each child
// tells the launcher over an IPC channel that it listens (so a port answered by another
// program never counts), and a child that exits before the cluster is ready ends the
// command with its reason and a non-zero status.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { urlHost } from './config.js';

/** What the launcher needs; cli.ts resolves it from the command line. */
export interface LaunchOptions {
  /** The script the children run (this program) and the node flags to run it with. */
  readonly script: string;
  readonly execArgv: readonly string[];
  readonly numSlaves: number;
  readonly host: string;
  readonly basePort: number;
  readonly dataDir: string;
  readonly tls: boolean;
  /** PEM text of --tls-ca: the health probe trusts it as the nodes do. */
  readonly ca: string | null;
  readonly withEtcd: boolean;
  /** Flags every child gets after its command. */
  readonly passthrough: readonly string[];
  /** Writes one line to the user (stdout). */
  readonly say: (line: string) => void;
  /** How long to wait for every node to be healthy; default 120 s. */
  readonly readyTimeoutMs?: number;
}

/** The message a child sends once it listens (see announceListening). */
interface Listening {
  readonly sqlfleet: 'listening';
  readonly id: number;
  readonly url: string;
  readonly pid: number;
}

/** Called by a node started by the launcher: says it listens, and stops with the launcher. */
export function announceListening(id: number, url: string, stop: () => void): void {
  if (!process.send || !process.connected) return; // not started by `cluster`
  const msg: Listening = { sqlfleet: 'listening', id, url, pid: process.pid };
  process.send(msg);
  // The launcher is gone (even SIGKILLed): a node it started must not live on unnoticed.
  process.once('disconnect', stop);
  process.channel?.unref();
}

/** One child the launcher watches. */
interface Member {
  readonly label: string;
  readonly id: number | null; // null: etcd
  readonly proc: ChildProcess;
  listening: boolean;
  healthy: boolean;
  /** The child's last line that looked like an error: the reason if it dies. */
  lastError: string;
  lastLine: string;
  gone: boolean;
}

/** True when `port` can be bound on `host` right now. */
function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((res) => {
    const s = net.createServer();
    s.once('error', () => res(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => res(true)));
  });
}

/** GET `url` trusting `ca` (when given); resolves status and body, or null when unreachable. */
function probe(url: string, ca: string | null, timeoutMs = 1000): Promise<{ status: number; body: string } | null> {
  return new Promise((resolve) => {
    const mod = url.startsWith('https:') ? https : http;
    const req = mod.get(url, { timeout: timeoutMs, ...(ca ? { ca } : {}) }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(null));
  });
}

function exitText(code: number | null, signal: NodeJS.Signals | null): string {
  return signal ?? String(code);
}

/** Runs the cluster until every child has exited; resolves the command's exit status. */
export async function runCluster(o: LaunchOptions): Promise<number> {
  const scheme = o.tls ? 'https' : 'http';
  // A wildcard bind is probed on loopback; anything else on the address itself.
  const probeHost = o.host === '0.0.0.0' ? '127.0.0.1' : o.host === '::' ? '::1' : o.host;
  const nodeUrl = (id: number) => `${scheme}://${urlHost(probeHost)}:${o.basePort + id}`;
  const ids = Array.from({ length: o.numSlaves + 1 }, (_, id) => id);
  const etcdPort = o.basePort === 8080 ? 2379 : o.basePort + o.numSlaves + 1;
  const wanted = [...ids.map((id) => ({ port: o.basePort + id, who: `node ${id}` }))];
  if (o.withEtcd) wanted.push({ port: etcdPort, who: "etcd's client port" }, { port: etcdPort + 1, who: "etcd's peer port" });
  for (const w of wanted) {
    if (!(await portFree(o.host, w.port))) {
      o.say(`[cluster] cannot start: port ${w.port} (${w.who}) on ${o.host} is already in use — another cluster or program listens there. Stop it, or choose other ports with --base-port.`);
      return 1;
    }
  }

  const members: Member[] = [];
  let ready = false;
  let stopping = false;
  let failure: string | null = null;
  let done!: (code: number) => void;
  const finished = new Promise<number>((r) => (done = r));

  const watch = (label: string, id: number | null, proc: ChildProcess, sink?: fs.WriteStream): Member => {
    const m: Member = { label, id, proc, listening: false, healthy: false, lastError: '', lastLine: '', gone: false };
    for (const stream of [proc.stdout!, proc.stderr!]) {
      readline.createInterface({ input: stream }).on('line', (line) => {
        m.lastLine = line;
        if (/^sqlfleet:|"level":(50|60)|\bERROR\b|\bFATAL\b|error/i.test(line)) m.lastError = line;
        if (sink) sink.write(`${line}\n`);
        else o.say(`[${label}] ${line}`);
      });
    }
    proc.on('message', (msg: Partial<Listening>) => {
      if (msg?.sqlfleet === 'listening' && msg.id === id) m.listening = true;
    });
    const ended = (code: number | null, signal: NodeJS.Signals | null) => {
      if (m.gone) return;
      m.gone = true;
      o.say(`[${label}] exited (${exitText(code, signal)})`);
      if (!stopping) {
        const reason = m.lastError || m.lastLine;
        if (!ready) {
          failure ??= `${label} exited (${exitText(code, signal)}) before the cluster was ready${reason ? `: ${reason}` : ''}`;
          stop();
        } else o.say(`[cluster] ${label} is gone; the other nodes keep running (Ctrl-C stops them)`);
      }
      if (members.every((x) => x.gone)) {
        if (failure) o.say(`[cluster] ${failure}`);
        done(failure || !stopping ? 1 : 0);
      }
    };
    proc.on('error', (e) => {
      m.lastError = e.message;
      if (proc.pid === undefined) ended(null, null); // never started: no 'exit' follows
    });
    proc.on('exit', ended);
    members.push(m);
    return m;
  };

  const stop = () => {
    if (stopping) return;
    stopping = true;
    for (const m of members) if (!m.gone) m.proc.kill('SIGTERM');
    // A node that has not ended 6 s after SIGTERM is killed: Ctrl-C never leaves one behind.
    setTimeout(() => {
      for (const m of members) if (!m.gone) m.proc.kill('SIGKILL');
    }, 6000).unref();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);

  o.say(
    `[cluster] starting node 0 on ${nodeUrl(0)}${o.numSlaves ? ` and node${o.numSlaves > 1 ? 's' : ''} 1${o.numSlaves > 1 ? `-${o.numSlaves}` : ''} on port${o.numSlaves > 1 ? `s ${o.basePort + 1}-${o.basePort + o.numSlaves}` : ` ${o.basePort + 1}`}` : ''}; node 0 is the master of a new cluster, a role saved by an earlier failover wins; data in ${o.dataDir} (kept between runs: remove it to start fresh)`,
  );
  const passthrough = [...o.passthrough];
  if (o.withEtcd) {
    // A local etcd for trying automatic failover on one machine (Debian's etcd-server). Its
    // own log (zap, warnings and up) goes to a file and is shown only if etcd fails.
    const url = `http://127.0.0.1:${etcdPort}`;
    const peer = `http://127.0.0.1:${etcdPort + 1}`;
    fs.mkdirSync(o.dataDir, { recursive: true });
    const logFile = path.join(o.dataDir, 'etcd.log');
    const sink = fs.createWriteStream(logFile, { flags: 'a' });
    const etcd = spawn(
      'etcd',
      ['--name', 'sqlfleet', '--data-dir', path.join(o.dataDir, 'etcd'), '--listen-client-urls', url, '--advertise-client-urls', url,
        '--listen-peer-urls', peer, '--initial-advertise-peer-urls', peer, '--initial-cluster', `sqlfleet=${peer}`,
        '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    etcd.on('error', (e) => {
      if (etcd.pid === undefined) failure ??= `--with-etcd needs etcd on PATH (Debian: apt-get install etcd-server): ${e.message}`;
    });
    etcd.on('exit', () => {
      if (!stopping) o.say(`[cluster] etcd's log is in ${logFile}`);
    });
    const m = watch('etcd', null, etcd, sink);
    m.listening = true; // etcd is judged by the nodes connecting to it
    passthrough.push('--etcd', url);
    o.say(`[cluster] etcd on ${url} (data in ${path.join(o.dataDir, 'etcd')}, log in ${logFile}); nodes elect their master through it`);
  }
  const launch = (args: string[], id: number) =>
    watch(
      `node ${id}`,
      id,
      spawn(process.execPath, [...o.execArgv, o.script, ...args, ...passthrough], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] }),
    );
  launch(['master', String(o.numSlaves)], 0);
  for (const id of ids.slice(1)) launch(['node', String(id), String(o.numSlaves)], id);

  void waitReady();
  return finished;

  async function waitReady(): Promise<void> {
    const started = Date.now();
    const deadline = started + (o.readyTimeoutMs ?? 120_000);
    let nextNote = started + 5000;
    const nodes = members.filter((m) => m.id !== null);
    while (!stopping) {
      await Promise.all(
        nodes.map(async (m) => {
          // Only a child that said it listens is asked: its port is its own.
          m.healthy = m.listening && (await probe(`${nodeUrl(m.id!)}/health`, o.ca))?.status === 200;
        }),
      );
      if (stopping) return;
      if (nodes.every((m) => m.healthy) && (!o.withEtcd || (await inSyncSet()))) {
        if (stopping) return;
        ready = true;
        const master = await whoIsMaster();
        o.say(
          `[cluster] ready: ${nodes.length} nodes healthy, ${master === null ? '' : `master node ${master} (${nodeUrl(master)}), `}every slave in sync with the master (${ids.map(nodeUrl).join(' ')}) after ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
        return;
      }
      if (Date.now() > deadline) {
        failure = `not ready after ${Math.round((Date.now() - started) / 1000)} s: ${waitingFor(nodes)}`;
        stop();
        return;
      }
      if (Date.now() >= nextNote) {
        nextNote = Date.now() + 5000;
        o.say(`[cluster] waiting ${Math.round((Date.now() - started) / 1000)} s: ${waitingFor(nodes)}`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Which nodes are not ready yet, and how far each got. */
  function waitingFor(nodes: Member[]): string {
    const notes = nodes.filter((m) => !m.healthy).map((m) => `${m.label} ${m.listening ? 'listens, not in sync yet' : 'starting'}`);
    return notes.length ? notes.join(', ') : 'every node healthy; slaves entering the sync set';
  }

  /**
   * The node that says it is the master, and its /status; 'hidden' when /status needs
   * credentials (--auth); null when no node is master (yet).
   */
  async function masterStatus(): Promise<{ id: number; status: { role?: string; sync_set?: number[] } } | 'hidden' | null> {
    for (const id of ids) {
      const r = await probe(`${nodeUrl(id)}/status`, o.ca);
      if (r?.status === 401) return 'hidden';
      if (r?.status !== 200) continue;
      try {
        const status = JSON.parse(r.body) as { role?: string; sync_set?: number[] };
        if (status.role === 'master') return { id, status };
      } catch {
        // not JSON: ask the next node
      }
    }
    return null;
  }

  /** The id of the node that says it is the master, or null (none yet, or --auth hides /status). */
  async function whoIsMaster(): Promise<number | null> {
    const m = await masterStatus();
    return m && m !== 'hidden' ? m.id : null;
  }

  /** True when a node is master with every slave in its sync set (etcd mode); with --auth, /health has to do. */
  async function inSyncSet(): Promise<boolean> {
    const m = await masterStatus();
    if (m === 'hidden') return true;
    return m !== null && (m.status.sync_set?.length ?? 0) >= o.numSlaves;
  }
}
