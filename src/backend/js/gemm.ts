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
