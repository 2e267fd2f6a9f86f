/**
 * One adapted layer, d×d, T tokens, rank r: forward + backward + AdamW on the adapter tensors, DoRA vs LoRA,
 * dropout 0 and 0.05, and eval (DoRA with its cached norm vs LoRA); PyTorch (PEFT's formula,
 * reference.py) in the same run. Each configuration runs in its own process so peak RSS is its own.
 *
 *   node --import tsx bench/dora-layer/run.ts [--d 2048] [--tokens 2048] [--r 16] [--reps 5] [--no-torch] [--json]
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
  reps: { type: "string", default: "5" }, child: { type: "string" }, "no-torch": { type: "boolean", default: false }, json: { type: "boolean", default: false },
} });
const D = Number(args.d), T = Number(args.tokens), R = Number(args.r), REPS = Number(args.reps);

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
  const rows: { cfg: Cfg; ours: Record<string, unknown> | null; torch: Record<string, unknown> | null }[] = [];
  for (const cfg of CONFIGS) {
    const ours = runChild(process.execPath, ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), ...common, "--child", JSON.stringify(cfg)]);
    const torch = args["no-torch"] ? null
      : runChild("/usr/bin/python3", [join(here, "reference.py"), ...common, "--method", cfg.method, "--dropout", String(cfg.dropout), "--mode", cfg.mode],
        { ...process.env, OPENBLAS_CORETYPE: "SkylakeX" });
    rows.push({ cfg, ours, torch });
    if (args.json) console.log(JSON.stringify({ cfg, ours, torch }));
  }
  const get = (c: Cfg, who: "ours" | "torch", k: string): number => Number(rows.find((r) => label(r.cfg) === label(c))?.[who]?.[k] ?? NaN);
  const f = (v: number, d = 1): string => (Number.isFinite(v) ? v.toFixed(d) : "n/a");
  console.log(`\nDoRA layer bench: ${D}×${D}, ${T} tokens, r ${R}, median of ${REPS} after 2 warm-ups; backend ${String(rows[0]?.ours?.["backend"])}; ` +
    `torch ${String(rows[0]?.torch?.["torch"] ?? "n/a")} (${String(rows[0]?.torch?.["threads"] ?? "?")} threads)`);
  console.log("| config | dora-ts ms | dora-ts peak RSS MiB | torch ms | torch peak RSS MiB |");
  console.log("|---|---|---|---|---|");
  for (const r of rows) console.log(`| ${label(r.cfg)} | ${f(get(r.cfg, "ours", "ms"))} | ${f(get(r.cfg, "ours", "maxRssMiB"), 0)} | ${f(get(r.cfg, "torch", "ms"))} | ${f(get(r.cfg, "torch", "maxRssMiB"), 0)} |`);
  console.log("\n| ratio DoRA / LoRA | dora-ts time | dora-ts peak RSS | torch time | torch peak RSS |");
  console.log("|---|---|---|---|---|");
  for (const [p, mode] of [[0, "train"], [0.05, "train"], [0, "eval"]] as const) {
    const L: Cfg = { method: "lora", dropout: p, mode }, Dc: Cfg = { method: "dora", dropout: p, mode };
    const ratio = (who: "ours" | "torch", k: string): string => f(get(Dc, who, k) / get(L, who, k), 3);
    console.log(`| p=${p} ${mode} | ${ratio("ours", "ms")} | ${ratio("ours", "maxRssMiB")} | ${ratio("torch", "ms")} | ${ratio("torch", "maxRssMiB")} |`);
  }
}
