/**
 * All of DoRA's maths (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation"), with PEFT 0.20's
 * semantics (peft/tuners/lora/dora.py, variants.py). No other file computes a DoRA quantity.
 *
 * Every layer kind is reduced to one 2-d picture, `DoraOperands`:
 *   W [out, in]  the frozen weight as "rows = outputs" (a view, never a copy):
 *                Linear: W; Conv1D / fan_in_fan_out: Wᵀ; Conv2d: W.view(O, C·kh·kw); Embedding: Wᵀ ([D, V],
 *                PEFT treats embeddings as fan_in_fan_out, so the norm is per embedding dimension).
 *   A [r, in], B [out, r] (Conv2d: A.view(r, -1), B.view(O, r); Embedding: lora_embedding_A / _B as stored)
 *   s            scaling, lora_alpha / r (or / √r with rsLoRA)
 *
 * Formulas (i = output row):
 *   n_i   = ‖W_i + s·(B A)_i‖₂                                 weight norm, direct form
 *   n_i²  = ‖W_i‖² + 2s·Σ_k (W Aᵀ)_ik B_ik + s²·Σ_k (B·AAᵀ)_ik B_ik   factored form (Scaling-DoRA, arXiv
 *           2603.22276): never builds the out×in matrix W + s·BA. ‖W_i‖² is cached per frozen weight (keyed
 *           on the tensor, its buffer and its `version`). Terms are summed in float64; a row whose n_i² falls
 *           below CANCEL·‖W_i‖² (W_i + s·(BA)_i nearly cancels) is recomputed in the direct form.
 *   n_i  ← max(n_i, NORM_EPS)                                 eps floor (see NORM_EPS)
 *   m     = n at init (PEFT update_layer), kept float32          magnitude init
 *   y     = base(x) + (m/n − 1)·(x̃ Wᵀ) + (m/n)·s·B(A x̃)          forward, bias never rescaled
 *           with dropout off (p = 0 or eval) x̃ = x and x̃Wᵀ is base(x) without bias, so one GEMM serves both:
 *           y = (m/n)·(x Wᵀ + s·B A x) + b.
 *   n is a constant for autograd by default (PEFT detaches it; paper §4.3: "we treat ‖V + ΔV‖_c as a
 *   constant", saving memory at −0.2 accuracy). `detachNorm: false` keeps it in the graph (builds W + s·BA).
 *   W'    = (m/n)[:, None]·(W + s·B A)                          merge (in W's own layout)
 *   W     = W'/(m/n_merge) − s·B A                              exact unmerge with the n cached at merge (PEFT)
 */
import {
  Tensor, add, div, matmul, maximum, mul, noGrad, norm, sub,
} from "../tensor/index.js";

/**
 * Floor on the weight norm n. PEFT has none, so a zero row of W + s·BA gives 0/0 = NaN (peft#2049, Llama-3.1
 * o_proj). With the floor, such a row gets m = n = NORM_EPS at init and a finite scale m/n; any row whose true
 * norm is ≥ 1e-6 (every non-degenerate float32 weight row) is unaffected.
 */
export const NORM_EPS = 1e-6;

/** Below this fraction of ‖W_i‖² the factored n_i² has lost too many digits: recompute the row directly. */
export const CANCEL = 1e-2;

export interface DoraOperands {
  /** [out, in] view of the frozen weight (see the file header for each layer kind). */
  readonly W: Tensor;
  /** The stored tensors W, A and B are views of: cache keys (their `version` is what writers bump). */
  readonly weightKey: Tensor;
  readonly aKey: Tensor;
  readonly bKey: Tensor;
  readonly A: Tensor;
  readonly B: Tensor;
  readonly s: number;
}

export type NormForm = "factored" | "direct";

// ---------------------------------------------------------------- weight norm

interface RowNormCache { data: unknown; version: number; value: Float64Array }
const rowNormCache = new WeakMap<Tensor, RowNormCache>();

/** ‖W_i‖² per output row in float64, cached while the frozen weight is unchanged. */
export function frozenRowNormSq(op: DoraOperands): Float64Array {
  const hit = rowNormCache.get(op.weightKey);
  if (hit && hit.data === op.weightKey.data && hit.version === op.weightKey.version) return hit.value;
  const { W } = op;
  const [out, inn] = W.shape as [number, number];
  const d = W.data as Float32Array, s0 = W.strides[0]!, s1 = W.strides[1]!;
  const value = new Float64Array(out);
  for (let i = 0; i < out; i++) {
    let acc = 0;
    for (let j = 0, p = W.offset + i * s0; j < inn; j++, p += s1) acc += d[p]! * d[p]!;
    value[i] = acc;
  }
  rowNormCache.set(op.weightKey, { data: op.weightKey.data, version: op.weightKey.version, value });
  return value;
}

/** n_i² of row i computed directly, in float64 and O(in·r): the fallback for cancelling rows. */
function directRowSq(op: DoraOperands, i: number, Af: Float32Array, Bf: Float32Array): number {
  const { W, s } = op;
  const inn = W.shape[1]!, r = op.A.shape[0]!;
  const d = W.data as Float32Array, s1 = W.strides[1]!;
  let acc = 0;
  for (let j = 0, p = W.offset + i * W.strides[0]!; j < inn; j++, p += s1) {
    let ba = 0;
    for (let k = 0; k < r; k++) ba += Bf[i * r + k]! * Af[k * inn + j]!;
    const v = d[p]! + s * ba;
    acc += v * v;
  }
  return acc;
}

/** n = ‖W + s·BA‖ per row, floored at NORM_EPS, as float32 (a constant: no graph). */
export function weightNorm(op: DoraOperands, form: NormForm = "factored"): Float32Array {
  return noGrad(() => (form === "factored" ? factoredNorm(op) : directNorm(op)));
}

function factoredNorm(op: DoraOperands): Float32Array {
  const { W, A, B, s } = op;
  const out = W.shape[0]!, r = A.shape[0]!;
  const wsq = frozenRowNormSq(op);
  const wa = matmul(W, A.T).f32();                 // [out, r] = W Aᵀ, one GEMM reading W once
  const baa = matmul(B, matmul(A, A.T)).f32();     // [out, r] = B·(A Aᵀ)
  const Bf = B.f32(), Af = A.f32();
  const n = new Float32Array(out);
  for (let i = 0; i < out; i++) {
    let cross = 0, quad = 0;
    for (let k = 0; k < r; k++) {
      const b = Bf[i * r + k]!;
      cross += wa[i * r + k]! * b;
      quad += baa[i * r + k]! * b;
    }
    let sq = wsq[i]! + 2 * s * cross + s * s * quad;
    if (!(sq >= CANCEL * wsq[i]!)) sq = directRowSq(op, i, Af, Bf); // cancellation (or NaN): exact row
    n[i] = Math.max(Math.sqrt(sq), NORM_EPS);
  }
  return n;
}

function directNorm(op: DoraOperands): Float32Array {
  const { W, s } = op;
  const [out, inn] = W.shape as [number, number];
  const delta = matmul(op.B, op.A).f32(); // [out, in]: allowed here (init, merge, tests), never in a training step
  const d = W.data as Float32Array, s0 = W.strides[0]!, s1 = W.strides[1]!;
  const n = new Float32Array(out);
  for (let i = 0; i < out; i++) {
    let acc = 0;
    for (let j = 0, p = W.offset + i * s0; j < inn; j++, p += s1) {
      const v = d[p]! + s * delta[i * inn + j]!;
      acc += v * v;
    }
    n[i] = Math.max(Math.sqrt(acc), NORM_EPS);
  }
  return n;
}

/** n as a graph node of A and B (for `detachNorm: false`): builds W + s·BA, as PEFT does. */
export function weightNormGraph(op: DoraOperands): Tensor {
  const v = add(op.W, mul(matmul(op.B, op.A), op.s));
  return maximum(norm(v, 1), NORM_EPS);
}

/** Magnitude init (PEFT `DoraLinearLayer.update_layer`): m = ‖W + s·BA‖ per row, float32. */
export function magnitudeInit(op: DoraOperands): Float32Array {
  return weightNorm(op, "direct");
}

// ---------------------------------------------------------------- forward

/**
 * The scale m/n as a graph node (gradient to m; to A, B too when `n` is a Tensor in the graph).
 * `shape` is how the layer broadcasts it ([out] for Linear, [1, O, 1, 1] for Conv2d).
 */
export function magnitudeScale(m: Tensor, n: Float32Array | Tensor, shape: readonly number[]): Tensor {
  const nt = n instanceof Tensor ? n.reshape(shape) : new Tensor(n, shape);
  return div(m.reshape(shape), nt);
}

/** m/n as plain values (eval caching, merge). */
export function scaleValues(m: Tensor, n: Float32Array): Float32Array {
  const mf = m.f32(), out = new Float32Array(n.length);
  for (let i = 0; i < n.length; i++) out[i] = mf[i]! / n[i]!;
  return out;
}

export interface DoraForwardParts {
  /** x·Wᵀ without bias (the base GEMM on the un-dropped input). */
  readonly baseNoBias: Tensor;
  /** s·B(A x̃), already scaled by s. */
  readonly lora: Tensor;
  /** m/n, broadcastable against the outputs. */
  readonly scale: Tensor;
  readonly bias: Tensor | null;
  /** x̃·Wᵀ on the dropped-out input; null when dropout is off (then baseNoBias serves, PEFT's fast path). */
  readonly baseDropped: Tensor | null;
}

/**
 * y = base(x) + (m/n − 1)·(x̃Wᵀ) + (m/n)·s·B(A x̃) (+ bias, never rescaled).
 * Without dropout this is (m/n)·(xWᵀ + s·BAx) + b: one base GEMM, no second pass over W.
 */
export function doraCombine(p: DoraForwardParts): Tensor {
  let y: Tensor;
  if (p.baseDropped === null) {
    y = mul(add(p.baseNoBias, p.lora), p.scale);
  } else {
    y = add(add(p.baseNoBias, mul(p.baseDropped, sub(p.scale, 1))), mul(p.lora, p.scale));
  }
  return p.bias ? add(y, p.bias) : y;
}

// ---------------------------------------------------------------- eval cache

/**
 * Eval-mode cache of m/n. Valid while A, B, m and W are the same tensors with the same buffers and
 * `version`s (optimizers and merges bump `version`; replacing `data` changes identity). `invalidate()`
 * drops it explicitly; the owning layer also drops it on train()/eval().
 */
export class DoraScaleCache {
  private normKey: unknown[] | null = null;
  private n: Float32Array | null = null;
  private scaleKey: unknown[] | null = null;
  private sc: Float32Array | null = null;

  /** n for the current A, B, W (recomputed only when one of them changed). */
  norm(op: DoraOperands): Float32Array {
    const key = [op.aKey, op.aKey.data, op.aKey.version, op.bKey, op.bKey.data, op.bKey.version,
      op.weightKey, op.weightKey.data, op.weightKey.version, op.s];
    if (this.n && sameKey(key, this.normKey)) return this.n;
    this.n = weightNorm(op, "factored");
    this.normKey = key;
    this.sc = null;
    return this.n;
  }

  /** m/n for the current A, B, W and m. */
  scale(op: DoraOperands, m: Tensor): Float32Array {
    const n = this.norm(op);
    const key = [n, m, m.data, m.version];
    if (this.sc && sameKey(key, this.scaleKey)) return this.sc;
    this.sc = scaleValues(m, n);
    this.scaleKey = key;
    return this.sc;
  }

  invalidate(): void { this.normKey = null; this.n = null; this.scaleKey = null; this.sc = null; }
}

function sameKey(a: readonly unknown[], b: readonly unknown[] | null): boolean {
  return b !== null && a.length === b.length && a.every((v, i) => v === b[i]);
}

// ---------------------------------------------------------------- merge / unmerge

/** Writes f(i, j, w_ij) into the [out, in] view W in place (W's own layout) and bumps the weight's version. */
function rewrite(op: DoraOperands, f: (i: number, w: number, deltaIj: number) => number): void {
  const { W } = op;
  const [out, inn] = W.shape as [number, number];
  const delta = matmul(op.B, op.A).f32();
  const d = W.data as Float32Array, s0 = W.strides[0]!, s1 = W.strides[1]!;
  for (let i = 0; i < out; i++) {
    for (let j = 0, p = W.offset + i * s0; j < inn; j++, p += s1) d[p] = f(i, d[p]!, delta[i * inn + j]!);
  }
  op.weightKey.version++;
}

/**
 * Merge in place: W ← (m/n)·(W + s·BA). Returns n, which the caller keeps for the exact unmerge
 * (PEFT caches it as well: after merging, n can no longer be computed from W).
 */
export function doraMerge(op: DoraOperands, m: Tensor): Float32Array {
  return noGrad(() => {
    const n = weightNorm(op, "direct");
    const sc = scaleValues(m, n);
    rewrite(op, (i, w, dij) => sc[i]! * (w + op.s * dij));
    return n;
  });
}

/** Unmerge in place with the n cached at merge: W ← W'/(m/n) − s·BA. */
export function doraUnmerge(op: DoraOperands, m: Tensor, nAtMerge: Float32Array): void {
  noGrad(() => {
    const sc = scaleValues(m, nAtMerge);
    rewrite(op, (i, w, dij) => w / sc[i]! - op.s * dij);
  });
}

/** Plain LoRA merge / unmerge in place: W ± s·BA (kept here beside DoRA's so merges share one writer). */
export function loraMergeDelta(op: DoraOperands, sign: 1 | -1): void {
  noGrad(() => rewrite(op, (_i, w, dij) => w + sign * op.s * dij));
}
