/** `dora inspect DIR`: what a model or adapter folder holds. */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "../main.js";
import { UsageError, getters } from "../args.js";
import { io, models } from "../../index.js";
import { formatCount, requirePath } from "./common.js";

export interface InspectReport {
  kind: "model" | "adapter";
  path: string;
  [key: string]: unknown;
}

function tensorStats(src: io.TensorSource): { params: number; dtypes: Record<string, number>; tensors: number } {
  const dtypes: Record<string, number> = {};
  let params = 0;
  for (const k of src.keys()) {
    const info = src.info(k);
    const n = info.shape.reduce((a, b) => a * b, 1);
    params += n;
    dtypes[info.dtype] = (dtypes[info.dtype] ?? 0) + n;
  }
  return { params, dtypes, tensors: src.keys().length };
}

export function inspectFolder(dir: string): InspectReport {
  if (existsSync(join(dir, "adapter_config.json"))) {
    const cfg = io.readJsonFile(join(dir, "adapter_config.json"), "adapter config") as Record<string, unknown>;
    const file = join(dir, "adapter_model.safetensors");
    const src = io.SafetensorsFile.openSync(file);
    try {
      const stats = tensorStats(src);
      const modules = [...new Set(src.keys().map((k) => k.replace(/^base_model\.model\./, "").replace(/\.(lora_A\.weight|lora_B\.weight|lora_magnitude_vector|lora_embedding_A|lora_embedding_B)$/, "")))];
      return {
        kind: "adapter", path: dir, peft_type: cfg["peft_type"], method: cfg["use_dora"] ? "DoRA" : "LoRA",
        r: cfg["r"], lora_alpha: cfg["lora_alpha"], use_rslora: cfg["use_rslora"] ?? false, target_modules: cfg["target_modules"],
        base_model_name_or_path: cfg["base_model_name_or_path"], adapted_modules: modules.length, modules,
        params: stats.params, dtypes: stats.dtypes,
      };
    } finally { src.close(); }
  }
  if (existsSync(join(dir, "config.json"))) {
    const c = models.readModelConfig(dir);
    const src = io.openModelWeights(dir);
    const stats = tensorStats(src);
    return {
      kind: "model", path: dir, architecture: c.architecture, vocab_size: c.vocabSize, hidden_size: c.hiddenSize,
      num_layers: c.numLayers, num_heads: c.numHeads, num_kv_heads: c.numKvHeads, intermediate_size: c.intermediateSize,
      tie_word_embeddings: c.tieWordEmbeddings, params: stats.params, dtypes: stats.dtypes,
      tokenizer: existsSync(join(dir, "tokenizer.json")),
    };
  }
  throw new UsageError(`${dir}: neither a model folder (config.json) nor an adapter folder (adapter_config.json)`);
}

export const inspect: Command = {
  spec: {
    name: "inspect",
    summary: "show what a model or adapter folder holds",
    usage: "dora inspect DIR [--json]",
    positionals: ["DIR"],
    flags: [{ name: "json", type: "boolean", help: "print one JSON object" }],
    examples: ["npx dora inspect examples/tiny-llama", "npx dora inspect out/adapter --json"],
  },
  run(p) {
    const g = getters(p);
    const dir = requirePath("DIR", p.positionals[0] ?? (() => { throw new UsageError("dora inspect: missing folder argument DIR"); })(), "dir");
    const r = inspectFolder(dir);
    if (g.bool("json")) { process.stdout.write(`${JSON.stringify(r)}\n`); return; }
    const lines = Object.entries(r).filter(([k]) => k !== "modules").map(([k, v]) =>
      `${k.padEnd(24)}${typeof v === "number" ? formatCount(v) : typeof v === "object" ? JSON.stringify(v) : String(v)}`);
    process.stdout.write(`${lines.join("\n")}\n`);
  },
};
