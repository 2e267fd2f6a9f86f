/**
 * Loads the Node-API addon (build/Release/dora_native.node, built from native/ by `npm ci`) and wraps
 * its GEMM with the range checks the C++ side leaves out: every operand's extent is checked against
 * its array before the call, so a bad call throws an Error naming the op instead of crashing.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { GemmForm } from "../backend.js";

/** The raw addon surface (native/addon.cc). Offsets, strides and sizes are in elements. */
export interface NativeAddon {
  gemm(form: number, m: number, n: number, k: number,
    a: Float32Array, aOff: number, lda: number, strideA: number,
    b: Float32Array, bOff: number, ldb: number, strideB: number,
    c: Float32Array, cOff: number, ldc: number, strideC: number,
    batch: number, accumulate: boolean): void;
  gemmNaive: NativeAddon["gemm"];
  /** Backend.gemmScaled; axis 0 = k, 1 = n. */
  gemmScaled(form: number, m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number,
    b: Float32Array, bOff: number, ldb: number, scale: Float32Array, axis: number,
    c: Float32Array, cOff: number, ldc: number, accumulate: boolean): void;
  /** NF4 GEMM (Backend.gemmNf4); form 0 nn, 1 nt; `naive` runs the in-tree reference loop. */
  gemmNf4(form: number, m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number,
    codes: Uint8Array, absmax: Float32Array, lut: Float32Array, blockSize: number,
    c: Float32Array, cOff: number, ldc: number, accumulate: boolean, naive: boolean): void;
  setNumThreads(n: number): void;
  numThreads(): number;
  isa(): "avx512" | "avx2" | "portable";
  setIsa(isa: string): boolean;
  /** op: 0 exp, 1 silu, 2 gelu (tanh form). */
  unaryForward(op: number, out: Float32Array, x: Float32Array, n: number): void;
  unaryBackward(op: number, dx: Float32Array, dy: Float32Array, x: Float32Array, y: Float32Array, n: number): void;
  softmaxForward(out: Float32Array, x: Float32Array, rows: number, cols: number, log: boolean): void;
  softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number, log: boolean): void;
  rmsNormForward(y: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null, rows: number, cols: number, eps: number): void;
  rmsNormBackward(dx: Float32Array, dw: Float32Array | null, dy: Float32Array, x: Float32Array, w: Float32Array | null,
    rstd: Float32Array, rows: number, cols: number): void;
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
  /** out = a[aOff..] op b[bOff..] over n contiguous elements; op: 0 add, 1 sub, 2 mul, 3 div. */
  binaryFlat(op: number, out: Float32Array, a: Float32Array, aOff: number, b: Float32Array, bOff: number, n: number): void;
  siluMulForward(out: Float32Array, g: Float32Array, u: Float32Array, n: number): void;
  siluMulBackward(dg: Float32Array, du: Float32Array, dy: Float32Array, g: Float32Array, u: Float32Array, n: number): void;
  /** Returns the number of counted rows; targets must be ignoreIndex or in [0, cols) (checked by the caller). */
  crossEntropyForward(loss: Float32Array, lse: Float32Array, logits: Float32Array, targets: Int32Array,
    rows: number, cols: number, ignoreIndex: number): number;
  /** The row scale is scaleRows[r] when scaleRows is non-null, else `scale`. */
  crossEntropyBackward(dlogits: Float32Array, logits: Float32Array, lse: Float32Array, targets: Int32Array,
    rows: number, cols: number, ignoreIndex: number, scaleRows: Float32Array | null, scale: number): void;
  columnScale(out: Float32Array, x: Float32Array, scale: Float32Array, offset: number, bias: Float32Array | null, rows: number, cols: number): void;
  columnDot(out: Float32Array, g: Float32Array, z: Float32Array, bias: Float32Array | null, rows: number, cols: number): void;
  lowRankProducts(gu: Float32Array | null, v: Float32Array | null, g: Float32Array, u: Float32Array | null, b: Float32Array | null,
    bScale: Float32Array | null, T: number, n: number, r: number, dot: Float32Array | null, z: Float32Array | null,
    bias: Float32Array | null): void;
  doraNormTerms(out: Float64Array, w: Float32Array, wOff: number, rowStride: number, colStride: number, a: Float32Array, b: Float32Array, s: number,
    rows: number, cols: number, r: number): void;
  /** Backend.sparseGemm; form 0 nn, 1 nt. */
  sparseGemm(form: number, c: Float32Array, alpha: number, scale: Float32Array | null, values: Float32Array, rowPtr: Int32Array,
    cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number, accumulate: boolean): void;
  /** Backend.sparseGemmDot; form 0 nn, 1 nt. */
  sparseGemmDot(form: number, out: Float32Array, g: Float32Array, scale: Float32Array | null, values: Float32Array, rowPtr: Int32Array,
    cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number): void;
  /** Backend.sampledGemm; form 0 nn, 1 nt. */
  sampledGemm(form: number, out: Float32Array, a: Float32Array, scale: Float32Array | null, rowPtr: Int32Array, cols: Int32Array,
    rows: number, n: number, k: number, w: Float32Array, wOff: number, accumulate: boolean, dot: Float32Array | null, values: Float32Array | null): void;
  /** Backend.dropoutDraw: returns the new count. */
  dropoutDraw(out: Int32Array, count: number, last: number, n: number, p: number, state: Uint32Array): number;
  /** Backend.sparseTransposedGemm. */
  sparseTransposedGemm(out: Float64Array, values: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number, k: number,
    v: Float32Array, n: number): void;
  /** Backend.gatherSparse (rowPtr/cols checked in the addon). */
  gatherSparse(values: Float32Array, x: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number, k: number): void;
  /** Backend.addSparse (rowPtr/cols checked in the addon). */
  addSparse(out: Float32Array, alpha: number, values: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number, k: number): void;
  /** Backend.positionsToCsr (positions checked in the addon before any is rewritten). */
  positionsToCsr(pos: Int32Array, rowLen: number, rows: number, rowPtr: Int32Array): void;
  /** strides: the HeadStrides of q, k, v, out, one after the other (12 numbers). */
  attentionForward(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
    b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number, strides: Float64Array): void;
  /** strides: the HeadStrides of q, k, v, out, dout (15 numbers); dq / dk / dv use those of q / k / v. */
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array, q: Float32Array, k: Float32Array,
    v: Float32Array, out: Float32Array, lse: Float32Array, b: number, h: number, hkv: number, sq: number, sk: number, d: number,
    scale: number, strides: Float64Array): void;
  /** strides: the HeadStrides of out, then x (6 numbers). */
  rope(out: Float32Array, x: Float32Array, cos: Float32Array, sin: Float32Array, b: number, h: number, s: number, d: number,
    inverse: boolean, strides: Float64Array): void;
}

/** The package root: the nearest folder upwards holding the package.json of dora-ts (src/ or dist/ alike). */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = join(dir, "package.json");
    if (existsSync(pj)) {
      try {
        if ((JSON.parse(readFileSync(pj, "utf8")) as { name?: string }).name === "dora-ts") return dir;
      } catch { /* unreadable package.json: keep walking */ }
    }
    const up = dirname(dir);
    if (up === dir) throw new Error(`dora-ts native backend: no package.json named dora-ts above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

let cached: NativeAddon | undefined;

/** Loads the addon once; throws an Error (with the loader's error as `cause`) if it is missing or broken. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  const root = packageRoot();
  const file = join(root, "build", "Release", "dora_native.node");
  try {
    cached = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (cause) {
    throw new Error(`dora-ts native backend: cannot load ${file} (build it with \`npm ci\` or \`npx node-gyp rebuild\`)`, { cause });
  }
  return cached;
}

const FORMS: Record<GemmForm, number> = { nn: 0, nt: 1, tn: 2 };

function isCount(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

/** Elements an operand spans: offset + (batch−1)·stride + (rows−1)·ld + cols (0 when empty). */
function extent(off: number, ld: number, stride: number, rows: number, cols: number, batch: number): number {
  return rows === 0 || cols === 0 ? 0 : off + (batch - 1) * stride + (rows - 1) * ld + cols;
}

/**
 * Throws unless every element GEMM touches lies inside its array. Storage extents per form:
 * A is m×k (nn, nt) or k×m (tn); B is k×n (nn, tn) or n×k (nt); C is m×n.
 * The fast path is a handful of comparisons (this runs on every call); messages are built only on failure.
 */
export function checkGemm(
  form: GemmForm, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number, strideA: number,
  b: Float32Array, bOff: number, ldb: number, strideB: number,
  c: Float32Array, cOff: number, ldc: number, strideC: number,
  batch: number,
): void {
  const tn = form === "tn", nt = form === "nt";
  const aRows = tn ? k : m, aCols = tn ? m : k, bRows = nt ? n : k, bCols = nt ? k : n;
  if ((form === "nn" || tn || nt) &&
    isCount(m) && isCount(n) && isCount(k) && isCount(batch) &&
    isCount(aOff) && isCount(lda) && isCount(strideA) && isCount(bOff) && isCount(ldb) && isCount(strideB) &&
    isCount(cOff) && isCount(ldc) && isCount(strideC) &&
    a instanceof Float32Array && b instanceof Float32Array && c instanceof Float32Array &&
    (m === 0 || n === 0 || batch === 0 ||
      (lda >= aCols && ldb >= bCols && ldc >= n &&
        extent(aOff, lda, strideA, aRows, aCols, batch) <= a.length &&
        extent(bOff, ldb, strideB, bRows, bCols, batch) <= b.length &&
        extent(cOff, ldc, strideC, m, n, batch) <= c.length))) return;
  gemmArgError(form, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch);
}

/** Slow path of checkGemm: finds the first bad argument and throws an Error naming it. */
function gemmArgError(
  form: GemmForm, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number, strideA: number,
  b: Float32Array, bOff: number, ldb: number, strideB: number,
  c: Float32Array, cOff: number, ldc: number, strideC: number,
  batch: number,
): never {
  const op = `gemm(${String(form)}, m=${m}, n=${n}, k=${k}, batch=${batch})`;
  if (FORMS[form] === undefined) throw new Error(`${op}: form must be "nn", "nt" or "tn", got ${String(form)}`);
  const ints = { m, n, k, aOff, lda, strideA, bOff, ldb, strideB, cOff, ldc, strideC, batch };
  for (const [name, v] of Object.entries(ints))
    if (!isCount(v)) throw new Error(`${op}: ${name} must be a non-negative integer, got ${v}`);
  const operand = (name: string, arr: Float32Array, off: number, ld: number, stride: number, rows: number, cols: number): void => {
    if (!(arr instanceof Float32Array)) throw new Error(`${op}: ${name} must be a Float32Array, got ${Object.prototype.toString.call(arr)}`);
    if (m === 0 || n === 0 || batch === 0 || rows === 0 || cols === 0) return;
    if (ld < cols) throw new Error(`${op}: ld${name.toLowerCase()}=${ld} must be >= ${cols} (${name} is ${rows}x${cols} in storage)`);
    const end = extent(off, ld, stride, rows, cols, batch);
    if (end > arr.length)
      throw new Error(`${op}: ${name} (${rows}x${cols}, ld=${ld}, offset=${off}, batch stride=${stride}) needs ${end} elements, array has ${arr.length}`);
  };
  operand("A", a, aOff, lda, strideA, form === "tn" ? k : m, form === "tn" ? m : k);
  operand("B", b, bOff, ldb, strideB, form === "nt" ? n : k, form === "nt" ? k : n);
  operand("C", c, cOff, ldc, strideC, m, n);
  throw new Error(`${op}: invalid arguments`);
}

/** Backend.gemm on the addon, checked. `naive` picks the in-tree reference loop (tests only). */
export function nativeGemm(
  addon: NativeAddon,
  form: GemmForm, m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number, strideA: number,
  b: Float32Array, bOff: number, ldb: number, strideB: number,
  c: Float32Array, cOff: number, ldc: number, strideC: number,
  batch: number, accumulate: boolean, naive = false,
): void {
  checkGemm(form, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch);
  const f = naive ? addon.gemmNaive : addon.gemm;
  f(form === "nn" ? 0 : form === "nt" ? 1 : 2, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch, accumulate === true);
}
