/**
 * Reference NF4 GEMM (the spec of `Backend.gemmNf4`): one row of Ŵ (nt) or one row of Ŵ (nn) is dequantised into
 * a scratch tile, then multiplied like the float GEMM. Dequantisation is bitsandbytes' (float32 lut·absmax).
 */
function dequantRow(out: Float32Array, codes: Uint8Array, absmax: Float32Array, lut: Float32Array, blockSize: number, f0: number, len: number): void {
  for (let j = 0, f = f0; j < len; j++, f++) {
    const byte = codes[f >> 1]!;
    out[j] = Math.fround(lut[(f & 1) === 0 ? byte >> 4 : byte & 15]! * absmax[Math.floor(f / blockSize)]!);
  }
}

export function gemmNf4(
  form: "nn" | "nt",
  m: number, n: number, k: number,
  a: Float32Array, aOff: number, lda: number,
  codes: Uint8Array, absmax: Float32Array, lut: Float32Array, blockSize: number,
  c: Float32Array, cOff: number, ldc: number,
  accumulate: boolean,
): void {
  if (!accumulate) for (let i = 0; i < m; i++) c.fill(0, cOff + i * ldc, cOff + i * ldc + n);
  if (form === "nt") {
    // W [n, k]: row j of Ŵ is column j of the product; C[i,j] += Σ_p A[i,p]·Ŵ[j,p]
    const w = new Float32Array(k);
    for (let j = 0; j < n; j++) {
      dequantRow(w, codes, absmax, lut, blockSize, j * k, k);
      for (let i = 0; i < m; i++) {
        const ar = aOff + i * lda;
        let s = 0;
        for (let p = 0; p < k; p++) s += a[ar + p]! * w[p]!;
        c[cOff + i * ldc + j] = c[cOff + i * ldc + j]! + s;
      }
    }
    return;
  }
  // nn, W [k, n]: C[i,:] += A[i,p]·Ŵ[p,:]
  const w = new Float32Array(n);
  for (let p = 0; p < k; p++) {
    dequantRow(w, codes, absmax, lut, blockSize, p * n, n);
    for (let i = 0; i < m; i++) {
      const av = a[aOff + i * lda + p]!;
      if (av === 0) continue;
      const cr = cOff + i * ldc;
      for (let j = 0; j < n; j++) c[cr + j] = c[cr + j]! + av * w[j]!;
    }
  }
}
