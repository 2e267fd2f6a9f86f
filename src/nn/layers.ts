/** The standard layers, with HF/PyTorch parameter names and layouts. */
import {
  Rng, Tensor, conv2d, dropout, embedding, kaimingUniform, layerNorm, linear, matmul, add, ones, randUniform, rmsNorm, zeros,
} from "../tensor/index.js";
import { Module } from "./module.js";

/** torch.nn.Linear: weight [out, in], y = x·Wᵀ + b. */
export class Linear extends Module {
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true, rng = new Rng(0)) {
    super();
    this.registerParameter("weight", kaimingUniform([outFeatures, inFeatures], rng));
    const bound = 1 / Math.sqrt(inFeatures);
    this.registerParameter("bias", bias ? randUniform([outFeatures], rng, -bound, bound) : null);
  }
  get weight(): Tensor { return this.param("weight"); }
  get bias(): Tensor | null { return this.paramOrNull("bias"); }
  forward(x: Tensor): Tensor { return linear(x, this.weight, this.bias); }
}

/** GPT-2's Conv1D: weight stored [in, out] (PEFT's fan_in_fan_out), y = x·W + b. */
export class Conv1D extends Module {
  constructor(readonly inFeatures: number, readonly outFeatures: number, rng = new Rng(0)) {
    super();
    this.registerParameter("weight", randUniform([inFeatures, outFeatures], rng, -0.02, 0.02));
    this.registerParameter("bias", zeros([outFeatures]));
  }
  get weight(): Tensor { return this.param("weight"); }
  get bias(): Tensor | null { return this.paramOrNull("bias"); }
  forward(x: Tensor): Tensor {
    const y = matmul(x, this.weight);
    return this.bias ? add(y, this.bias) : y;
  }
}

/** torch.nn.Embedding: weight [num, dim]. */
export class Embedding extends Module {
  constructor(readonly numEmbeddings: number, readonly embeddingDim: number, rng = new Rng(0)) {
    super();
    this.registerParameter("weight", randUniform([numEmbeddings, embeddingDim], rng, -1, 1));
  }
  get weight(): Tensor { return this.param("weight"); }
  forward(ids: Tensor): Tensor { return embedding(this.weight, ids); }
}

/** torch.nn.Conv2d with square stride and padding: weight [O, C, kh, kw]. */
export class Conv2d extends Module {
  constructor(readonly inChannels: number, readonly outChannels: number, readonly kernelSize: number,
    readonly stride = 1, readonly padding = 0, bias = true, rng = new Rng(0)) {
    super();
    this.registerParameter("weight", kaimingUniform([outChannels, inChannels, kernelSize, kernelSize], rng));
    const bound = 1 / Math.sqrt(inChannels * kernelSize * kernelSize);
    this.registerParameter("bias", bias ? randUniform([outChannels], rng, -bound, bound) : null);
  }
  get weight(): Tensor { return this.param("weight"); }
  get bias(): Tensor | null { return this.paramOrNull("bias"); }
  forward(x: Tensor): Tensor { return conv2d(x, this.weight, this.bias, this.stride, this.padding); }
}

/** LlamaRMSNorm: weight [dim]. */
export class RMSNorm extends Module {
  constructor(readonly dim: number, readonly eps = 1e-6) {
    super();
    this.registerParameter("weight", ones([dim]));
  }
  forward(x: Tensor): Tensor { return rmsNorm(x, this.param("weight"), this.eps); }
}

/** torch.nn.LayerNorm over the last dim: weight and bias [dim]. */
export class LayerNorm extends Module {
  constructor(readonly dim: number, readonly eps = 1e-5) {
    super();
    this.registerParameter("weight", ones([dim]));
    this.registerParameter("bias", zeros([dim]));
  }
  forward(x: Tensor): Tensor { return layerNorm(x, this.param("weight"), this.paramOrNull("bias"), this.eps); }
}

/** torch.nn.Dropout with its own seeded generator; identity in eval mode. */
export class Dropout extends Module {
  constructor(readonly p: number, readonly rng = new Rng(0)) { super(); }
  forward(x: Tensor): Tensor { return dropout(x, this.p, this.rng, this.training); }
  override ownRngs(): Rng[] { return [this.rng]; }
}
