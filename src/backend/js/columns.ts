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
