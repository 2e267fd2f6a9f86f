/** Softmax, log-softmax and cross-entropy over the last axis (spec). */

export function softmaxForward(out: Float32Array, x: Float32Array, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, x[o + c]!);
    if (mx === -Infinity) mx = 0; // a fully masked row: keep it finite-free of NaN from (-inf) - (-inf)
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(x[o + c]! - mx);
    if (log) {
      const lse = mx + Math.log(s);
      for (let c = 0; c < cols; c++) out[o + c] = x[o + c]! - lse;
    } else {
      const inv = 1 / s;
      for (let c = 0; c < cols; c++) out[o + c] = Math.exp(x[o + c]! - mx) * inv;
    }
  }
}

export function softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    if (log) {
      for (let c = 0; c < cols; c++) s += dy[o + c]!;
      for (let c = 0; c < cols; c++) dx[o + c] = dy[o + c]! - Math.exp(y[o + c]!) * s;
    } else {
      for (let c = 0; c < cols; c++) s += dy[o + c]! * y[o + c]!;
      for (let c = 0; c < cols; c++) dx[o + c] = y[o + c]! * (dy[o + c]! - s);
    }
  }
}

export function crossEntropyForward(loss: Float32Array, lse: Float32Array, logits: Float32Array, targets: Int32Array,
  rows: number, cols: number, ignoreIndex: number): number {
  let counted = 0;
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    const o = r * cols;
    let mx = -Infinity;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, logits[o + c]!);
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp(logits[o + c]! - mx);
    const l = mx + Math.log(s);
    lse[r] = l;
    if (t === ignoreIndex) { loss[r] = 0; continue; }
    loss[r] = l - logits[o + t]!;
    counted++;
  }
  return counted;
}

export function crossEntropyBackward(dlogits: Float32Array, logits: Float32Array, lse: Float32Array, targets: Int32Array,
  rows: number, cols: number, ignoreIndex: number, scale: Float32Array | number): void {
  for (let r = 0; r < rows; r++) {
    const t = targets[r]!;
    const o = r * cols;
    if (t === ignoreIndex) { dlogits.fill(0, o, o + cols); continue; }
    const g = typeof scale === "number" ? scale : scale[r]!;
    const l = lse[r]!;
    for (let c = 0; c < cols; c++) dlogits[o + c] = g * Math.exp(logits[o + c]! - l);
    dlogits[o + t] = dlogits[o + t]! - g;
  }
}
