/**
 * Reference GEMM (the spec of `Backend.gemm`): plain loops, i-k-j order so the inner loop runs along
 * contiguous rows of B and C. Accumulates in float32 like the native kernel.
 */
import type { GemmForm } from "../backend.js";

export function gemm(
  form: GemmForm,
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number, strideA: number,
  b: Float32Array, bOff: number, ldb: number, strideB: number,
  c: Float32Array, cOff: number, ldc: number, strideC: number,
  batch: number,
  accumulate: boolean,
): void {
  for (let t = 0; t < batch; t++) {
    const ao = aOff + t * strideA, bo = bOff + t * strideB, co = cOff + t * strideC;
    if (!accumulate) for (let i = 0; i < m; i++) c.fill(0, co + i * ldc, co + i * ldc + n);
    if (form === "nt") {
      // C[i,j] += Σ_p A[i,p]·B[j,p]: dot products along contiguous rows of both.
      for (let i = 0; i < m; i++) {
        const ar = ao + i * lda, cr = co + i * ldc;
        for (let j = 0; j < n; j++) {
          const br = bo + j * ldb;
          let s = 0;
          for (let p = 0; p < k; p++) s += a[ar + p]! * b[br + p]!;
          c[cr + j] = c[cr + j]! + s;
        }
      }
      continue;
    }
    for (let i = 0; i < m; i++) {
      const cr = co + i * ldc;
      for (let p = 0; p < k; p++) {
        const av = form === "nn" ? a[ao + i * lda + p]! : a[ao + p * lda + i]!;
        if (av === 0) continue;
        const br = bo + p * ldb;
        for (let j = 0; j < n; j++) c[cr + j] = c[cr + j]! + av * b[br + j]!;
      }
    }
  }
}

/** Storage rows of B scaled at a time by `gemmScaled`: its scratch stays this many rows, whatever B's size. */
const SCALED_ROWS = 8;

/**
 * `Backend.gemmScaled` (spec): the plain `gemm` above on op(B) with its rows (axis "k") or columns (axis "n")
 * multiplied by `scale`, each scaled element rounded to float32. B is scaled a few storage rows at a time: a whole
 * scaled copy would be an out×in temporary of the frozen weight in every DoRA training step, which the js backend
 * (the fallback where the addon does not build) must not allocate either. Blocks of n (form "nt") split C's columns;
 * blocks of k add into C in k's order, as one call would: the results keep one call's bits.
 */
export function gemmScaled(
  form: GemmForm,
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  b: Float32Array, bOff: number, ldb: number,
  scale: Float32Array, axis: "k" | "n",
  c: Float32Array, cOff: number, ldc: number,
  accumulate: boolean,
): void {
  // storage of B: nt keeps op(B)ᵀ (n rows of k), nn/tn keep op(B) (k rows of n)
  const rows = form === "nt" ? n : k, cols = form === "nt" ? k : n;
  const rowScaled = (axis === "k") === (form !== "nt"); // does the scale run along storage rows?
  const bs = new Float32Array(Math.min(rows, SCALED_ROWS) * cols);
  if (rows === 0) gemm(form, m, n, k, a, aOff, lda, 0, bs, 0, cols, 0, c, cOff, ldc, 0, 1, accumulate); // C = 0 or kept
  for (let r0 = 0; r0 < rows; r0 += SCALED_ROWS) {
    const nr = Math.min(SCALED_ROWS, rows - r0);
    for (let i = 0; i < nr; i++) {
      for (let j = 0; j < cols; j++) bs[i * cols + j] = b[bOff + (r0 + i) * ldb + j]! * (rowScaled ? scale[r0 + i]! : scale[j]!);
    }
    if (form === "nt") gemm(form, m, nr, k, a, aOff, lda, 0, bs, 0, cols, 0, c, cOff + r0, ldc, 0, 1, accumulate); // C's columns r0..
    else gemm(form, m, n, nr, a, aOff + (form === "nn" ? r0 : r0 * lda), lda, 0, bs, 0, cols, 0, c, cOff, ldc, 0, 1, accumulate || r0 > 0);
  }
}
