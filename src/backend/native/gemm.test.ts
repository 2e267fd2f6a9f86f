/**
 * Native GEMM against a float64 reference: every form, odd and size-1 shapes, sizes off the register
 * tile and across cache blocks, strided views (ld > row length), offsets, batches with stride-0
 * broadcast, accumulate. Each ISA this CPU supports and 1, 2 or 5 threads. Bad arguments must throw.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { GemmForm } from "../backend.js";
import { loadAddon, nativeGemm } from "./addon.js";
import { loadNativeBackend } from "./index.js";
import { jsBackend } from "../js/index.js";

let nativeBackend: ReturnType<typeof loadNativeBackend> | undefined;
const getNative = (): ReturnType<typeof loadNativeBackend> => (nativeBackend ??= loadNativeBackend());

const addon = loadAddon();
const defaultIsa = addon.isa();
const defaultThreads = addon.numThreads();
afterAll(() => {
  addon.setIsa(defaultIsa);
  addon.setNumThreads(defaultThreads);
});

/** Deterministic uniform(-1, 1) generator (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  };
}

interface Case {
  form: GemmForm; m: number; n: number; k: number;
  padA?: number; padB?: number; padC?: number; // ld = row length + pad
  offA?: number; offB?: number; offC?: number;
  batch?: number; bcastA?: boolean; bcastB?: boolean; bcastC?: boolean;
  accumulate?: boolean;
}

function name(c: Case): string {
  return `${c.form} m=${c.m} n=${c.n} k=${c.k} batch=${c.batch ?? 1}` +
    `${c.padA || c.padB || c.padC ? " strided" : ""}${c.bcastA ? " bcastA" : ""}${c.bcastB ? " bcastB" : ""}` +
    `${c.bcastC ? " bcastC" : ""}${c.accumulate ? " acc" : ""}`;
}

interface Prepared { a: Float32Array; b: Float32Array; c0: Float32Array; ref: Float64Array; bound: Float64Array }
const prepared = new Map<string, Prepared>();

/** Storage layout of a case: leading dims, batch strides, offsets. */
function layout(c: Case) {
  const { form, m, n, k } = c;
  const aRows = form === "tn" ? k : m, aCols = form === "tn" ? m : k;
  const bRows = form === "nt" ? n : k, bCols = form === "nt" ? k : n;
  const lda = aCols + (c.padA ?? 0), ldb = bCols + (c.padB ?? 0), ldc = n + (c.padC ?? 0);
  const sizeA = Math.max(1, aRows * lda), sizeB = Math.max(1, bRows * ldb), sizeC = Math.max(1, m * ldc);
  return {
    lda, ldb, ldc, sizeA, sizeB, sizeC, batch: c.batch ?? 1, acc: c.accumulate ?? false,
    strideA: c.bcastA ? 0 : sizeA + 3, strideB: c.bcastB ? 0 : sizeB + 5, strideC: c.bcastC ? 0 : sizeC + 1,
    offA: c.offA ?? 0, offB: c.offB ?? 0, offC: c.offC ?? 0,
  };
}

/** Random inputs and the float64 result with a per-element error bound (computed once per case). */
function prepare(c: Case, seed: number): Prepared {
  const key = `${name(c)} ${seed}`;
  const hit = prepared.get(key);
  if (hit) return hit;
  const { form, m, n, k } = c;
  const L = layout(c);
  const r = rng(seed);
  const a = Float32Array.from({ length: L.offA + (L.batch - 1) * L.strideA + L.sizeA }, r);
  const b = Float32Array.from({ length: L.offB + (L.batch - 1) * L.strideB + L.sizeB }, r);
  const c0 = Float32Array.from({ length: L.offC + (L.batch - 1) * L.strideC + L.sizeC + 7 }, r);
  // Batch by batch in order (a broadcast C sees the earlier items' results).
  const ref = Float64Array.from(c0), bound = new Float64Array(c0.length);
  const eps = 2 ** -23;
  for (let t = 0; t < L.batch; t++) {
    const ao = L.offA + t * L.strideA, bo = L.offB + t * L.strideB;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let s = 0, sAbs = 0;
        for (let p = 0; p < k; p++) {
          const v = a[ao + (form === "tn" ? p * L.lda + i : i * L.lda + p)]! * b[bo + (form === "nt" ? j * L.ldb + p : p * L.ldb + j)]!;
          s += v;
          sAbs += Math.abs(v);
        }
        const at = L.offC + t * L.strideC + i * L.ldc + j;
        // Worst-case float32 summation bound (k + 2)·eps·Σ|a·b|, plus the rounding of the final add.
        bound[at] = (L.acc ? bound[at]! + eps * Math.abs(ref[at]!) : 0) + (k + 2) * eps * sAbs + 1e-30;
        ref[at] = (L.acc ? ref[at]! : 0) + s;
      }
  }
  const p = { a, b, c0, ref, bound };
  prepared.set(key, p);
  return p;
}

/** Runs one case through `naive` or the tuned path and checks every element of C (and that nothing else moved). */
function check(c: Case, seed: number, naive = false): void {
  const L = layout(c);
  const { a, b, c0, ref, bound } = prepare(c, seed);
  const out = c0.slice();
  nativeGemm(addon, c.form, c.m, c.n, c.k, a, L.offA, L.lda, L.strideA, b, L.offB, L.ldb, L.strideB,
    out, L.offC, L.ldc, L.strideC, L.batch, L.acc, naive);
  let worst = 0, worstAt = -1;
  for (let x = 0; x < out.length; x++) {
    const d = Math.abs(out[x]! - ref[x]!);
    if (!(d <= bound[x]!) && !(d / bound[x]! <= worst)) { worst = d / bound[x]!; worstAt = x; }
  }
  if (worstAt >= 0)
    throw new Error(`${name(c)}${naive ? " (naive)" : ""}: element ${worstAt} is ${out[worstAt]}, expected ${ref[worstAt]} ± ${bound[worstAt]}`);
}

const forms: GemmForm[] = ["nn", "nt", "tn"];
const shapes: Array<[number, number, number]> = [
  [1, 1, 1], [1, 7, 3], [5, 1, 9], [3, 4, 1], [4, 4, 4], [13, 31, 17], [14, 32, 16], [15, 33, 1],
  [29, 65, 70], [64, 64, 64], [100, 47, 129], [127, 257, 385], [29, 1100, 790], [2100, 40, 20],
];
const cases: Case[] = [];
for (const form of forms) {
  for (const [m, n, k] of shapes) cases.push({ form, m, n, k });
  cases.push({ form, m: 37, n: 45, k: 53, padA: 3, padB: 5, padC: 2, offA: 11, offB: 7, offC: 3 });
  cases.push({ form, m: 130, n: 70, k: 90, padA: 17, padB: 1, padC: 9, accumulate: true });
  cases.push({ form, m: 19, n: 23, k: 29, batch: 3, bcastA: true });
  cases.push({ form, m: 120, n: 140, k: 160, batch: 4, bcastB: true, accumulate: true });
  cases.push({ form, m: 90, n: 110, k: 100, batch: 3, bcastC: true, accumulate: true });
  cases.push({ form, m: 90, n: 110, k: 100, batch: 3, bcastC: true });
  cases.push({ form, m: 6, n: 5, k: 0, batch: 2 });
  cases.push({ form, m: 6, n: 5, k: 0, accumulate: true });
  cases.push({ form, m: 0, n: 5, k: 3 });
  // Small m (the GEMV path for nn / nt): every tail of the 8-row / 16-column blocks, strided views and offsets,
  // batches, accumulate, and sizes past the threading threshold (split by columns, by batch, broadcast C).
  for (const n of [5, 9, 12, 16, 17, 47, 113, 128, 129, 255]) cases.push({ form, m: 1, n, k: 37 });
  for (const m of [1, 2, 3, 4]) {
    cases.push({ form, m, n: 131, k: 77, padA: 3, padB: 5, padC: 2, offA: 1, offB: 2, offC: 3, accumulate: m % 2 === 0 });
    cases.push({ form, m, n: 301, k: 19, batch: 3, padB: 1, accumulate: true });
    cases.push({ form, m, n: 1037, k: 1013, padA: 1, padB: 3, padC: 1, accumulate: m === 3 });
    cases.push({ form, m, n: 517, k: 523, batch: 4, bcastA: true, padB: 2 });
    cases.push({ form, m, n: 515, k: 1021, batch: 2, bcastC: true, accumulate: true });
  }
}

const isas = (["avx512", "avx2", "portable"] as const).filter((isa) => addon.setIsa(isa));
addon.setIsa(defaultIsa);

describe("native gemm vs float64 reference", () => {
  it("reports a supported ISA and a thread count", () => {
    expect(["avx512", "avx2", "portable"]).toContain(defaultIsa);
    expect(addon.numThreads()).toBeGreaterThanOrEqual(1);
    expect(isas).toContain("portable");
  });

  // 5 threads oversubscribe a 2-core machine: workers often miss a job (descheduled or asleep) and the caller
  // must still see every task run exactly once (native/pool.cc claims tasks per job)
  for (const isa of isas)
    for (const threads of [1, 2, 5])
      it(`${isa}, ${threads} thread(s): ${cases.length} cases`, () => {
        expect(addon.setIsa(isa)).toBe(true);
        addon.setNumThreads(threads);
        cases.forEach((c, i) => check(c, 1000 + i));
      });

  it("gemm_naive matches too", () => {
    cases.forEach((c, i) => check(c, 1000 + i, true));
  });

  it("a wrong answer is caught by the check (the test can fail)", () => {
    const a = new Float32Array([1, 2, 3, 4]), b = new Float32Array([1, 0, 0, 1]), c = new Float32Array(4);
    nativeGemm(addon, "nn", 2, 2, 2, a, 0, 2, 0, b, 0, 2, 0, c, 0, 2, 0, 1, false);
    expect(Array.from(c)).toEqual([1, 2, 3, 4]);
    nativeGemm(addon, "nt", 2, 2, 2, a, 0, 2, 0, a, 0, 2, 0, c, 0, 2, 0, 1, true);
    expect(Array.from(c)).toEqual([1 + 5, 2 + 11, 3 + 11, 4 + 25]);
    nativeGemm(addon, "tn", 2, 2, 2, a, 0, 2, 0, a, 0, 2, 0, c, 0, 2, 0, 1, false);
    expect(Array.from(c)).toEqual([10, 14, 14, 20]);
  });
});

describe("native gemm argument checks (an Error, never a crash)", () => {
  const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(12);
  const bad: Array<[string, () => void, RegExp]> = [
    ["A too short", () => nativeGemm(addon, "nn", 4, 3, 4, a, 0, 4, 0, b, 0, 3, 0, c, 0, 3, 0, 1, false), /gemm\(nn.*A .*needs 16 elements, array has 12/],
    ["B offset past the end", () => nativeGemm(addon, "nn", 3, 3, 3, a, 0, 3, 0, b, 4, 3, 0, c, 0, 3, 0, 1, false), /B .*needs 13 elements/],
    ["nt B extent", () => nativeGemm(addon, "nt", 2, 5, 3, a, 0, 3, 0, b, 0, 3, 0, c, 0, 5, 0, 1, false), /gemm\(nt.*B \(5x3/],
    ["tn lda < m", () => nativeGemm(addon, "tn", 4, 2, 2, a, 0, 3, 0, b, 0, 2, 0, c, 0, 2, 0, 1, false), /lda=3 must be >= 4/],
    ["batch stride overflow", () => nativeGemm(addon, "nn", 2, 2, 2, a, 0, 2, 5, b, 0, 2, 0, c, 0, 2, 0, 3, false), /A \(2x2, ld=2, offset=0, batch stride=5\) needs 14 elements/],
    ["C too short", () => nativeGemm(addon, "nn", 3, 5, 1, a, 0, 1, 0, b, 0, 5, 0, c, 0, 5, 0, 1, false), /C \(3x5.*needs 15 elements/],
    ["negative offset", () => nativeGemm(addon, "nn", 2, 2, 2, a, -1, 2, 0, b, 0, 2, 0, c, 0, 2, 0, 1, false), /aOff must be a non-negative integer/],
    ["fractional size", () => nativeGemm(addon, "nn", 2.5, 2, 2, a, 0, 2, 0, b, 0, 2, 0, c, 0, 2, 0, 1, false), /m must be a non-negative integer/],
    ["bad form", () => nativeGemm(addon, "tt" as GemmForm, 2, 2, 2, a, 0, 2, 0, b, 0, 2, 0, c, 0, 2, 0, 1, false), /form must be/],
    ["not a Float32Array", () => nativeGemm(addon, "nn", 2, 2, 2, new Float64Array(4) as unknown as Float32Array, 0, 2, 0, b, 0, 2, 0, c, 0, 2, 0, 1, false), /A must be a Float32Array/],
  ];
  for (const [what, call, msg] of bad) it(what, () => expect(call).toThrow(msg));

  it("the addon itself rejects a non-float32 array instead of reading it", () => {
    expect(() => addon.gemm(0, 1, 1, 1, new Float64Array(1) as unknown as Float32Array, 0, 1, 0, b, 0, 1, 0, c, 0, 1, 0, 1, false)).toThrow(/typed array/);
  });
});

describe("native gemmScaled (op(B) scaled along k or n) matches the js spec", () => {
  // small (direct loops), m ≤ 4 (GEMV), and packed sizes across blocks and ragged slivers; ld padding and offsets
  // (the last two span several kc and nc blocks, so the scale is offset per block)
  const sizes: Array<[number, number, number]> = [[3, 5, 4], [1, 70, 33], [4, 33, 70], [37, 45, 53], [130, 301, 290], [300, 64, 700], [20, 530, 400]];
  const js = (form: GemmForm, m: number, n: number, k: number, a: Float32Array, lda: number, b: Float32Array, ldb: number,
    s: Float32Array, axis: "k" | "n", c: Float32Array, ldc: number, acc: boolean): void => {
    // the spec of gemmScaled, written here by its definition: op(B) scaled, then a plain product
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) {
        const av = form === "tn" ? a[2 + p * lda + i]! : a[2 + i * lda + p]!;
        const bv = (form === "nt" ? b[3 + j * ldb + p]! : b[3 + p * ldb + j]!) * (axis === "k" ? s[p]! : s[j]!);
        sum += av * bv;
      }
      c[1 + i * ldc + j] = (acc ? c[1 + i * ldc + j]! : 0) + sum;
    }
  };
  // every ISA: each has its own B packer, and the scale is applied as B is packed
  for (const isa of isas) for (const threads of [1, 2])
    for (const form of forms)
      for (const axis of ["k", "n"] as const)
        it(`${isa}, ${form} along ${axis}, ${threads} thread(s)`, () => {
          expect(addon.setIsa(isa)).toBe(true);
          addon.setNumThreads(threads);
          sizes.forEach(([m, n, k], idx) => {
            const r = rng(77 + idx);
            const lda = (form === "tn" ? m : k) + 2, ldb = (form === "nt" ? k : n) + 1, ldc = n + 3;
            const a = Float32Array.from({ length: 2 + lda * (form === "tn" ? k : m) }, r);
            const b = Float32Array.from({ length: 3 + ldb * (form === "nt" ? n : k) }, r);
            const s = Float32Array.from({ length: axis === "k" ? k : n }, () => 0.5 + r());
            for (const acc of [false, true]) {
              const c0 = Float32Array.from({ length: 1 + ldc * m + 2 }, r);
              const want = c0.slice(), got = c0.slice(), spec = c0.slice();
              js(form, m, n, k, a, lda, b, ldb, s, axis, want, ldc, acc);
              getNative().gemmScaled(form, m, n, k, a, 2, lda, b, 3, ldb, s, axis, got, 1, ldc, acc);
              jsBackend.gemmScaled(form, m, n, k, a, 2, lda, b, 3, ldb, s, axis, spec, 1, ldc, acc);
              for (let x = 0; x < got.length; x++) {
                const tol = 1e-5 * (k + 1) * 2;
                if (Math.abs(got[x]! - want[x]!) > tol || Math.abs(spec[x]! - want[x]!) > tol)
                  throw new Error(`${form} ${axis} m=${m} n=${n} k=${k} acc=${acc}: element ${x}: native ${got[x]}, spec ${spec[x]}, expected ${want[x]}`);
              }
            }
          });
        });
  it("rejects a scale of the wrong length or a bad axis", () => {
    const a = new Float32Array(12), b = new Float32Array(12), c = new Float32Array(9);
    expect(() => getNative().gemmScaled("nn", 3, 3, 4, a, 0, 4, b, 0, 3, new Float32Array(3), "k", c, 0, 3, false)).toThrow(/scale has 3 elements, needs 4/);
    expect(() => getNative().gemmScaled("nn", 3, 3, 4, a, 0, 4, b, 0, 3, new Float32Array(4), "m" as "k", c, 0, 3, false)).toThrow(/axis must be "k" or "n"/);
  });
});
