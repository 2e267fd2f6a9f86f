/** Deterministic test arrays and their comparison for the native-vs-js kernel tests. */

/** n values in [−0.5, 0.5) from a 32-bit LCG seeded with `seed` (the same arrays on every run and machine). */
export function lcgArray(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; });
}

/** max |a − b| relative to max |b|: one number per output buffer, for kernels whose rounding differs by order. */
export function maxRelDiff(a: Float32Array, b: Float32Array): number {
  let m = 0, scale = 0;
  for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i]! - b[i]!)); scale = Math.max(scale, Math.abs(b[i]!)); }
  return m / Math.max(scale, 1e-30);
}
