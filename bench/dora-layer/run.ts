/**
 * One adapted layer, d×d, T tokens, rank r: forward + backward + AdamW on the adapter tensors, DoRA vs LoRA,
 * dropout 0 and 0.05, and eval (DoRA with its cached norm vs LoRA); PyTorch (PEFT's formula,
 * reference.py) in the same run. Each configuration runs in its own process so peak RSS is its own, in --procs
 * processes (the configurations taken in turn, round after round); the tables give the median over them.
 *
 * Why several processes: one process's peak RSS moves in steps of a whole 16 MiB buffer with the order in which
 * the garbage collector hands buffers back to glibc (which native/addon.cc keeps on the heap for reuse). Six
 * processes of one configuration read 193–214 MiB; one process per configuration put DoRA ÷ LoRA anywhere in
 * 0.94–1.11.
 *
 *   node --import tsx bench/dora-layer/run.ts [--d 2048] [--tokens 2048] [--r 16] [--reps 5] [--procs 3] [--no-torch] [--json]
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { Rng, Tensor, allocationMark, noGrad, randn } from "../../src/tensor/index.js";
import { Linear } from "../../src/nn/index.js";
import { LoraLinear } from "../../src/peft/lora-linear.js";
import { getBackend } from "../../src/backend/index.js";

const { values: args } = parseArgs({ options: {
  d: { type: "string", default: "2048" }, tokens: { type: "string", default: "2048" }, r: { type: "string", default: "16" },
  reps: { type: "string", default: "5" }, procs: { type: "string", default: "3" }, child: { type: "string" }, "no-torch": { type: "boolean", default: false }, json: { type: "boolean", default: false },
} });
const D = Number(args.d), T = Number(args.tokens), R = Number(args.r), REPS = Number(args.reps), PROCS = Number(args.procs);
if (!Number.isInteger(PROCS) || PROCS < 1) throw new Error(`--procs: expected a whole number ≥ 1, got ${args.procs}`);

interface Cfg { method: "lora" | "dora"; dropout: number; mode: "train" | "eval" }
const CONFIGS: Cfg[] = [
  { method: "lora", dropout: 0, mode: "train" }, { method: "dora", dropout: 0, mode: "train" },
  { method: "lora", dropout: 0.05, mode: "train" }, { method: "dora", dropout: 0.05, mode: "train" },
  { method: "lora", dropout: 0, mode: "eval" }, { method: "dora", dropout: 0, mode: "eval" },
];
const label = (c: Cfg): string => `${c.method} p=${c.dropout} ${c.mode}`;

/** Minimal AdamW (torch defaults but lr 1e-4), in place, bumping `version` as optimizers must. */
function adamw(params: Tensor[], state: Map<Tensor, { m: Float32Array; v: Float32Array }>, step: number): void {
  const lr = 1e-4, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01;
  for (const p of params) {
    const g = p.grad!.f32(), w = p.data as Float32Array;
    let s = state.get(p);
    if (!s) state.set(p, (s = { m: new Float32Array(w.length), v: new Float32Array(w.length) }));
    const c1 = 1 - b1 ** step, c2 = 1 - b2 ** step;
    for (let i = 0; i < w.length; i++) {
      w[i] = w[i]! * (1 - lr * wd);
      s.m[i] = b1 * s.m[i]! + (1 - b1) * g[i]!;
      s.v[i] = b2 * s.v[i]! + (1 - b2) * g[i]! * g[i]!;
      w[i] = w[i]! - lr * (s.m[i]! / c1) / (Math.sqrt(s.v[i]! / c2) + eps);
    }
    p.version++;
    p.grad = null;
  }
}

function child(c: Cfg): void {
  const rng = new Rng(1);
  const base = new Linear(D, D, true, rng);
  base.requiresGrad_(false);
  const layer = new LoraLinear("layer", base, false);
  const a = layer.addAdapter("default", { r: R, alpha: 2 * R, dropout: c.dropout, useRslora: false, useDora: c.method === "dora", detachNorm: true, init: false, seed: 2 });
  const params = [a.A, a.B, ...(a.magnitude ? [a.magnitude] : [])];
  const x = randn([T, D], rng), dy = randn([T, D], rng, 0.01);
  const state = new Map<Tensor, { m: Float32Array; v: Float32Array }>();
  if (c.mode === "eval") layer.eval();
  const times: number[] = [];
  for (let i = 0; i < REPS + 2; i++) {
    const t0 = performance.now();
    if (c.mode === "train") {
      x.requiresGrad_(); x.grad = null;               // the layer sits inside a model: dx is needed
      const mark = allocationMark(); // activations go back to the pool after backward, as in the Trainer
      layer.forward(x).backward(dy, { releaseActivationsSince: mark });
      adamw(params, state, i + 1);
    } else {
      noGrad(() => layer.forward(x));
    }
    if (i >= 2) times.push(performance.now() - t0);
    // collect between reps (outside the timing): peak RSS then measures what a step needs, not when V8 chose to
    // collect the previous step's garbage (±16-32 MB at this size); PyTorch frees at refcount zero anyway
    (globalThis as { gc?: () => void }).gc?.();
  }
  times.sort((p, q) => p - q);
  console.log(JSON.stringify({ impl: "dora-ts", backend: getBackend().name, ...c, ms: times[Math.floor(times.length / 2)], maxRssMiB: process.resourceUsage().maxRSS / 1024 }));
}

function runChild(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env): Record<string, unknown> | null {
  const r = spawnSync(cmd, argv, { encoding: "utf8", env, maxBuffer: 1 << 20 });
  const line = r.stdout.trim().split("\n").pop() ?? "";
  try { return JSON.parse(line) as Record<string, unknown>; } catch {
    console.error(`${cmd} ${argv.join(" ")} failed: ${r.stderr.slice(-500)}`);
    return null;
  }
}

if (args.child) {
  child(JSON.parse(args.child) as Cfg);
} else {
  const here = dirname(fileURLToPath(import.meta.url));
  const common = ["--d", String(D), "--tokens", String(T), "--r", String(R), "--reps", String(REPS)];
  // --no-concurrent-array-buffer-sweeping: the child's gc() between reps then frees the last rep's buffers before
  // it returns. With V8's default the freeing runs on a helper thread and can lose the race with the next rep's
  // allocations, which put a second 16 MiB output on top of the first (eval read 153 or 172 MiB at random).
  const nodeArgs = ["--expose-gc", "--no-concurrent-array-buffer-sweeping", "--import", "tsx", fileURLToPath(import.meta.url)];
  const runs = new Map<string, { ours: Record<string, unknown>[]; torch: Record<string, unknown>[] }>(CONFIGS.map((c) => [label(c), { ours: [], torch: [] }]));
  for (let p = 0; p < PROCS; p++) {
    for (const cfg of CONFIGS) {
      const r = runs.get(label(cfg))!;
      const ours = runChild(process.execPath, [...nodeArgs, ...common, "--child", JSON.stringify(cfg)]);
      if (ours) r.ours.push(ours);
      const torch = args["no-torch"] ? null
        : runChild("/usr/bin/python3", [join(here, "reference.py"), ...common, "--method", cfg.method, "--dropout", String(cfg.dropout), "--mode", cfg.mode],
          { ...process.env, OPENBLAS_CORETYPE: "SkylakeX" });
      if (torch) r.torch.push(torch);
    }
  }
  const median = (v: number[]): number => {
    const s = v.slice().sort((p, q) => p - q);
    return s.length === 0 ? NaN : s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  const values = (c: Cfg, who: "ours" | "torch", k: string): number[] => runs.get(label(c))![who].map((o) => Number(o[k]));
  const get = (c: Cfg, who: "ours" | "torch", k: string): number => median(values(c, who, k));
  const f = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
  const range = (c: Cfg, who: "ours" | "torch", k: string): string => {
    const v = values(c, who, k);
    return v.length > 1 ? ` (${f(Math.min(...v), 0)}–${f(Math.max(...v), 0)})` : "";
  };
  if (args.json) {
    for (const cfg of CONFIGS) {
      const r = runs.get(label(cfg))!;
      console.log(JSON.stringify({ cfg, procs: PROCS, ours: r.ours, torch: r.torch,
        median: { ours: { ms: get(cfg, "ours", "ms"), maxRssMiB: get(cfg, "ours", "maxRssMiB") },
          torch: { ms: get(cfg, "torch", "ms"), maxRssMiB: get(cfg, "torch", "maxRssMiB") } } }));
    }
  }
  const first = runs.get(label(CONFIGS[0]!))!;
  console.log(`\nDoRA layer bench: ${D}×${D}, ${T} tokens, r ${R}, median of ${REPS} after 2 warm-ups in each of ${PROCS} processes per ` +
    `config, median over the processes (peak RSS: min–max); backend ${String(first.ours[0]?.["backend"])}; ` +
    `torch ${String(first.torch[0]?.["torch"] ?? "n/a")} (${String(first.torch[0]?.["threads"] ?? "?")} threads)`);
  console.log("| config | dora-ts ms | dora-ts peak RSS MiB | torch ms | torch peak RSS MiB |");
  console.log("|---|---|---|---|---|");
  for (const c of CONFIGS) {
    console.log(`| ${label(c)} | ${f(get(c, "ours", "ms"))} | ${f(get(c, "ours", "maxRssMiB"), 0)}${range(c, "ours", "maxRssMiB")} | ` +
      `${f(get(c, "torch", "ms"))} | ${f(get(c, "torch", "maxRssMiB"), 0)}${range(c, "torch", "maxRssMiB")} |`);
  }
  console.log("\n| ratio DoRA / LoRA (of the medians) | dora-ts time | dora-ts peak RSS | torch time | torch peak RSS |");
  console.log("|---|---|---|---|---|");
  for (const [p, mode] of [[0, "train"], [0.05, "train"], [0, "eval"]] as const) {
    const L: Cfg = { method: "lora", dropout: p, mode }, Dc: Cfg = { method: "dora", dropout: p, mode };
    const ratio = (who: "ours" | "torch", k: string): string => f(get(Dc, who, k) / get(L, who, k), 3);
    console.log(`| p=${p} ${mode} | ${ratio("ours", "ms")} | ${ratio("ours", "maxRssMiB")} | ${ratio("torch", "ms")} | ${ratio("torch", "maxRssMiB")} |`);
  }
}
