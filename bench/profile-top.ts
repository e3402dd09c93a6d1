// Reads a V8 .cpuprofile (node --cpu-prof) and lists the functions with the most self
// time, aggregated by function + file + position. Positions in TypeScript files run under
// tsx point into tsx's minified output; they are mapped back to the .ts line through the
// source maps tsx keeps in its cache (<tmpdir>/tsx-<uid>/), choosing the cached version
// whose code has the profiled function names at the profiled positions.
//
//   tsx bench/profile-top.ts <file.cpuprofile | dir> [top=15] [fromUs toUs]
//   (fromUs/toUs: process.hrtime µs bounds of the samples to keep)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ROOT } from './procs.js';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** One aggregated function. */
export interface TopItem {
  functionName: string;
  /** Readable location: repo-relative path:line (1-based, .ts line when mapped). */
  location: string;
  selfMs: number;
  /** Share of all samples, and of the samples when the thread was not idle. */
  pctTotal: number;
  pctBusy: number;
  /** The most frequent caller chains (nearest first), with their share of this item's self time. */
  callers?: { chain: string; pct: number }[];
}

/** Summary of a profile. */
export interface ProfileSummary {
  file: string;
  durationMs: number;
  samples: number;
  idlePct: number;
  gcPct: number;
  programPct: number;
  top: TopItem[];
  /** Self time by file, largest first. */
  byFile: { file: string; selfMs: number; pctBusy: number }[];
  /** Source files edited after the profiled process started: their line numbers may have moved since. */
  editedSince: string[];
  /** Inclusive time (self + callees) of the project's own functions (src/), largest first. */
  inclusive: { functionName: string; location: string; ms: number; pctBusy: number }[];
}

// ---- source maps -----------------------------------------------------------------------

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_INDEX = new Map([...B64].map((c, i) => [c, i]));

/** Decodes a source map's `mappings` into, per generated line, sorted [genCol, srcIdx, srcLine, srcCol]. */
function decodeMappings(mappings: string): number[][][] {
  const lines: number[][][] = [];
  let src = 0;
  let srcLine = 0;
  let srcCol = 0;
  for (const lineText of mappings.split(';')) {
    const segs: number[][] = [];
    let genCol = 0;
    for (const seg of lineText.split(',')) {
      if (!seg) continue;
      const vals: number[] = [];
      let shift = 0;
      let value = 0;
      for (const ch of seg) {
        const digit = B64_INDEX.get(ch) ?? 0;
        value += (digit & 31) << shift;
        if (digit & 32) shift += 5;
        else {
          vals.push(value & 1 ? -(value >>> 1) : value >>> 1);
          value = 0;
          shift = 0;
        }
      }
      genCol += vals[0];
      if (vals.length >= 4) {
        src += vals[1];
        srcLine += vals[2];
        srcCol += vals[3];
        segs.push([genCol, src, srcLine, srcCol]);
      }
    }
    lines.push(segs);
  }
  return lines;
}

interface CacheEntry {
  code: string;
  lines: string[];
  mapping: number[][][];
  mtime: number;
}

/** tsx's transform cache, indexed by source path (several versions per file when it was edited). */
function loadTsxCache(): Map<string, CacheEntry[]> {
  const out = new Map<string, CacheEntry[]>();
  let dir = '';
  try {
    dir = join(tmpdir(), `tsx-${userInfo().uid}`);
    for (const name of readdirSync(dir)) {
      const file = join(dir, name);
      try {
        const j = JSON.parse(readFileSync(file, 'utf8')) as { code?: string; map?: { sources?: string[]; mappings?: string } };
        const source = j.map?.sources?.[0];
        if (!j.code || !source || !j.map?.mappings) continue;
        const entry = { code: j.code, lines: j.code.split('\n'), mapping: decodeMappings(j.map.mappings), mtime: statSync(file).mtimeMs };
        out.set(source, [...(out.get(source) ?? []), entry]);
      } catch {
        // not a transform cache file
      }
    }
  } catch {
    // no cache: positions stay as profiled
  }
  return out;
}

/** True when the generated code names `fn` just before the profiled position (how V8 marks a function's start). */
function namesAt(e: CacheEntry, f: CallFrame): boolean {
  const line = e.lines[f.lineNumber];
  if (line === undefined || !f.functionName) return false;
  const name = f.functionName.split('.').pop()!.replace(/^(get|set) /, '');
  return line.slice(Math.max(0, f.columnNumber - name.length - 40), f.columnNumber + 2).includes(name);
}

/** The original (line, col), 0-based, of a generated position. */
function original(e: CacheEntry, line: number, col: number): { line: number; col: number } | undefined {
  const segs = e.mapping[line];
  if (!segs?.length) return undefined;
  let best: number[] | undefined;
  for (const s of segs) {
    if (s[0] <= col) best = s;
    else break;
  }
  best ??= segs[0];
  return { line: best[2], col: best[3] };
}

// ---- aggregation ---------------------------------------------------------------------------

const SPECIAL = new Set(['(idle)', '(program)', '(garbage collector)', '(root)']);

function readableUrl(url: string): string {
  if (!url) return '';
  if (url.startsWith('file://')) {
    const p = fileURLToPath(url);
    return p.startsWith(ROOT) ? relative(ROOT, p) : p;
  }
  return url;
}

/** A time window in µs of the monotonic clock (process.hrtime), which V8 stamps samples with. */
export interface Window {
  startUs: number;
  endUs: number;
}

/** Reads and aggregates one .cpuprofile, optionally only the samples inside `window`. */
export function summarize(file: string, topN = 15, window?: Window): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  // Time-weighted self time: each sample lasts until the next one.
  const self = new Map<number, number>();
  let ts = prof.startTime;
  let kept = 0;
  let first = Number.NaN;
  let last = Number.NaN;
  for (let i = 0; i < prof.samples.length; i++) {
    ts += prof.timeDeltas[i];
    if (window && (ts < window.startUs || ts > window.endUs)) continue;
    kept++;
    if (Number.isNaN(first)) first = ts;
    last = ts;
    const dt = (i + 1 < prof.timeDeltas.length ? prof.timeDeltas[i + 1] : prof.timeDeltas[i]) / 1000;
    self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + Math.max(0, dt));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const special = (name: string) => [...self].filter(([id]) => byId.get(id)!.callFrame.functionName === name).reduce((a, [, ms]) => a + ms, 0);
  if (kept === 0) throw new Error(`no samples of ${file} fall in the window`);
  const idle = special('(idle)');
  const busy = total - idle;

  // Which cached transform of each .ts file matches this profile best.
  const cache = loadTsxCache();
  const frames = new Map<string, CallFrame[]>();
  for (const n of prof.nodes) {
    if (!n.callFrame.url.startsWith('file://') || !n.callFrame.url.endsWith('.ts')) continue;
    const p = fileURLToPath(n.callFrame.url);
    frames.set(p, [...(frames.get(p) ?? []), n.callFrame]);
  }
  const chosen = new Map<string, CacheEntry>();
  const processStartMs = statSync(file).mtimeMs - (prof.endTime - prof.startTime) / 1000;
  const editedSince = [...frames.keys()].filter((p) => {
    try {
      return statSync(p).mtimeMs > processStartMs;
    } catch {
      return true;
    }
  });
  for (const [p, fs] of frames) {
    const candidates = cache.get(p);
    if (!candidates) continue;
    const named = fs.filter((f) => f.functionName);
    const score = (e: CacheEntry) => named.filter((f) => namesAt(e, f)).length;
    const best = [...candidates].sort((a, b) => score(b) - score(a) || b.mtime - a.mtime)[0];
    if (named.length === 0 || score(best) > 0) chosen.set(p, best);
  }

  const locate = (f: CallFrame): string => {
    const url = readableUrl(f.url);
    if (!f.url.startsWith('file://')) return f.url ? `${url}:${f.lineNumber + 1}` : '';
    const entry = chosen.get(fileURLToPath(f.url));
    if (!entry) return `${url}:${f.lineNumber + 1}`;
    const o = original(entry, f.lineNumber, f.columnNumber);
    return o ? `${url}:${o.line + 1}` : `${url}:?`;
  };

  const parent = new Map<number, number>();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const label = new Map<number, { name: string; location: string; key: string }>();
  const info = (id: number) => {
    let l = label.get(id);
    if (!l) {
      const f = byId.get(id)!.callFrame;
      const name = f.functionName || '(anonymous)';
      const location = locate(f);
      l = { name, location, key: `${name}\u0000${location}` };
      label.set(id, l);
    }
    return l;
  };

  const agg = new Map<string, { functionName: string; location: string; ms: number; chains: Map<string, number> }>();
  const files = new Map<string, number>();
  const incl = new Map<string, { functionName: string; location: string; ms: number }>();
  for (const [id, ms] of self) {
    const f = byId.get(id)!.callFrame;
    if (SPECIAL.has(f.functionName)) continue;
    const { name, location, key } = info(id);
    const a = agg.get(key) ?? { functionName: name, location, ms: 0, chains: new Map<string, number>() };
    a.ms += ms;
    agg.set(key, a);
    const fileKey = readableUrl(f.url) || '(native / V8 builtins)';
    files.set(fileKey, (files.get(fileKey) ?? 0) + ms);
    // Caller chain: the nearest 4 named frames above this one.
    const chain: string[] = [];
    for (let p = parent.get(id); p !== undefined && chain.length < 4; p = parent.get(p)) {
      const c = info(p);
      if (c.name === '(root)') break;
      chain.push(`${c.name} (${c.location || 'native'})`);
    }
    const ck = chain.join(' ← ');
    a.chains.set(ck, (a.chains.get(ck) ?? 0) + ms);
    // Inclusive time of project functions: once per sample's stack, however deep the recursion.
    const seen = new Set<string>();
    for (let p: number | undefined = id; p !== undefined; p = parent.get(p)) {
      const c = info(p);
      if (!c.location.startsWith('src/') || seen.has(c.key)) continue;
      seen.add(c.key);
      const e = incl.get(c.key) ?? { functionName: c.name, location: c.location, ms: 0 };
      e.ms += ms;
      incl.set(c.key, e);
    }
  }
  const pct = (ms: number, of: number) => (of > 0 ? (100 * ms) / of : 0);
  return {
    file,
    durationMs: window ? (last - first) / 1000 : (prof.endTime - prof.startTime) / 1000,
    samples: kept,
    idlePct: pct(idle, total),
    gcPct: pct(special('(garbage collector)'), total),
    programPct: pct(special('(program)'), total),
    top: [...agg.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, topN)
      .map((a) => ({
        functionName: a.functionName,
        location: a.location,
        selfMs: a.ms,
        pctTotal: pct(a.ms, total),
        pctBusy: pct(a.ms, busy),
        callers: [...a.chains]
          .sort((x, y) => y[1] - x[1])
          .slice(0, 2)
          .map(([chain, ms]) => ({ chain, pct: pct(ms, a.ms) })),
      })),
    byFile: [...files].sort((a, b) => b[1] - a[1]).slice(0, topN).map(([f, ms]) => ({ file: f, selfMs: ms, pctBusy: pct(ms, busy) })),
    editedSince: editedSince.map((p) => (p.startsWith(ROOT) ? relative(ROOT, p) : p)),
    inclusive: [...incl.values()]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, topN)
      .map((e) => ({ ...e, pctBusy: pct(e.ms, busy) })),
  };
}

/** The main-thread profile in `dir` (the one with the most samples). */
export function pickProfile(dir: string): string {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) throw new Error(`no .cpuprofile in ${dir}`);
  return files.map((f) => join(dir, f)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

/** Renders a summary as text. */
export function render(s: ProfileSummary, verbose = true): string {
  const out = [
    `${s.file}: ${(s.durationMs / 1000).toFixed(1)} s, ${s.samples} samples; idle ${s.idlePct.toFixed(1)}%, GC ${s.gcPct.toFixed(1)}%, (program) ${s.programPct.toFixed(1)}% of all samples`,
    '',
    '  self ms   %busy  %all   function  —  location',
  ];
  for (const t of s.top) {
    out.push(`${t.selfMs.toFixed(0).padStart(8)}  ${t.pctBusy.toFixed(1).padStart(5)}%  ${t.pctTotal.toFixed(1).padStart(4)}%   ${t.functionName}  —  ${t.location || '(native)'}`);
    if (verbose) for (const c of t.callers ?? []) out.push(`${''.padStart(30)}${c.pct.toFixed(0).padStart(3)}% ← ${c.chain}`);
  }
  out.push('', '  self time by file (% of busy):');
  for (const f of s.byFile) out.push(`${f.selfMs.toFixed(0).padStart(8)}  ${f.pctBusy.toFixed(1).padStart(5)}%   ${f.file}`);
  out.push('', '  inclusive time of src/ functions (% of busy):');
  for (const e of s.inclusive) out.push(`${e.ms.toFixed(0).padStart(8)}  ${e.pctBusy.toFixed(1).padStart(5)}%   ${e.functionName}  —  ${e.location}`);
  if (s.editedSince.length) out.push('', `  edited after the profiled process started (lines are those of the profiled version): ${s.editedSince.join(', ')}`);
  return out.join('\n');
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const arg = process.argv[2];
  if (!arg) {
    process.stderr.write('usage: tsx bench/profile-top.ts <file.cpuprofile | dir> [top=15] [fromUs toUs]\n');
    process.exit(2);
  }
  const file = statSync(arg).isDirectory() ? pickProfile(arg) : arg;
  const [from, to] = [process.argv[4], process.argv[5]].map(Number);
  const window = Number.isFinite(from) && Number.isFinite(to) ? { startUs: from, endUs: to } : undefined;
  console.log(render(summarize(file, Number(process.argv[3] ?? 15), window)));
}
