/** The native binary fast paths (fastpath.ts) and the column kernels (each ISA this CPU has) against the js spec. */
import { afterAll, describe, expect, it } from "vitest";
import { jsBackend } from "../js/index.js";
import { loadAddon } from "./addon.js";
import { loadNativeBackend } from "./index.js";
import { lcgArray, maxRelDiff } from "../../../test/helpers/arrays.js";

const native = loadNativeBackend();

describe("native binary fast paths match the js spec", () => {
  const shapes: [number[], number[], number[]][] = [
    [[3, 5], [3, 5], [3, 5]], [[3, 5], [5], [3, 5]], [[5], [3, 5], [3, 5]], [[3, 5], [], [3, 5]], [[], [3, 5], [3, 5]],
    [[3, 1], [3, 5], [3, 5]], [[2, 3, 4], [1, 1, 4], [2, 3, 4]], [[1], [4], [4]],
  ];
  it.each(shapes)("%j op %j", (sa, sb, out) => {
    const strides = (s: number[]): number[] => {
      const c = s.map((_, i) => s.slice(i + 1).reduce((p, q) => p * q, 1));
      const off = out.length - s.length;
      return out.map((n, i) => (i < off || s[i - off] !== n ? 0 : c[i - off]!));
    };
    const a = lcgArray(1 + sa.reduce((p, q) => p * q, 1), 5), b = lcgArray(1 + sb.reduce((p, q) => p * q, 1), 6);
    const n = out.reduce((p, q) => p * q, 1);
    for (const op of ["add", "sub", "mul", "div", "max"] as const) {
      const x = new Float32Array(n), y = new Float32Array(n);
      jsBackend.binary(op, x, a, 1, strides(sa), b, 1, strides(sb), out);
      native.binary(op, y, a, 1, strides(sa), b, 1, strides(sb), out);
      expect(Array.from(y), op).toEqual(Array.from(x));
    }
  });
});

/** Index of the first element where a and b differ (bitwise, NaN equal to NaN), −1 if none: cheaper than toEqual on 600K. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

describe("native column kernels match the js spec", () => {
  const addon = loadAddon(), defaultIsa = addon.isa();
  afterAll(() => { addon.setIsa(defaultIsa); });
  const isas = ["avx512", "avx2", "portable"].filter((i) => addon.setIsa(i));
  addon.setIsa(defaultIsa);
  it.each(isas.flatMap((isa) => [[1, 1], [3, 17], [70, 33], [600, 1000]].map(([r, c]) => [isa, r!, c!] as const)))("%s: rows %i cols %i", (isa, rows, cols) => {
    addon.setIsa(isa);
    const x = lcgArray(rows * cols, 11), sc = lcgArray(cols, 12), b = lcgArray(cols, 13), g = lcgArray(rows * cols, 14);
    for (const bias of [null, b]) {
      for (const offset of [0, -1]) {
        const a = new Float32Array(rows * cols), n = new Float32Array(rows * cols);
        jsBackend.columnScale(a, x, sc, offset, bias, rows, cols);
        native.columnScale(n, x, sc, offset, bias, rows, cols);
        expect(firstDifference(n, a)).toBe(-1);
      }
      const a = new Float32Array(cols), n = new Float32Array(cols);
      jsBackend.columnDot(a, g, x, bias, rows, cols);
      native.columnDot(n, g, x, bias, rows, cols);
      expect(maxRelDiff(n, a)).toBeLessThan(1e-6);
    }
    const inPlace = x.slice(), ref = new Float32Array(rows * cols);
    jsBackend.columnScale(ref, x, sc, 0, b, rows, cols);
    native.columnScale(inPlace, inPlace, sc, 0, b, rows, cols);
    expect(firstDifference(inPlace, ref)).toBe(-1);
  });
});

describe("native columnDot does not depend on the thread count", () => {
  const addon = loadAddon(), defaultThreads = addon.numThreads();
  afterAll(() => { addon.setNumThreads(defaultThreads); });
  it("1, 2 and 5 threads give the same bits (rows in several chunks, a ragged last one)", () => {
    const rows = 1000, cols = 300, g = lcgArray(rows * cols, 21), z = lcgArray(rows * cols, 22), bias = lcgArray(cols, 23);
    const ref = new Float32Array(cols);
    jsBackend.columnDot(ref, g, z, bias, rows, cols);
    const runs: Float32Array[] = [];
    for (const n of [1, 2, 5]) {
      addon.setNumThreads(n);
      const out = new Float32Array(cols);
      native.columnDot(out, g, z, bias, rows, cols);
      expect(maxRelDiff(out, ref), `${n} threads`).toBeLessThan(1e-6);
      runs.push(out);
    }
    expect(firstDifference(runs[1]!, runs[0]!)).toBe(-1);
    expect(firstDifference(runs[2]!, runs[0]!)).toBe(-1);
  });
});

describe("native doraNormTerms matches the js spec", () => {
  const addon = loadAddon(), defaultIsa = addon.isa(), defaultThreads = addon.numThreads();
  afterAll(() => { addon.setIsa(defaultIsa); addon.setNumThreads(defaultThreads); });
  const isas = ["avx512", "avx2", "portable"].filter((i) => addon.setIsa(i));
  addon.setIsa(defaultIsa);
  // rows around the 12-row register block, ranks around the 16 lanes, cols with a ragged tail; both weight layouts;
  // the last shape is big enough to split its rows over two tasks (35 each: a ragged register block in both)
  const shapes: Array<[number, number, number]> = [[1, 1, 1], [13, 17, 5], [25, 130, 16], [50, 64, 20], [7, 33, 33],
    [70, 1000, 32]];
  it.each(isas.flatMap((isa) => [1, 2].flatMap((threads) => shapes.map((sh) => [isa, threads, ...sh] as const))))(
    "%s, %i thread(s): rows %i cols %i r %i", (isa, threads, rows, cols, r) => {
      addon.setIsa(isa);
      addon.setNumThreads(threads);
      const off = 3, w = lcgArray(off + rows * cols, 21), a = lcgArray(r * cols, 22), b = lcgArray(rows * r, 23);
      const abs = (v: Float32Array): Float32Array => v.map(Math.abs);
      for (const [si, sp] of [[cols, 1], [1, rows]] as const) {
        for (const s of [2, -0.25]) {
          const want = new Float64Array(rows), got = new Float64Array(rows), bound = new Float64Array(rows);
          jsBackend.doraNormTerms(want, w, off, si, sp, a, b, s, rows, cols, r);
          native.doraNormTerms(got, w, off, si, sp, a, b, s, rows, cols, r);
          // the same sums over |w|, |a|, |b|, |s| bound every term: float32 dots are good to ~1e-6 of it
          jsBackend.doraNormTerms(bound, abs(w), off, si, sp, abs(a), abs(b), Math.abs(s), rows, cols, r);
          for (let i = 0; i < rows; i++) {
            if (!(Math.abs(got[i]! - want[i]!) <= 1e-5 * bound[i]!))
              throw new Error(`row ${i} (strides ${si}, ${sp}; s ${s}): native ${got[i]}, js ${want[i]}, bound ${bound[i]}`);
          }
        }
      }
    });
  it("checks its operands", () => {
    expect(() => native.doraNormTerms(new Float64Array(2), new Float32Array(5), 0, 3, 1, new Float32Array(3), new Float32Array(2), 1, 2, 3, 1))
      .toThrow(/w has 5 elements, needs 6/);
    expect(() => native.doraNormTerms(new Float64Array(1), new Float32Array(6), 0, 3, 1, new Float32Array(3), new Float32Array(2), 1, 2, 3, 1))
      .toThrow(/out must be a Float64Array of at least 2/);
  });
});

describe("native lowRankProducts matches the js spec", () => {
  const addon = loadAddon(), defaultIsa = addon.isa(), defaultThreads = addon.numThreads();
  afterAll(() => { addon.setIsa(defaultIsa); addon.setNumThreads(defaultThreads); });
  const isas = ["avx512", "avx2", "portable"].filter((i) => addon.setIsa(i));
  addon.setIsa(defaultIsa);
  // T around the 8-row blocks and the row chunks (at most 8 of ≥ 32 rows), n around 16, r up to 16
  const shapes: Array<[number, number, number]> = [[1, 1, 1], [3, 17, 5], [37, 45, 16], [130, 301, 16], [67, 40, 8], [301, 33, 16]];
  const abs = (v: Float32Array): Float32Array => v.map(Math.abs);
  interface Want { gu: boolean; v: boolean; scale: boolean; dot: "none" | "plain" | "bias" }
  /** Runs both backends; every output asked for within 1e-5 of the same sums over absolute values. */
  function compare(T: number, n: number, r: number, w: Want): Float32Array[] {
    const g = lcgArray(T * n, 31), u = lcgArray(T * r, 32), b = lcgArray(n * r, 33), z = lcgArray(T * n, 34);
    const sc = w.scale ? lcgArray(n, 35) : null, bias = w.dot === "bias" ? lcgArray(n, 36) : null;
    const run = (be: typeof jsBackend, gg = g, uu = u, bb = b, zz = z, ss = sc, bi = bias) => {
      const gu = w.gu ? new Float32Array(n * r).fill(NaN) : null, v = w.v ? new Float32Array(T * r).fill(NaN) : null;
      const dot = w.dot !== "none" ? new Float32Array(n).fill(NaN) : null;
      be.lowRankProducts(gu, v, gg, w.gu ? uu : null, w.v ? bb : null, ss, T, n, r, dot, dot ? zz : null, dot ? bi : null);
      return [gu ?? new Float32Array(0), v ?? new Float32Array(0), dot ?? new Float32Array(0)];
    };
    const got = run(native), want = run(jsBackend);
    // the bound: the same sums over |g|, |u|, |B|, |scale|, |z| + |bias|
    const zb = bias ? Float32Array.from(z, (x, o) => Math.abs(x) + Math.abs(bias[o % n]!)) : abs(z);
    const bound = run(jsBackend, abs(g), abs(u), abs(b), zb, sc && abs(sc), null);
    ["gu", "v", "dot"].forEach((name, q) => {
      for (let i = 0; i < want[q]!.length; i++) {
        if (!(Math.abs(got[q]![i]! - want[q]![i]!) <= 1e-5 * bound[q]![i]! + 1e-30))
          throw new Error(`T ${T} n ${n} r ${r} ${JSON.stringify(w)}: ${name}[${i}] native ${got[q]![i]}, js ${want[q]![i]}, bound ${bound[q]![i]}`);
      }
    });
    return got;
  }
  const wants: Want[] = [
    { gu: true, v: true, scale: false, dot: "none" },  // LoRA's backward: gᵀ·u and g·B
    { gu: true, v: true, scale: true, dot: "bias" },   // DoRA's: g·diag(c)·B and the column dot of g and z − bias
    { gu: true, v: true, scale: true, dot: "plain" },
    { gu: true, v: false, scale: false, dot: "none" }, // dA's x̃ᵀ·vs
    { gu: false, v: true, scale: false, dot: "none" }, // the forward's x̃·Aᵀ
    { gu: false, v: true, scale: true, dot: "plain" },
  ];
  it.each(isas.flatMap((isa) => [1, 2].flatMap((threads) => shapes.map((sh) => [isa, threads, ...sh] as const))))(
    "%s, %i thread(s): T %i n %i r %i", (isa, threads, T, n, r) => {
      addon.setIsa(isa);
      addon.setNumThreads(threads);
      for (const w of wants) compare(T, n, r, w);
    });
  it("1, 2 and 5 threads give the same bits (several row chunks, a ragged last one)", () => {
    const runs: Float32Array[][] = [];
    for (const n of [1, 2, 5]) {
      addon.setNumThreads(n);
      runs.push(compare(301, 130, 16, { gu: true, v: true, scale: true, dot: "bias" }));
    }
    for (const run of runs.slice(1)) run.forEach((a, q) => expect(firstDifference(a, runs[0]![q]!)).toBe(-1));
  });
  it("checks its operands", () => {
    const f = (n: number): Float32Array => new Float32Array(n);
    expect(() => native.lowRankProducts(f(34), f(34), f(4), f(34), f(34), null, 2, 2, 17, null, null, null)).toThrow(/r must be at most 16/);
    expect(() => native.lowRankProducts(f(6), f(6), f(5), f(6), f(6), null, 2, 3, 2, null, null, null)).toThrow(/g has 5 elements, needs 6/);
    expect(() => native.lowRankProducts(f(6), f(4), f(6), f(4), f(6), null, 2, 3, 2, f(3), null, null)).toThrow(/dot with z/);
    expect(() => native.lowRankProducts(f(6), f(4), f(6), f(4), f(6), null, 2, 3, 2, null, f(6), null)).toThrow(/dot with z/);
    expect(() => native.lowRankProducts(f(6), null, f(6), f(4), f(6), null, 2, 3, 2, null, null, null)).toThrow(/v with b/);
    expect(() => jsBackend.lowRankProducts(null, null, f(6), f(4), null, null, 2, 3, 2, null, null, null)).toThrow(/gu goes with u/);
  });
});
