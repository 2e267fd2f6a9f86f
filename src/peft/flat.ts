/**
 * Plain-buffer helpers for the fused adapter ops (lora-linear.ts `loraLinear`, dora.ts `doraLinear`): GEMM on
 * contiguous row-major 2-d buffers (leading dims follow from the form), and the inverted-dropout mask drawn
 * exactly as tensor `dropout` draws it (tensor `dropoutPositions`), kept as bytes.
 */
import { dropoutPositions, type Rng } from "../tensor/index.js";
import { getBackend, type GemmForm } from "../backend/index.js";

/**
 * C (m×n) (+)= op(A)·op(B) on contiguous buffers: nn A m×k, B k×n; nt A m×k, B n×k; tn A k×m, B k×n.
 * `aOff`/`bOff` let a weight view start inside its buffer.
 */
export function gemm(form: GemmForm, m: number, n: number, k: number, a: Float32Array, b: Float32Array,
  c: Float32Array, accumulate: boolean, aOff = 0, bOff = 0): void {
  const lda = form === "tn" ? m : k, ldb = form === "nt" ? k : n;
  getBackend().gemm(form, m, n, k, a, aOff, lda, 0, b, bOff, ldb, 0, c, 0, n, 0, 1, accumulate);
}

/** Dropout mask: 1 = kept (scaled by 1/(1−p) where applied), 0 = dropped. Same draws as tensor `dropout`. */
export function dropoutMask(n: number, p: number, rng: Rng): Uint8Array {
  const mask = new Uint8Array(n).fill(1);
  for (const i of dropoutPositions(n, p, rng)) mask[i] = 0;
  return mask;
}

/** out[i] = x[i]·keep·mask[i] (x̃ = dropout(x)); `out` may be `x`. */
export function applyMask(out: Float32Array, x: Float32Array, mask: Uint8Array, keep: number): Float32Array {
  for (let i = 0; i < mask.length; i++) out[i] = mask[i] ? x[i]! * keep : 0;
  return out;
}

/** y *= s in place. */
export function scaleInPlace(y: Float32Array, s: number): void {
  for (let i = 0; i < y.length; i++) y[i] = y[i]! * s;
}

/**
 * The low-rank input of a fused adapter op: draws the dropout mask (when dropout is on), x̃ = dropout(x), and
 * u = s·x̃Aᵀ [T, r]. `keep` = 1/(1−p) and `mask` come back for the backward pass, which rebuilds x̃ from them.
 */
export function lowRankInput(xf: Float32Array, Af: Float32Array, T: number, inF: number, r: number, s: number,
  dropout: { p: number; rng: Rng } | null): { u: Float32Array; xd: Float32Array; mask: Uint8Array | null; keep: number } {
  const keep = dropout ? 1 / (1 - dropout.p) : 1;
  const mask = dropout ? dropoutMask(xf.length, dropout.p, dropout.rng) : null;
  const xd = mask ? applyMask(new Float32Array(xf.length), xf, mask, keep) : xf;
  const u = new Float32Array(T * r);
  gemm("nt", T, r, inF, xd, Af, u, false);
  scaleInPlace(u, s);
  return { u, xd, mask, keep };
}
