/**
 * What the LLaMA and GPT-2 families share: the `CausalLM` contract, the KV cache, HF's shifted LM loss, and
 * building layers straight from a weight provider (so a checkpoint is never held twice while loading).
 */
import { Conv1D, Embedding, Linear, Linear4bit, Module } from "../nn/index.js";
import { Rng, Tensor, cat, checkpoint, crossEntropy, full, indexTensor, isGradEnabled, randn, reshape, slice, zeros } from "../tensor/index.js";
import type { Nf4Weight } from "../quant/index.js";
import type { ModelConfig } from "./config.js";

export interface ForwardOptions {
  /** Keys and values of earlier positions; the new ones are appended. Input positions start at `cache.length`. */
  cache?: KVCache;
}

/** A decoder-only LM with HF module names: `forward` maps ids [B, S] (int32) to logits [B, S, V]. */
export interface CausalLM extends Module {
  readonly config: ModelConfig;
  forward(inputIds: Tensor, opts?: ForwardOptions): Tensor;
  /** Mean next-token cross-entropy (labels default to inputIds; -100 is ignored), HF's `loss` output. */
  loss(inputIds: Tensor, labels?: Tensor): Tensor;
  /** An empty KV cache sized for this model. */
  newCache(): KVCache;
  /**
   * Recompute each decoder layer in backward instead of keeping its activations (HF
   * `gradient_checkpointing_enable()`): one extra forward per step for activation memory of one layer.
   */
  gradientCheckpointing: boolean;
}

/**
 * Runs one decoder layer, checkpointed (src/tensor/checkpoint.ts) when `enabled`, a graph is being built and no
 * KV cache is being filled (recomputing would append to it twice).
 */
export function runDecoderLayer(enabled: boolean, layer: Module, cache: KVCache | undefined, f: (h: Tensor) => Tensor, h: Tensor): Tensor {
  if (!enabled || cache || !isGradEnabled()) return f(h);
  return checkpoint(f, [h], { params: layer.parameters(), rngs: layer.rngs() });
}

/**
 * Per-layer keys and values [B, Hkv, T, D] (post-RoPE), HF's `DynamicCache`. Each step appends the new
 * positions, so a generated token costs one position of projection and attention, not the prefix.
 */
export class KVCache {
  private readonly keys: (Tensor | null)[];
  private readonly values: (Tensor | null)[];

  constructor(readonly numLayers: number) {
    this.keys = new Array<Tensor | null>(numLayers).fill(null);
    this.values = new Array<Tensor | null>(numLayers).fill(null);
  }

  /** Positions held (layer 0's; all layers agree once a forward has finished). */
  get length(): number {
    return this.keys[0]?.shape[2] ?? 0;
  }

  /** Appends k, v [B, Hkv, S, D] for `layer` and returns the full keys and values. */
  update(layer: number, k: Tensor, v: Tensor): [Tensor, Tensor] {
    const pk = this.keys[layer], pv = this.values[layer];
    const K = pk ? cat([pk, k], 2) : k.contiguous();
    const V = pv ? cat([pv, v], 2) : v.contiguous();
    this.keys[layer] = K.detach();
    this.values[layer] = V.detach();
    return [K, V];
  }

  /** Drop everything after the first `n` positions (rewinding a speculative step). */
  truncate(n: number): void {
    for (let i = 0; i < this.numLayers; i++) {
      const k = this.keys[i], v = this.values[i];
      if (k && v && k.shape[2]! > n) {
        this.keys[i] = slice(k, 2, 0, n).contiguous();
        this.values[i] = slice(v, 2, 0, n).contiguous();
      }
    }
  }
}

/**
 * HF's causal-LM loss: logits[:, :-1] against labels[:, 1:], ignore -100, mean over counted tokens. Computed as
 * the cross-entropy of all [B·S] logit rows with the last position of each sequence ignored (-100): the same
 * counted rows, loss and gradients, without slicing the logits (a [B, S−1, V] copy forward and a zero-filled
 * [B, S, V] scatter backward).
 */
export function shiftedLoss(logits: Tensor, labels: Tensor): Tensor {
  const [b, s, v] = logits.shape as [number, number, number];
  if (labels.ndim !== 2 || labels.shape[0] !== b || labels.shape[1] !== s) {
    throw new Error(`loss: labels must be [${b}, ${s}] like the input ids, got [${labels.shape.join(", ")}]`);
  }
  if (s < 2) throw new Error(`loss: need at least 2 positions to predict a next token, got ${s}`);
  const ids = labels.i32(), shifted = new Int32Array(b * s);
  for (let i = 0; i < b; i++) {
    for (let j = 0; j < s - 1; j++) shifted[i * s + j] = ids[i * s + j + 1]!;
    shifted[i * s + s - 1] = -100; // nothing follows the last position
  }
  return crossEntropy(reshape(logits, [b * s, v]), indexTensor(shifted, [b * s]));
}

/** Checks ids [B, S] int32 and returns [B, S] (the embedding op range-checks each id). */
export function checkIds(inputIds: Tensor): [number, number] {
  if (inputIds.dtype !== "int32" || inputIds.ndim !== 2) {
    throw new Error(`forward: inputIds must be an int32 tensor [B, S], got ${inputIds.dtype} [${inputIds.shape.join(", ")}]`);
  }
  return inputIds.shape as [number, number];
}

/**
 * Supplies each parameter by its HF key and expected shape as the model is built. `loadModel` reads them from
 * safetensors (checking shapes), `randomWeights` draws them.
 */
export type WeightProvider = ((key: string, shape: readonly number[], kind: "matrix" | "vector") => Tensor) & {
  /**
   * Optional: the 4-bit weight of the decoder projection whose weight is `key` ([out, in]), or null to load it as a
   * float matrix. `loadModel` sets it for `quantize: "nf4"` (quantised here, tensor by tensor) and for checkpoints
   * bitsandbytes already quantised.
   */
  linear4bit?: (key: string, shape: readonly [number, number]) => Nf4Weight | null;
};

/** N(0, std²) matrices, zero biases and unit norm weights (HF's `_init_weights`), seeded. */
export function randomWeights(seed = 0, std = 0.02): WeightProvider {
  const rng = new Rng(seed);
  return (key, shape, kind) => {
    if (kind === "matrix") return randn(shape, rng, std);
    return /norm|ln_/.test(key) && key.endsWith(".weight") ? full(shape, 1) : zeros(shape);
  };
}

// nn's layer constructors draw their own initial weights; built at size 0 they allocate nothing, and the
// real sizes and tensors are set right after. This keeps peak memory at one copy of the checkpoint.
type Sized = { inFeatures: number; outFeatures: number };

export function makeLinear(w: WeightProvider, key: string, inF: number, outF: number, bias: boolean): Linear {
  const l = new Linear(0, 0, false);
  Object.assign(l as unknown as Sized, { inFeatures: inF, outFeatures: outF });
  l.registerParameter("weight", w(`${key}.weight`, [outF, inF], "matrix"));
  l.registerParameter("bias", bias ? w(`${key}.bias`, [outF], "vector") : null);
  return l;
}

/** A decoder projection: a Linear4bit when the provider supplies a 4-bit weight for it, else a Linear. */
export function makeProjection(w: WeightProvider, key: string, inF: number, outF: number, bias: boolean): Linear | Linear4bit {
  const q = w.linear4bit?.(`${key}.weight`, [outF, inF]) ?? null;
  if (q) return new Linear4bit(q, bias ? w(`${key}.bias`, [outF], "vector") : null);
  return makeLinear(w, key, inF, outF, bias);
}

/** GPT-2 Conv1D, weight [in, out]. */
export function makeConv1D(w: WeightProvider, key: string, inF: number, outF: number): Conv1D {
  const l = new Conv1D(0, 0);
  Object.assign(l as unknown as Sized, { inFeatures: inF, outFeatures: outF });
  l.registerParameter("weight", w(`${key}.weight`, [inF, outF], "matrix"));
  l.registerParameter("bias", w(`${key}.bias`, [outF], "vector"));
  return l;
}

export function makeEmbedding(w: WeightProvider, key: string, num: number, dim: number): Embedding {
  const e = new Embedding(0, 0);
  Object.assign(e as unknown as { numEmbeddings: number; embeddingDim: number }, { numEmbeddings: num, embeddingDim: dim });
  e.registerParameter("weight", w(`${key}.weight`, [num, dim], "matrix"));
  return e;
}

/** A numbered list of children ("0", "1", ...), torch.nn.ModuleList. */
export class ModuleList<M extends Module> extends Module {
  readonly length: number;
  constructor(items: readonly M[]) {
    super();
    items.forEach((m, i) => this.registerModule(String(i), m));
    this.length = items.length;
  }
  at(i: number): M {
    return this.child<M>(String(i));
  }
}
