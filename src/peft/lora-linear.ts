/**
 * LoRA/DoRA around nn.Linear (weight [out, in]) and GPT-2's Conv1D (weight [in, out], PEFT's
 * fan_in_fan_out). A [r, in], B [out, r]; y = base(x) + s·(x̃ Aᵀ) Bᵀ. The transposed views go to the GEMM as
 * forms, so neither layout is copied. PEFT `lora.Linear`.
 */
import { Tensor, matmul, mul } from "../tensor/index.js";
import { Conv1D, Linear, Module } from "../nn/index.js";
import type { DoraOperands } from "./dora.js";
import { LoraLayer, type LoraAdapter } from "./layer.js";

export class LoraLinear extends LoraLayer {
  readonly kind = "linear" as const;
  /** True when the weight is stored [in, out] (Conv1D). */
  readonly fanInFanOut: boolean;

  constructor(path: string, base: Module, fanInFanOut: boolean) {
    super(path, base);
    const isConv1D = base instanceof Conv1D;
    if (!(base instanceof Linear) && !isConv1D) throw new Error(`${path}: LoraLinear wraps Linear or Conv1D, got ${base.constructor.name}`);
    // PEFT corrects a wrong fan_in_fan_out with a warning; the stored layout decides
    if (fanInFanOut !== isConv1D) {
      process.emitWarning(`${path}: fan_in_fan_out=${fanInFanOut} does not fit ${base.constructor.name} ` +
        `(weight ${isConv1D ? "[in, out]" : "[out, in]"}); using fan_in_fan_out=${isConv1D}, as PEFT does`);
    }
    this.fanInFanOut = isConv1D;
  }

  features(): { inF: number; outF: number } {
    const w = this.weight;
    return this.fanInFanOut ? { inF: w.shape[0]!, outF: w.shape[1]! } : { inF: w.shape[1]!, outF: w.shape[0]! };
  }

  baseNoBias(x: Tensor): Tensor {
    return matmul(x, this.fanInFanOut ? this.weight : this.weight.T);
  }

  loraOut(a: LoraAdapter, x: Tensor): Tensor {
    // s applied to the small [.., r] activation, not to the [.., out] output
    return matmul(mul(matmul(x, a.A.T), a.scaling), a.B.T);
  }

  doraOperands(a: LoraAdapter): DoraOperands {
    return { W: this.fanInFanOut ? this.weight.T : this.weight, weightKey: this.weight, A: a.A, B: a.B, aKey: a.A, bKey: a.B, s: a.scaling };
  }

  scaleShape(): number[] { return [this.features().outF]; }

  protected abShapes(r: number): { a: number[]; b: number[] } {
    const { inF, outF } = this.features();
    return { a: [r, inF], b: [outF, r] };
  }

  protected registerAB(name: string, A: Tensor, B: Tensor): void {
    for (const [attr, t] of [["lora_A", A], ["lora_B", B]] as const) {
      const m = new Module();
      m.registerParameter("weight", t);
      this.container(attr).registerModule(name, m);
    }
  }

  diskTensors(name: string): [string, Tensor][] {
    const a = this.adapters.get(name)!;
    const out: [string, Tensor][] = [["lora_A.weight", a.A], ["lora_B.weight", a.B]];
    if (a.magnitude) out.push(["lora_magnitude_vector", a.magnitude]);
    return out;
  }
}
