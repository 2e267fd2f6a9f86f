/**
 * The native backend: the Node-API addon (native/, loaded by ./addon.ts) for the kernels it implements
 * (gemm; exp/silu/gelu; siluMul; same-shape add/sub/mul/div; softmax; cross-entropy; rmsNorm; adamwStep; attention;
 * rope), the js backend (the spec) for the rest. Every native call is preceded by a size check against the arrays,
 * so a bad call throws an Error naming the kernel instead of reading out of bounds. Threading is the addon's pool
 * (DORA_NUM_THREADS, setNumThreads).
 */
import { LOW_RANK_MAX_RANK, type Backend, type BinaryOp, type HeadStrides, type UnaryOp } from "../backend.js";
import { jsBackend } from "../js/index.js";
import { checkGemm, loadAddon, nativeGemm } from "./addon.js";
import { binaryFast, isFlat } from "./fastpath.js";

const UNARY: Partial<Record<UnaryOp, number>> = { exp: 0, silu: 1, gelu: 2 };
const BINARY: Partial<Record<BinaryOp, number>> = { add: 0, sub: 1, mul: 2, div: 3 };

function isCount(x: number): boolean {
  return Number.isSafeInteger(x) && x >= 0;
}

/** Throws unless each array holds at least `need` float32 elements (null allowed where `nullable`). */
function checkArrays(op: string, sizes: string, need: number, arrays: Record<string, Float32Array | null>, nullable: string[] = []): void {
  for (const [name, arr] of Object.entries(arrays)) {
    if (arr === null && nullable.includes(name)) continue;
    if (!(arr instanceof Float32Array)) throw new Error(`native ${op}(${sizes}): ${name} must be a Float32Array`);
    if (arr.length < need) throw new Error(`native ${op}(${sizes}): ${name} has ${arr.length} elements, needs ${need}`);
  }
}

function checkCounts(op: string, counts: Record<string, number>): string {
  const sizes = Object.entries(counts).map(([k, v]) => `${k}=${v}`).join(", ");
  for (const [k, v] of Object.entries(counts))
    if (!isCount(v)) throw new Error(`native ${op}(${sizes}): ${k} must be a non-negative integer`);
  return sizes;
}

/** Throws unless targets holds `rows` ints, each ignoreIndex or a class in [0, cols) (the kernel indexes logits by them). */
function checkTargets(op: string, sizes: string, targets: Int32Array, rows: number, cols: number, ignoreIndex: number): void {
  if (!(targets instanceof Int32Array)) throw new Error(`native ${op}(${sizes}): targets must be an Int32Array`);
  if (targets.length < rows) throw new Error(`native ${op}(${sizes}): targets has ${targets.length} elements, needs ${rows}`);
  if (!Number.isSafeInteger(ignoreIndex)) throw new Error(`native ${op}(${sizes}): ignoreIndex must be an integer`);
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    if (t !== ignoreIndex && (t < 0 || t >= cols)) throw new Error(`native ${op}(${sizes}): target ${t} at row ${r} out of range [0, ${cols})`);
  }
}

/** Elements a [b, h, s, d] row set spans (0 when empty). */
function headsExtent(st: HeadStrides, b: number, h: number, s: number, d: number): number {
  return b === 0 || h === 0 || s === 0 || d === 0 ? 0 : (b - 1) * st[0] + (h - 1) * st[1] + (s - 1) * st[2] + d;
}

/**
 * True when the [d] rows of a [b, h, s, d] row set never overlap, so threads writing rows never race: taken
 * innermost first (by stride), each dim's stride must clear everything the dims inside it span.
 */
function headsDisjoint(st: HeadStrides, b: number, h: number, s: number, d: number): boolean {
  const dims = ([[st[0], b], [st[1], h], [st[2], s]] as const).filter(([, n]) => n > 1).slice().sort((x, y) => x[0] - y[0]);
  let span = d;
  for (const [stride, n] of dims) {
    if (stride < span) return false;
    span += (n - 1) * stride;
  }
  return true;
}

/** Throws unless `arr` holds the [b, h, s, d] rows `st` places (and, for an output, they do not overlap). */
function checkHeads(op: string, sizes: string, name: string, arr: Float32Array, st: HeadStrides,
  b: number, h: number, s: number, d: number, written: boolean): void {
  if (!Array.isArray(st) || st.length !== 3 || !st.every(isCount)) {
    throw new Error(`native ${op}(${sizes}): ${name} strides must be 3 non-negative integers, got ${String(st)}`);
  }
  checkArrays(op, sizes, headsExtent(st, b, h, s, d), { [name]: arr });
  if (written && !headsDisjoint(st, b, h, s, d)) throw new Error(`native ${op}(${sizes}): ${name} strides [${st.join(", ")}] make rows overlap`);
}

/** Counts of an attention call, checked: H a multiple of Hkv ≥ 1, Sq ≤ Sk. Returns the sizes string. */
function checkAttentionSizes(op: string, b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number): string {
  const sizes = checkCounts(op, { b, h, hkv, sq, sk, d });
  if (hkv === 0 || h % hkv !== 0) throw new Error(`native ${op}(${sizes}): h must be a multiple of hkv ≥ 1`);
  if (sq > sk) throw new Error(`native ${op}(${sizes}): sq must be ≤ sk`);
  if (typeof scale !== "number" || !Number.isFinite(scale)) throw new Error(`native ${op}(${sizes}): scale must be a finite number`);
  return sizes;
}

/** Throws unless every element gemmNf4 touches lies inside its array (A m×k, W n·k codes and scales, C m×n). */
export function checkGemmNf4(form: string, m: number, n: number, k: number, a: Float32Array, aOff: number, lda: number,
  codes: Uint8Array, absmax: Float32Array, lut: Float32Array, blockSize: number, c: Float32Array, cOff: number, ldc: number): void {
  const sizes = checkCounts(`gemmNf4[${form}]`, { m, n, k, aOff, lda, cOff, ldc, blockSize });
  const op = `native gemmNf4[${form}](${sizes})`;
  if (form !== "nn" && form !== "nt") throw new Error(`${op}: form must be "nn" or "nt"`);
  if (blockSize < 1) throw new Error(`${op}: blockSize must be ≥ 1`);
  if (!(codes instanceof Uint8Array)) throw new Error(`${op}: codes must be a Uint8Array`);
  checkArrays(`gemmNf4[${form}]`, sizes, 16, { lut });
  if (m === 0 || n === 0) return;
  checkArrays(`gemmNf4[${form}]`, sizes, (m - 1) * ldc + n + cOff, { c });
  if (ldc < n) throw new Error(`${op}: ldc must be ≥ n`);
  if (k === 0) return;
  if (lda < k) throw new Error(`${op}: lda must be ≥ k`);
  checkArrays(`gemmNf4[${form}]`, sizes, (m - 1) * lda + k + aOff, { a });
  checkArrays(`gemmNf4[${form}]`, sizes, Math.ceil((n * k) / blockSize), { absmax });
  if (codes.length < Math.ceil((n * k) / 2)) throw new Error(`${op}: codes has ${codes.length} bytes, needs ${Math.ceil((n * k) / 2)}`);
}

/**
 * The CSR pattern must be one the sparse kernels may walk: rowPtr (rows + 1 entries) non-decreasing from ≥ 0 to
 * ≤ cols.length, each row's columns strictly ascending inside [0, k). The types and rowPtr's length are checked here,
 * the rest by the addon before its kernel runs (native/addon.cc check_pattern: it reads every entry, ~5× faster in C++),
 * so a bad pattern throws naming the kernel either way.
 */
export function checkCsr(op: string, sizes: string, rowPtr: Int32Array, cols: Int32Array, rows: number, k: number): void {
  if (!(rowPtr instanceof Int32Array) || !(cols instanceof Int32Array)) throw new Error(`native ${op}(${sizes}): rowPtr and cols must be Int32Arrays`);
  if (rowPtr.length < rows + 1) throw new Error(`native ${op}(${sizes}): rowPtr has ${rowPtr.length} entries, needs ${rows + 1}`);
  if (rowPtr[0]! < 0) throw new Error(`native ${op}(${sizes}): rowPtr[0] is negative`);
  // each row inside cols, its columns strictly ascending inside [0, k): checked by the addon before the kernel runs
  // (native/addon.cc check_pattern), as it reads every entry
}

/** How many values a CSR pattern's entries index (values is indexed like cols): up to rowPtr[rows], capped at cols'
 * length so that a rowPtr past cols is reported by the pattern check (native/addon.cc), which names rowPtr. */
function csrEntries(rowPtr: Int32Array, cols: Int32Array, rows: number): number {
  return rows > 0 ? Math.min(rowPtr[rows]!, cols.length) : 0;
}

/** Loads the addon and returns the native Backend; throws (with `cause`) when the addon cannot load. */
export function loadNativeBackend(): Backend {
  const addon = loadAddon();
  const be: Backend = {
    ...jsBackend,
    name: "native",
    gemm(form, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch, accumulate) {
      nativeGemm(addon, form, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch, accumulate);
    },
    gemmScaled(form, m, n, k, a, aOff, lda, b, bOff, ldb, scale, axis, c, cOff, ldc, accumulate) {
      checkGemm(form, m, n, k, a, aOff, lda, 0, b, bOff, ldb, 0, c, cOff, ldc, 0, 1);
      const need = axis === "k" ? k : axis === "n" ? n : -1;
      if (need < 0) throw new Error(`native gemmScaled(${form}, m=${m}, n=${n}, k=${k}): axis must be "k" or "n", got ${String(axis)}`);
      checkArrays("gemmScaled", `m=${m}, n=${n}, k=${k}, axis=${axis}`, need, { scale });
      addon.gemmScaled(form === "nn" ? 0 : form === "nt" ? 1 : 2, m, n, k, a, aOff, lda, b, bOff, ldb, scale, axis === "k" ? 0 : 1,
        c, cOff, ldc, accumulate === true);
    },
    gemmNf4(form, m, n, k, a, aOff, lda, codes, absmax, lut, blockSize, c, cOff, ldc, accumulate) {
      checkGemmNf4(form, m, n, k, a, aOff, lda, codes, absmax, lut, blockSize, c, cOff, ldc);
      addon.gemmNf4(form === "nt" ? 1 : 0, m, n, k, a, aOff, lda, codes, absmax, lut, blockSize, c, cOff, ldc, accumulate === true, false);
    },
    unaryForward(op, out, x, n) {
      const code = UNARY[op];
      if (code === undefined) return jsBackend.unaryForward(op, out, x, n);
      const sizes = checkCounts(`unaryForward[${op}]`, { n });
      checkArrays(`unaryForward[${op}]`, sizes, n, { out, x });
      addon.unaryForward(code, out, x, n);
    },
    unaryBackward(op, dx, dy, x, y, n) {
      const code = UNARY[op];
      if (code === undefined) return jsBackend.unaryBackward(op, dx, dy, x, y, n);
      const sizes = checkCounts(`unaryBackward[${op}]`, { n });
      checkArrays(`unaryBackward[${op}]`, sizes, n, { dx, dy, x, y });
      addon.unaryBackward(code, dx, dy, x, y, n);
    },
    siluMulForward(out, g, u, n) {
      const sizes = checkCounts("siluMulForward", { n });
      checkArrays("siluMulForward", sizes, n, { out, g, u });
      addon.siluMulForward(out, g, u, n);
    },
    siluMulBackward(dg, du, dy, g, u, n) {
      const sizes = checkCounts("siluMulBackward", { n });
      checkArrays("siluMulBackward", sizes, n, { dg, du, dy, g, u });
      addon.siluMulBackward(dg, du, dy, g, u, n);
    },
    softmaxForward(out, x, rows, cols, log) {
      const sizes = checkCounts("softmaxForward", { rows, cols });
      checkArrays("softmaxForward", sizes, rows * cols, { out, x });
      addon.softmaxForward(out, x, rows, cols, log === true);
    },
    softmaxBackward(dx, dy, y, rows, cols, log) {
      const sizes = checkCounts("softmaxBackward", { rows, cols });
      checkArrays("softmaxBackward", sizes, rows * cols, { dx, dy, y });
      addon.softmaxBackward(dx, dy, y, rows, cols, log === true);
    },
    rmsNormForward(y, rstd, x, w, rows, cols, eps) {
      const sizes = checkCounts("rmsNormForward", { rows, cols });
      checkArrays("rmsNormForward", sizes, rows * cols, { y, x });
      checkArrays("rmsNormForward", sizes, rows, { rstd });
      checkArrays("rmsNormForward", sizes, cols, { w }, ["w"]);
      addon.rmsNormForward(y, rstd, x, w, rows, cols, eps);
    },
    rmsNormBackward(dx, dw, dy, x, w, rstd, rows, cols) {
      const sizes = checkCounts("rmsNormBackward", { rows, cols });
      checkArrays("rmsNormBackward", sizes, rows * cols, { dx, dy, x });
      checkArrays("rmsNormBackward", sizes, rows, { rstd });
      checkArrays("rmsNormBackward", sizes, cols, { dw, w }, ["dw", "w"]);
      addon.rmsNormBackward(dx, dw, dy, x, w, rstd, rows, cols);
    },
    adamwStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step) {
      const sizes = checkCounts("adamwStep", { n });
      checkArrays("adamwStep", sizes, n, { p, g, m, v });
      addon.adamwStep(p, g, m, v, n, lr, beta1, beta2, eps, weightDecay, step);
    },
    columnScale(out, x, scale, offset, bias, rows, cols) {
      const sizes = checkCounts("columnScale", { rows, cols });
      checkArrays("columnScale", sizes, rows * cols, { out, x });
      checkArrays("columnScale", sizes, cols, { scale, bias }, ["bias"]);
      addon.columnScale(out, x, scale, offset, bias, rows, cols);
    },
    columnDot(out, g, z, bias, rows, cols) {
      const sizes = checkCounts("columnDot", { rows, cols });
      checkArrays("columnDot", sizes, rows * cols, { g, z });
      checkArrays("columnDot", sizes, cols, { out, bias }, ["bias"]);
      addon.columnDot(out, g, z, bias, rows, cols);
    },
    lowRankProducts(gu, v, g, u, b, bScale, T, n, r, dot, z, bias) {
      const sizes = checkCounts("lowRankProducts", { T, n, r });
      if (r > LOW_RANK_MAX_RANK) throw new Error(`native lowRankProducts(${sizes}): r must be at most ${LOW_RANK_MAX_RANK}`);
      if (!gu !== !u || !v !== !b || !dot !== !z || (bias && !dot)) {
        throw new Error(`native lowRankProducts(${sizes}): gu goes with u, v with b, dot with z, and bias only with dot`);
      }
      checkArrays("lowRankProducts", sizes, T * n, { g, z }, ["z"]);
      checkArrays("lowRankProducts", sizes, T * r, { u, v }, ["u", "v"]);
      checkArrays("lowRankProducts", sizes, n * r, { b, gu }, ["b", "gu"]);
      checkArrays("lowRankProducts", sizes, n, { bScale, dot, bias }, ["bScale", "dot", "bias"]);
      addon.lowRankProducts(gu, v, g, u, b, bScale, T, n, r, dot, z, bias);
    },
    doraNormTerms(out, w, wOff, rowStride, colStride, a, b, s, rows, cols, r) {
      const sizes = checkCounts("doraNormTerms", { rows, cols, r, wOff, rowStride, colStride });
      const last = rows > 0 && cols > 0 ? wOff + (rows - 1) * rowStride + (cols - 1) * colStride + 1 : 0;
      checkArrays("doraNormTerms", sizes, last, { w });
      checkArrays("doraNormTerms", sizes, r * cols, { a });
      checkArrays("doraNormTerms", sizes, rows * r, { b });
      if (!(out instanceof Float64Array) || out.length < rows)
        throw new Error(`native doraNormTerms(${sizes}): out must be a Float64Array of at least ${rows} elements`);
      if (!Number.isFinite(s)) throw new Error(`native doraNormTerms(${sizes}): s must be a finite number`);
      addon.doraNormTerms(out, w, wOff, rowStride, colStride, a, b, s, rows, cols, r);
    },
    sparseGemm(form, c, alpha, scale, values, rowPtr, cols, rows, n, k, w, wOff, accumulate) {
      const sizes = checkCounts(`sparseGemm[${form}]`, { rows, n, k, wOff });
      if (form !== "nn" && form !== "nt") throw new Error(`native sparseGemm(${sizes}): form must be "nn" or "nt"`);
      checkCsr(`sparseGemm[${form}]`, sizes, rowPtr, cols, rows, k);
      checkArrays(`sparseGemm[${form}]`, sizes, rows * n, { c });
      checkArrays(`sparseGemm[${form}]`, sizes, csrEntries(rowPtr, cols, rows), { values });
      checkArrays(`sparseGemm[${form}]`, sizes, n, { scale }, ["scale"]);
      checkArrays(`sparseGemm[${form}]`, sizes, wOff + n * k, { w });
      addon.sparseGemm(form === "nt" ? 1 : 0, c, alpha, scale, values, rowPtr, cols, rows, n, k, w, wOff, accumulate === true);
    },
    sparseGemmDot(form, out, g, scale, values, rowPtr, cols, rows, n, k, w, wOff) {
      const sizes = checkCounts(`sparseGemmDot[${form}]`, { rows, n, k, wOff });
      if (form !== "nn" && form !== "nt") throw new Error(`native sparseGemmDot(${sizes}): form must be "nn" or "nt"`);
      checkCsr(`sparseGemmDot[${form}]`, sizes, rowPtr, cols, rows, k);
      checkArrays(`sparseGemmDot[${form}]`, sizes, n, { out });
      checkArrays(`sparseGemmDot[${form}]`, sizes, rows * n, { g });
      checkArrays(`sparseGemmDot[${form}]`, sizes, csrEntries(rowPtr, cols, rows), { values });
      checkArrays(`sparseGemmDot[${form}]`, sizes, n, { scale }, ["scale"]);
      checkArrays(`sparseGemmDot[${form}]`, sizes, wOff + n * k, { w });
      addon.sparseGemmDot(form === "nt" ? 1 : 0, out, g, scale, values, rowPtr, cols, rows, n, k, w, wOff);
    },
    dropoutDraw(out, count, last, n, p, state) {
      const sizes = checkCounts("dropoutDraw", { count, n });
      if (!(out instanceof Int32Array) || count > out.length) throw new Error(`native dropoutDraw(${sizes}): out must be an Int32Array of at least count elements`);
      if (!Number.isSafeInteger(last) || last < -1 || last >= n || n > 0x7fffffff) throw new Error(`native dropoutDraw(${sizes}): last must be an integer in [-1, n), got ${last}`);
      if (!(p > 0 && p < 1)) throw new Error(`native dropoutDraw(${sizes}): p must be in (0, 1), got ${p}`);
      if (!(state instanceof Uint32Array) || state.length !== 4) throw new Error(`native dropoutDraw(${sizes}): state must be a Uint32Array of 4 words`);
      return addon.dropoutDraw(out, count, last, n, p, state);
    },
    sparseTransposedGemm(out, values, rowPtr, cols, rows, k, v, n) {
      const sizes = checkCounts("sparseTransposedGemm", { rows, k, n });
      checkCsr("sparseTransposedGemm", sizes, rowPtr, cols, rows, k);
      checkArrays("sparseTransposedGemm", sizes, csrEntries(rowPtr, cols, rows), { values });
      checkArrays("sparseTransposedGemm", sizes, rows * n, { v });
      if (!(out instanceof Float64Array) || out.length < k * n)
        throw new Error(`native sparseTransposedGemm(${sizes}): out must be a Float64Array of at least ${k * n} elements`);
      addon.sparseTransposedGemm(out, values, rowPtr, cols, rows, k, v, n);
    },
    addSparse(out, alpha, values, rowPtr, cols, rows, k) {
      const sizes = checkCounts("addSparse", { rows, k });
      checkCsr("addSparse", sizes, rowPtr, cols, rows, k);
      checkArrays("addSparse", sizes, rows * k, { out });
      checkArrays("addSparse", sizes, rows > 0 ? rowPtr[rows]! : 0, { values });
      if (!Number.isFinite(alpha)) throw new Error(`native addSparse(${sizes}): alpha must be a finite number, got ${alpha}`);
      addon.addSparse(out, alpha, values, rowPtr, cols, rows, k);
    },
    gatherSparse(values, x, rowPtr, cols, rows, k) {
      const sizes = checkCounts("gatherSparse", { rows, k });
      checkCsr("gatherSparse", sizes, rowPtr, cols, rows, k);
      checkArrays("gatherSparse", sizes, rows * k, { x });
      checkArrays("gatherSparse", sizes, csrEntries(rowPtr, cols, rows), { values });
      addon.gatherSparse(values, x, rowPtr, cols, rows, k);
    },
    positionsToCsr(pos, rowLen, rows, rowPtr) {
      const sizes = checkCounts("positionsToCsr", { rowLen, rows });
      if (!(pos instanceof Int32Array) || !(rowPtr instanceof Int32Array)) throw new Error(`native positionsToCsr(${sizes}): pos and rowPtr must be Int32Arrays`);
      if (rowPtr.length < rows + 1) throw new Error(`native positionsToCsr(${sizes}): rowPtr has ${rowPtr.length} entries, needs ${rows + 1}`);
      if (rows * rowLen > 0x7fffffff) throw new Error(`native positionsToCsr(${sizes}): rows·rowLen must be below 2^31`);
      addon.positionsToCsr(pos, rowLen, rows, rowPtr);
    },
    sampledGemm(form, out, a, scale, rowPtr, cols, rows, n, k, w, wOff, accumulate, dot = null, values = null) {
      const sizes = checkCounts(`sampledGemm[${form}]`, { rows, n, k, wOff });
      if (form !== "nn" && form !== "nt") throw new Error(`native sampledGemm(${sizes}): form must be "nn" or "nt"`);
      checkCsr(`sampledGemm[${form}]`, sizes, rowPtr, cols, rows, k);
      checkArrays(`sampledGemm[${form}]`, sizes, rows > 0 ? rowPtr[rows]! : 0, { out });
      checkArrays(`sampledGemm[${form}]`, sizes, rows * n, { a });
      checkArrays(`sampledGemm[${form}]`, sizes, n, { scale }, ["scale"]);
      checkArrays(`sampledGemm[${form}]`, sizes, wOff + n * k, { w });
      if (dot !== null) {
        if (values === null) throw new Error(`native sampledGemm(${sizes}): dot needs the values`);
        checkArrays(`sampledGemm[${form}]`, sizes, n, { dot });
        checkArrays(`sampledGemm[${form}]`, sizes, csrEntries(rowPtr, cols, rows), { values });
      }
      addon.sampledGemm(form === "nt" ? 1 : 0, out, a, scale, rowPtr, cols, rows, n, k, w, wOff, accumulate === true, dot, dot ? values : null);
    },
    binary(op, out, a, aOff, aStrides, b, bOff, bStrides, shape) {
      const code = BINARY[op];
      if (code !== undefined && isFlat(aStrides, shape) && isFlat(bStrides, shape)) {
        let n = 1;
        for (const s of shape) n *= s;
        const sizes = checkCounts(`binary[${op}]`, { n, aOff, bOff });
        checkArrays(`binary[${op}]`, sizes, n, { out });
        checkArrays(`binary[${op}]`, sizes, aOff + n, { a });
        checkArrays(`binary[${op}]`, sizes, bOff + n, { b });
        addon.binaryFlat(code, out, a, aOff, b, bOff, n);
        return;
      }
      if (!binaryFast(op, out, a, aOff, aStrides, b, bOff, bStrides, shape)) jsBackend.binary(op, out, a, aOff, aStrides, b, bOff, bStrides, shape);
    },
    crossEntropyForward(loss, lse, logits, targets, rows, cols, ignoreIndex) {
      const sizes = checkCounts("crossEntropyForward", { rows, cols });
      checkArrays("crossEntropyForward", sizes, rows * cols, { logits });
      checkArrays("crossEntropyForward", sizes, rows, { loss, lse });
      checkTargets("crossEntropyForward", sizes, targets, rows, cols, ignoreIndex);
      return addon.crossEntropyForward(loss, lse, logits, targets, rows, cols, ignoreIndex);
    },
    crossEntropyBackward(dlogits, logits, lse, targets, rows, cols, ignoreIndex, scale) {
      const sizes = checkCounts("crossEntropyBackward", { rows, cols });
      checkArrays("crossEntropyBackward", sizes, rows * cols, { dlogits, logits });
      checkArrays("crossEntropyBackward", sizes, rows, { lse });
      checkTargets("crossEntropyBackward", sizes, targets, rows, cols, ignoreIndex);
      if (typeof scale === "number") addon.crossEntropyBackward(dlogits, logits, lse, targets, rows, cols, ignoreIndex, null, scale);
      else {
        checkArrays("crossEntropyBackward", sizes, rows, { scale });
        addon.crossEntropyBackward(dlogits, logits, lse, targets, rows, cols, ignoreIndex, scale, 0);
      }
    },
    attentionForward(out, lse, q, k, v, b, h, hkv, sq, sk, d, scale, layout) {
      const op = "attentionForward", sizes = checkAttentionSizes(op, b, h, hkv, sq, sk, d, scale);
      checkHeads(op, sizes, "q", q, layout.q, b, h, sq, d, false);
      checkHeads(op, sizes, "k", k, layout.k, b, hkv, sk, d, false);
      checkHeads(op, sizes, "v", v, layout.v, b, hkv, sk, d, false);
      checkHeads(op, sizes, "out", out, layout.out, b, h, sq, d, true);
      checkArrays(op, sizes, b * h * sq, { lse });
      addon.attentionForward(out, lse, q, k, v, b, h, hkv, sq, sk, d, scale,
        Float64Array.of(...layout.q, ...layout.k, ...layout.v, ...layout.out));
    },
    attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, b, h, hkv, sq, sk, d, scale, layout, doutStrides) {
      const op = "attentionBackward", sizes = checkAttentionSizes(op, b, h, hkv, sq, sk, d, scale);
      checkHeads(op, sizes, "q", q, layout.q, b, h, sq, d, false);
      checkHeads(op, sizes, "k", k, layout.k, b, hkv, sk, d, false);
      checkHeads(op, sizes, "v", v, layout.v, b, hkv, sk, d, false);
      checkHeads(op, sizes, "out", out, layout.out, b, h, sq, d, false);
      checkHeads(op, sizes, "dout", dout, doutStrides, b, h, sq, d, false);
      checkHeads(op, sizes, "dq", dq, layout.q, b, h, sq, d, true);
      checkHeads(op, sizes, "dk", dk, layout.k, b, hkv, sk, d, true);
      checkHeads(op, sizes, "dv", dv, layout.v, b, hkv, sk, d, true);
      checkArrays(op, sizes, b * h * sq, { lse });
      addon.attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, b, h, hkv, sq, sk, d, scale,
        Float64Array.of(...layout.q, ...layout.k, ...layout.v, ...layout.out, ...doutStrides));
    },
    rope(out, x, cos, sin, b, h, seq, headDim, inverse, outStrides, xStrides) {
      const sizes = checkCounts("rope", { b, h, seq, headDim });
      checkHeads("rope", sizes, "x", x, xStrides, b, h, seq, headDim, false);
      checkHeads("rope", sizes, "out", out, outStrides, b, h, seq, headDim, true);
      checkArrays("rope", sizes, seq * headDim, { cos, sin });
      addon.rope(out, x, cos, sin, b, h, seq, headDim, inverse === true, Float64Array.of(...outStrides, ...xStrides));
    },
  };
  return be;
}

/** The addon's instruction set (chosen at load by CPU features, or DORA_ISA) and its pool size. */
export function nativeInfo(): { isa: "avx512" | "avx2" | "portable"; threads: number } {
  const addon = loadAddon();
  return { isa: addon.isa(), threads: addon.numThreads() };
}

/** Resizes the addon's thread pool (benches switch between 1 and 2 threads in one process). */
export function setNumThreads(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`setNumThreads: expected a positive integer, got ${n}`);
  loadAddon().setNumThreads(n);
}
