/** Per-column scale and reduction of [rows, cols] buffers (spec): DoRA's m/n epilogue and its ∂/∂m sum. */

export function columnScale(out: Float32Array, x: Float32Array, scale: Float32Array, offset: number, bias: Float32Array | null,
  rows: number, cols: number): void {
  for (let r = 0, o = 0; r < rows; r++) {
    if (bias) for (let i = 0; i < cols; i++, o++) out[o] = (scale[i]! + offset) * x[o]! + bias[i]!;
    else for (let i = 0; i < cols; i++, o++) out[o] = (scale[i]! + offset) * x[o]!;
  }
}

export function columnDot(out: Float32Array, g: Float32Array, z: Float32Array, bias: Float32Array | null, rows: number, cols: number): void {
  const acc = new Float64Array(cols);
  for (let r = 0, o = 0; r < rows; r++) {
    if (bias) for (let i = 0; i < cols; i++, o++) acc[i] = acc[i]! + g[o]! * (z[o]! - bias[i]!);
    else for (let i = 0; i < cols; i++, o++) acc[i] = acc[i]! + g[o]! * z[o]!;
  }
  out.set(acc);
}

export function lowRankProducts(gu: Float32Array | null, v: Float32Array | null, g: Float32Array, u: Float32Array | null,
  b: Float32Array | null, bScale: Float32Array | null, T: number, n: number, r: number, dot: Float32Array | null,
  z: Float32Array | null, bias: Float32Array | null): void {
  if (!gu !== !u || !v !== !b || !dot !== !z || (bias && !dot)) {
    throw new Error("lowRankProducts: gu goes with u, v with b, dot with z, and bias only with dot");
  }
  const acc = new Float64Array(gu ? n * r : 0);
  for (let t = 0; t < T; t++) {
    if (v && b) {
      for (let k = 0; k < r; k++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += g[t * n + i]! * (bScale ? Math.fround(b[i * r + k]! * bScale[i]!) : b[i * r + k]!);
        v[t * r + k] = s;
      }
    }
    if (u) {
      for (let i = 0; i < n; i++) {
        const gi = g[t * n + i]!;
        for (let k = 0; k < r; k++) acc[i * r + k] = acc[i * r + k]! + gi * u[t * r + k]!;
      }
    }
  }
  gu?.set(acc);
  if (dot) columnDot(dot, g, z!, bias, T, n);
}

export function doraNormTerms(out: Float64Array, w: Float32Array, wOff: number, rowStride: number, colStride: number,
  a: Float32Array, b: Float32Array, s: number, rows: number, cols: number, r: number): void {
  const aat = new Float64Array(r * r); // A·Aᵀ, products summed over p in order
  for (let p = 0; p < cols; p++) {
    for (let k = 0; k < r; k++) for (let l = 0; l < r; l++) aat[k * r + l] = aat[k * r + l]! + a[k * cols + p]! * a[l * cols + p]!;
  }
  for (let i = 0; i < rows; i++) {
    let cross = 0, quad = 0;
    for (let k = 0; k < r; k++) {
      let d = 0;
      for (let p = 0, o = wOff + i * rowStride; p < cols; p++, o += colStride) d += w[o]! * a[k * cols + p]!;
      cross += b[i * r + k]! * d;
      let t = 0;
      for (let l = 0; l < r; l++) t += aat[k * r + l]! * b[i * r + l]!;
      quad += b[i * r + k]! * t;
    }
    out[i] = 2 * s * cross + s * s * quad;
  }
}
