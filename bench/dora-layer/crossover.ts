/**
 * Where the sparse dropout corrections stop paying: one DoRA (and LoRA) train step per dropout rate, the sparse
 * path (flat.ts dropoutTuning.sparseMaxP / loraSparseMaxP = 1) and the dense one (= 0) alternating in one process, CPU time.
 *
 *   DORA_NUM_THREADS=1 node --import tsx bench/dora-layer/crossover.ts [--d 2048] [--tokens 2048] [--r 16] [--reps 4]
 */
import { parseArgs } from "node:util";
import { Rng, randn } from "../../src/tensor/index.js";
import { Linear } from "../../src/nn/index.js";
import { LoraLinear } from "../../src/peft/lora-linear.js";
import { dropoutTuning } from "../../src/peft/flat.js";

const { values: a } = parseArgs({ options: { d: { type: "string", default: "2048" }, tokens: { type: "string", default: "2048" },
  r: { type: "string", default: "16" }, reps: { type: "string", default: "4" }, p: { type: "string", default: "0.05,0.1,0.2,0.3,0.5" } } });
const D = Number(a.d), T = Number(a.tokens), R = Number(a.r), REPS = Number(a.reps);
const rng = new Rng(1);
const x = randn([T, D], rng).requiresGrad_(), dy = randn([T, D], rng, 0.01);

console.log("| p | DoRA sparse ms | DoRA dense ms | LoRA sparse ms | LoRA dense ms | (min of " + REPS + ", CPU time) |");
console.log("|---|---|---|---|---|---|");
for (const p of a.p!.split(",").map(Number)) {
  const row: string[] = [];
  for (const dora of [true, false]) {
    const base = new Linear(D, D, true, new Rng(1));
    base.requiresGrad_(false);
    const l = new LoraLinear("layer", base, false);
    l.addAdapter("default", { r: R, alpha: 2 * R, dropout: p, useRslora: false, useDora: dora, detachNorm: true, init: false, seed: 2 });
    const t: Record<string, number[]> = { sparse: [], dense: [] };
    for (let i = 0; i < REPS + 1; i++) {
      for (const k of ["sparse", "dense"] as const) {
        dropoutTuning.sparseMaxP = dropoutTuning.loraSparseMaxP = k === "sparse" ? 1 : 0;
        x.grad = null;
        const c0 = process.cpuUsage();
        l.forward(x).backward(dy);
        const c = process.cpuUsage(c0);
        if (i > 0) t[k]!.push((c.user + c.system) / 1000);
      }
    }
    row.push(Math.min(...t["sparse"]!).toFixed(0), Math.min(...t["dense"]!).toFixed(0));
  }
  console.log(`| ${p} | ${row.join(" | ")} | |`);
}
