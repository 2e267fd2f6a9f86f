/**
 * LoRA/DoRA around nn.Embedding (weight [V, D]). PEFT `lora.Embedding`: lora_embedding_A [r, V],
 * lora_embedding_B [D, r]; y = W[ids] + s·Aᵀ[ids]·Bᵀ. PEFT applies no dropout to embeddings. As PEFT treats
 * the embedding as fan_in_fan_out, DoRA's 2-d picture is Wᵀ [D, V]: the norm is per embedding dimension.
 * Init (PEFT reset_lora_parameters): A zeros, B standard normal.
 */
import { Rng, Tensor, embedding, matmul, mul, randn, zeros } from "../tensor/index.js";
import { Embedding, Module } from "../nn/index.js";
import type { DoraOperands } from "./dora.js";
import { LoraLayer, type AdapterSettings, type LoraAdapter } from "./layer.js";

export class LoraEmbedding extends LoraLayer {
  readonly kind = "embedding" as const;

  constructor(path: string, base: Module) {
    super(path, base);
    if (!(base instanceof Embedding)) throw new Error(`${path}: LoraEmbedding wraps Embedding, got ${base.constructor.name}`);
  }

  features(): { inF: number; outF: number } {
    return { inF: this.weight.shape[0]!, outF: this.weight.shape[1]! };
  }

  baseNoBias(ids: Tensor): Tensor { return embedding(this.weight, ids); }

  override dropoutInput(): Tensor | null { return null; }

  loraOut(a: LoraAdapter, ids: Tensor): Tensor {
    return matmul(mul(embedding(a.A.T, ids), a.scaling), a.B.T);
  }

  doraOperands(a: LoraAdapter): DoraOperands {
    return { W: this.weight.T, weightKey: this.weight, A: a.A, B: a.B, aKey: a.A, bKey: a.B, s: a.scaling };
  }

  scaleShape(): number[] { return [this.features().outF]; }

  protected abShapes(r: number): { a: number[]; b: number[] } {
    const { inF, outF } = this.features();
    return { a: [r, inF], b: [outF, r] };
  }

  protected override initAB(st: AdapterSettings, aShape: number[], bShape: number[], rng: Rng): [Tensor, Tensor] {
    if (st.init === false) return [randn(aShape, rng), randn(bShape, rng)];
    return [zeros(aShape), randn(bShape, rng)];
  }

  protected override registerAB(name: string, A: Tensor, B: Tensor): void {
    this.container("lora_embedding_A").registerParameter(name, A);
    this.container("lora_embedding_B").registerParameter(name, B);
  }

  override diskTensors(name: string): [string, Tensor][] {
    const a = this.adapters.get(name)!;
    const out: [string, Tensor][] = [["lora_embedding_A", a.A], ["lora_embedding_B", a.B]];
    if (a.magnitude) out.push(["lora_magnitude_vector", a.magnitude]);
    return out;
  }
}
