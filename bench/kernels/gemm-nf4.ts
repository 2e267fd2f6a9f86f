/**
 * NF4 GEMM vs the float32 GEMM on TinyLlama-1.1B's training shapes (seq 256 × batch 1): forward x·Wᵀ (nt) and
 * backward dY·W (nn), GFLOP/s and the ratio NF4 / fp32 (target ≥ 0.8). Validates against the js spec first.
 * `node --import tsx bench/kernels/gemm-nf4.ts [--threads 1|2] [--json]`
 */
import { jsBackend } from "../../src/backend/index.js";
import { loadNativeBackend, setNumThreads } from "../../src/backend/native/index.js";
import { quantizeNf4 } from "../../src/quant/nf4.js";
import { Rng, randn } from "../../src/tensor/index.js";

const args = process.argv.slice(2);
const threads = Number(args[args.indexOf("--threads") + 1] ?? 1) || 1;
const json = args.includes("--json");
setNumThreads(threads);
const be = loadNativeBackend();
const rng = new Rng(0);

function time(fn: () => void, minMs = 400): number {
  fn();
  let reps = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < minMs) { fn(); reps++; }
  return (performance.now() - t0) / reps / 1e3;
}

// [out, in] of the q/k/v/o, gate/up and down projections
const SHAPES: [string, number, number][] = [["q_proj", 2048, 2048], ["k_proj", 256, 2048], ["gate_proj", 5632, 2048], ["down_proj", 2048, 5632]];
const m = 256;
if (!json) console.log(`threads ${threads}, m ${m}\nlayer       form   fp32 GF/s   nf4 GF/s   ratio`);
for (const [name, out, inn] of SHAPES) {
  const w = randn([out, inn], rng, 0.02).f32();
  const q = quantizeNf4(w, [out, inn]);
  const sc = q.scales();
  for (const form of ["nt", "nn"] as const) {
    const k = form === "nt" ? inn : out, n = form === "nt" ? out : inn;
    const a = randn([m, k], rng).f32(), c = new Float32Array(m * n), cj = new Float32Array(m * n);
    const wd = q.dequantize();
    // validate on a slice of rows against the js spec
    be.gemmNf4(form, 4, n, k, a, 0, k, q.codes, sc, q.quantMap, q.blockSize, c, 0, n, false);
    jsBackend.gemmNf4(form, 4, n, k, a, 0, k, q.codes, sc, q.quantMap, q.blockSize, cj, 0, n, false);
    for (let i = 0; i < 4 * n; i++) if (Math.abs(c[i]! - cj[i]!) > 1e-3 * (1 + Math.abs(cj[i]!))) throw new Error(`${name} ${form}: mismatch at ${i}: ${c[i]} vs ${cj[i]}`);
    const tf = time(() => be.gemm(form, m, n, k, a, 0, k, 0, wd, 0, form === "nt" ? k : n, 0, c, 0, n, 0, 1, false));
    const tq = time(() => be.gemmNf4(form, m, n, k, a, 0, k, q.codes, sc, q.quantMap, q.blockSize, c, 0, n, false));
    const gf = (2 * m * n * k) / 1e9;
    if (json) console.log(JSON.stringify({ layer: name, form, m, n, k, threads, fp32_gflops: gf / tf, nf4_gflops: gf / tq, ratio: tf / tq }));
    else console.log(`${name.padEnd(11)} ${form}   ${(gf / tf).toFixed(1).padStart(9)}  ${(gf / tq).toFixed(1).padStart(9)}   ${(tf / tq).toFixed(2)}`);
  }
}
