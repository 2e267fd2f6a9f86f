/** RMSNorm and LayerNorm over rows (spec). Statistics accumulate in float64. */

export function rmsNormForward(y: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null,
  rows: number, cols: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += x[o + c]! * x[o + c]!;
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) y[o + c] = x[o + c]! * rs * (w ? w[c]! : 1);
  }
}

export function rmsNormBackward(dx: Float32Array, dw: Float32Array | null, dy: Float32Array, x: Float32Array,
  w: Float32Array | null, rstd: Float32Array, rows: number, cols: number): void {
  // y = w·x·r, r = (mean x² + eps)^-½  ⇒  dx = r·(w⊙dy) − x·r³·mean(w⊙dy⊙x)
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const rs = rstd[r]!;
    let dot = 0;
    for (let c = 0; c < cols; c++) dot += dy[o + c]! * (w ? w[c]! : 1) * x[o + c]!;
    const k = dot / cols * rs * rs * rs;
    for (let c = 0; c < cols; c++) {
      dx[o + c] = dy[o + c]! * (w ? w[c]! : 1) * rs - x[o + c]! * k;
      if (dw) dw[c] = dw[c]! + dy[o + c]! * x[o + c]! * rs;
    }
  }
}

export function layerNormForward(y: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array,
  w: Float32Array | null, b: Float32Array | null, rows: number, cols: number, eps: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    for (let c = 0; c < cols; c++) s += x[o + c]!;
    const mu = s / cols;
    let v = 0;
    for (let c = 0; c < cols; c++) { const d = x[o + c]! - mu; v += d * d; }
    const rs = 1 / Math.sqrt(v / cols + eps);
    mean[r] = mu; rstd[r] = rs;
    for (let c = 0; c < cols; c++) y[o + c] = (x[o + c]! - mu) * rs * (w ? w[c]! : 1) + (b ? b[c]! : 0);
  }
}

export function layerNormBackward(dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, dy: Float32Array,
  x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, rows: number, cols: number): void {
  // x̂ = (x−μ)·r, g = w⊙dy  ⇒  dx = r·(g − mean(g) − x̂·mean(g⊙x̂))
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = mean[r]!, rs = rstd[r]!;
    let sg = 0, sgx = 0;
    for (let c = 0; c < cols; c++) {
      const g = dy[o + c]! * (w ? w[c]! : 1);
      const xh = (x[o + c]! - mu) * rs;
      sg += g; sgx += g * xh;
      if (dw) dw[c] = dw[c]! + dy[o + c]! * xh;
      if (db) db[c] = db[c]! + dy[o + c]!;
    }
    sg /= cols; sgx /= cols;
    for (let c = 0; c < cols; c++) {
      const g = dy[o + c]! * (w ? w[c]! : 1);
      const xh = (x[o + c]! - mu) * rs;
      dx[o + c] = rs * (g - sg - xh * sgx);
    }
  }
}
