/**
 * config.json → ModelConfig: the one place HF's config keys are read (transformers' `LlamaConfig`,
 * `MistralConfig`, `Qwen2Config`, `GPT2Config`, with their defaults). Everything after this file uses the
 * camelCase fields; `raw` keeps the file as read so `saveModel` writes it back unchanged.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { readJsonFile } from "../io/index.js";

export class ModelConfigError extends Error {
  override name = "ModelConfigError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** `architectures[0]` values we can build, and the family that implements each. */
export const SUPPORTED_ARCHITECTURES = {
  LlamaForCausalLM: "llama",
  MistralForCausalLM: "llama",
  Qwen2ForCausalLM: "llama",
  GPT2LMHeadModel: "gpt2",
} as const;
export type Architecture = keyof typeof SUPPORTED_ARCHITECTURES;
export type ModelFamily = (typeof SUPPORTED_ARCHITECTURES)[Architecture];

/** RoPE frequency scaling (`rope_scaling`); "llama3" is Llama-3.1's, "linear" divides positions by factor. */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositionEmbeddings: number };

export interface ModelConfig {
  architecture: Architecture;
  family: ModelFamily;
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  /** KV heads (GQA); equals numHeads for MHA and GPT-2. */
  numKvHeads: number;
  headDim: number;
  intermediateSize: number;
  maxPositionEmbeddings: number;
  /** RMSNorm eps (LLaMA family) or LayerNorm eps (GPT-2). */
  normEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  tieWordEmbeddings: boolean;
  /** Bias on q/k/v projections (Qwen2: true; LLaMA: `attention_bias`). */
  qkvBias: boolean;
  /** Bias on o_proj (LLaMA `attention_bias`; Qwen2: never). */
  oBias: boolean;
  mlpBias: boolean;
  /** Mistral/Qwen2 sliding window; we run full attention, so longer sequences are refused. */
  slidingWindow: number | null;
  bosTokenId: number | null;
  eosTokenIds: number[];
  /** config.json as read. */
  raw: Record<string, unknown>;
}

type Raw = Record<string, unknown>;

function num(raw: Raw, key: string, where: string, fallback?: number): number {
  const v = raw[key];
  if (v === undefined || v === null) {
    if (fallback !== undefined) return fallback;
    throw new ModelConfigError(`${where}: missing "${key}"`);
  }
  if (typeof v !== "number" || !Number.isFinite(v)) throw new ModelConfigError(`${where}: "${key}" must be a number, got ${JSON.stringify(v)}`);
  return v;
}

function int(raw: Raw, key: string, where: string, fallback?: number): number {
  const v = num(raw, key, where, fallback);
  if (!Number.isSafeInteger(v) || v <= 0) throw new ModelConfigError(`${where}: "${key}" must be a positive integer, got ${v}`);
  return v;
}

function bool(raw: Raw, key: string, fallback: boolean): boolean {
  const v = raw[key];
  return typeof v === "boolean" ? v : fallback;
}

function tokenIds(v: unknown): number[] {
  if (typeof v === "number") return [v];
  if (Array.isArray(v)) return v.filter((x): x is number => typeof x === "number");
  return [];
}

function parseRopeScaling(v: unknown, where: string): RopeScaling | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "object" || Array.isArray(v)) throw new ModelConfigError(`${where}: "rope_scaling" must be an object or null`);
  const r = v as Raw;
  const type = r["rope_type"] ?? r["type"]; // transformers ≥4.43 writes rope_type, older files type
  const w = `${where}: rope_scaling`;
  if (type === "default") return null;
  if (type === "linear") return { type: "linear", factor: num(r, "factor", w) };
  if (type === "llama3") {
    return {
      type: "llama3",
      factor: num(r, "factor", w),
      lowFreqFactor: num(r, "low_freq_factor", w),
      highFreqFactor: num(r, "high_freq_factor", w),
      originalMaxPositionEmbeddings: num(r, "original_max_position_embeddings", w),
    };
  }
  throw new ModelConfigError(`${w}: type ${JSON.stringify(type)} is not supported (supported: "default", "linear", "llama3")`);
}

/** Validates a parsed config.json. `where` names the file in messages. */
export function parseModelConfig(raw: unknown, where = "config.json"): ModelConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ModelConfigError(`${where}: must hold a JSON object`);
  const r = raw as Raw;
  const archs = r["architectures"];
  const arch = Array.isArray(archs) ? archs[0] : undefined;
  const supported = Object.keys(SUPPORTED_ARCHITECTURES).join(", ");
  if (typeof arch !== "string" || !Object.prototype.hasOwnProperty.call(SUPPORTED_ARCHITECTURES, arch)) {
    const found = typeof arch === "string" ? `architecture ${JSON.stringify(arch)}` : `no "architectures" list (model_type ${JSON.stringify(r["model_type"] ?? null)})`;
    throw new ModelConfigError(`${where}: ${found} is not supported; supported architectures: ${supported}`);
  }
  const architecture = arch as Architecture;
  const family = SUPPORTED_ARCHITECTURES[architecture];
  const eosTokenIds = tokenIds(r["eos_token_id"]);
  const bos = tokenIds(r["bos_token_id"])[0] ?? null;
  if (family === "gpt2") {
    const hidden = int(r, "n_embd", where, 768), heads = int(r, "n_head", where, 12);
    if (hidden % heads !== 0) throw new ModelConfigError(`${where}: n_embd ${hidden} is not divisible by n_head ${heads}`);
    const act = r["activation_function"] ?? "gelu_new";
    if (act !== "gelu_new" && act !== "gelu_pytorch_tanh") {
      throw new ModelConfigError(`${where}: activation_function ${JSON.stringify(act)} is not supported (supported: "gelu_new", "gelu_pytorch_tanh")`);
    }
    if (r["scale_attn_by_inverse_layer_idx"] === true || r["reorder_and_upcast_attn"] === true || r["scale_attn_weights"] === false) {
      throw new ModelConfigError(`${where}: scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn / scale_attn_weights=false are not supported`);
    }
    return {
      architecture, family,
      vocabSize: int(r, "vocab_size", where, 50257),
      hiddenSize: hidden, numLayers: int(r, "n_layer", where, 12), numHeads: heads, numKvHeads: heads, headDim: hidden / heads,
      intermediateSize: r["n_inner"] == null ? 4 * hidden : int(r, "n_inner", where),
      maxPositionEmbeddings: int(r, "n_positions", where, 1024),
      normEps: num(r, "layer_norm_epsilon", where, 1e-5),
      ropeTheta: 0, ropeScaling: null,
      tieWordEmbeddings: bool(r, "tie_word_embeddings", true),
      qkvBias: true, oBias: true, mlpBias: true, slidingWindow: null,
      bosTokenId: bos, eosTokenIds, raw: r,
    };
  }
  const hidden = int(r, "hidden_size", where), heads = int(r, "num_attention_heads", where);
  const kvHeads = int(r, "num_key_value_heads", where, heads);
  if (heads % kvHeads !== 0) throw new ModelConfigError(`${where}: num_attention_heads ${heads} is not divisible by num_key_value_heads ${kvHeads}`);
  const headDim = r["head_dim"] == null ? hidden / heads : int(r, "head_dim", where);
  if (!Number.isInteger(headDim) || headDim % 2 !== 0) throw new ModelConfigError(`${where}: head dim ${headDim} (hidden_size / num_attention_heads) must be an even integer`);
  const act = r["hidden_act"] ?? "silu";
  if (act !== "silu") throw new ModelConfigError(`${where}: hidden_act ${JSON.stringify(act)} is not supported (supported: "silu")`);
  const qwen = architecture === "Qwen2ForCausalLM";
  const attnBias = bool(r, "attention_bias", false);
  const useWindow = architecture === "MistralForCausalLM" || (qwen && r["use_sliding_window"] === true);
  return {
    architecture, family,
    vocabSize: int(r, "vocab_size", where),
    hiddenSize: hidden, numLayers: int(r, "num_hidden_layers", where), numHeads: heads, numKvHeads: kvHeads, headDim,
    intermediateSize: int(r, "intermediate_size", where),
    maxPositionEmbeddings: int(r, "max_position_embeddings", where, 2048),
    normEps: num(r, "rms_norm_eps", where, 1e-6),
    ropeTheta: num(r, "rope_theta", where, 10000),
    ropeScaling: parseRopeScaling(r["rope_scaling"], where),
    // LlamaConfig, MistralConfig and Qwen2Config all default to untied (small Qwen2 checkpoints set true).
    tieWordEmbeddings: bool(r, "tie_word_embeddings", false),
    qkvBias: qwen ? true : attnBias,
    oBias: qwen ? false : attnBias,
    mlpBias: bool(r, "mlp_bias", false),
    slidingWindow: useWindow && typeof r["sliding_window"] === "number" ? r["sliding_window"] : null,
    bosTokenId: bos, eosTokenIds, raw: r,
  };
}

/** Reads and validates `dir/config.json`. */
export function readModelConfig(dir: string): ModelConfig {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new ModelConfigError(`${dir}: no config.json (a Hugging Face model folder holds config.json and model.safetensors)`);
  return parseModelConfig(readJsonFile(path, "model config"), path);
}
