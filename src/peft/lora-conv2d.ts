/**
 * LoRA/DoRA around nn.Conv2d (weight [O, C, kh, kw]). PEFT `lora.Conv2d`: lora_A is a Conv2d(C → r) with
 * the base kernel, stride and padding and no bias, weight [r, C, kh, kw]; lora_B a 1×1 Conv2d(r → O), weight
 * [O, r, 1, 1]. y = base(x) + s·conv(conv(x̃, A), B). DoRA's 2-d picture is W.view(O, C·kh·kw); m is [1, O, 1, 1].
 */
import { Tensor, conv2d, mul } from "../tensor/index.js";
import { Conv2d, Module } from "../nn/index.js";
import type { DoraOperands } from "./dora.js";
import { LoraLayer, type LoraAdapter } from "./layer.js";

export class LoraConv2d extends LoraLayer {
  readonly kind = "conv2d" as const;
  private readonly conv: Conv2d;

  constructor(path: string, base: Module) {
    super(path, base);
    if (!(base instanceof Conv2d)) throw new Error(`${path}: LoraConv2d wraps Conv2d, got ${base.constructor.name}`);
    this.conv = base;
  }

  features(): { inF: number; outF: number } {
    return { inF: this.weight.shape[1]!, outF: this.weight.shape[0]! };
  }

  override outputBias(): Tensor | null {
    const b = this.bias;
    return b ? b.reshape([1, b.shape[0]!, 1, 1]) : null;
  }

  baseNoBias(x: Tensor): Tensor { return conv2d(x, this.weight, null, this.conv.stride, this.conv.padding); }

  loraOut(a: LoraAdapter, x: Tensor): Tensor {
    const ax = conv2d(x, a.A, null, this.conv.stride, this.conv.padding);
    return conv2d(mul(ax, a.scaling), a.B);
  }

  doraOperands(a: LoraAdapter): DoraOperands {
    const o = this.weight.shape[0]!;
    return { W: this.weight.reshape([o, -1]), weightKey: this.weight, A: a.A.reshape([a.r, -1]), B: a.B.reshape([o, a.r]), aKey: a.A, bKey: a.B, s: a.scaling };
  }

  scaleShape(): number[] { return [1, this.features().outF, 1, 1]; }

  protected abShapes(r: number): { a: number[]; b: number[] } {
    const [o, c, kh, kw] = this.weight.shape as [number, number, number, number];
    return { a: [r, c, kh, kw], b: [o, r, 1, 1] };
  }
}
