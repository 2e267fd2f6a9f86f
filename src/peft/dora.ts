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
 *           on the tensor, its buffer and its `version`); the rest is one pass over W (Backend.doraNormTerms) up
 *           to rank NORM_KERNEL_MAX_RANK, GEMMs above. Terms are summed in float64; a row whose n_i² falls below
 *           CANCEL·‖W_i‖² (W_i + s·(BA)_i nearly cancels) is recomputed in the direct form.
 *   n_i  ← max(n_i, NORM_EPS)                                 eps floor (see NORM_EPS)
 *   m     = n at init (PEFT update_layer), kept float32          magnitude init
 *   y     = base(x) + (m/n − 1)·(x̃ Wᵀ) + (m/n)·s·B(A x̃)          forward, bias never rescaled
 *           with dropout off (p = 0 or eval) x̃ = x and x̃Wᵀ is base(x) without bias, so one GEMM serves both:
 *           y = (m/n)·(x Wᵀ + s·B A x) + b.
 *   n is a constant for autograd by default (PEFT detaches it; paper §4.3: "we treat ‖V + ΔV‖_c as a
 *   constant", saving memory at −0.2 accuracy). `detachNorm: false` keeps it in the graph (builds W + s·BA).
 *   W'    = (m/n)[:, None]·(W + s·B A)                          merge (in W's own layout)
 *   W     = W'/(m/n_merge) − s·B A                              exact unmerge with the n cached at merge (PEFT)
 *
 * QDoRA (a 4-bit NF4 base, `DoraOperands.quant`): W above is the dequantised Ŵ, as in PEFT (dora.py dequantises the
 * bnb weight before the norm) and Answer.AI's fsdp_qlora. ‖Ŵ_i‖² comes from the quantised weight's cache (computed
 * once at quantisation), Ŵ·Aᵀ from the fused NF4 GEMM, the direct norm dequantises one row at a time; only
 * `detachNorm: false` builds a full Ŵ. Merging needs a float weight: the layer dequantises its base first.
 *
 * Fused Linear op (`doraLinear`, one autograd node; n detached), c = m/n, u = s·x̃Aᵀ [T, r]:
 *   p = 0:  y = c ⊙ (x Wᵀ + u Bᵀ) + b        as x·(diag(c)·W)ᵀ + u·(diag(c)·B)ᵀ + b: c enters W and B as the GEMMs pack them
 *           (Backend.gemmScaled), so DoRA's forward costs LoRA's (no pass over y, no scaled copy of W)
 *   p > 0:  y = xWᵀ + (c − 1) ⊙ zl + uBᵀ + b,  zl = x̃Wᵀ + uBᵀ  (PEFT; x̃ = keep·x off the drops, keep = 1/(1 − p))
 *   backward (gc = g ⊙ c, vs = s·gc·B):  dB = gcᵀ·u,  dA = vsᵀ·x̃,
 *     dm_i = Σ_t g_ti·z_ti / n_i  with z = (y − b)/c read back from the output (p = 0: nothing [T, out]
 *            is saved besides y, which the graph holds anyway; rows with c_i ≈ 0 recompute z_i exactly)
 *     dx = gc·W + vs·A = g·(diag(c)·W) + vs·A                 (p = 0; c packed into W again, no [T, out] gc)
 *     dx = g·W + keep·mask ⊙ ((g ⊙ (c − 1))·W + vs·A)        (p > 0; mask = 1 off the drops)
 *     gᵀ·u, gc·B and dm's Σ_t g ⊙ z come from one pass over g (flat.ts `lowRankGrads`)
 *   Dropout, sparse path (p ≤ flat.ts dropoutTuning.sparseMaxP; the drops D as CSR rows, S = x on D, density p):
 *   x̃ = keep·(x − S), so x̃Wᵀ = keep·(P − S·Wᵀ) with P = xWᵀ the one base GEMM, and with a = 1 + keep·(c − 1):
 *     y  = a ⊙ P − keep·(c − 1) ⊙ (S·Wᵀ) + c ⊙ uBᵀ + b        (a packed into W, Backend.sparseGemm adds S·Wᵀ)
 *     dm: Σ_t g·zl = (keep·Σ g·(y − b) − keep·Σ g·(S·Wᵀ) + (1 − keep)·Σ g·uBᵀ) / a  (nothing [T, out] saved;
 *         Σ g·uBᵀ from gᵀu, Σ g·(S·Wᵀ) without forming it; rows with |a| small recompute exactly)
 *     dx = g·(diag(a)·W) + keep·vs·A − keep·[D] ⊙ G,  G = (g ⊙ (c − 1))·W + vs·A needed only on D (Backend.sampledGemm)
 *     u  = s·keep·(xAᵀ − S·Aᵀ),  dA = keep·(vsᵀ·x − (Sᵀ·vs)ᵀ)   (flat.ts; no x̃ is built)
 *   so one base-size GEMM forward and one backward, as LoRA, plus sparse passes costing ~p of a GEMM's FLOPs
 *   (bound by reading W's panels: ~0.2 GEMM each at p = 0.05); the dense path (large p) runs the products on x̃.
 */
import {
  Tensor, add, div, matmul, maximum, mul, noGrad, norm, record, sub, uninitF32, type Rng,
} from "../tensor/index.js";
import type { FusedOperands } from "./layer.js";
import { type Nf4Weight, nf4TimesT } from "../quant/index.js";
import { dropInput, gemm, gemmScaled, lowRankGradA, lowRankGrads, lowRankInput, subtractAtDrops, zeroDropped, type Drops } from "./flat.js";
import { getBackend } from "../backend/index.js";

/**
 * Floor on the weight norm n. PEFT has none, so a zero row of W + s·BA gives 0/0 = NaN (peft#2049, Llama-3.1
 * o_proj). With the floor, such a row gets m = n = NORM_EPS at init and a finite scale m/n; any row whose true
 * norm is ≥ 1e-6 (every non-degenerate float32 weight row) is unaffected.
 */
export const NORM_EPS = 1e-6;

/** Below this fraction of ‖W_i‖² the factored n_i² has lost too many digits: recompute the row directly. */
export const CANCEL = 1e-2;

/** What caches key on: the stored weight (a Tensor, or a 4-bit base's Nf4Weight), its buffer and `version`. */
export interface WeightKey { readonly data: unknown; version: number }

export interface DoraOperands {
  /** [out, in] view of the frozen weight (see the file header for each layer kind); Ŵ, built on access, for 4-bit. */
  readonly W: Tensor;
  /** The 4-bit base (QDoRA): when set, norms read it instead of W. */
  readonly quant?: Nf4Weight;
  /** The stored tensors W, A and B are views of: cache keys (their `version` is what writers bump). */
  readonly weightKey: WeightKey;
  readonly aKey: Tensor;
  readonly bKey: Tensor;
  readonly A: Tensor;
  readonly B: Tensor;
  readonly s: number;
}

export type NormForm = "factored" | "direct";

// ---------------------------------------------------------------- weight norm

interface RowNormCache { data: unknown; version: number; value: Float64Array }
const rowNormCache = new WeakMap<WeightKey, RowNormCache>();

/** ‖W_i‖² per output row in float64, cached while the frozen weight is unchanged. */
export function frozenRowNormSq(op: DoraOperands): Float64Array {
  if (op.quant) return op.quant.rowNormSq; // frozen 4-bit base: computed at quantisation
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
  const { s } = op;
  const r = op.A.shape[0]!;
  const { d, off, s1, inn } = rowView(op, i);
  let acc = 0;
  for (let j = 0, p = off; j < inn; j++, p += s1) {
    let ba = 0;
    for (let k = 0; k < r; k++) ba += Bf[i * r + k]! * Af[k * inn + j]!;
    const v = d[p]! + s * ba;
    acc += v * v;
  }
  return acc;
}

/** Row i of W as (buffer, offset, stride, length): a view of W, or one dequantised row of a 4-bit base. */
function rowView(op: DoraOperands, i: number): { d: Float32Array; off: number; s1: number; inn: number } {
  if (op.quant) {
    const inn = op.quant.shape[1];
    return { d: op.quant.dequantizeRow(i, new Float32Array(inn)), off: 0, s1: 1, inn };
  }
  const W = op.W;
  return { d: W.data as Float32Array, off: W.offset + i * W.strides[0]!, s1: W.strides[1]!, inn: W.shape[1]! };
}

/** [out, in] of W (without building Ŵ for a 4-bit base). */
function outIn(op: DoraOperands): [number, number] {
  return op.quant ? [op.quant.shape[0], op.quant.shape[1]] : [op.W.shape[0]!, op.W.shape[1]!];
}

/** n = ‖W + s·BA‖ per row, floored at NORM_EPS, as float32 (a constant: no graph). */
export function weightNorm(op: DoraOperands, form: NormForm = "factored"): Float32Array {
  return noGrad(() => (form === "factored" ? factoredNorm(op) : directNorm(op)));
}

function factoredNorm(op: DoraOperands): Float32Array {
  const out = outIn(op)[0];
  const wsq = frozenRowNormSq(op);
  const terms = lowRankNormTerms(op);
  const n = new Float32Array(out);
  for (let i = 0; i < out; i++) {
    let sq = wsq[i]! + terms[i]!;
    if (!(sq >= CANCEL * wsq[i]!)) sq = directRowSq(op, i, op.A.f32(), op.B.f32()); // cancellation (or NaN): exact row
    n[i] = Math.max(Math.sqrt(sq), NORM_EPS);
  }
  return n;
}

/**
 * Up to this rank the per-step norm terms come from Backend.doraNormTerms (one pass over W, its 16 lanes the ranks,
 * nothing [out, r] allocated); above it from GEMMs, whose blocking wins once W·Aᵀ is wider than one register of
 * ranks. Measured at 2048², 1 thread, two runs (ms, native kernel vs GEMMs): r 16 1.75 / 2.24 vs 2.36 / 2.76,
 * r 32 2.33 / 3.54 vs 2.44 / 2.92, r 64 5.59 / 7.49 vs 4.59 / 5.16, r 256 41.5 / 48.0 vs 16.2 / 18.1.
 */
export const NORM_KERNEL_MAX_RANK = 16;

/**
 * n_i² − ‖W_i‖² = 2s·Σ_k (W Aᵀ)_ik B_ik + s²·Σ_k (B·AAᵀ)_ik B_ik per row, float64. It runs every training step: a
 * float32 weight (a Linear's [out, in] or a Conv1D's transposed view) of rank ≤ NORM_KERNEL_MAX_RANK goes to
 * Backend.doraNormTerms; otherwise W Aᵀ, A Aᵀ and B·AAᵀ are GEMMs (weightTimesAT).
 */
function lowRankNormTerms(op: DoraOperands): Float64Array {
  const { A, B, s } = op;
  const [out, inn] = outIn(op), r = A.shape[0]!;
  const Af = A.f32(), Bf = B.f32();
  const terms = new Float64Array(out);
  const W = op.quant ? null : op.W;
  if (W && W.dtype === "float32" && r <= NORM_KERNEL_MAX_RANK) {
    getBackend().doraNormTerms(terms, W.data as Float32Array, W.offset, W.strides[0]!, W.strides[1]!, Af, Bf, s, out, inn, r);
    return terms;
  }
  const { wa, waRowStride, waColStride } = weightTimesAT(op); // (W Aᵀ)_ik = wa[i·waRowStride + k·waColStride]
  const aat = new Float32Array(r * r), baa = new Float32Array(out * r);
  gemm("nt", r, r, inn, Af, Af, aat, false); // A Aᵀ [r, r]
  gemm("nn", out, r, r, Bf, aat, baa, false); // B·(A Aᵀ) [out, r]
  for (let i = 0; i < out; i++) {
    let cross = 0, quad = 0;
    for (let k = 0; k < r; k++) {
      cross += wa[i * waRowStride + k * waColStride]! * Bf[i * r + k]!;
      quad += baa[i * r + k]! * Bf[i * r + k]!;
    }
    terms[i] = 2 * s * cross + s * s * quad;
  }
  return terms;
}

/**
 * W Aᵀ [out, r] in one product reading W once, straight on the buffers: W stored [out, in] → (W Aᵀ) by the "nt"
 * GEMM; W a transposed view of a stored [in, out] (Conv1D, embeddings) → A·stored = (W Aᵀ)ᵀ [r, out] by "nn",
 * read with swapped strides; 4-bit → the fused NF4 kernel; anything else → tensor matmul.
 */
function weightTimesAT(op: DoraOperands): { wa: Float32Array; waRowStride: number; waColStride: number } {
  const { A } = op;
  const r = A.shape[0]!;
  if (op.quant) return { wa: nf4TimesT(op.quant, A).f32(), waRowStride: r, waColStride: 1 };
  const W = op.W, [out, inn] = W.shape as [number, number];
  if (W.dtype === "float32") {
    const Wf = W.data as Float32Array, Af = A.f32();
    if (W.strides[0] === inn && W.strides[1] === 1) {
      const wa = new Float32Array(out * r);
      gemm("nt", out, r, inn, Wf, Af, wa, false, W.offset);
      return { wa, waRowStride: r, waColStride: 1 };
    }
    if (W.strides[0] === 1 && W.strides[1] === out) {
      const wa = new Float32Array(r * out);
      gemm("nn", r, out, inn, Af, Wf, wa, false, 0, W.offset);
      return { wa, waRowStride: 1, waColStride: out };
    }
  }
  return { wa: matmul(W, A.T).f32(), waRowStride: r, waColStride: 1 };
}

function directNorm(op: DoraOperands): Float32Array {
  const { s } = op;
  const [out, inn] = outIn(op);
  const delta = matmul(op.B, op.A).f32(); // [out, in]: allowed here (init, merge, tests), never in a training step
  const n = new Float32Array(out);
  for (let i = 0; i < out; i++) {
    const { d, off, s1 } = rowView(op, i);
    let acc = 0;
    for (let j = 0, p = off; j < inn; j++, p += s1) {
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

/**
 * Magnitude init (PEFT `DoraLinearLayer.update_layer`): m = ‖W + s·BA‖ per row, float32, in the factored form
 * (cached ‖W_i‖², one W·Aᵀ, float64, exact rows where it cancels): no out×in product at load, so the init does
 * not set the process's peak memory; it agrees with the direct form to float32 rounding (layer tests).
 */
export function magnitudeInit(op: DoraOperands): Float32Array {
  return weightNorm(op, "factored");
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

// ---------------------------------------------------------------- fused Linear op

/**
 * dst[i·cols + k] = src[i·cols + k]·f[i] (dst may be src). The fused ops' small per-row loops live in functions
 * like this one: inside the large backward closures V8 left them unoptimised (~100 ns an element, several ms a step).
 */
function scaleRows(dst: Float32Array, src: Float32Array, f: Float32Array, rows: number, cols: number): Float32Array {
  for (let i = 0; i < rows; i++) {
    const fi = f[i]!;
    for (let k = i * cols; k < (i + 1) * cols; k++) dst[k] = src[k]! * fi;
  }
  return dst;
}

/** keep·c_i + shift per column (a = 1 + keep·(c − 1) with shift 1 − keep; c − 1 with keep 1, shift −1). */
function columnAffine(c: Float32Array, keep: number, shift: number): Float32Array {
  const out = new Float32Array(c.length);
  for (let i = 0; i < c.length; i++) out[i] = keep * c[i]! + shift;
  return out;
}

/** out[i] = a[i] / b[i]. */
function divideInto(out: Float32Array, a: Float32Array, b: Float32Array): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i]! / b[i]!;
}

/** Σ_k p[i·r + k]·q[i·r + k] per row i of two [rows, r] buffers. */
function rowDots(p: Float32Array, q: Float32Array, rows: number, r: number): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let acc = 0;
    for (let k = i * r; k < (i + 1) * r; k++) acc += p[k]! * q[k]!;
    out[i] = acc;
  }
  return out;
}

/**
 * dm read back from the output's column dots (doraLinear's backward): dm_i = (keep·sy_i − keep·sw_i + (1 − keep)·l_i)
 * / (a_i·n_i), which is sy_i / (c_i·n_i) = sy_i / m_i without dropout (keep = 1, sw and l absent). Returns the rows
 * whose |a_i| is too small to read back from; the caller recomputes those.
 */
function readBack(d: Float32Array, sy: Float32Array, sw: Float32Array | null, lowRank: Float64Array | null,
  a: Float32Array, n: Float32Array, keep: number): number[] {
  const blind: number[] = [];
  for (let i = 0; i < d.length; i++) {
    if (Math.abs(a[i]!) < SCALE_READBACK_MIN) { blind.push(i); continue; }
    const num = sw && lowRank ? keep * sy[i]! - keep * sw[i]! + (1 - keep) * lowRank[i]! : sy[i]!;
    d[i] = num / (a[i]! * n[i]!);
  }
  return blind;
}

/** Below this |m/n| the output no longer carries z = (y − b)/c to float32 precision: recompute the row. */
const SCALE_READBACK_MIN = 1e-3;

/**
 * DoRA on a frozen Linear/Conv1D as one autograd op over x, A, B, m (formulas in the header), n given and
 * detached (paper §4.3, PEFT). Training and eval share it; eval passes the cached n. PEFT `DoraLinearLayer.forward`.
 */
export function doraLinear(x: Tensor, fo: FusedOperands, A: Tensor, B: Tensor, m: Tensor, s: number, n: Float32Array,
  dropout: { p: number; rng: Rng } | null): Tensor {
  const { weight, fanInFanOut: fifo, bias, inF, outF } = fo;
  const r = A.shape[0]!, T = x.numel / inF;
  const xf = x.f32(), Wf = weight.data as Float32Array, wOff = weight.offset, Af = A.f32(), Bf = B.f32();
  const mf = m.f32(), bf = bias ? bias.f32() : null;
  const be = getBackend();
  const c = new Float32Array(outF);
  divideInto(c, mf, n);
  const baseForm = fifo ? "nn" : "nt";
  const { u, drops } = lowRankInput(xf, Af, T, inF, r, s, dropout); // u = s·x̃Aᵀ [T, r]
  const y = uninitF32(T * outF);                            // written in full by the first GEMM (or the bias rows)
  const sparse = drops !== null && drops.sparse, keep = drops ? drops.keep : 1;
  // sparse dropout: y = a ⊙ P − keep·(c − 1) ⊙ (S·Wᵀ) + c ⊙ uBᵀ + b with a = 1 + keep·(c − 1), S = x at the drops
  // (expanding zl = keep·(P − S·Wᵀ) + uBᵀ); p = 0 is the same with keep = 1 and no S: a = c
  const aCol = drops ? columnAffine(c, keep, 1 - keep) : c, cm1 = drops ? columnAffine(c, 1, -1) : null;
  let zl: Float32Array | null = null;
  if (drops === null || sparse) {
    if (bf) for (let t = 0; t < T; t++) y.set(bf, t * outF);
    gemmScaled(baseForm, T, outF, inF, xf, Wf, aCol, "n", y, bf !== null, wOff); // a ⊙ P (+ b): a scales W's rows as packed
    if (drops) be.sparseGemm(baseForm, y, -keep, cm1!, drops.values, drops.rowPtr, drops.cols, T, outF, inF, Wf, wOff, true);
    gemmScaled("nt", T, outF, r, u, Bf, c, "n", y, true);    // + c ⊙ uBᵀ (c scales B's rows as packed)
  } else {
    gemm(baseForm, T, outF, inF, xf, Wf, y, false, 0, wOff); // P = x Wᵀ
    zl = uninitF32(T * outF);                                // dense dropout: zl = x̃Wᵀ + uBᵀ, saved for dm
    gemm(baseForm, T, outF, inF, dropInput(uninitF32(xf.length), xf, drops, T, inF), Wf, zl, false, 0, wOff);
    gemm("nt", T, outF, r, u, Bf, zl, true);
    for (let t = 0, o = 0; t < T; t++) {
      for (let i = 0; i < outF; i++, o++) y[o] = y[o]! + (c[i]! - 1) * zl[o]! + (bf ? bf[i]! : 0);
    }
    gemm("nt", T, outF, r, u, Bf, y, true);                  // + uBᵀ
  }
  const out = new Tensor(y, [...x.shape.slice(0, -1), outF]);
  return record(out, "dora_linear", [x, A, B, m], (grad, need) => {
    const g = grad.f32();
    // gu = gᵀ·u [out, r] (dB, and Σ_t g ⊙ uBᵀ for dm), vs = s·(g ⊙ c)·B [T, r] (s·c scales B's rows), and for dm
    // sy = Σ_t g ⊙ (y − b) (or g ⊙ zl), in one pass over g where the backend can
    const { gu, v: vs, dot: sy } = lowRankGrads(g, u, Bf, columnAffine(c, s, 0), T, outF, r, {
      gu: need[2] === true || (need[3] === true && drops !== null), v: need[0] === true || need[1] === true,
      dot: need[3] ? { z: zl ?? y, bias: zl ? null : bf } : null,
    });
    // sparse dropout: one walk over W's panels gives both G_W = (g ⊙ (c − 1))·W at the drops (for dx) and
    // Σ_t g ⊙ (S·Wᵀ) (for dm)
    let sw: Float32Array | null = null, gw: Float32Array | null = null;
    if (sparse && (need[0] || need[3])) {
      const d = drops!;
      if (need[3]) sw = new Float32Array(outF);
      if (need[0]) {
        gw = new Float32Array(d.cols.length);
        be.sampledGemm(baseForm, gw, g, cm1!, d.rowPtr, d.cols, T, outF, inF, Wf, wOff, false, sw, sw ? d.values : null);
      } else {
        be.sparseGemmDot(baseForm, sw!, g, null, d.values, d.rowPtr, d.cols, T, outF, inF, Wf, wOff);
      }
    }
    let dx: Tensor | null = null, dA: Tensor | null = null, dB: Tensor | null = null, dm: Tensor | null = null;
    if (need[3]) {
      // dm_i = Σ_t g_ti·zl_ti / n_i, zl = x̃Wᵀ + uBᵀ. Read back from y − b = a ⊙ P − keep·(c − 1) ⊙ SW + c ⊙ L
      // (SW = S·Wᵀ, L = uBᵀ): Σ g·zl = (keep·Σ g·(y − b) − keep·Σ g·SW + (1 − keep)·Σ g·L) / a, so nothing
      // [T, out] is saved besides y; p = 0: Σ g·(y − b) / c. Rows with |a| too small to read back recompute.
      const d = new Float32Array(outF);
      if (zl) divideInto(d, sy!, n);
      else {
        const lowRank = drops ? rowDots(Bf, gu!, outF, r) : null; // Σ g·uBᵀ per row, from gᵀu
        for (const i of readBack(d, sy!, sw, lowRank, aCol, n, keep)) d[i] = rowDot(g, xf, Wf, wOff, fifo, u, Bf, i, T, inF, outF, r, drops) / n[i]!;
      }
      dm = new Tensor(d, m.shape);
    }
    if (need[2]) {
      dB = new Tensor(scaleRows(gu!, gu!, c, outF, r), B.shape); // (g ⊙ c)ᵀ·u: after dm, which reads gᵀ·u
    }
    if (vs) {                                                // vs = s·(g ⊙ c)·B: s·c scaled B's rows as read
      if (need[1]) dA = new Tensor(lowRankGradA(vs, xf, drops, T, inF, r), A.shape); // (s·gc·B)ᵀ·x̃ [r, in]
      if (need[0]) dx = new Tensor(doraDx(g, c, aCol, Wf, wOff, fifo, vs, Af, drops, gw, T, inF, outF, r), x.shape);
    }
    return [dx, dA, dB, dm];
  });
}

/** Elements per block of the dense-dropout dx pass: g ⊙ (c − 1) is built a block of rows at a time, never [T, out]. */
export const doraTuning = { dxBlockElems: 1 << 20 };

/**
 * dx without a scaled copy of g: the column factor of g goes into W as the GEMM packs it (`gemmScaled` along k),
 * (g ⊙ f)·W = g·(diag(f)·W), so no [T, out] scratch is written and W is packed once.
 *   p = 0:            dx = (g ⊙ c)·W + vs·A
 *   sparse dropout:   dx = (g ⊙ (1 + keep·(c − 1)))·W + keep·vs·A − keep·[dropped] ⊙ G,
 *                     G = (g ⊙ (c − 1))·W + vs·A needed only at the dropped (t, j) (Backend.sampledGemm; gw holds
 *                     its W part, sampled by the caller)
 *   dense dropout:    dx = g·W + keep·mask ⊙ ((g ⊙ (c − 1))·W + vs·A), the masked term in row blocks of bounded
 *                     scratch (issue 3: DoRA's peak memory within 5% of LoRA's).
 */
function doraDx(g: Float32Array, c: Float32Array, a: Float32Array, Wf: Float32Array, wOff: number, fifo: boolean, vs: Float32Array,
  Af: Float32Array, drops: Drops | null, gw: Float32Array | null, T: number, inF: number, outF: number, r: number): Float32Array {
  const form = fifo ? "nt" : "nn";
  const be = getBackend();
  const dx = uninitF32(T * inF);                            // both paths' first GEMM overwrites it
  if (drops === null || drops.sparse) {
    const keep = drops ? drops.keep : 1;
    gemmScaled(form, T, inF, outF, g, Wf, a, "k", dx, false, wOff); // a = 1 + keep·(c − 1): c when p = 0
    if (keep === 1) gemm("nn", T, inF, r, vs, Af, dx, true);
    else gemmScaled("nn", T, inF, r, vs, Af, new Float32Array(r).fill(keep), "k", dx, true); // + keep·vs·A: keep rides on A's rows
    if (drops) {
      be.sampledGemm("nt", gw!, vs, null, drops.rowPtr, drops.cols, T, r, inF, Af, 0, true); // + vs·A at the drops
      subtractAtDrops(dx, gw!, drops, T, inF);
    }
    return dx;
  }
  const rows = Math.max(1, Math.min(T, Math.floor(doraTuning.dxBlockElems / Math.max(outF, inF))));
  const gs = new Float32Array(Math.min(rows, T) * outF), low = new Float32Array(Math.min(rows, T) * inF);
  gemm(form, T, inF, outF, g, Wf, dx, false, 0, wOff); // g·W
  for (let t0 = 0; t0 < T; t0 += rows) {
    const nr = Math.min(rows, T - t0);
    const gsb = gs.subarray(0, nr * outF), lb = low.subarray(0, nr * inF);
    be.columnScale(gsb, g.subarray(t0 * outF, (t0 + nr) * outF), c, -1, null, nr, outF); // g ⊙ (c − 1)
    gemm(form, nr, inF, outF, gsb, Wf, lb, false, 0, wOff);
    gemm("nn", nr, inF, r, vs.subarray(t0 * r, (t0 + nr) * r), Af, lb, true);
    zeroDropped(lb, drops, nr, inF, t0);
    for (let j = 0, o = t0 * inF; j < nr * inF; j++, o++) dx[o] = dx[o]! + drops.keep * lb[j]!;
  }
  return dx;
}

/**
 * Σ_t g_ti·z_ti with z_i = x̃·W_iᵀ + u·B_iᵀ recomputed for one output row (the fallback where z cannot be read back
 * from y); x̃ = x without dropout, keep·x off the drops with it.
 */
function rowDot(g: Float32Array, x: Float32Array, W: Float32Array, wOff: number, fifo: boolean, u: Float32Array,
  B: Float32Array, i: number, T: number, inF: number, outF: number, r: number, drops: Drops | null): number {
  let acc = 0;
  for (let t = 0; t < T; t++) {
    let z = 0;
    for (let j = 0; j < inF; j++) z += x[t * inF + j]! * W[wOff + (fifo ? j * outF + i : i * inF + j)]!;
    if (drops) {
      for (let e = drops.rowPtr[t]!; e < drops.rowPtr[t + 1]!; e++) {
        const j = drops.cols[e]!;
        z -= x[t * inF + j]! * W[wOff + (fifo ? j * outF + i : i * inF + j)]!;
      }
      z *= drops.keep;
    }
    for (let k = 0; k < r; k++) z += u[t * r + k]! * B[i * r + k]!;
    acc += g[t * outF + i]! * z;
  }
  return acc;
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
  if (op.quant) throw new Error("DoRA/LoRA merge: the base weight is 4-bit (NF4); dequantise the layer first (LoraLinear.merge does)");
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
