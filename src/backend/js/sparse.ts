/**
 * Sparse × dense (and its column dot with g) and sampled dense × dense products over a CSR pattern (spec; contract in backend.ts): the dropout
 * corrections of the fused adapter ops. Sums in float64, one rounding to float32 per output. Also the drop list's
 * plumbing: flat positions to CSR rows (positionsToCsr) and a CSR matrix added into a dense buffer (addSparse).
 */

export function sparseGemm(form: "nn" | "nt", c: Float32Array, alpha: number, scale: Float32Array | null, values: Float32Array,
  rowPtr: Int32Array, cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number,
  accumulate: boolean): void {
  const acc = new Float64Array(n);
  for (let t = 0; t < rows; t++) {
    rowProduct(acc, form, scale, values, rowPtr, cols, t, n, k, w, wOff);
    for (let i = 0, o = t * n; i < n; i++, o++) c[o] = (accumulate ? c[o]! : 0) + alpha * acc[i]!;
  }
}

export function sparseGemmDot(form: "nn" | "nt", out: Float32Array, g: Float32Array, scale: Float32Array | null, values: Float32Array,
  rowPtr: Int32Array, cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number): void {
  const acc = new Float64Array(n), sum = new Float64Array(n);
  for (let t = 0; t < rows; t++) {
    rowProduct(acc, form, scale, values, rowPtr, cols, t, n, k, w, wOff);
    for (let i = 0; i < n; i++) sum[i] = sum[i]! + g[t * n + i]! * acc[i]!;
  }
  out.set(sum);
}

/** acc = row t of S·op(W)·diag(scale), in float64. */
function rowProduct(acc: Float64Array, form: "nn" | "nt", scale: Float32Array | null, values: Float32Array, rowPtr: Int32Array,
  cols: Int32Array, t: number, n: number, k: number, w: Float32Array, wOff: number): void {
  const sj = form === "nt" ? 1 : n, si = form === "nt" ? k : 1; // op(W)[j, i] at w[wOff + j·sj + i·si]
  acc.fill(0);
  for (let e = rowPtr[t]!; e < rowPtr[t + 1]!; e++) {
    const j = cols[e]!, xv = values[e]!, base = wOff + j * sj;
    for (let i = 0; i < n; i++) acc[i] = acc[i]! + xv * w[base + i * si]!;
  }
  if (scale) for (let i = 0; i < n; i++) acc[i] = acc[i]! * scale[i]!;
}

export function sampledGemm(form: "nn" | "nt", out: Float32Array, a: Float32Array, scale: Float32Array | null,
  rowPtr: Int32Array, cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number,
  accumulate: boolean, dot: Float32Array | null = null, values: Float32Array | null = null): void {
  if (dot) {
    if (!values) throw new Error("sampledGemm: dot needs the values");
    sparseGemmDot(form, dot, a, null, values, rowPtr, cols, rows, n, k, w, wOff);
  }
  const sj = form === "nt" ? 1 : n, si = form === "nt" ? k : 1;
  for (let t = 0; t < rows; t++) {
    for (let e = rowPtr[t]!; e < rowPtr[t + 1]!; e++) {
      const base = wOff + cols[e]! * sj;
      let acc = 0;
      for (let i = 0; i < n; i++) acc += a[t * n + i]! * (scale ? scale[i]! : 1) * w[base + i * si]!;
      out[e] = (accumulate ? out[e]! : 0) + acc;
    }
  }
}

export function sparseTransposedGemm(out: Float64Array, values: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number,
  k: number, v: Float32Array, n: number): void {
  out.fill(0, 0, k * n);
  for (let t = 0; t < rows; t++) {
    for (let e = rowPtr[t]!; e < rowPtr[t + 1]!; e++) {
      const j = cols[e]!, xv = values[e]!;
      for (let i = 0, q = j * n, o = t * n; i < n; i++) out[q + i] = out[q + i]! + xv * v[o + i]!;
    }
  }
}

export function addSparse(out: Float32Array, alpha: number, values: Float32Array, rowPtr: Int32Array, cols: Int32Array,
  rows: number, k: number): void {
  for (let t = 0; t < rows; t++) {
    for (let e = rowPtr[t]!, o = t * k; e < rowPtr[t + 1]!; e++) out[o + cols[e]!] = out[o + cols[e]!]! + alpha * values[e]!;
  }
}

export function gatherSparse(values: Float32Array, x: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number,
  k: number): void {
  for (let t = 0; t < rows; t++) {
    for (let e = rowPtr[t]!, o = t * k; e < rowPtr[t + 1]!; e++) values[e] = x[o + cols[e]!]!;
  }
}

export function positionsToCsr(pos: Int32Array, rowLen: number, rows: number, rowPtr: Int32Array): void {
  const n = rows * rowLen;
  for (let e = 0, prev = -1; e < pos.length; prev = pos[e]!, e++) {
    if (pos[e]! <= prev || pos[e]! >= n)
      throw new Error(`positionsToCsr: position ${pos[e]} at index ${e} is not above the previous one (${prev}) inside [0, ${n})`);
  }
  let t = 0, rowEnd = rowLen;
  rowPtr[0] = 0;
  for (let e = 0; e < pos.length; e++) {
    const q = pos[e]!;
    while (q >= rowEnd) { rowPtr[++t] = e; rowEnd += rowLen; }
    pos[e] = q - (rowEnd - rowLen);
  }
  while (t < rows) rowPtr[++t] = pos.length;
}
