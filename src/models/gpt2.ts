/**
 * GPT-2 (transformers' `GPT2LMHeadModel`): learned positions, pre-LN blocks, Conv1D projections stored
 * [in, out] (PEFT's fan_in_fan_out), gelu_new, lm_head tied to `transformer.wte`. HF module names
 * (`transformer.h.0.attn.c_attn`, `transformer.h.0.mlp.c_proj`, ...); children looked up by name per call.
 *
 * Block: h += attn.c_proj(attn(split(attn.c_attn(ln_1(h))))); h += mlp.c_proj(gelu_new(mlp.c_fc(ln_2(h)))).
 */
import { type Layer, LayerNorm, Linear, Module } from "../nn/index.js";
import { type Tensor, add, arange, gelu, indexTensor, reshape, scaledDotProductAttention, split, transpose } from "../tensor/index.js";
import type { ModelConfig } from "./config.js";
import {
  type CausalLM, type ForwardOptions, KVCache, ModuleList, type WeightProvider, checkIds, makeConv1D, makeEmbedding, makeLinear, runDecoderLayer, shiftedLoss,
} from "./model.js";

function makeLayerNorm(w: WeightProvider, key: string, dim: number, eps: number): LayerNorm {
  const n = new LayerNorm(dim, eps);
  n.registerParameter("weight", w(`${key}.weight`, [dim], "vector"));
  n.registerParameter("bias", w(`${key}.bias`, [dim], "vector"));
  return n;
}

export class GPT2Attention extends Module {
  constructor(readonly config: ModelConfig, w: WeightProvider, key: string, readonly layerIdx: number) {
    super();
    const h = config.hiddenSize;
    this.registerModule("c_attn", makeConv1D(w, `${key}.c_attn`, h, 3 * h));
    this.registerModule("c_proj", makeConv1D(w, `${key}.c_proj`, h, h));
  }

  // x: [B, S, hidden]
  forward(x: Tensor, cache?: KVCache): Tensor {
    const { numHeads: nh, headDim: hd, hiddenSize: h } = this.config;
    const [b, s] = x.shape as [number, number];
    const [q, k0, v0] = split(this.child<Layer>("c_attn").forward(x), [h, h, h], 2);
    const heads = (t: Tensor): Tensor => transpose(reshape(t.contiguous(), [b, s, nh, hd]), 1, 2); // → [B, nh, S, hd]
    let k = heads(k0!), v = heads(v0!);
    if (cache) [k, v] = cache.update(this.layerIdx, k, v);
    const a = scaledDotProductAttention(heads(q!), k, v);
    return this.child<Layer>("c_proj").forward(reshape(transpose(a, 1, 2), [b, s, h]));
  }
}

export class GPT2MLP extends Module {
  constructor(config: ModelConfig, w: WeightProvider, key: string) {
    super();
    this.registerModule("c_fc", makeConv1D(w, `${key}.c_fc`, config.hiddenSize, config.intermediateSize));
    this.registerModule("c_proj", makeConv1D(w, `${key}.c_proj`, config.intermediateSize, config.hiddenSize));
  }

  forward(x: Tensor): Tensor {
    return this.child<Layer>("c_proj").forward(gelu(this.child<Layer>("c_fc").forward(x)));
  }
}

export class GPT2Block extends Module {
  constructor(config: ModelConfig, w: WeightProvider, key: string, layerIdx: number) {
    super();
    this.registerModule("ln_1", makeLayerNorm(w, `${key}.ln_1`, config.hiddenSize, config.normEps));
    this.registerModule("attn", new GPT2Attention(config, w, `${key}.attn`, layerIdx));
    this.registerModule("ln_2", makeLayerNorm(w, `${key}.ln_2`, config.hiddenSize, config.normEps));
    this.registerModule("mlp", new GPT2MLP(config, w, `${key}.mlp`));
  }

  forward(h: Tensor, cache?: KVCache): Tensor {
    h = add(h, this.child<GPT2Attention>("attn").forward(this.child<Layer>("ln_1").forward(h), cache));
    return add(h, this.child<GPT2MLP>("mlp").forward(this.child<Layer>("ln_2").forward(h)));
  }
}

/** transformers' `GPT2Model`: wte, wpe, h, ln_f. */
export class GPT2Model extends Module {
  constructor(readonly config: ModelConfig, w: WeightProvider) {
    super();
    this.registerModule("wte", makeEmbedding(w, "transformer.wte", config.vocabSize, config.hiddenSize));
    this.registerModule("wpe", makeEmbedding(w, "transformer.wpe", config.maxPositionEmbeddings, config.hiddenSize));
    const blocks: GPT2Block[] = [];
    for (let i = 0; i < config.numLayers; i++) blocks.push(new GPT2Block(config, w, `transformer.h.${i}`, i));
    this.registerModule("h", new ModuleList(blocks));
    this.registerModule("ln_f", makeLayerNorm(w, "transformer.ln_f", config.hiddenSize, config.normEps));
  }
}

export class GPT2LMHeadModel extends Module implements CausalLM {
  gradientCheckpointing = false;

  constructor(readonly config: ModelConfig, w: WeightProvider) {
    super();
    const t = this.registerModule("transformer", new GPT2Model(config, w));
    const head: Linear = config.tieWordEmbeddings
      ? makeLinear(() => t.child("wte").param("weight"), "lm_head", config.hiddenSize, config.vocabSize, false)
      : makeLinear(w, "lm_head", config.hiddenSize, config.vocabSize, false);
    this.registerModule("lm_head", head);
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    const [, s] = checkIds(inputIds);
    const cache = opts.cache;
    const start = cache?.length ?? 0;
    if (start + s > this.config.maxPositionEmbeddings) {
      throw new Error(`forward: ${start + s} positions exceed n_positions ${this.config.maxPositionEmbeddings}`);
    }
    const t = this.child("transformer");
    const pos = indexTensor(Int32Array.from(arange(s).f32(), (p) => p + start), [s]);
    let h = add(t.child<Layer>("wte").forward(inputIds), t.child<Layer>("wpe").forward(pos)); // [B, S, D] + [S, D]
    const blocks = t.child<ModuleList<GPT2Block>>("h");
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks.at(i);
      h = runDecoderLayer(this.gradientCheckpointing, block, cache, (x) => block.forward(x, cache), h);
    }
    h = t.child<Layer>("ln_f").forward(h);
    return this.child<Layer>("lm_head").forward(h);
  }

  loss(inputIds: Tensor, labels?: Tensor): Tensor {
    return shiftedLoss(this.forward(inputIds), labels ?? inputIds);
  }

  newCache(): KVCache {
    return new KVCache(this.config.numLayers);
  }
}
