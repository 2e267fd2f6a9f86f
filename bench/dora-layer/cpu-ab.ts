/**
 * DoRA vs LoRA on one layer in ONE process, alternating L D L D, timed by process CPU time (user + system): on a
 * shared machine the wall-clock bench (run.ts, one process per config) mostly measures the neighbours' load.
 * Run with DORA_NUM_THREADS=1 so CPU time is the kernels' work. Peak memory: use run.ts.
 *
 *   DORA_NUM_THREADS=1 node --import tsx bench/dora-layer/cpu-ab.ts [--d 2048] [--tokens 2048] [--r 16] [--reps 8]
 */
import { parseArgs } from "node:util";
import { Rng, allocationMark, noGrad, randn } from "../../src/tensor/index.js";
import { Linear } from "../../src/nn/index.js";
import { LoraLinear } from "../../src/peft/lora-linear.js";

const { values: a } = parseArgs({ options: { d: { type: "string", default: "2048" }, tokens: { type: "string", default: "2048" },
  r: { type: "string", default: "16" }, reps: { type: "string", default: "8" } } });
const D = Number(a.d), T = Number(a.tokens), R = Number(a.r), REPS = Number(a.reps);
const rng = new Rng(1);
const x = randn([T, D], rng).requiresGrad_(), dy = randn([T, D], rng, 0.01);

function layer(dora: boolean, p: number, train: boolean): LoraLinear {
  const base = new Linear(D, D, true, new Rng(1));
  base.requiresGrad_(false);
  const l = new LoraLinear("layer", base, false);
  l.addAdapter("default", { r: R, alpha: 2 * R, dropout: p, useRslora: false, useDora: dora, detachNorm: true, init: false, seed: 2 });
  if (!train) l.eval();
  return l;
}

const med = (v: number[]): number => v.slice().sort((p, q) => p - q)[Math.floor(v.length / 2)]!;
console.log(`| config | LoRA CPU ms (min / median) | DoRA CPU ms (min / median) | DoRA / LoRA (min / median) |`);
console.log("|---|---|---|---|");
for (const [p, train] of [[0, true], [0.05, true], [0, false]] as const) {
  const ls = { lora: layer(false, p, train), dora: layer(true, p, train) };
  const t: Record<string, number[]> = { lora: [], dora: [] };
  for (let i = 0; i < REPS + 1; i++) {
    for (const k of ["lora", "dora"] as const) {
      x.grad = null;
      const c0 = process.cpuUsage();
      const mark = allocationMark(); // activations go back to the pool after backward, as in the Trainer
      if (train) ls[k].forward(x).backward(dy, { releaseActivationsSince: mark }); else noGrad(() => ls[k].forward(x));
      const c = process.cpuUsage(c0);
      if (i > 0) t[k]!.push((c.user + c.system) / 1000);
    }
  }
  const lmin = Math.min(...t["lora"]!), dmin = Math.min(...t["dora"]!), lmed = med(t["lora"]!), dmed = med(t["dora"]!);
  console.log(`| p=${p} ${train ? "train" : "eval"} | ${lmin.toFixed(0)} / ${lmed.toFixed(0)} | ${dmin.toFixed(0)} / ${dmed.toFixed(0)} | ` +
    `${(dmin / lmin).toFixed(3)} / ${(dmed / lmed).toFixed(3)} |`);
}
