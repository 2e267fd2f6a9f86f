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

/**
 * `Backend.gemmScaled` (spec): the plain `gemm` above on op(B) with its rows (axis "k") or columns (axis "n")
 * multiplied by `scale`, each scaled element rounded to float32 as a scaled copy of B would hold it. Read in place:
 * a scaled copy would be an out×in temporary of the frozen weight in every DoRA training step, which the js
 * backend (the fallback where the addon does not build) must not allocate either.
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
  if (!accumulate) for (let i = 0; i < m; i++) c.fill(0, cOff + i * ldc, cOff + i * ldc + n);
  const alongK = axis === "k";
  if (form === "nt") {
    // op(B)[p, j] = b[j·ldb + p] (storage keeps n rows of k)
    for (let i = 0; i < m; i++) {
      const ar = aOff + i * lda, cr = cOff + i * ldc;
      for (let j = 0; j < n; j++) {
        const br = bOff + j * ldb, sj = alongK ? 1 : scale[j]!;
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ar + p]! * Math.fround(b[br + p]! * (alongK ? scale[p]! : sj));
        c[cr + j] = c[cr + j]! + s;
      }
    }
    return;
  }
  // op(B)[p, j] = b[p·ldb + j] (storage keeps k rows of n)
  for (let i = 0; i < m; i++) {
    const cr = cOff + i * ldc;
    for (let p = 0; p < k; p++) {
      const av = form === "nn" ? a[aOff + i * lda + p]! : a[aOff + p * lda + i]!;
      if (av === 0) continue;
      const br = bOff + p * ldb, sp = alongK ? scale[p]! : 1;
      for (let j = 0; j < n; j++) c[cr + j] = c[cr + j]! + av * Math.fround(b[br + j]! * (alongK ? sp : scale[j]!));
    }
  }
}
