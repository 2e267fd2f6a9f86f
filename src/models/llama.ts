/**
 * The LLaMA family (transformers' `LlamaForCausalLM`; Mistral and Qwen2 share the layout, Qwen2 adds q/k/v
 * bias). Module names are HF's, so `model.layers.0.self_attn.q_proj` is the path PEFT targets and the key
 * prefix in model.safetensors. Linear children are looked up by name on every call, so an adapter swapped in
 * with `setSubmodule` takes effect without the model knowing.
 *
 * Block: h += o_proj(attn(rope(q_proj(n1)), rope(k_proj(n1)), v_proj(n1))), n1 = input_layernorm(h);
 *        h += down_proj(silu(gate_proj(n2)) ⊙ up_proj(n2)),                 n2 = post_attention_layernorm(h).
 */
import { type Layer, Module, RMSNorm } from "../nn/index.js";
import { type Tensor, add, reshape, rope, scaledDotProductAttention, siluMul, tensor, transpose } from "../tensor/index.js";
import type { ModelConfig, RopeScaling } from "./config.js";
import {
  type CausalLM, type ForwardOptions, KVCache, ModuleList, type WeightProvider, checkIds, makeEmbedding, makeLinear, makeProjection, runDecoderLayer, shiftedLoss,
} from "./model.js";

function makeRmsNorm(w: WeightProvider, key: string, dim: number, eps: number): RMSNorm {
  const n = new RMSNorm(dim, eps);
  n.registerParameter("weight", w(`${key}.weight`, [dim], "vector"));
  return n;
}

/**
 * RoPE inverse frequencies θ^(−2i/d), with Llama-3.1's frequency-dependent scaling when configured
 * (transformers' `_compute_llama3_parameters`) or linear position interpolation.
 */
export function ropeInvFreq(headDim: number, theta: number, scaling: RopeScaling | null): Float64Array {
  const half = headDim / 2, inv = new Float64Array(half);
  // float32 like torch: inv_freq = 1 / base ** (arange(0, d, 2).float() / d)
  for (let i = 0; i < half; i++) inv[i] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / headDim))));
  if (scaling?.type === "linear") for (let i = 0; i < half; i++) inv[i] = inv[i]! / scaling.factor;
  if (scaling?.type === "llama3") {
    const { factor, lowFreqFactor: lo, highFreqFactor: hi, originalMaxPositionEmbeddings: ctx } = scaling;
    const lowWavelen = ctx / lo, highWavelen = ctx / hi;
    for (let i = 0; i < half; i++) {
      const f = inv[i]!, wavelen = (2 * Math.PI) / f;
      if (wavelen > lowWavelen) inv[i] = f / factor; // low frequencies: interpolate fully
      else if (wavelen >= highWavelen) { // medium: blend
        const smooth = (ctx / wavelen - lo) / (hi - lo);
        inv[i] = (1 - smooth) * (f / factor) + smooth * f;
      }
    }
  }
  return inv;
}

/** cos and sin [S, D] for positions start..start+S−1, halves repeated (HF's cat(freqs, freqs)). */
export function ropeTables(inv: Float64Array, start: number, len: number): [Tensor, Tensor] {
  const half = inv.length, d = 2 * half;
  const c = new Float32Array(len * d), s = new Float32Array(len * d);
  for (let p = 0; p < len; p++) {
    for (let i = 0; i < half; i++) {
      const a = Math.fround((start + p) * inv[i]!); // torch computes the angle in float32
      const cv = Math.cos(a), sv = Math.sin(a);
      c[p * d + i] = cv; c[p * d + half + i] = cv;
      s[p * d + i] = sv; s[p * d + half + i] = sv;
    }
  }
  return [tensor(c, [len, d]), tensor(s, [len, d])];
}

export class LlamaAttention extends Module {
  constructor(readonly config: ModelConfig, w: WeightProvider, key: string, readonly layerIdx: number) {
    super();
    const { hiddenSize: h, numHeads: nh, numKvHeads: nkv, headDim: hd, qkvBias, oBias } = config;
    this.registerModule("q_proj", makeProjection(w, `${key}.q_proj`, h, nh * hd, qkvBias));
    this.registerModule("k_proj", makeProjection(w, `${key}.k_proj`, h, nkv * hd, qkvBias));
    this.registerModule("v_proj", makeProjection(w, `${key}.v_proj`, h, nkv * hd, qkvBias));
    this.registerModule("o_proj", makeProjection(w, `${key}.o_proj`, nh * hd, h, oBias));
  }

  // x: [B, S, hidden]; cos/sin: [S, hd]
  forward(x: Tensor, cos: Tensor, sin: Tensor, cache?: KVCache): Tensor {
    const { numHeads: nh, numKvHeads: nkv, headDim: hd } = this.config;
    const [b, s] = x.shape as [number, number];
    // [B, S, n·hd] → [B, n, S, hd] as a view: rope and attention read such heads in place and lay their results out
    // the same way, so the transpose back into o_proj below is a view too (no head copies either way).
    const heads = (t: Tensor, n: number): Tensor => transpose(reshape(t, [b, s, n, hd]), 1, 2);
    const q = rope(heads(this.child<Layer>("q_proj").forward(x), nh), cos, sin);
    let k = rope(heads(this.child<Layer>("k_proj").forward(x), nkv), cos, sin);
    let v = heads(this.child<Layer>("v_proj").forward(x), nkv);
    if (cache) [k, v] = cache.update(this.layerIdx, k, v);
    const a = scaledDotProductAttention(q, k, v); // [B, nh, S, hd], causal, GQA
    return this.child<Layer>("o_proj").forward(reshape(transpose(a, 1, 2), [b, s, nh * hd]));
  }
}

export class LlamaMLP extends Module {
  constructor(config: ModelConfig, w: WeightProvider, key: string) {
    super();
    const { hiddenSize: h, intermediateSize: m, mlpBias } = config;
    this.registerModule("gate_proj", makeProjection(w, `${key}.gate_proj`, h, m, mlpBias));
    this.registerModule("up_proj", makeProjection(w, `${key}.up_proj`, h, m, mlpBias));
    this.registerModule("down_proj", makeProjection(w, `${key}.down_proj`, m, h, mlpBias));
  }

  forward(x: Tensor): Tensor {
    // silu(gate) ⊙ up as one op: one buffer, nothing extra saved for backward
    const h = siluMul(this.child<Layer>("gate_proj").forward(x), this.child<Layer>("up_proj").forward(x));
    return this.child<Layer>("down_proj").forward(h);
  }
}

export class LlamaDecoderLayer extends Module {
  constructor(config: ModelConfig, w: WeightProvider, key: string, layerIdx: number) {
    super();
    this.registerModule("self_attn", new LlamaAttention(config, w, `${key}.self_attn`, layerIdx));
    this.registerModule("mlp", new LlamaMLP(config, w, `${key}.mlp`));
    this.registerModule("input_layernorm", makeRmsNorm(w, `${key}.input_layernorm`, config.hiddenSize, config.normEps));
    this.registerModule("post_attention_layernorm", makeRmsNorm(w, `${key}.post_attention_layernorm`, config.hiddenSize, config.normEps));
  }

  forward(h: Tensor, cos: Tensor, sin: Tensor, cache?: KVCache): Tensor {
    const attn = this.child<LlamaAttention>("self_attn");
    h = add(h, attn.forward(this.child<Layer>("input_layernorm").forward(h), cos, sin, cache));
    return add(h, this.child<LlamaMLP>("mlp").forward(this.child<Layer>("post_attention_layernorm").forward(h)));
  }
}

/** transformers' `LlamaModel`: embed_tokens, layers, norm. */
export class LlamaModel extends Module {
  constructor(readonly config: ModelConfig, w: WeightProvider) {
    super();
    this.registerModule("embed_tokens", makeEmbedding(w, "model.embed_tokens", config.vocabSize, config.hiddenSize));
    const layers: LlamaDecoderLayer[] = [];
    for (let i = 0; i < config.numLayers; i++) layers.push(new LlamaDecoderLayer(config, w, `model.layers.${i}`, i));
    this.registerModule("layers", new ModuleList(layers));
    this.registerModule("norm", makeRmsNorm(w, "model.norm", config.hiddenSize, config.normEps));
  }
}

/** transformers' `LlamaForCausalLM` (also Mistral, Qwen2). */
export class LlamaForCausalLM extends Module implements CausalLM {
  private readonly invFreq: Float64Array;
  gradientCheckpointing = false;

  constructor(readonly config: ModelConfig, w: WeightProvider) {
    super();
    const model = this.registerModule("model", new LlamaModel(config, w));
    if (config.tieWordEmbeddings) {
      const head = makeLinear(() => model.child("embed_tokens").param("weight"), "lm_head", config.hiddenSize, config.vocabSize, false);
      this.registerModule("lm_head", head);
    } else {
      this.registerModule("lm_head", makeLinear(w, "lm_head", config.hiddenSize, config.vocabSize, false));
    }
    this.invFreq = ropeInvFreq(config.headDim, config.ropeTheta, config.ropeScaling);
  }

  forward(inputIds: Tensor, opts: ForwardOptions = {}): Tensor {
    const [, s] = checkIds(inputIds);
    const cache = opts.cache;
    const start = cache?.length ?? 0;
    const win = this.config.slidingWindow;
    if (win !== null && start + s > win) {
      throw new Error(`forward: ${start + s} positions exceed sliding_window ${win}; dora-ts runs full attention only`);
    }
    const [cos, sin] = ropeTables(this.invFreq, start, s);
    const model = this.child("model");
    let h = model.child<Layer>("embed_tokens").forward(inputIds);
    const layers = model.child<ModuleList<LlamaDecoderLayer>>("layers");
    for (let i = 0; i < layers.length; i++) {
      const layer = layers.at(i);
      h = runDecoderLayer(this.gradientCheckpointing, layer, cache, (x) => layer.forward(x, cos, sin, cache), h);
    }
    h = model.child<Layer>("norm").forward(h);
    return this.child<Layer>("lm_head").forward(h);
  }

  loss(inputIds: Tensor, labels?: Tensor): Tensor {
    return shiftedLoss(this.forward(inputIds), labels ?? inputIds);
  }

  newCache(): KVCache {
    return new KVCache(this.config.numLayers);
  }
}
