/**
 * `loadModel` / `saveModel`: transformers' `AutoModelForCausalLM.from_pretrained` and `save_pretrained` for
 * the architectures in config.ts. Weights are read tensor by tensor while the model is built (never the
 * whole file at once), each checked against the shape the config implies. BF16/F16 checkpoints widen to
 * float32 unless `keepFrozenIn16Bit` keeps their matrices as stored (half the memory; ops widen per use,
 * so only frozen weights should stay 16-bit).
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsError, type TensorSource, type TensorToWrite, openModelWeights, writeFileAtomic, writeSafetensors } from "../io/index.js";
import { Tensor } from "../tensor/index.js";
import { Linear4bit } from "../nn/index.js";
import { type Nf4Weight, quantizeNf4 } from "../quant/index.js";
import { isBnb4bit, readBnb4bit } from "./bnb4bit.js";
import { type ModelConfig, ModelConfigError, readModelConfig } from "./config.js";
import { GPT2LMHeadModel } from "./gpt2.js";
import { type HubOptions, downloadModel, looksLikeHubId } from "./hub.js";
import { LlamaForCausalLM } from "./llama.js";
import { type CausalLM, type WeightProvider, randomWeights } from "./model.js";

export type StorageDtype = "float32" | "bfloat16" | "float16";

export interface LoadOptions {
  /**
   * Storage of weight matrices: "float32" (default) widens 16-bit checkpoints; "bfloat16"/"float16" store every
   * matrix in that dtype (rounded to nearest even), for frozen base weights.
   */
  dtype?: StorageDtype;
  /** Keep matrices the checkpoint stores as BF16/F16 in that dtype (no rounding); vectors always widen. */
  keepFrozenIn16Bit?: boolean;
  /** For hub ids: revision, cache folder, endpoint, token, offline, progress. */
  hub?: HubOptions;
  /**
   * "nf4": quantise the decoder's linear projections to 4-bit NF4 as they are read (bitsandbytes'
   * `BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4")`), one tensor at a time, so the float
   * model never exists in memory. Embeddings, norms and lm_head stay as `dtype` / `keepFrozenIn16Bit` say.
   * Checkpoints bitsandbytes already quantised (`*-bnb-4bit`) load as 4-bit whatever this says.
   */
  quantize?: "nf4";
  /** bnb_4bit_use_double_quant: 8-bit scales (≈0.516 bytes per weight instead of 0.5625). Default true. */
  doubleQuant?: boolean;
}

/** Builds the model class for `config` from `weights`. */
export function buildModel(config: ModelConfig, weights: WeightProvider): CausalLM {
  return config.family === "gpt2" ? new GPT2LMHeadModel(config, weights) : new LlamaForCausalLM(config, weights);
}

/** A randomly initialised model (tests, benches). */
export function randomModel(config: ModelConfig, seed = 0): CausalLM {
  return buildModel(config, randomWeights(seed));
}

// Buffers some checkpoints carry that the model recomputes: ignored without a warning.
const IGNORED = [/\.attn\.(masked_)?bias$/, /rotary_emb\.inv_freq$/];

/** Reads a model folder (config.json + model.safetensors or a sharded index). Synchronous. */
export function loadModelFromDir(dir: string, opts: LoadOptions = {}): CausalLM {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new ModelConfigError(`${dir}: model folder not found`);
  const config = readModelConfig(dir);
  const src = openModelWeights(dir);
  try {
    const used = new Set<string>();
    if (opts.quantize && config.family === "gpt2") {
      process.emitWarning(`${dir}: quantize "${opts.quantize}" applies to LLaMA-family projections; GPT-2's Conv1D layers load in float`);
    }
    const model = buildModel(config, fileWeights(src, config, used, opts));
    const tiedHead = config.tieWordEmbeddings ? ["lm_head.weight"] : [];
    const unused = src.keys().filter((k) => !used.has(k) && !tiedHead.includes(k) && !IGNORED.some((r) => r.test(k)));
    if (unused.length > 0) {
      process.emitWarning(`${src.path}: ${unused.length} tensors not used by ${config.architecture}: ` +
        `${unused.slice(0, 5).join(", ")}${unused.length > 5 ? ", …" : ""}`);
    }
    model.eval();
    return model;
  } finally {
    src.close();
  }
}

/**
 * A model from a local folder or a hub id (`org/name`, downloaded once into HF's cache; see hub.ts).
 * Counterpart: `AutoModelForCausalLM.from_pretrained(dir_or_id)`. The model is returned in eval mode.
 */
export async function loadModel(dirOrId: string, opts: LoadOptions = {}): Promise<CausalLM> {
  if (existsSync(dirOrId)) return loadModelFromDir(dirOrId, opts);
  if (!looksLikeHubId(dirOrId)) throw new ModelConfigError(`${dirOrId}: no such model folder, and not a hub id (org/name)`);
  return loadModelFromDir(await downloadModel(dirOrId, opts.hub ?? {}), opts);
}

/** Checkpoint keys for `key`: HF also accepts checkpoints saved from the base model, without its prefix. */
function candidates(key: string): string[] {
  const m = /^(transformer|model)\.(.*)$/.exec(key);
  return m ? [key, m[2]!] : [key];
}

function fileWeights(src: TensorSource, config: ModelConfig, used: Set<string>, opts: LoadOptions): WeightProvider {
  const provider: WeightProvider = (key, shape, kind) => {
    const name = candidates(key).find((k) => src.has(k));
    if (name === undefined) {
      throw new SafetensorsError(`${src.path}: missing tensor "${key}" (shape [${shape.join(", ")}]) required by ${config.architecture}; ` +
        `the file has ${src.keys().length} tensors, e.g. ${src.keys().slice(0, 3).join(", ")}`);
    }
    const info = src.info(name);
    if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
      throw new SafetensorsError(`${src.path}: tensor "${name}" has shape [${info.shape.join(", ")}] but config.json ` +
        `(hidden ${config.hiddenSize}, heads ${config.numHeads}/${config.numKvHeads}, intermediate ${config.intermediateSize}, ` +
        `vocab ${config.vocabSize}) implies [${shape.join(", ")}]`);
    }
    used.add(name);
    if (kind === "matrix" && opts.keepFrozenIn16Bit && (info.dtype === "BF16" || info.dtype === "F16") && opts.dtype !== "float32") {
      const raw = src.readRaw(name); // fresh, aligned, little-endian (all supported hosts)
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, raw.byteLength / 2);
      const t = new Tensor(bits, shape, { dtype: info.dtype === "BF16" ? "bfloat16" : "float16" });
      return opts.dtype && opts.dtype !== t.dtype ? t.to(opts.dtype) : t;
    }
    const t = new Tensor(src.readFloat32(name), shape);
    return kind === "matrix" && opts.dtype && opts.dtype !== "float32" ? t.to(opts.dtype) : t;
  };
  provider.linear4bit = (key, shape): Nf4Weight | null => {
    const name = candidates(key).find((k) => src.has(k));
    if (name !== undefined && isBnb4bit(src, name)) return readBnb4bit(src, name, shape, used);
    if (opts.quantize === undefined) return null;
    if (opts.quantize !== "nf4") throw new ModelConfigError(`loadModel: quantize ${JSON.stringify(opts.quantize)} is not supported (use "nf4")`);
    const w = provider(key, shape, "matrix"); // read and shape-checked like any matrix, then quantised and dropped
    return quantizeNf4(w.f32(), shape, { doubleQuant: opts.doubleQuant ?? true });
  };
  return provider;
}

export interface SaveOptions {
  /** dtype of every float tensor in model.safetensors (default "float32"). */
  dtype?: StorageDtype;
}

const SAFETENSORS_DTYPE = { float32: "F32", bfloat16: "BF16", float16: "F16" } as const;

/**
 * Writes `dir/config.json` (the loaded config, `torch_dtype` updated) and `dir/model.safetensors` with HF key
 * names (tied lm_head omitted, as save_pretrained does). Save a plain model: merge adapters into it first.
 */
export function saveModel(model: CausalLM, dir: string, opts: SaveOptions = {}): void {
  const dtype = opts.dtype ?? "float32";
  const tensors = new Map<string, TensorToWrite>();
  const fourBit = model.namedModules().filter((e): e is [string, Linear4bit] => e[1] instanceof Linear4bit);
  if (fourBit.length > 0) {
    // a 4-bit layer has no float weight to save: write Ŵ (re-quantising it later would round once more)
    process.emitWarning(`saveModel: ${fourBit.length} layers hold 4-bit (NF4) weights; writing their dequantised weights as ${dtype}`);
    for (const [path, m] of fourBit) tensors.set(`${path}.weight`, { dtype: SAFETENSORS_DTYPE[dtype], shape: [...m.qweight.shape], data: m.qweight.dequantize() });
  }
  for (const [key, t] of model.namedParameters()) {
    if (/\.(lora_|base_layer\.)|lora_magnitude_vector/.test(key)) {
      throw new Error(`saveModel: parameter "${key}" belongs to an adapter; merge and unload adapters before saving the base model`);
    }
    // 16-bit weights already in the target dtype are written bit for bit; the rest go through float32
    const c = t.contiguous();
    const data = dtype !== "float32" && c.dtype === dtype ? (c.data as Uint16Array).subarray(c.offset, c.offset + c.numel) : c.f32();
    tensors.set(key, { dtype: SAFETENSORS_DTYPE[dtype], shape: t.shape, data });
  }
  mkdirSync(dir, { recursive: true });
  writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" });
  const raw: Record<string, unknown> = { ...model.config.raw, torch_dtype: dtype };
  delete raw["quantization_config"]; // the weights written are plain floats
  writeFileAtomic(join(dir, "config.json"), `${JSON.stringify(raw, null, 2)}\n`);
}
