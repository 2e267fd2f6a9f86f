/**
 * LoRA/DoRA around nn.Linear (weight [out, in]) and GPT-2's Conv1D (weight [in, out], PEFT's
 * fan_in_fan_out). A [r, in], B [out, r]; y = base(x) + s·(x̃ Aᵀ) Bᵀ. The transposed views go to the GEMM as
 * forms, so neither layout is copied. PEFT `lora.Linear`; around a 4-bit `Linear4bit` it is PEFT's `lora.Linear4bit`
 * (QLoRA / QDoRA): the base runs through the fused NF4 GEMM and DoRA reads the quantised weight (dora.ts).
 */
import { Tensor, matmul, mul, record, uninitF32, type Rng } from "../tensor/index.js";
import { Conv1D, Linear, Linear4bit, Module } from "../nn/index.js";
import { dequantizeNf4 } from "../quant/index.js";
import type { DoraOperands } from "./dora.js";
import { LoraLayer, type FusedOperands, type LoraAdapter } from "./layer.js";
import { dropoutTuning, gemm, gemmScaled, lowRankGradA, lowRankGrads, lowRankInput, subtractAtDrops, zeroDropped } from "./flat.js";
import { getBackend } from "../backend/index.js";

let warnedMerge4bit = false;

export class LoraLinear extends LoraLayer {
  readonly kind = "linear" as const;
  /** True when the weight is stored [in, out] (Conv1D). */
  readonly fanInFanOut: boolean;

  constructor(path: string, base: Module, fanInFanOut: boolean) {
    super(path, base);
    const isConv1D = base instanceof Conv1D;
    if (!(base instanceof Linear) && !isConv1D && !(base instanceof Linear4bit)) {
      throw new Error(`${path}: LoraLinear wraps Linear, Linear4bit or Conv1D, got ${base.constructor.name}`);
    }
    // PEFT corrects a wrong fan_in_fan_out with a warning; the stored layout decides
    if (fanInFanOut !== isConv1D) {
      process.emitWarning(`${path}: fan_in_fan_out=${fanInFanOut} does not fit ${base.constructor.name} ` +
        `(weight ${isConv1D ? "[in, out]" : "[out, in]"}); using fan_in_fan_out=${isConv1D}, as PEFT does`);
    }
    this.fanInFanOut = isConv1D;
  }

  /** The 4-bit base, or null. */
  get base4bit(): Linear4bit | null { return this.baseLayer instanceof Linear4bit ? this.baseLayer : null; }

  features(): { inF: number; outF: number } {
    const q = this.base4bit;
    if (q) return { inF: q.inFeatures, outF: q.outFeatures };
    const w = this.weight;
    return this.fanInFanOut ? { inF: w.shape[0]!, outF: w.shape[1]! } : { inF: w.shape[1]!, outF: w.shape[0]! };
  }

  baseNoBias(x: Tensor): Tensor {
    const q = this.base4bit;
    if (q) return q.forwardNoBias(x);
    return matmul(x, this.fanInFanOut ? this.weight : this.weight.T);
  }

  loraOut(a: LoraAdapter, x: Tensor): Tensor {
    // s applied to the small [.., r] activation, not to the [.., out] output
    return matmul(mul(matmul(x, a.A.T), a.scaling), a.B.T);
  }

  override fusedOperands(): FusedOperands | null {
    if (this.base4bit) return null; // the generic graph runs the fused NF4 GEMM
    const w = this.weight, b = this.bias;
    if (w.dtype !== "float32" || !w.isContiguous() || w.requiresGrad || (b && (b.requiresGrad || !b.isContiguous()))) return null;
    return { weight: w, fanInFanOut: this.fanInFanOut, bias: b, ...this.features() };
  }

  protected override fusedLora(a: LoraAdapter, x: Tensor, fo: FusedOperands): Tensor | null {
    const p = this.training ? a.dropout : 0;
    return loraLinear(x, fo, a.A, a.B, a.scaling, p > 0 ? { p, rng: a.rng } : null);
  }

  doraOperands(a: LoraAdapter): DoraOperands {
    const q = this.base4bit?.qweight;
    if (q) {
      // Ŵ is built only if a caller reads W (detachNorm: false); norms use `quant`
      return { get W() { return dequantizeNf4(q); }, quant: q, weightKey: q, A: a.A, B: a.B, aKey: a.A, bKey: a.B, s: a.scaling };
    }
    return { W: this.fanInFanOut ? this.weight.T : this.weight, weightKey: this.weight, A: a.A, B: a.B, aKey: a.A, bKey: a.B, s: a.scaling };
  }

  /**
   * Merging into a 4-bit base first swaps it for its dequantised float32 Linear (PEFT's Linear4bit merge
   * dequantises too, then re-quantises; we keep float32: re-quantising would round the merged weight again).
   */
  override merge(names: readonly string[] = this.activeAdapters): void {
    const q = this.base4bit;
    if (q && names.some((n) => !this.merged.includes(n))) {
      if (!warnedMerge4bit) {
        warnedMerge4bit = true;
        process.emitWarning(`${this.path} (and any other 4-bit layer merged in this process): merging into a 4-bit (NF4) base ` +
          `dequantises the weight to float32 first, and it stays float32 (re-quantising the merged weight would round it again)`);
      }
      this.baseLayer = q.toLinear();
      this.registerModule("base_layer", this.baseLayer);
    }
    super.merge(names);
  }

  scaleShape(): number[] { return [this.features().outF]; }

  protected abShapes(r: number): { a: number[]; b: number[] } {
    const { inF, outF } = this.features();
    return { a: [r, inF], b: [outF, r] };
  }

}

/**
 * Plain LoRA on a Linear/Conv1D as one autograd op: y = x·Wᵀ + s·(x̃Aᵀ)Bᵀ + b, the low-rank product
 * accumulated into the base GEMM's output buffer (one [T, out] allocation, nothing of that size saved).
 * Backward: dx = g·W + mask ⊙ (keep·(s·g·B)·A), dA = s·(g·B)ᵀ·x̃, dB = gᵀ·(s·x̃Aᵀ); no dW (W is frozen). gᵀ·(s·x̃Aᵀ) and
 * g·B come from one pass over g (flat.ts `lowRankGrads`).
 * With dropout the mask is a drop list (flat.ts `Drops`): sparse path (small p) dx = g·W + keep·(s·gB)·A, then
 * keep·(s·gB)·A taken back at the dropped (t, j) (Backend.sampledGemm); dense path: the masked product.
 * x̃ is rebuilt from x and the drops for dA rather than kept. Same maths as the generic graph in `LoraLayer`.
 */
export function loraLinear(x: Tensor, fo: FusedOperands, A: Tensor, B: Tensor, s: number,
  dropout: { p: number; rng: Rng } | null): Tensor {
  const { weight, fanInFanOut: fifo, bias, inF, outF } = fo;
  const r = A.shape[0]!, T = x.numel / inF;
  const xf = x.f32(), Wf = weight.data as Float32Array, wOff = weight.offset, Af = A.f32(), Bf = B.f32();
  const { u: us, drops } = lowRankInput(xf, Af, T, inF, r, s, dropout, dropoutTuning.loraSparseMaxP); // us = s·x̃Aᵀ [T, r]
  const y = uninitF32(T * outF);                            // written in full: bias rows, or the first GEMM
  if (bias) { const bf = bias.f32(); for (let t = 0; t < T; t++) y.set(bf, t * outF); }
  gemm(fifo ? "nn" : "nt", T, outF, inF, xf, Wf, y, bias !== null, 0, wOff); // x·Wᵀ (+ b)
  gemm("nt", T, outF, r, us, Bf, y, true);                  // + s·x̃AᵀBᵀ
  const out = new Tensor(y, [...x.shape.slice(0, -1), outF]);
  return record(out, "lora_linear", [x, A, B], (grad, need) => {
    const g = grad.f32();
    let dx: Tensor | null = null, dA: Tensor | null = null, dB: Tensor | null = null;
    // gᵀ·us [out, r] (dB) and vs = s·g·B [T, r] (s scales B's rows as the kernel reads them: no pass over vs)
    const { gu, v: vs } = lowRankGrads(g, us, Bf, new Float32Array(outF).fill(s), T, outF, r,
      { gu: need[2] === true, v: need[0] === true || need[1] === true, dot: null });
    if (gu) dB = new Tensor(gu, B.shape);
    if (vs) {
      if (need[1]) dA = new Tensor(lowRankGradA(vs, xf, drops, T, inF, r), A.shape); // (s·gB)ᵀ·x̃ [r, in]
      if (need[0]) {
        const d = uninitF32(T * inF);
        gemm(fifo ? "nt" : "nn", T, inF, outF, g, Wf, d, false, 0, wOff); // g·W
        if (drops && drops.sparse) {
          // + keep·(s·gB)·A everywhere (keep rides on A's rows as the GEMM packs them: no scaled copy of vs)
          gemmScaled("nn", T, inF, r, vs, Af, new Float32Array(r).fill(drops.keep), "k", d, true);
          const at = new Float32Array(drops.cols.length);   // (s·gB)·A at the dropped (t, j)
          getBackend().sampledGemm("nt", at, vs, null, drops.rowPtr, drops.cols, T, r, inF, Af, 0, false);
          subtractAtDrops(d, at, drops, T, inF);
        } else if (drops) {
          const low = new Float32Array(T * inF);
          gemm("nn", T, inF, r, vs, Af, low, false);
          zeroDropped(low, drops, T, inF);
          for (let i = 0; i < d.length; i++) d[i] = d[i]! + drops.keep * low[i]!;
        } else {
          gemm("nn", T, inF, r, vs, Af, d, true);           // + (s·gB)·A
        }
        dx = new Tensor(d, x.shape);
      }
    }
    return [dx, dA, dB];
  });
}
