// Helpers for the hardening tests (bad input, auth, TLS) that helpers/cluster.ts does not
// have: raw byte and chunked request bodies, credential headers, the generous deadlines of
// those suites, and one-shot CLI runs (hash-password, new-token, refused starts).

import { spawn } from 'node:child_process';
import type { Dispatcher } from 'undici';
import { CLI, REPO_ROOT, killOnExit, parseJsonLine, request, type Reply } from './cluster.js';

/** The machine running the tests may be loaded: nodes get this long to print their ready line. */
export const READY_TIMEOUT_MS = 30_000;

/** `startCluster` deadlines of the hardening suites (ready line, slaves up, /status and /checksum). */
export const PATIENT = { readyTimeoutMs: READY_TIMEOUT_MS, upTimeoutMs: 30_000, requestTimeoutMs: 20_000 } as const;

/** One HTTP request. A string or byte body is sent verbatim; any other value is JSON-encoded. */
export interface SendOptions {
  readonly method?: string;
  readonly body?: unknown;
  readonly headers?: Record<string, string>;
  readonly timeoutMs?: number;
  /** undici dispatcher, e.g. an Agent trusting a test CA. */
  readonly dispatcher?: Dispatcher;
  /** Content-Type of a body; default application/json. */
  readonly contentType?: string | null;
  /** Send the body as a stream (chunked transfer encoding, no Content-Length). */
  readonly chunked?: boolean;
}

/** Sends one request with undici's fetch (so `dispatcher` works) and reads the whole answer. */
export function send(url: string, opts: SendOptions = {}): Promise<Reply> {
  const method = opts.method ?? (opts.body === undefined ? 'GET' : 'POST');
  let body: string | Uint8Array | undefined;
  if (opts.body === undefined) body = undefined;
  else if (typeof opts.body === 'string' || opts.body instanceof Uint8Array) body = opts.body;
  else body = JSON.stringify(opts.body);
  return request(url, {
    method,
    body: opts.chunked && body !== undefined ? chunks(typeof body === 'string' ? Buffer.from(body) : body) : body,
    contentType: opts.contentType,
    headers: opts.headers,
    timeoutMs: opts.timeoutMs ?? 20_000,
    dispatcher: opts.dispatcher,
    undici: true,
  });
}

/** A byte body as a stream of 16 KiB chunks (so it goes out chunked, without Content-Length). */
function chunks(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(ctrl) {
      if (at >= bytes.length) return ctrl.close();
      ctrl.enqueue(bytes.subarray(at, at + 16 * 1024));
      at += 16 * 1024;
    },
  });
}

/** `Authorization: Basic ...` for a user and password. */
export function basic(user: string, password: string): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}` };
}

/** `Authorization: Bearer ...`. */
export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

/** Outcome of a one-shot CLI run. */
export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True when the process printed a ready line (it was then stopped by us). */
  readonly started: boolean;
  /** True when the deadline passed before it exited or became ready (it was then killed). */
  readonly timedOut: boolean;
}

/**
 * Runs `node bin/sqlfleet.js ...args`, feeding `stdin`, until it exits; a process
 * that prints a ready line is stopped (SIGTERM) and reported `started`.
 */
export async function runCli(args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  killOnExit(child);
  let stdout = '';
  let stderr = '';
  let started = false;
  let timedOut = false;
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    stdout += d;
    if (!started && stdout.split('\n').some((l) => parseJsonLine(l)?.msg === 'ready')) {
      started = true;
      child.kill('SIGTERM');
    }
  });
  child.stderr.on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => {});
  child.stdin.end(opts.stdin ?? '');
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill('SIGKILL');
  }, opts.timeoutMs ?? READY_TIMEOUT_MS);
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((res) => child.once('close', (c, s) => res([c, s])));
  clearTimeout(timer);
  return { code, signal, stdout, stderr, started, timedOut };
}
