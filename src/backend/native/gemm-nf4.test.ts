/**
 * Native NF4 GEMM against the js spec and a float64 loop over the dequantised weight: both forms, shapes off
 * the register tile and across cache blocks, rows that break the SIMD packer's 16-alignment (generic packer),
 * padded lda/ldc, offsets, accumulate; each ISA this CPU supports and 1 or 2 threads. Bad arguments throw.
 */
import { afterAll, describe, expect, it } from "vitest";
import { expectClose } from "../../../test/helpers/close.js";
import { jsBackend } from "../js/index.js";
import { loadAddon } from "./addon.js";
import { checkGemmNf4, loadNativeBackend } from "./index.js";

const addon = loadAddon();
const native = loadNativeBackend();
const defaultIsa = addon.isa(), defaultThreads = addon.numThreads();
afterAll(() => { addon.setIsa(defaultIsa); addon.setNumThreads(defaultThreads); });

const LUT = Float32Array.from([-1, -0.6961928, -0.5250731, -0.3949175, -0.2844414, -0.1847734, -0.0910500, 0,
  0.0795803, 0.1609302, 0.2461123, 0.3379152, 0.4407098, 0.5626170, 0.7229568, 1]);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

interface Case { form: "nn" | "nt"; m: number; n: number; k: number; block?: number; padA?: number; padC?: number; offA?: number; offC?: number; acc?: boolean }

function run(c: Case, which: "native" | "js" | "naive" | "f64"): Float32Array {
  const r = rng(c.m * 7919 + c.n * 31 + c.k);
  const block = c.block ?? 64, lda = c.k + (c.padA ?? 0), ldc = c.n + (c.padC ?? 0);
  const offA = c.offA ?? 0, offC = c.offC ?? 0;
  const a = Float32Array.from({ length: offA + c.m * lda }, () => r() * 2 - 1);
  const nw = c.n * c.k;
  const codes = Uint8Array.from({ length: Math.ceil(nw / 2) }, () => Math.floor(r() * 256));
  const absmax = Float32Array.from({ length: Math.ceil(nw / block) }, () => 0.01 + r());
  const cbuf = Float32Array.from({ length: offC + c.m * ldc }, () => r());
  const acc = c.acc ?? false;
  if (which === "native") native.gemmNf4(c.form, c.m, c.n, c.k, a, offA, lda, codes, absmax, LUT, block, cbuf, offC, ldc, acc);
  else if (which === "js") jsBackend.gemmNf4(c.form, c.m, c.n, c.k, a, offA, lda, codes, absmax, LUT, block, cbuf, offC, ldc, acc);
  else if (which === "naive") addon.gemmNf4(c.form === "nt" ? 1 : 0, c.m, c.n, c.k, a, offA, lda, codes, absmax, LUT, block, cbuf, offC, ldc, acc, true);
  else {
    // float64 over the dequantised weight: Ŵ[f] = lut[nibble]·absmax[f / block]
    const w = (f: number): number => Math.fround(LUT[(f & 1) === 0 ? codes[f >> 1]! >> 4 : codes[f >> 1]! & 15]! * absmax[Math.floor(f / block)]!);
    for (let i = 0; i < c.m; i++) for (let j = 0; j < c.n; j++) {
      let s = 0;
      for (let p = 0; p < c.k; p++) s += a[offA + i * lda + p]! * w(c.form === "nt" ? j * c.k + p : p * c.n + j);
      cbuf[offC + i * ldc + j] = (acc ? cbuf[offC + i * ldc + j]! : 0) + s;
    }
  }
  return cbuf;
}

const CASES: Case[] = [
  { form: "nt", m: 1, n: 1, k: 2 },
  { form: "nt", m: 3, n: 5, k: 7, block: 4 },
  { form: "nt", m: 17, n: 45, k: 128 },
  { form: "nt", m: 29, n: 70, k: 800, padA: 3, padC: 5, offA: 2, offC: 1 },
  { form: "nt", m: 40, n: 600, k: 448, acc: true },
  { form: "nt", m: 15, n: 33, k: 100 },
  { form: "nn", m: 1, n: 16, k: 1 },
  { form: "nn", m: 13, n: 48, k: 97 },
  { form: "nn", m: 30, n: 560, k: 420, padA: 1, padC: 2, offC: 3, acc: true },
  { form: "nn", m: 9, n: 37, k: 65, block: 8 },
];

describe("native gemmNf4", () => {
  const isas = ["avx512", "avx2", "portable"].filter((i) => addon.setIsa(i));
  for (const isa of isas) for (const threads of [1, 2]) {
    it(`${isa}, ${threads} thread(s): matches the js spec and a float64 reference`, () => {
      addon.setIsa(isa);
      addon.setNumThreads(threads);
      for (const c of CASES) {
        const label = `${c.form} m=${c.m} n=${c.n} k=${c.k}${c.acc ? " acc" : ""}`;
        const ref = run(c, "f64");
        expectClose(run(c, "native"), ref, `${label} native`, { rtol: 1e-4, atol: 1e-4 });
        expectClose(run(c, "naive"), ref, `${label} naive`, { rtol: 1e-4, atol: 1e-4 });
      }
    });
  }
  it("js spec matches the float64 reference", () => {
    for (const c of CASES.slice(0, 6)) expectClose(run(c, "js"), run(c, "f64"), `js ${c.form} m=${c.m}`, { rtol: 1e-4, atol: 1e-4 });
  });
  it("bad arguments throw naming the kernel", () => {
    const a = new Float32Array(8), c = new Float32Array(8);
    expect(() => checkGemmNf4("nt", 2, 2, 4, a, 0, 4, new Uint8Array(3), new Float32Array(1), LUT, 64, c, 0, 2)).toThrow(/gemmNf4.*codes/);
    expect(() => checkGemmNf4("nt", 2, 2, 4, a, 0, 3, new Uint8Array(4), new Float32Array(1), LUT, 64, c, 0, 2)).toThrow(/lda/);
    expect(() => checkGemmNf4("tn", 2, 2, 4, a, 0, 4, new Uint8Array(4), new Float32Array(1), LUT, 64, c, 0, 2)).toThrow(/form/);
  });
});
