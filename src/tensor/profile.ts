/**
 * The op profiler (`DORA_PROFILE=1`): wall time per op kind (forward and backward apart) and per module path,
 * printed as two sorted tables at process exit (or when `printProfile()` is called, e.g. after a step).
 *
 * How time is attributed, with one boolean test per op when off:
 * - forward: every op calls `record` once its output exists, so the time since the previous mark (the last
 *   op, a module entry or exit, a span) is that op's forward time. Non-op code between two marks (a few
 *   microseconds of glue in a model's forward; any setup outside instrumented modules) lands on the next op.
 * - backward: `runBackward` times each node's backward closure; the node remembers the module path that was
 *   current when it was recorded, so backward time lands on the same layer as its forward.
 * - module paths come from `enterModule`/`exitModule`, which nn's `instrumentModules` wraps around forwards.
 * - `profileSpan(name, fn)` times whole phases that are not ops (the optimizer step).
 */

export interface OpStat { op: string; fwdMs: number; bwdMs: number; fwdCalls: number; bwdCalls: number }
export interface PathStat { path: string; fwdMs: number; bwdMs: number }
export interface ProfileReport { steps: number; ops: OpStat[]; paths: PathStat[]; totalMs: number }

/** Read once: when false, `record` and `runBackward` skip every profiling branch. */
export let profiling = /^(1|true|yes|on)$/i.test(process.env["DORA_PROFILE"] ?? "");

const ops = new Map<string, OpStat>();
const paths = new Map<string, PathStat>();
const stack: string[] = [];
let mark = performance.now();
let steps = 0;
let exitHooked = false;

function opStat(op: string): OpStat {
  let s = ops.get(op);
  if (!s) ops.set(op, (s = { op, fwdMs: 0, bwdMs: 0, fwdCalls: 0, bwdCalls: 0 }));
  return s;
}

function pathStat(path: string): PathStat {
  let s = paths.get(path);
  if (!s) paths.set(path, (s = { path, fwdMs: 0, bwdMs: 0 }));
  return s;
}

/** Turn profiling on or off (tests; the env var sets the initial state). Turning it on resets the counters. */
export function setProfiling(on: boolean): void {
  profiling = on;
  if (on) resetProfile();
  hookExit();
}

function hookExit(): void {
  if (exitHooked || !profiling) return;
  exitHooked = true;
  process.on("exit", () => { if (profiling && ops.size > 0) process.stderr.write(formatProfile() + "\n"); });
}
hookExit();

export function resetProfile(): void {
  ops.clear(); paths.clear(); stack.length = 0; steps = 0; mark = performance.now();
}

/** The innermost module path ("(no module)" outside any instrumented forward). */
export function currentPath(): string {
  return stack.length > 0 ? stack[stack.length - 1]! : "(no module)";
}

/** Called by `record` for every op output: the time since the last mark is this op's forward. */
export function profileForward(op: string): void {
  const now = performance.now(), dt = now - mark;
  mark = now;
  const s = opStat(op);
  s.fwdMs += dt; s.fwdCalls++;
  pathStat(currentPath()).fwdMs += dt;
}

/** Called by `runBackward` around one node's backward. */
export function profileBackward(op: string, path: string | undefined, ms: number): void {
  const s = opStat(op);
  s.bwdMs += ms; s.bwdCalls++;
  pathStat(path ?? "(no module)").bwdMs += ms;
  mark = performance.now();
}

export function enterModule(path: string): void { stack.push(path); mark = performance.now(); }
export function exitModule(): void { stack.pop(); mark = performance.now(); }

/** Times `fn` as a pseudo-op `name` (forward column) when profiling; otherwise just runs it. */
export function profileSpan<T>(name: string, fn: () => T): T {
  if (!profiling) return fn();
  const t0 = performance.now();
  try { return fn(); } finally {
    const dt = performance.now() - t0;
    const s = opStat(name);
    s.fwdMs += dt; s.fwdCalls++;
    pathStat(`(${name})`).fwdMs += dt;
    mark = performance.now();
  }
}

/** Marks the end of a training step (tables then show ms per step). */
export function profileStep(): void { if (profiling) steps++; }

export function profileReport(): ProfileReport {
  const byTotal = <T extends { fwdMs: number; bwdMs: number }>(a: T, b: T): number => b.fwdMs + b.bwdMs - (a.fwdMs + a.bwdMs);
  const opList = [...ops.values()].sort(byTotal);
  return { steps, ops: opList, paths: [...paths.values()].sort(byTotal), totalMs: opList.reduce((a, s) => a + s.fwdMs + s.bwdMs, 0) };
}

/** The two tables as markdown; times are per step when steps were marked. `maxRows` caps the path table. */
export function formatProfile(maxRows = 40): string {
  const r = profileReport();
  const per = Math.max(r.steps, 1), unit = r.steps > 0 ? "ms/step" : "ms";
  const f = (v: number): string => (v / per).toFixed(1);
  const pct = (v: number): string => (r.totalMs > 0 ? ((100 * v) / r.totalMs).toFixed(1) : "0.0");
  const lines = [`dora-ts profile (DORA_PROFILE): ${r.steps} step(s), total ${f(r.totalMs)} ${unit}`, "",
    `| op | fwd ${unit} | bwd ${unit} | total ${unit} | % | fwd calls | bwd calls |`, "|---|---:|---:|---:|---:|---:|---:|"];
  for (const s of r.ops) lines.push(`| ${s.op} | ${f(s.fwdMs)} | ${f(s.bwdMs)} | ${f(s.fwdMs + s.bwdMs)} | ${pct(s.fwdMs + s.bwdMs)} | ${s.fwdCalls} | ${s.bwdCalls} |`);
  lines.push("", `| module | fwd ${unit} | bwd ${unit} | total ${unit} | % |`, "|---|---:|---:|---:|---:|");
  for (const s of r.paths.slice(0, maxRows)) lines.push(`| ${s.path} | ${f(s.fwdMs)} | ${f(s.bwdMs)} | ${f(s.fwdMs + s.bwdMs)} | ${pct(s.fwdMs + s.bwdMs)} |`);
  if (r.paths.length > maxRows) lines.push(`| (${r.paths.length - maxRows} more) | | | | |`);
  return lines.join("\n");
}

/** Prints the tables to stderr now (and keeps counting). */
export function printProfile(): void {
  if (profiling) process.stderr.write(formatProfile() + "\n");
}
