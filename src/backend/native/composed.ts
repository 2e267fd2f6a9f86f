/**
 * Kernels of the native backend composed in TypeScript from the addon's GEMM and row kernels.
 *
 * Causal grouped-query attention on the native backend as batched GEMMs + the native row kernels (same
 * contract as the js spec in ../js/attention.ts, which builds scores one query row at a time in scalar loops).
 *
 * The `group = h/hkv` query heads sharing a kv head are contiguous in q [B, H, Sq, D], so each (batch, kv head)
 * is one GEMM with M = group·Sq rows: batch count B·Hkv with uniform strides, no K/V copies for GQA.
 *   forward:  S = Q·Kᵀ (nt), scaled, future keys set to −∞; L = log_softmax(S) (native); P = exp(L) (native);
 *             lse = S_i0 − L_i0 (key 0 is visible to every query); out = P·V (nn).
 *   backward: P rebuilt the same way (no [Sq, Sk] tensor kept between passes, only lse as in the contract);
 *             dV = Pᵀ·dO (tn, summing the group); dP = dO·Vᵀ (nt); dS = P ⊙ (dP − Σ dP⊙P) (native softmax
 *             backward); dQ = scale·dS·K (nn); dK = scale·dSᵀ·Q (tn).
 * Scratch: two [B·H·Sq·Sk] float32 buffers, reused between calls while the size fits.
 */
import type { Backend } from "../backend.js";

let scratchA = new Float32Array(0), scratchB = new Float32Array(0);
function scratch(n: number): [Float32Array, Float32Array] {
  if (scratchA.length < n) { scratchA = new Float32Array(n); scratchB = new Float32Array(n); }
  return [scratchA.subarray(0, n), scratchB.subarray(0, n)];
}

/** P (and lse when given) for every (b, kv head) block: S = scale·Q·Kᵀ masked, softmax. Returns P. */
function probabilities(be: Backend, s: Float32Array, l: Float32Array, lse: Float32Array | null, q: Float32Array, k: Float32Array,
  b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number): Float32Array {
  const group = h / hkv, M = group * sq, nb = b * hkv, rows = nb * M;
  be.gemm("nt", M, sk, d, q, 0, d, M * d, k, 0, d, sk * d, s, 0, sk, M * sk, nb, false);
  for (let r = 0; r < rows; r++) {
    const last = sk - sq + (r % sq), o = r * sk; // query i sees keys 0..last
    for (let j = 0; j <= last; j++) s[o + j] = s[o + j]! * scale;
    for (let j = last + 1; j < sk; j++) s[o + j] = -Infinity;
  }
  be.softmaxForward(l, s, rows, sk, true);
  if (lse) for (let r = 0; r < rows; r++) lse[r] = s[r * sk]! - l[r * sk]!;
  be.unaryForward("exp", s, l, rows * sk); // P overwrites S
  return s;
}

export function attentionForwardGemm(be: Backend, out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array,
  v: Float32Array, b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number): void {
  const group = h / hkv, M = group * sq, nb = b * hkv;
  const [s, l] = scratch(nb * M * sk);
  const p = probabilities(be, s, l, lse, q, k, b, h, hkv, sq, sk, d, scale);
  be.gemm("nn", M, d, sk, p, 0, sk, M * sk, v, 0, d, sk * d, out, 0, d, M * d, nb, false);
}

export function attentionBackwardGemm(be: Backend, dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, b: number, h: number, hkv: number, sq: number, sk: number, d: number,
  scale: number): void {
  const group = h / hkv, M = group * sq, nb = b * hkv, n = nb * M * sk;
  const [s, l] = scratch(n);
  const p = probabilities(be, s, l, null, q, k, b, h, hkv, sq, sk, d, scale);
  be.gemm("tn", sk, d, M, p, 0, sk, M * sk, dout, 0, d, M * d, dv, 0, d, sk * d, nb, false);
  const dp = l; // L is no longer needed
  be.gemm("nt", M, sk, d, dout, 0, d, M * d, v, 0, d, sk * d, dp, 0, sk, M * sk, nb, false);
  be.softmaxBackward(dp, dp, p, nb * M, sk, false); // dS in place (dx may alias dy: row-wise, dot first)
  be.gemm("nn", M, d, sk, dp, 0, sk, M * sk, k, 0, d, sk * d, dq, 0, d, M * d, nb, false);
  be.gemm("tn", sk, d, M, dp, 0, sk, M * sk, q, 0, d, M * d, dk, 0, d, sk * d, nb, false);
  for (let i = 0; i < dq.length; i++) dq[i] = dq[i]! * scale;
  for (let i = 0; i < dk.length; i++) dk[i] = dk[i]! * scale;
}
