// Closed-loop HTTP load generator for the benchmark: N clients, each with its own keep-alive
// connection (an undici Client, no pipelining), sends its next request as soon as the
// previous one answered. A run is bounded by time and by request count; requests started
// during the warm-up are not measured. Loopback only.
import { Client } from 'undici';

/** Builds the JSON body of request `seq` (global, unique within a run) of client `client`. */
export type BodyFn = (seq: number, client: number) => string;

/** What to run. */
export interface LoadOptions {
  /** Base URL, e.g. http://127.0.0.1:8080 (POST / is sent). */
  readonly url: string;
  readonly concurrency: number;
  readonly body: BodyFn;
  /** Measured time after warm-up, ms. */
  readonly durationMs: number;
  readonly warmupMs?: number;
  /** Stop after this many measured requests (default: unbounded). */
  readonly maxRequests?: number;
  /** Client-side deadline of one request (default 30 s); reaching it is an error. */
  readonly timeoutMs?: number;
  /**
   * Checks a 200 answer's body (default: it starts with {"ok":true). Kept cheap: the
   * generator shares the machine's cores with the servers it measures.
   */
  readonly check?: (text: string) => boolean;
}

/** Outcome of a run. */
export interface LoadResult {
  readonly concurrency: number;
  /** Measured requests answered 200 and checked. */
  readonly ok: number;
  /** Measured requests that failed: non-200, bad body or network error. */
  readonly errors: number;
  /** Up to 5 distinct error descriptions, for the report. */
  readonly errorSamples: string[];
  readonly seconds: number;
  /** Successful requests per second. */
  readonly rps: number;
  /** Latency of successful measured requests, ms. */
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
  /** Latencies of the successful measured requests (ms, sorted); not serialized. */
  readonly latencies?: Float64Array;
}

const defaultCheck = (t: string) => t.startsWith('{"ok":true');

/** Runs one closed-loop load and returns its statistics. */
export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const warmupMs = o.warmupMs ?? 0;
  const timeoutMs = o.timeoutMs ?? 30_000;
  const check = o.check ?? defaultCheck;
  const max = o.maxRequests ?? Number.POSITIVE_INFINITY;
  const origin = new URL(o.url).origin;
  const clients = Array.from(
    { length: o.concurrency },
    () => new Client(origin, { pipelining: 1, headersTimeout: timeoutMs, bodyTimeout: timeoutMs, keepAliveTimeout: 60_000 }),
  );

  const t0 = performance.now();
  const measureFrom = t0 + warmupMs;
  const deadline = measureFrom + o.durationMs;
  let lat = new Float64Array(1 << 16);
  let n = 0;
  let errors = 0;
  let started = 0; // measured requests started (for maxRequests)
  let seq = 0;
  const samples = new Set<string>();
  const fail = (why: string, measured: boolean) => {
    if (measured) errors++;
    if (samples.size < 5) samples.add(why);
  };
  const record = (ms: number) => {
    if (n === lat.length) {
      const bigger = new Float64Array(lat.length * 2);
      bigger.set(lat);
      lat = bigger;
    }
    lat[n++] = ms;
  };

  const loop = async (client: Client, id: number) => {
    for (;;) {
      const start = performance.now();
      if (start >= deadline) return;
      const measured = start >= measureFrom;
      if (measured && started >= max) return;
      if (measured) started++;
      const body = o.body(seq++, id);
      try {
        const res = await client.request({
          path: '/',
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        const text = await res.body.text();
        const ms = performance.now() - start;
        if (res.statusCode !== 200) fail(`HTTP ${res.statusCode}: ${text.slice(0, 200)}`, measured);
        else if (!check(text)) fail(`bad body: ${text.slice(0, 200)}`, measured);
        else if (measured) record(ms);
      } catch (e) {
        const err = e as { code?: string; message?: string };
        fail(`network: ${err.code ?? ''} ${err.message ?? String(e)}`, measured);
        await new Promise((r) => setTimeout(r, 10)); // do not spin on a refused connection
      }
    }
  };

  await Promise.all(clients.map((c, i) => loop(c, i)));
  const end = performance.now();
  await Promise.all(clients.map((c) => c.close().catch(() => undefined)));

  const seconds = Math.max(1e-9, (end - measureFrom) / 1000);
  return summarize(o.concurrency, lat.slice(0, n).sort(), errors, [...samples], seconds);
}

function summarize(concurrency: number, sorted: Float64Array, errors: number, errorSamples: string[], seconds: number): LoadResult {
  const n = sorted.length;
  const pct = (p: number) => (n === 0 ? Number.NaN : sorted[Math.min(n - 1, Math.floor((p / 100) * n))]);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i];
  const r = {
    concurrency,
    ok: n,
    errors,
    errorSamples,
    seconds,
    rps: n / seconds,
    p50: pct(50),
    p90: pct(90),
    p99: pct(99),
    max: n ? sorted[n - 1] : Number.NaN,
    mean: n ? sum / n : Number.NaN,
  };
  Object.defineProperty(r, 'latencies', { value: sorted, enumerable: false });
  return r;
}

/** Combines runs of the same load (e.g. the halves of an A-B-B-A schedule) into one result. */
export function mergeResults(parts: readonly LoadResult[]): LoadResult {
  const total = parts.reduce((a, p) => a + (p.latencies?.length ?? 0), 0);
  const all = new Float64Array(total);
  let at = 0;
  for (const p of parts) {
    if (p.latencies) all.set(p.latencies, at);
    at += p.latencies?.length ?? 0;
  }
  const samples = [...new Set(parts.flatMap((p) => p.errorSamples))].slice(0, 5);
  return summarize(
    parts[0].concurrency,
    all.sort(),
    parts.reduce((a, p) => a + p.errors, 0),
    samples,
    parts.reduce((a, p) => a + p.seconds, 0),
  );
}
