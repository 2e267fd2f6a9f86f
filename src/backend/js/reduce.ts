/** Row and column reductions (spec). Sums accumulate in float64 so long rows do not drift. */

export function sumRows(out: Float32Array, x: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    let s = 0;
    const o = r * cols;
    for (let c = 0; c < cols; c++) s += x[o + c]!;
    out[r] = s;
  }
}

export function maxRows(out: Float32Array, idx: Int32Array, x: Float32Array, rows: number, cols: number): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let best = -Infinity, bi = 0;
    for (let c = 0; c < cols; c++) {
      const v = x[o + c]!;
      if (v > best || Number.isNaN(v)) { best = v; bi = c; if (Number.isNaN(v)) break; }
    }
    out[r] = best;
    idx[r] = bi;
  }
}

export function sumCols(out: Float32Array, x: Float32Array, rows: number, cols: number, accumulate: boolean): void {
  const acc = new Float64Array(cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) acc[c]! += x[o + c]!;
  }
  for (let c = 0; c < cols; c++) out[c] = (accumulate ? out[c]! : 0) + acc[c]!;
}
