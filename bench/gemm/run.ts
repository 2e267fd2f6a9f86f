/**
 * GEMM bench: dora-ts native vs OpenBLAS (SkylakeX kernel, through numpy: bench/gemm/reference.py) in
 * one run, alternating the two per shape, form and thread count. Median GFLOP/s of RUNS timed runs after
 * warm-up. Shapes are M×K×N (C[M×N] = A[M×K]·B[K×N]).
 *
 *   node --import tsx bench/gemm/run.ts [--json] [--runs 7] [--rounds 1] [--threads 1,2] [--shapes 1024x1024x1024,...]
 *
 * --rounds R repeats each ours/OpenBLAS pair R times and keeps each side's best median: on a shared
 * machine a burst of someone else's work then costs both sides alike instead of one at random.
 * --json prints one line per measurement: {"impl","shape","form","threads","gflops"}; the per-call
 * overhead line then goes to stderr.
 */
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import type { GemmForm } from "../../src/backend/backend.js";
import { loadNativeBackend, nativeInfo, setNumThreads } from "../../src/backend/native/index.js";

const { values: opt } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    runs: { type: "string", default: "7" },
    rounds: { type: "string", default: "1" },
    warmup: { type: "string", default: "2" },
    threads: { type: "string", default: "1,2" },
    shapes: { type: "string", default: "1024x1024x1024,2048x768x3072,2048x3072x768,3072x2048x768" },
    forms: { type: "string", default: "NN,NT,TN" },
    python: { type: "string", default: "/usr/bin/python3" },
  },
});
const runs = Number(opt.runs), warmup = Number(opt.warmup), rounds = Math.max(1, Number(opt.rounds));
const threadList = opt.threads.split(",").map(Number);
const shapes = opt.shapes.split(",").map((s) => s.split("x").map(Number) as [number, number, number]);
const forms = opt.forms.split(",") as Array<"NN" | "NT" | "TN">;
const here = dirname(fileURLToPath(import.meta.url));
const native = loadNativeBackend();

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  return s[Math.floor(s.length / 2)]!;
}

function randomArray(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 31 - 1;
  }
  return out;
}

/** Problem operands for C[m×n] = op(A)·op(B) in the given storage form. */
function operands(form: GemmForm, m: number, k: number, n: number) {
  const a = randomArray(m * k, 1), b = randomArray(k * n, 2), c = new Float32Array(m * n);
  const lda = form === "tn" ? m : k, ldb = form === "nt" ? k : n;
  return { a, b, c, lda, ldb };
}

function oursGflops(form: GemmForm, m: number, k: number, n: number): number {
  const { a, b, c, lda, ldb } = operands(form, m, k, n);
  const call = () => native.gemm(form, m, n, k, a, 0, lda, 0, b, 0, ldb, 0, c, 0, n, 0, 1, false);
  for (let i = 0; i < warmup; i++) call();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint();
    call();
    times.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return (2 * m * n * k) / median(times) / 1e9;
}

function openblasGflops(form: string, m: number, k: number, n: number, threads: number): number {
  const r = spawnSync(opt.python, [join(here, "reference.py"), String(m), String(k), String(n), form, String(runs), String(warmup)], {
    env: { ...process.env, OPENBLAS_CORETYPE: "SkylakeX", OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) },
    encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`bench/gemm: ${opt.python} reference.py failed (${r.status}): ${r.stderr || r.error}`);
  const out = JSON.parse(r.stdout) as { gflops: number; corename: string; threads: number };
  if (out.corename !== "SkylakeX" || (out.threads !== -1 && out.threads !== threads))
    throw new Error(`bench/gemm: OpenBLAS reports core ${out.corename} with ${out.threads} threads, expected SkylakeX with ${threads}`);
  return out.gflops;
}

/** Validates ours against a float64 product before timing anything (a fast wrong GEMM is no result). */
function validate(): void {
  for (const form of ["nn", "nt", "tn"] as const) {
    const m = 67, k = 129, n = 45;
    const { a, b, c, lda, ldb } = operands(form, m, k, n);
    native.gemm(form, m, n, k, a, 0, lda, 0, b, 0, ldb, 0, c, 0, n, 0, 1, false);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += a[form === "tn" ? p * lda + i : i * lda + p]! * b[form === "nt" ? j * ldb + p : p * ldb + j]!;
        if (Math.abs(c[i * n + j]! - s) > 1e-4 * (1 + Math.abs(s)))
          throw new Error(`bench/gemm: native gemm(${form}) wrong at [${i},${j}]: ${c[i * n + j]} vs ${s}`);
      }
  }
}

/** Per-call cost of a 4×4×4 GEMM through the whole Backend.gemm path (checks, N-API, kernel). */
function overheadMicros(): number {
  const a = randomArray(16, 3), b = randomArray(16, 4), c = new Float32Array(16);
  const iters = 200_000;
  const one = () => {
    const t = process.hrtime.bigint();
    for (let i = 0; i < iters; i++) native.gemm("nn", 4, 4, 4, a, 0, 4, 0, b, 0, 4, 0, c, 0, 4, 0, 1, false);
    return Number(process.hrtime.bigint() - t) / 1e3 / iters;
  };
  one();
  return median([one(), one(), one()]);
}

validate();
const info = nativeInfo();
const rows: string[][] = [];
for (const [m, k, n] of shapes)
  for (const threads of threadList) {
    setNumThreads(threads);
    for (const form of forms) {
      const shape = `${m}x${k}x${n}`;
      let ours = 0, ref = 0;
      for (let r = 0; r < rounds; r++) {
        ours = Math.max(ours, oursGflops(form.toLowerCase() as GemmForm, m, k, n));
        ref = Math.max(ref, openblasGflops(form, m, k, n, threads));
      }
      if (opt.json) {
        console.log(JSON.stringify({ impl: "dora-ts", shape, form, threads, gflops: ours }));
        console.log(JSON.stringify({ impl: "openblas", shape, form, threads, gflops: ref }));
      } else {
        rows.push([shape, form, String(threads), ours.toFixed(1), ref.toFixed(1), (ours / ref).toFixed(3)]);
      }
    }
  }
setNumThreads(threadList[0] ?? 1);
const overhead = `per-call overhead, 4x4x4 gemm through Backend.gemm: ${overheadMicros().toFixed(3)} us/call`;
if (opt.json) {
  console.error(overhead);
} else {
  const head = ["shape (MxKxN)", "form", "threads", "dora-ts GFLOP/s", "OpenBLAS GFLOP/s", "ratio"];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((x, i) => x.padStart(width[i]!)).join("  ");
  console.log(`dora-ts native gemm (isa ${info.isa}) vs OpenBLAS SkylakeX; median of ${runs} runs after ${warmup} warm-up` +
    (rounds > 1 ? `, best of ${rounds} alternating rounds` : ""));
  console.log(line(head));
  for (const r of rows) console.log(line(r));
  console.log(overhead);
}
