/**
 * Linear4bit: a frozen Linear whose weight is held in NF4 (bitsandbytes `bnb.nn.Linear4bit` with
 * `quant_type="nf4"`). y = x·Ŵᵀ + b through the fused dequantising GEMM; backward gives dX only (the weight is
 * frozen; the bias, if any, is an ordinary parameter). The 4-bit weight is not a Tensor parameter: it is
 * `qweight`, so optimisers and state dicts never see it; `toLinear()` gives the dequantised float32 layer.
 */
import { Tensor, add } from "../tensor/index.js";
import { type Nf4Weight, type QuantizeOptions, dequantizeNf4, linearNf4, quantizeNf4 } from "../quant/index.js";
import { Module } from "./module.js";
import { Linear } from "./layers.js";

export class Linear4bit extends Module {
  readonly inFeatures: number;
  readonly outFeatures: number;

  constructor(readonly qweight: Nf4Weight, bias: Tensor | null = null) {
    super();
    [this.outFeatures, this.inFeatures] = qweight.shape;
    if (bias && (bias.ndim !== 1 || bias.shape[0] !== this.outFeatures)) {
      throw new Error(`Linear4bit: bias [${bias.shape.join(", ")}] does not fit weight [${qweight.shape.join(", ")}]`);
    }
    this.registerParameter("bias", bias);
  }

  /** Quantises a Linear's weight (its bias stays float32). */
  static fromLinear(l: Linear, opts: QuantizeOptions = {}): Linear4bit {
    const w = l.weight;
    return new Linear4bit(quantizeNf4(w.f32(), [w.shape[0]!, w.shape[1]!], opts), l.bias);
  }

  get bias(): Tensor | null { return this.paramOrNull("bias"); }

  /** x·Ŵᵀ, no bias. */
  forwardNoBias(x: Tensor): Tensor { return linearNf4(x, this.qweight); }

  forward(x: Tensor): Tensor {
    const y = linearNf4(x, this.qweight);
    return this.bias ? add(y, this.bias) : y;
  }

  /** The dequantised layer (float32 Ŵ; re-quantising it would round again). */
  toLinear(): Linear {
    const l = new Linear(0, 0, false);
    Object.assign(l as unknown as { inFeatures: number; outFeatures: number }, { inFeatures: this.inFeatures, outFeatures: this.outFeatures });
    l.registerParameter("weight", dequantizeNf4(this.qweight));
    l.registerParameter("bias", this.bias);
    l.training = this.training;
    return l;
  }
}
