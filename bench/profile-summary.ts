// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by file group (resilient-grpc's
// src/ files one by one, then grpc-js, opossum, p-retry, nice-grpc, Node internals, GC, ...) and
// the top self-time functions. Not part of `npm run bench`; a tool for reading profiles.
//
//   node --cpu-prof --cpu-prof-dir=.tmp/prof --expose-gc --import tsx bench/unary-overhead.ts \
//     --child=resilient --address=127.0.0.1:PORT --concurrency=32 > .tmp/unary.out   (a test server on PORT)
//   npx tsx bench/profile-summary.ts .tmp/prof/CPU.*.cpuprofile --rounds=.tmp/unary.out --contender=resilient-grpc
//
// --rounds=<file>: the stdout of that child (its result line records when each measured round
// ran, on the profile's clock); with --contender=<name> only the samples taken
// during that contender's rounds are counted, and times are also given in µs per call. Without
// them the whole profile counts (start-up, warm-up and every contender). --calls=N gives per-call
// figures for a whole profile. --top=N: functions listed (default 25). --baseline=<name> (with
// --rounds and --contender): per-call self time of both side by side, largest difference first.
//   npx tsx bench/profile-summary.ts <profile> --rounds=<out> --contender=resilient-grpc --baseline='raw grpc-js'
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { cliArg, formatTable, isMain, markedJson, PAIR_MARKER, RESULT_MARKER } from './lib.js';

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

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Which group a frame's time is charged to. */
export function groupOf(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return '(idle)';
    if (functionName === '(program)') return '(program: V8/native, unattributed)';
    return `(native) ${functionName || 'anonymous'}`;
  }
  const path = url.startsWith('file://') ? fileURLToPath(url) : url;
  const src = /\/src\/([^/]+\.ts)$/.exec(path);
  if (src !== null && path.startsWith(REPO)) return `src/${src[1]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(path);
  if (pkg !== null) return pkg[1]!;
  if (path.startsWith('node:')) return 'node internals';
  if (path.startsWith(REPO)) return path.slice(REPO.length);
  return path;
}

export interface Summary {
  totalUs: number;
  busyUs: number;
  groups: Array<{ group: string; us: number }>;
  functions: Array<{ name: string; group: string; line: number; us: number }>;
}

/** [fromUs, toUs] spans on the profile's clock; samples outside every span are ignored. */
export type Windows = ReadonlyArray<readonly [number, number]>;

export function summarise(profile: CpuProfile, windows?: Windows): Summary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  // samples[i] was taken timeDeltas[i] after the previous one; charge that interval to it.
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]!;
    at += profile.timeDeltas[i] ?? 0;
    if (windows !== undefined && !windows.some(([from, to]) => at >= from && at <= to)) continue;
    selfUs.set(id, (selfUs.get(id) ?? 0) + Math.max(0, profile.timeDeltas[i] ?? 0));
  }
  const groups = new Map<string, number>();
  const functions = new Map<string, { name: string; group: string; line: number; us: number }>();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const frame = byId.get(id)!.callFrame;
    const group = groupOf(frame);
    totalUs += us;
    if (group === '(idle)') {
      idleUs += us;
      continue;
    }
    groups.set(group, (groups.get(group) ?? 0) + us);
    const name = frame.functionName || '(anonymous)';
    const key = `${group}\n${name}\n${frame.lineNumber}`;
    const entry = functions.get(key) ?? { name, group, line: frame.lineNumber + 1, us: 0 };
    entry.us += us;
    functions.set(key, entry);
  }
  return {
    totalUs,
    busyUs: totalUs - idleUs,
    groups: [...groups].map(([group, us]) => ({ group, us })).sort((a, b) => b.us - a.us),
    functions: [...functions.values()].sort((a, b) => b.us - a.us),
  };
}

export function printSummary(summary: Summary, calls: number | undefined, top: number): string {
  const pct = (us: number): string => `${((us / summary.busyUs) * 100).toFixed(1)}%`;
  const perCall = (us: number): string => (calls === undefined ? '' : (us / calls).toFixed(2));
  const out = [
    `busy (non-idle) time ${(summary.busyUs / 1e6).toFixed(2)} s of ${(summary.totalUs / 1e6).toFixed(2)} s sampled` +
      (calls === undefined ? '' : `; ${calls} calls`),
    '',
    formatTable({
      title: 'self time by group',
      header: ['group', 'self ms', '% busy', ...(calls === undefined ? [] : ['µs/call'])],
      rows: summary.groups.map((g) => [g.group, (g.us / 1000).toFixed(0), pct(g.us), ...(calls === undefined ? [] : [perCall(g.us)])]),
    }),
    '',
    formatTable({
      title: `top ${top} functions by self time`,
      header: ['function', 'where', 'self ms', '% busy', ...(calls === undefined ? [] : ['µs/call'])],
      rows: summary.functions
        .slice(0, top)
        .map((f) => [f.name, `${f.group}:${f.line}`, (f.us / 1000).toFixed(0), pct(f.us), ...(calls === undefined ? [] : [perCall(f.us)])]),
    }),
  ];
  return out.join('\n');
}

interface RoundSpan {
  calls: number;
  fromUs: number;
  toUs: number;
}

/** The measured rounds of one contender, from a paired child's line (lib.ts, runPairChild) or a benchmark's result line. */
export function roundsOf(outputFile: string, contender: string): RoundSpan[] {
  const lines = readFileSync(outputFile, 'utf8').split('\n');
  const pair = markedJson<{ baseline: { name: string; rounds: RoundSpan[] }; contender: { name: string; rounds: RoundSpan[] } }>(lines, PAIR_MARKER);
  const summaries =
    pair !== undefined
      ? [pair.baseline, pair.contender]
      : (markedJson<{ data: Array<{ summaries?: Array<{ name: string; rounds: RoundSpan[] }> }> }>(lines, RESULT_MARKER)?.data ?? []).flatMap((level) => level.summaries ?? []);
  const rounds = summaries.filter((s) => s.name === contender).flatMap((s) => s.rounds);
  if (rounds.length === 0) throw new Error(`no rounds of "${contender}" in ${outputFile}`);
  return rounds;
}

/** Per-call self time of `summary` next to `baseline`'s, by group and by function, largest difference first. */
export function printDiff(
  summary: Summary,
  calls: number,
  baseline: Summary,
  baselineCalls: number,
  names: { contender: string; baseline: string },
  top: number,
): string {
  const diffRows = (a: Map<string, number>, b: Map<string, number>): string[][] =>
    [...new Set([...a.keys(), ...b.keys()])]
      .map((key) => ({ key, ours: (a.get(key) ?? 0) / calls, theirs: (b.get(key) ?? 0) / baselineCalls }))
      .sort((x, y) => y.ours - y.theirs - (x.ours - x.theirs))
      .slice(0, top)
      .map((r) => [r.key, r.theirs.toFixed(2), r.ours.toFixed(2), `${r.ours - r.theirs >= 0 ? '+' : ''}${(r.ours - r.theirs).toFixed(2)}`]);
  const groups = (s: Summary): Map<string, number> => new Map(s.groups.map((g) => [g.group, g.us]));
  const functions = (s: Summary): Map<string, number> => {
    const m = new Map<string, number>();
    for (const f of s.functions) m.set(`${f.name} (${f.group})`, (m.get(`${f.name} (${f.group})`) ?? 0) + f.us);
    return m;
  };
  const header = ['', `${names.baseline} µs/call`, `${names.contender} µs/call`, 'difference'];
  return [
    `busy µs per call: ${names.baseline} ${(baseline.busyUs / baselineCalls).toFixed(2)}, ${names.contender} ${(summary.busyUs / calls).toFixed(2)}` +
      ` (difference ${((summary.busyUs / calls) - (baseline.busyUs / baselineCalls)).toFixed(2)})`,
    '',
    formatTable({ title: 'self time per call by group, largest difference first', header: ['group', ...header.slice(1)], rows: diffRows(groups(summary), groups(baseline)) }),
    '',
    formatTable({ title: 'self time per call by function, largest difference first', header: ['function', ...header.slice(1)], rows: diffRows(functions(summary), functions(baseline)) }),
  ].join('\n');
}

if (isMain(import.meta.url)) {
  const files = process.argv.slice(2).filter((a) => !a.startsWith('--'));
  const top = Number(cliArg('top') ?? 25);
  const roundsFile = cliArg('rounds');
  const contender = cliArg('contender');
  if (files.length === 0 || (roundsFile === undefined) !== (contender === undefined)) {
    throw new Error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [--rounds=<unary-overhead stdout> --contender=<name> [--baseline=<name>]] [--calls=N] [--top=N]');
  }
  const baselineName = cliArg('baseline');
  let calls = cliArg('calls') === undefined ? undefined : Number(cliArg('calls'));
  let windows: Windows | undefined;
  if (roundsFile !== undefined && contender !== undefined) {
    const rounds = roundsOf(roundsFile, contender);
    windows = rounds.map((r) => [r.fromUs, r.toUs] as const);
    calls = rounds.reduce((sum, r) => sum + r.calls, 0);
  }
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
    if (baselineName !== undefined && roundsFile !== undefined && contender !== undefined) {
      const base = roundsOf(roundsFile, baselineName);
      const baseCalls = base.reduce((sum, r) => sum + r.calls, 0);
      const diff = printDiff(summarise(profile, windows), calls!, summarise(profile, base.map((r) => [r.fromUs, r.toUs] as const)), baseCalls, { contender, baseline: baselineName }, top);
      console.log(`== ${file}: ${contender} vs ${baselineName}, measured rounds only\n${diff}\n`);
      continue;
    }
    const label = contender === undefined ? '' : ` (${contender}'s measured rounds only)`;
    console.log(`== ${file}${label}\n${printSummary(summarise(profile, windows), calls, top)}\n`);
  }
}
