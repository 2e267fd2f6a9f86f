/** Embedding gather/scatter, im2col/col2im for conv2d, and the AdamW update (spec). */

export function embeddingForward(out: Float32Array, table: Float32Array, ids: Int32Array, n: number, dim: number): void {
  for (let i = 0; i < n; i++) out.set(table.subarray(ids[i]! * dim, ids[i]! * dim + dim), i * dim);
}

export function embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, n: number, dim: number): void {
  for (let i = 0; i < n; i++) {
    const t = ids[i]! * dim, o = i * dim;
    for (let c = 0; c < dim; c++) dtable[t + c] = dtable[t + c]! + dout[o + c]!;
  }
}

export function im2col(cols: Float32Array, x: Float32Array, xOff: number, c: number, hgt: number, wid: number,
  kh: number, kw: number, stride: number, pad: number, oh: number, ow: number): void {
  let r = 0;
  for (let ci = 0; ci < c; ci++) for (let ki = 0; ki < kh; ki++) for (let kj = 0; kj < kw; kj++, r++) {
    const ro = r * oh * ow;
    for (let y = 0; y < oh; y++) {
      const iy = y * stride - pad + ki;
      for (let xx = 0; xx < ow; xx++) {
        const ix = xx * stride - pad + kj;
        cols[ro + y * ow + xx] = iy >= 0 && iy < hgt && ix >= 0 && ix < wid ? x[xOff + (ci * hgt + iy) * wid + ix]! : 0;
      }
    }
  }
}

export function col2im(dx: Float32Array, dxOff: number, cols: Float32Array, c: number, hgt: number, wid: number,
  kh: number, kw: number, stride: number, pad: number, oh: number, ow: number): void {
  let r = 0;
  for (let ci = 0; ci < c; ci++) for (let ki = 0; ki < kh; ki++) for (let kj = 0; kj < kw; kj++, r++) {
    const ro = r * oh * ow;
    for (let y = 0; y < oh; y++) {
      const iy = y * stride - pad + ki;
      if (iy < 0 || iy >= hgt) continue;
      for (let xx = 0; xx < ow; xx++) {
        const ix = xx * stride - pad + kj;
        if (ix < 0 || ix >= wid) continue;
        const o = dxOff + (ci * hgt + iy) * wid + ix;
        dx[o] = dx[o]! + cols[ro + y * ow + xx]!;
      }
    }
  }
}

export function adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number,
  lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void {
  const bc1 = 1 - Math.pow(beta1, step), bc2 = 1 - Math.pow(beta2, step);
  const stepSize = lr / bc1, bc2Sqrt = Math.sqrt(bc2);
  const decay = 1 - lr * weightDecay;
  for (let i = 0; i < n; i++) {
    const gi = g[i]!;
    const mi = beta1 * m[i]! + (1 - beta1) * gi;
    const vi = beta2 * v[i]! + (1 - beta2) * gi * gi;
    m[i] = mi; v[i] = vi;
    // torch: denom = sqrt(v)/sqrt(bc2) + eps; p -= (lr/bc1)·m/denom
    p[i] = p[i]! * decay - stepSize * mi / (Math.sqrt(vi) / bc2Sqrt + eps);
  }
}
