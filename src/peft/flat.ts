/**
 * Plain-buffer helpers for the fused adapter ops (lora-linear.ts `loraLinear`, dora.ts `doraLinear`): GEMM on
 * contiguous row-major 2-d buffers (leading dims follow from the form), and the inverted-dropout mask, drawn exactly
 * as tensor `dropout` draws it (tensor `dropoutPositions`) and kept as the list of dropped positions per token row
 * (CSR, `Drops`): at p = 5% that is 5% of the input's size, and the ops correct their un-dropped products with
 * sparse kernels on it (Backend.sparseGemm / sampledGemm) instead of rerunning them on x̃.
 */
import { dropoutPositions, uninitF32, type Rng } from "../tensor/index.js";
import { LOW_RANK_MAX_RANK, getBackend, type GemmForm } from "../backend/index.js";

/**
 * C (m×n) (+)= op(A)·op(B) on contiguous buffers: nn A m×k, B k×n; nt A m×k, B n×k; tn A k×m, B k×n.
 * `aOff`/`bOff` let a weight view start inside its buffer.
 */
export function gemm(form: GemmForm, m: number, n: number, k: number, a: Float32Array, b: Float32Array,
  c: Float32Array, accumulate: boolean, aOff = 0, bOff = 0): void {
  const lda = form === "tn" ? m : k, ldb = form === "nt" ? k : n;
  getBackend().gemm(form, m, n, k, a, aOff, lda, 0, b, bOff, ldb, 0, c, 0, n, 0, 1, accumulate);
}

/** `gemm` with op(B) scaled along k or n (Backend.gemmScaled): a per-row or per-column factor of the weight. */
export function gemmScaled(form: GemmForm, m: number, n: number, k: number, a: Float32Array, b: Float32Array,
  scale: Float32Array, axis: "k" | "n", c: Float32Array, accumulate: boolean, bOff = 0): void {
  const lda = form === "tn" ? m : k, ldb = form === "nt" ? k : n;
  getBackend().gemmScaled(form, m, n, k, a, 0, lda, b, bOff, ldb, scale, axis, c, 0, n, accumulate);
}

/**
 * The backward's reductions over the output gradient g [T, out] of a fused adapter op, each only when asked:
 * gu = gᵀ·u [out, r], v = g·diag(bScale)·B [T, r] (B [out, r]), and DoRA's column dot Σ_t g ⊙ (z − bias) [out].
 * When both products are asked for (training) and r ≤ 16 they come from one pass over g (Backend.lowRankProducts,
 * the dot too): separately each is a pass of its own over a [T, out] buffer that is mostly out of cache by then.
 */
export function lowRankGrads(g: Float32Array, u: Float32Array, B: Float32Array, bScale: Float32Array | null, T: number,
  outF: number, r: number, want: { gu: boolean; v: boolean; dot: { z: Float32Array; bias: Float32Array | null } | null }):
  { gu: Float32Array | null; v: Float32Array | null; dot: Float32Array | null } {
  const gu = want.gu ? new Float32Array(outF * r) : null, v = want.v ? new Float32Array(T * r) : null;
  const dot = want.dot ? new Float32Array(outF) : null;
  const be = getBackend();
  if (gu && v && r <= LOW_RANK_MAX_RANK) {
    be.lowRankProducts(gu, v, g, u, B, bScale, T, outF, r, dot, want.dot?.z ?? null, want.dot?.bias ?? null);
    return { gu, v, dot };
  }
  if (gu) gemm("tn", outF, r, T, g, u, gu, false);                  // gᵀ·u
  if (v && bScale) gemmScaled("nn", T, r, outF, g, B, bScale, "k", v, false); // g·diag(bScale)·B
  else if (v) gemm("nn", T, r, outF, g, B, v, false);
  if (dot) be.columnDot(dot, g, want.dot!.z, want.dot!.bias, T, outF);
  return { gu, v, dot };
}

/**
 * Up to these dropout rates the fused ops correct the un-dropped products sparsely (cost ∝ p); above them they run
 * their products on x̃ densely. DoRA (its W-sized products): crossover measured near 0.2; LoRA (only rank-r products
 * to correct, where the dense path is cheap): even at 0.05, faster above. bench/dora-layer/README.md, crossover.ts.
 */
export const dropoutTuning = { sparseMaxP: 0.15, loraSparseMaxP: 0.05 };

/**
 * The dropped elements of an input [T, inF] (row-major), as CSR rows: token t's dropped columns are
 * cols[rowPtr[t] .. rowPtr[t+1]), ascending. keep = 1/(1 − p); `sparse` says which path the ops take.
 */
export interface Drops {
  readonly rowPtr: Int32Array;
  readonly cols: Int32Array;
  /** x at the drops, indexed like cols (S's values for the sparse kernels); empty off the sparse path */
  readonly values: Float32Array;
  readonly keep: number;
  readonly sparse: boolean;
}

/**
 * Draws the dropout mask of x [T, inF] (the same draws as tensor `dropout` on it); sparse path up to `maxP`. On the
 * sparse path x's values at the drops are gathered here, once: a DoRA step's three sparse kernels and the dA
 * correction read them in order instead of each finding them in x again.
 */
export function drawDrops(x: Float32Array, T: number, inF: number, p: number, rng: Rng, maxP = dropoutTuning.sparseMaxP): Drops {
  const cols = dropoutPositions(T * inF, p, rng); // flat positions, turned into columns in place
  const rowPtr = new Int32Array(T + 1);
  getBackend().positionsToCsr(cols, inF, T, rowPtr);
  const sparse = p <= maxP, values = new Float32Array(sparse ? cols.length : 0);
  if (sparse) getBackend().gatherSparse(values, x, rowPtr, cols, T, inF);
  return { rowPtr, cols, values, keep: 1 / (1 - p), sparse };
}

/** out = x̃ = dropout(x): keep·x, 0 at the dropped positions; `out` may be `x`. */
export function dropInput(out: Float32Array, x: Float32Array, d: Drops, T: number, inF: number): Float32Array {
  getBackend().columnScale(out, x, new Float32Array(inF), d.keep, null, T, inF); // (0 + keep)·x
  zeroDropped(out, d, T, inF);
  return out;
}

/** buf[t, j] = 0 at every dropped (t, j) of a [T, inF] buffer. */
export function zeroDropped(buf: Float32Array, d: Drops, T: number, inF: number, t0 = 0): void {
  const { rowPtr, cols } = d;
  for (let t = 0; t < T; t++) for (let e = rowPtr[t0 + t]!, o = t * inF; e < rowPtr[t0 + t + 1]!; e++) buf[o + cols[e]!] = 0;
}

/** dx[t, j] −= keep·g[e] at the dropped entries e = (t, j) (the sampled correction of a dx). */
export function subtractAtDrops(dx: Float32Array, g: Float32Array, d: Drops, T: number, inF: number): void {
  getBackend().addSparse(dx, -d.keep, g, d.rowPtr, d.cols, T, inF);
}

/** y *= s in place. */
export function scaleInPlace(y: Float32Array, s: number): void {
  for (let i = 0; i < y.length; i++) y[i] = y[i]! * s;
}

/**
 * Below this many rows the rank kernel's set-up (a transposed copy of A for the forward) costs more than it saves;
 * token-by-token generation (T = 1) keeps the GEMM's GEMV path.
 */
const RANK_KERNEL_MIN_ROWS = 32;

/**
 * u = f·x·Aᵀ [T, r] for x [T, inF] and A [r, inF]: up to rank 16 in one pass over x with the ranks as the kernel's
 * lanes (Backend.lowRankProducts with B = f·Aᵀ), where the GEMM half-fills its tile. The factor f (the adapter's
 * scaling) rides on the transposed copy of A the kernel needs anyway, instead of a pass over u.
 */
function timesAT(x: Float32Array, Af: Float32Array, T: number, inF: number, r: number, u: Float32Array, f: number): void {
  if (r > LOW_RANK_MAX_RANK || T < RANK_KERNEL_MIN_ROWS) {
    gemm("nt", T, r, inF, x, Af, u, false);
    if (f !== 1) scaleInPlace(u, f);
    return;
  }
  const at = new Float32Array(inF * r);
  for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) at[j * r + k] = f * Af[k * inF + j]!;
  getBackend().lowRankProducts(null, u, x, null, at, null, T, inF, r, null, null, null);
}

/** d = vsᵀ·x [r, inF] for vs [T, r] and x [T, inF]: up to rank 16 as (xᵀ·vs)ᵀ in one pass over x (as timesAT). */
function vsTimesX(vs: Float32Array, x: Float32Array, T: number, inF: number, r: number, d: Float32Array): void {
  if (r > LOW_RANK_MAX_RANK || T < RANK_KERNEL_MIN_ROWS) return gemm("tn", r, inF, T, vs, x, d, false);
  const dt = new Float32Array(inF * r);
  getBackend().lowRankProducts(dt, null, x, vs, null, null, T, inF, r, null, null, null);
  for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) d[k * inF + j] = dt[j * r + k]!;
}

/**
 * The low-rank input of a fused adapter op: draws the dropout mask (when dropout is on) and computes
 * u = s·x̃Aᵀ [T, r]. Sparse path: x̃Aᵀ = keep·(xAᵀ − S·Aᵀ), S = x at the dropped positions (no x̃ is built);
 * dense path: the GEMM on x̃. The drops come back for the backward pass.
 */
export function lowRankInput(xf: Float32Array, Af: Float32Array, T: number, inF: number, r: number, s: number,
  dropout: { p: number; rng: Rng } | null, sparseMaxP = dropoutTuning.sparseMaxP): { u: Float32Array; drops: Drops | null } {
  const drops = dropout ? drawDrops(xf, T, inF, dropout.p, dropout.rng, sparseMaxP) : null;
  const u = new Float32Array(T * r);
  if (drops && !drops.sparse) {
    timesAT(dropInput(uninitF32(xf.length), xf, drops, T, inF), Af, T, inF, r, u, s); // s·x̃Aᵀ
    return { u, drops };
  }
  const f = drops ? s * drops.keep : s;
  timesAT(xf, Af, T, inF, r, u, f);                                            // f·x·Aᵀ
  if (drops) getBackend().sparseGemm("nt", u, -f, null, drops.values, drops.rowPtr, drops.cols, T, r, inF, Af, 0, true); // − f·S·Aᵀ
  return { u, drops };
}

/**
 * dA = vsᵀ·x̃ [r, in] for vs [T, r] (the A-gradient of a fused adapter op, before any scaling of vs). Sparse path:
 * keep·(vsᵀ·x − C) with C[:, j] = Σ over the drops (t, j) of x_tj·vs_t (no x̃ is built); dense path: the GEMM on x̃.
 */
export function lowRankGradA(vs: Float32Array, xf: Float32Array, drops: Drops | null, T: number, inF: number, r: number): Float32Array {
  const d = new Float32Array(r * inF);
  if (drops && !drops.sparse) {
    vsTimesX(vs, dropInput(uninitF32(xf.length), xf, drops, T, inF), T, inF, r, d);
    return d;
  }
  vsTimesX(vs, xf, T, inF, r, d);                              // vsᵀ·x
  if (!drops) return d;
  const { rowPtr, cols, values, keep } = drops;
  const corr = new Float64Array(inF * r);                      // Cᵀ [in, r]
  getBackend().sparseTransposedGemm(corr, values, rowPtr, cols, T, inF, vs, r);
  for (let k = 0; k < r; k++) for (let j = 0; j < inF; j++) d[k * inF + j] = keep * (d[k * inF + j]! - corr[j * r + k]!);
  return d;
}
