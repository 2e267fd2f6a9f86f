/**
 * Native sparseGemm / sparseGemmDot / sampledGemm / sparseTransposedGemm / addSparse / positionsToCsr against the js spec, and the spec against a dense float64
 * reference (S as a dense [rows, k] matrix): both W layouts, odd sizes, n below / across / past the 64-column panel, k across the
 * 1024-input panel, densities from one entry to full rows, empty rows, a pattern that starts inside cols
 * (rowPtr[0] > 0), a weight offset, alpha, scale, accumulate; each ISA this CPU supports and 1 or 2 threads.
 * Bad patterns throw before the native call.
 */
import { afterAll, describe, expect, it } from "vitest";
import { expectClose } from "../../../test/helpers/close.js";
import { jsBackend } from "../js/index.js";
import { loadAddon } from "./addon.js";
import { loadNativeBackend } from "./index.js";
import type { Backend } from "../backend.js";

const addon = loadAddon();
const native = loadNativeBackend();
const defaultIsa = addon.isa(), defaultThreads = addon.numThreads();
afterAll(() => { addon.setIsa(defaultIsa); addon.setNumThreads(defaultThreads); });

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32; };
}

interface Case { form: "nn" | "nt"; rows: number; n: number; k: number; p: number; lead?: number; wOff?: number }

const CASES: Case[] = [
  { form: "nt", rows: 1, n: 1, k: 1, p: 1 },
  { form: "nn", rows: 1, n: 1, k: 1, p: 1 },
  { form: "nt", rows: 3, n: 17, k: 5, p: 0.5 },
  { form: "nn", rows: 4, n: 16, k: 33, p: 0.3, lead: 2 },
  { form: "nt", rows: 9, n: 64, k: 70, p: 0.05, wOff: 3 },
  { form: "nn", rows: 11, n: 65, k: 129, p: 0.2, wOff: 5 },
  { form: "nt", rows: 37, n: 130, k: 1030, p: 0.05, lead: 3 },
  { form: "nn", rows: 23, n: 200, k: 2100, p: 0.03 },
  { form: "nt", rows: 50, n: 16, k: 1500, p: 0.1 },
  { form: "nt", rows: 6, n: 300, k: 3000, p: 1 },
  { form: "nn", rows: 8, n: 7, k: 12, p: 0 },
  { form: "nn", rows: 400, n: 40, k: 2000, p: 0.3 }, // enough work for 2 tasks, one column block: split by tokens
];

/** x [rows, k] dense; values: x at the pattern's entries, indexed like cols (NaN before rowPtr[0]: never read) */
interface Data { rowPtr: Int32Array; cols: Int32Array; x: Float32Array; values: Float32Array; a: Float32Array; w: Float32Array; scale: Float32Array; c0: Float32Array; o0: Float32Array }

function data(c: Case, seed: number): Data {
  const r = rng(seed), lead = c.lead ?? 0;
  const rowPtr = new Int32Array(c.rows + 1), cols: number[] = [];
  for (let i = 0; i < lead; i++) cols.push(999999); // entries before rowPtr[0] are never read
  for (let t = 0; t < c.rows; t++) {
    rowPtr[t] = cols.length;
    if (t % 5 !== 2) for (let j = 0; j < c.k; j++) if (r() < c.p) cols.push(j); // every 5th row empty
  }
  rowPtr[c.rows] = cols.length;
  const f = (len: number) => Float32Array.from({ length: len }, () => r() * 2 - 1);
  const x = f(c.rows * c.k), values = new Float32Array(cols.length).fill(NaN);
  for (let t = 0; t < c.rows; t++) for (let e = rowPtr[t]!; e < rowPtr[t + 1]!; e++) values[e] = x[t * c.k + cols[e]!]!;
  return { rowPtr, cols: Int32Array.from(cols), x, values, a: f(c.rows * c.n), w: f((c.wOff ?? 0) + c.n * c.k),
    scale: f(c.n), c0: f(c.rows * c.n), o0: f(cols.length) };
}

/** op(W)[j, i] */
function opW(c: Case, d: Data, j: number, i: number): number {
  return d.w[(c.wOff ?? 0) + (c.form === "nt" ? i * c.k + j : j * c.n + i)]!;
}

function runSparse(be: Backend, c: Case, d: Data, alpha: number, scale: Float32Array | null, acc: boolean): Float32Array {
  const out = d.c0.slice();
  be.sparseGemm(c.form, out, alpha, scale, d.values, d.rowPtr, d.cols, c.rows, c.n, c.k, d.w, c.wOff ?? 0, acc);
  return out;
}

function runDot(be: Backend, c: Case, d: Data, scale: Float32Array | null): Float32Array {
  const out = d.scale.map(() => 7); // written, not accumulated
  be.sparseGemmDot(c.form, out, d.a, scale, d.values, d.rowPtr, d.cols, c.rows, c.n, c.k, d.w, c.wOff ?? 0);
  return out;
}

function runSampled(be: Backend, c: Case, d: Data, scale: Float32Array | null, acc: boolean): Float32Array {
  const out = d.o0.slice();
  be.sampledGemm(c.form, out, d.a, scale, d.rowPtr, d.cols, c.rows, c.n, c.k, d.w, c.wOff ?? 0, acc);
  return out;
}

function runTransposed(be: Backend, c: Case, d: Data): Float64Array {
  const out = new Float64Array(c.k * c.n).fill(7); // written, not accumulated
  be.sparseTransposedGemm(out, d.values, d.rowPtr, d.cols, c.rows, c.k, d.a, c.n);
  return out;
}

describe("sparse kernels: js spec against a dense float64 reference", () => {
  it.each(CASES.slice(0, 8))("%o", (c) => {
    const d = data(c, 1);
    const S = new Float64Array(c.rows * c.k); // dense S: x at the pattern's positions
    for (let t = 0; t < c.rows; t++) for (let e = d.rowPtr[t]!; e < d.rowPtr[t + 1]!; e++) S[t * c.k + d.cols[e]!] = d.x[t * c.k + d.cols[e]!]!;
    const want = new Float64Array(c.rows * c.n), wantDot = new Float64Array(c.n);
    for (let t = 0; t < c.rows; t++) for (let i = 0; i < c.n; i++) {
      let s = 0;
      for (let j = 0; j < c.k; j++) s += S[t * c.k + j]! * opW(c, d, j, i);
      want[t * c.n + i] = d.c0[t * c.n + i]! - 0.5 * d.scale[i]! * s;
      wantDot[i] = wantDot[i]! + d.a[t * c.n + i]! * d.scale[i]! * s;
    }
    expectClose(runSparse(jsBackend, c, d, -0.5, d.scale, true), want, "sparseGemm", { rtol: 1e-5, atol: 1e-6 });
    expectClose(runDot(jsBackend, c, d, d.scale), wantDot, "sparseGemmDot", { rtol: 1e-5, atol: 1e-6 });
    const fusedDot = new Float32Array(c.n), fusedOut = d.o0.slice();
    jsBackend.sampledGemm(c.form, fusedOut, d.a, null, d.rowPtr, d.cols, c.rows, c.n, c.k, d.w, c.wOff ?? 0, true, fusedDot, d.values);
    expectClose(fusedDot, wantDot.map((v, i) => v / d.scale[i]!), "sampledGemm's fused dot", { rtol: 1e-4, atol: 1e-5 });
    const wantS = Float64Array.from(d.o0);
    for (let t = 0; t < c.rows; t++) for (let e = d.rowPtr[t]!; e < d.rowPtr[t + 1]!; e++) {
      let s = 0;
      for (let i = 0; i < c.n; i++) s += d.a[t * c.n + i]! * d.scale[i]! * opW(c, d, d.cols[e]!, i);
      wantS[e] = wantS[e]! + s;
    }
    expectClose(runSampled(jsBackend, c, d, d.scale, true), wantS, "sampledGemm", { rtol: 1e-5, atol: 1e-6 });
    const wantT = new Float64Array(c.k * c.n); // Sᵀ·a [k, n]
    for (let t = 0; t < c.rows; t++) for (let j = 0; j < c.k; j++) for (let i = 0; i < c.n; i++) {
      wantT[j * c.n + i] = wantT[j * c.n + i]! + S[t * c.k + j]! * d.a[t * c.n + i]!;
    }
    expectClose(runTransposed(jsBackend, c, d), wantT, "sparseTransposedGemm", { rtol: 1e-12, atol: 1e-12 });
  });
});

describe("native sparse kernels match the js spec", () => {
  const isas = ["avx512", "avx2", "portable"].filter((i) => addon.setIsa(i));
  for (const isa of isas) for (const threads of [1, 2]) {
    it(`${isa}, ${threads} thread(s)`, () => {
      addon.setIsa(isa);
      addon.setNumThreads(threads);
      for (const c of CASES) {
        const d = data(c, 2), label = `${isa} ${threads}t ${JSON.stringify(c)}`;
        // float32 sums of up to k terms of size ≤ 1 against the float64 spec
        const tol = { rtol: 1e-4, atol: 2e-6 * Math.sqrt(c.k) * Math.max(1, Math.sqrt(c.n)) };
        for (const [alpha, scale, acc] of [[1, null, false], [-1, d.scale, true], [0.25, null, true], [-2, d.scale, false]] as const) {
          expectClose(runSparse(native, c, d, alpha, scale, acc), runSparse(jsBackend, c, d, alpha, scale, acc),
            `${label} sparseGemm α=${alpha} scale=${scale !== null} acc=${acc}`, tol);
        }
        // a sum over rows of the products: the tolerance grows with √rows
        const dotTol = { rtol: 1e-4, atol: tol.atol * Math.sqrt(c.rows) };
        for (const scale of [null, d.scale]) {
          expectClose(runDot(native, c, d, scale), runDot(jsBackend, c, d, scale), `${label} sparseGemmDot scale=${scale !== null}`, dotTol);
        }
        for (const [scale, acc] of [[null, false], [d.scale, true], [d.scale, false]] as const) {
          expectClose(runSampled(native, c, d, scale, acc), runSampled(jsBackend, c, d, scale, acc), `${label} sampledGemm scale=${scale !== null} acc=${acc}`, tol);
        }
        // the fused column dot: the sampled output unchanged, dot = sparseGemmDot(g = a, no scale)
        for (const [scale, acc] of [[null, false], [d.scale, true]] as const) {
          const out = d.o0.slice(), dot = new Float32Array(c.n).fill(7);
          native.sampledGemm(c.form, out, d.a, scale, d.rowPtr, d.cols, c.rows, c.n, c.k, d.w, c.wOff ?? 0, acc, dot, d.values);
          expectClose(out, runSampled(jsBackend, c, d, scale, acc), `${label} sampledGemm+dot out scale=${scale !== null}`, tol);
          expectClose(dot, runDot(jsBackend, c, d, null), `${label} sampledGemm+dot dot scale=${scale !== null}`, dotTol);
        }
        // float64 sums of exact products in the spec's order: the same bits
        expect(Array.from(runTransposed(native, c, d)), `${label} sparseTransposedGemm`).toEqual(Array.from(runTransposed(jsBackend, c, d)));
      }
    });
  }

  it("bad patterns and short arrays throw naming the kernel", () => {
    const c: Case = { form: "nt", rows: 2, n: 3, k: 4, p: 0.5 };
    const d = data(c, 3), vals = new Float32Array(8);
    const call = (rowPtr: Int32Array, cols: Int32Array, w = d.w) => () =>
      native.sparseGemm("nt", new Float32Array(6), 1, null, vals, rowPtr, cols, 2, 3, 4, w, 0, false);
    expect(call(Int32Array.of(0, 2, 3), Int32Array.of(1, 0, 2))).toThrow(/sparseGemm.*ascend/);
    expect(call(Int32Array.of(0, 1, 2), Int32Array.of(1, 4))).toThrow(/sparseGemm.*ascend/);
    expect(call(Int32Array.of(0, 1, 2), Int32Array.of(1, -1))).toThrow(/sparseGemm.*ascend/);
    expect(call(Int32Array.of(0, 2, 1), Int32Array.of(1, 2))).toThrow(/sparseGemm.*rowPtr/);
    expect(call(Int32Array.of(0, 1, 5), Int32Array.of(1, 2))).toThrow(/sparseGemm.*rowPtr/);
    expect(call(Int32Array.of(0, 1), Int32Array.of(1, 2))).toThrow(/sparseGemm.*rowPtr/);
    expect(call(Int32Array.of(0, 1, 2), Int32Array.of(1, 2), new Float32Array(11))).toThrow(/sparseGemm.*w has/);
    // values is indexed like cols: as many as the pattern's entries
    expect(() => native.sparseGemm("nt", new Float32Array(6), 1, null, new Float32Array(1), Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3, 4, d.w, 0, false))
      .toThrow(/sparseGemm.*values has 1 elements, needs 2/);
    expect(() => native.sampledGemm("nt", new Float32Array(2), d.a, null, Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3, 4, d.w, 0, false, new Float32Array(3), new Float32Array(1)))
      .toThrow(/sampledGemm.*values has 1 elements, needs 2/);
    expect(() => native.sparseGemmDot("nt", new Float32Array(2), d.a, null, vals, Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3, 4, d.w, 0))
      .toThrow(/sparseGemmDot.*out has/);
    expect(() => native.sparseGemm("nt", new Float32Array(6), 1, new Float32Array(2), vals, Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3, 4, d.w, 0, false))
      .toThrow(/sparseGemm.*scale has/);
    expect(() => native.sampledGemm("nn", new Float32Array(1), d.a, null, Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3, 4, d.w, 0, false))
      .toThrow(/sampledGemm.*out has/);
    expect(() => native.sampledGemm("nn", new Float32Array(2), d.a, new Float32Array(2), Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3, 4, d.w, 0, false))
      .toThrow(/sampledGemm.*scale has/);
    const pat = [Int32Array.of(0, 1, 2), Int32Array.of(1, 2)] as const;
    expect(() => native.sparseTransposedGemm(new Float64Array(11), vals, ...pat, 2, 4, d.a, 3)).toThrow(/sparseTransposedGemm.*out must be a Float64Array of at least 12/);
    expect(() => native.sparseTransposedGemm(new Float32Array(12) as unknown as Float64Array, vals, ...pat, 2, 4, d.a, 3)).toThrow(/sparseTransposedGemm.*Float64Array/);
    expect(() => native.sparseTransposedGemm(new Float64Array(12), vals, ...pat, 2, 4, new Float32Array(5), 3)).toThrow(/sparseTransposedGemm.*v has/);
    expect(() => native.sparseTransposedGemm(new Float64Array(12), vals, Int32Array.of(0, 1, 2), Int32Array.of(1, 4), 2, 4, d.a, 3)).toThrow(/sparseTransposedGemm.*ascend/);
    // the per-entry checks run in the addon (check_pattern): every kernel, a bad second row
    expect(() => native.sparseTransposedGemm(new Float64Array(12), vals, Int32Array.of(0, 1, 3), Int32Array.of(1, 2), 2, 4, d.a, 3)).toThrow(/sparseTransposedGemm.*rowPtr\[2\] = 3/);
    expect(() => native.sampledGemm("nt", new Float32Array(3), d.a, null, Int32Array.of(0, 1, 3), Int32Array.of(1, 3, 3), 2, 3, 4, d.w, 0, false))
      .toThrow(/sampledGemm.*row 1 has column 3/);
    expect(() => native.sparseGemmDot("nt", new Float32Array(3), d.a, null, vals, Int32Array.of(0, 1, 2), Int32Array.of(1, 7), 2, 3, 4, d.w, 0))
      .toThrow(/sparseGemmDot.*row 1 has column 7/);
    expect(() => native.sparseGemm("nn", new Float32Array(6), 1, null, vals, Int32Array.of(0, 2, 2), Int32Array.of(3, 3), 2, 3, 4, d.w, 0, false))
      .toThrow(/sparseGemm.*row 0 has column 3/);
  });
});

describe("addSparse, gatherSparse and positionsToCsr (the drop list's plumbing)", () => {
  it("the spec adds alpha·values at the entries in float64, rounded once", () => {
    const out = Float32Array.of(1, 2, 3, 4, 5, 6), values = Float32Array.of(9, 0.1, 0.2, 0.3);
    // a pattern that starts inside values (rowPtr[0] = 1): entries 1..3
    jsBackend.addSparse(out, -1 / 0.95, values, Int32Array.of(1, 2, 4), Int32Array.of(9, 2, 0, 1), 2, 3);
    const f = (o: number, v: number) => Math.fround(o + (-1 / 0.95) * Math.fround(v));
    expect(Array.from(out)).toEqual([1, 2, f(3, 0.1), f(4, 0.2), f(5, 0.3), 6]);
  });

  it("the spec turns flat positions into CSR rows, empty rows and the last row included", () => {
    const pos = Int32Array.of(1, 3, 8, 9, 11), rowPtr = new Int32Array(6).fill(-7);
    jsBackend.positionsToCsr(pos, 3, 5, rowPtr); // rows of 3: {1}, {3}, {8}, {9, 11}, none
    expect(Array.from(rowPtr)).toEqual([0, 1, 2, 3, 5, 5]);
    expect(Array.from(pos)).toEqual([1, 0, 2, 0, 2]);
    const none = new Int32Array(0), rp = new Int32Array(3).fill(-1);
    jsBackend.positionsToCsr(none, 4, 2, rp);
    expect(Array.from(rp)).toEqual([0, 0, 0]);
  });

  it("native gives the spec's bits", () => { // plain C++ (native/sparse.cc), the same on every ISA
    for (const c of CASES) {
      const d = data(c, 5), label = JSON.stringify(c);
      for (const alpha of [1, -1 / 0.95, 0.3]) {
        const a = d.x.slice(), b = d.x.slice();
        native.addSparse(a, alpha, d.o0, d.rowPtr, d.cols, c.rows, c.k);
        jsBackend.addSparse(b, alpha, d.o0, d.rowPtr, d.cols, c.rows, c.k);
        expect(Array.from(a), `${label} addSparse α=${alpha}`).toEqual(Array.from(b));
      }
      const g1 = d.o0.slice(), g2 = d.o0.slice();
      native.gatherSparse(g1, d.x, d.rowPtr, d.cols, c.rows, c.k);
      jsBackend.gatherSparse(g2, d.x, d.rowPtr, d.cols, c.rows, c.k);
      expect(Array.from(g1), `${label} gatherSparse`).toEqual(Array.from(g2));
      // the entries' values, and nothing before rowPtr[0] touched (data() builds values the same way, NaN there)
      expect(Array.from(g2.subarray(d.rowPtr[0]!)), `${label} gatherSparse values`).toEqual(Array.from(d.values.subarray(d.rowPtr[0]!)));
      expect(Array.from(g2.subarray(0, d.rowPtr[0]!)), `${label} gatherSparse lead`).toEqual(Array.from(d.o0.subarray(0, d.rowPtr[0]!)));
      // the pattern's entries as flat positions (rowPtr[0] = 0 again), back to CSR
      const flat: number[] = [];
      for (let t = 0; t < c.rows; t++) for (let e = d.rowPtr[t]!; e < d.rowPtr[t + 1]!; e++) flat.push(t * c.k + d.cols[e]!);
      const p1 = Int32Array.from(flat), p2 = Int32Array.from(flat), r1 = new Int32Array(c.rows + 1), r2 = new Int32Array(c.rows + 1);
      native.positionsToCsr(p1, c.k, c.rows, r1);
      jsBackend.positionsToCsr(p2, c.k, c.rows, r2);
      expect(Array.from(r1), `${label} positionsToCsr rowPtr`).toEqual(Array.from(r2));
      expect(Array.from(p1), `${label} positionsToCsr cols`).toEqual(Array.from(p2));
      expect(Array.from(p1), `${label} positionsToCsr cols`).toEqual(Array.from(d.cols.subarray(d.rowPtr[0]!)));
      expect(Array.from(r1), `${label} positionsToCsr rowPtr`).toEqual(Array.from(d.rowPtr, (v) => v - d.rowPtr[0]!));
    }
  });

  it("bad input throws naming the op, and leaves the positions as they were", () => {
    for (const be of [native, jsBackend]) {
      const pos = Int32Array.of(1, 5, 4), before = Array.from(pos);
      expect(() => be.positionsToCsr(pos, 3, 2, new Int32Array(3))).toThrow(/positionsToCsr: position 4 at index 2 is not above the previous one \(5\)/);
      expect(Array.from(pos)).toEqual(before);
      expect(() => be.positionsToCsr(Int32Array.of(0, 6), 3, 2, new Int32Array(3))).toThrow(/positionsToCsr: position 6 at index 1 .*inside \[0, 6\)/);
    }
    expect(() => native.positionsToCsr(Int32Array.of(0), 3, 2, new Int32Array(2))).toThrow(/native positionsToCsr.*rowPtr has 2 entries, needs 3/);
    expect(() => native.addSparse(new Float32Array(5), 1, new Float32Array(2), Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3))
      .toThrow(/native addSparse.*out has 5 elements, needs 6/);
    expect(() => native.addSparse(new Float32Array(6), 1, new Float32Array(1), Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3))
      .toThrow(/native addSparse.*values has 1 elements, needs 2/);
    expect(() => native.addSparse(new Float32Array(6), 1, new Float32Array(2), Int32Array.of(0, 1, 2), Int32Array.of(1, 3), 2, 3))
      .toThrow(/addSparse.*row 1 has column 3/);
    expect(() => native.gatherSparse(new Float32Array(1), new Float32Array(6), Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3))
      .toThrow(/native gatherSparse.*values has 1 elements, needs 2/);
    expect(() => native.gatherSparse(new Float32Array(2), new Float32Array(5), Int32Array.of(0, 1, 2), Int32Array.of(1, 2), 2, 3))
      .toThrow(/native gatherSparse.*x has 5 elements, needs 6/);
    expect(() => native.gatherSparse(new Float32Array(2), new Float32Array(6), Int32Array.of(0, 1, 2), Int32Array.of(1, 3), 2, 3))
      .toThrow(/gatherSparse.*row 1 has column 3/);
  });
});
