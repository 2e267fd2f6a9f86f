/**
 * CPU time of the dropout-correction kernels (Backend.sparseGemm / sampledGemm) against one base GEMM at the DoRA
 * layer bench's size, per dropout rate: where the sparse path stops paying (src/peft/dora.ts SPARSE_MAX_P).
 *
 *   DORA_NUM_THREADS=1 node --import tsx bench/dora-layer/sparse-kernels.ts [--d 2048] [--tokens 2048] [--reps 5]
 */
import { parseArgs } from "node:util";
import { Rng } from "../../src/tensor/index.js";
import { drawDrops } from "../../src/peft/flat.js";
import { getBackend } from "../../src/backend/index.js";

const { values: a } = parseArgs({ options: { d: { type: "string", default: "2048" }, tokens: { type: "string", default: "2048" },
  reps: { type: "string", default: "5" } } });
const D = Number(a.d), T = Number(a.tokens), REPS = Number(a.reps);
const be = getBackend();
const rng = new Rng(1);
const rand = (n: number) => Float32Array.from({ length: n }, () => rng.uniform() - 0.5);
const x = rand(T * D), w = rand(D * D), g = rand(T * D), scale = rand(D), c = new Float32Array(T * D);

function cpu(f: () => void): number {
  const v: number[] = [];
  for (let i = 0; i < REPS + 1; i++) {
    const c0 = process.cpuUsage();
    f();
    const d = process.cpuUsage(c0);
    if (i > 0) v.push((d.user + d.system) / 1000);
  }
  return Math.min(...v);
}

const gemm = cpu(() => be.gemm("nt", T, D, D, x, 0, D, 0, w, 0, D, 0, c, 0, D, 0, 1, false));
console.log(`backend ${be.name}; ${T}×${D} · ${D}×${D}ᵀ GEMM: ${gemm.toFixed(1)} ms (min of ${REPS})`);
console.log("| p | drops | mask draw + value gather ms | sparseGemm nt ms | sampledGemm nt ms | sparseGemm nn ms | sampledGemm nn ms | (sparse+sampled nt) / GEMM |");
console.log("|---|---|---|---|---|---|---|---|");
for (const p of (process.env.PS ?? "0.01,0.05,0.1,0.2,0.3,0.5").split(",").map(Number)) {
  let d = drawDrops(x, T, D, p, new Rng(3), 1);
  const draw = cpu(() => { d = drawDrops(x, T, D, p, new Rng(3), 1); });
  const { rowPtr, cols, values } = d;
  const out = new Float32Array(cols.length);
  const sp = cpu(() => be.sparseGemm("nt", c, -1, null, values, rowPtr, cols, T, D, D, w, 0, false));
  const sd = cpu(() => be.sampledGemm("nt", out, g, scale, rowPtr, cols, T, D, D, w, 0, false));
  const spn = cpu(() => be.sparseGemm("nn", c, -1, null, values, rowPtr, cols, T, D, D, w, 0, false));
  const sdn = cpu(() => be.sampledGemm("nn", out, g, scale, rowPtr, cols, T, D, D, w, 0, false));
  console.log(`| ${p} | ${cols.length} | ${draw.toFixed(1)} | ${sp.toFixed(1)} | ${sd.toFixed(1)} | ${spn.toFixed(1)} | ${sdn.toFixed(1)} | ${((sp + sd) / gemm).toFixed(3)} |`);
}
