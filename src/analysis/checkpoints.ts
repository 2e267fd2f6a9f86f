/**
 * ΔM/ΔD points of a fine-tuning run: the base model folder against each `checkpoint-<step>/` a run wrote
 * (`dora train --save-steps N`). A checkpoint holding a PEFT adapter is applied to a fresh copy of the base and
 * merged (W_t = the merged weight; for DoRA m_t = the learned lora_magnitude_vector); one holding a model
 * (`--full-finetune`) is read as it is. Module types are the last path segment (q_proj, v_proj, c_attn).
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as io from "../io/index.js";
import * as models from "../models/index.js";
import { PeftModel } from "../peft/index.js";
import { decompositionDelta } from "./decompose.js";

export interface AnalysisPoint {
  /** "FT", "LoRA", "DoRA", or the label given. */
  method: string;
  module: string;
  layer: number;
  step: number;
  dM: number;
  dD: number;
}

export interface AnalyzeOptions {
  /** Module types to measure (default: q_proj,v_proj for LLaMA-family models, c_attn for GPT-2). */
  modules?: readonly string[];
  /** Label for the points (default: from the checkpoint: FT, LoRA or DoRA). */
  method?: string;
}

/** The run's `checkpoint-<step>` folders, by step. */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  if (!existsSync(runDir)) throw new Error(`analyze: run folder ${runDir} not found`);
  const out = readdirSync(runDir).map((f) => /^checkpoint-(\d+)$/.exec(f)).filter((m) => m !== null)
    .map((m) => ({ step: Number(m[1]), dir: join(runDir, m[0]) })).sort((a, b) => a.step - b.step);
  if (out.length === 0) throw new Error(`analyze: ${runDir} has no checkpoint-<step> folders (train with --save-steps N)`);
  return out;
}

const layerOf = (path: string): number => {
  const m = /\.(?:layers|h)\.(\d+)\./.exec(path);
  return m ? Number(m[1]) : -1;
};
const moduleOf = (path: string): string => path.split(".").pop()!;

/** The method a checkpoint folder holds. */
export function checkpointMethod(dir: string): "FT" | "LoRA" | "DoRA" {
  if (existsSync(join(dir, "adapter_config.json"))) {
    const cfg = io.readJsonFile(join(dir, "adapter_config.json"), "adapter config") as { use_dora?: boolean };
    return cfg.use_dora ? "DoRA" : "LoRA";
  }
  if (existsSync(join(dir, "model.safetensors")) || existsSync(join(dir, "model.safetensors.index.json"))) return "FT";
  throw new Error(`analyze: ${dir} holds neither an adapter (adapter_config.json) nor a model (model.safetensors)`);
}

/** ΔM/ΔD of every selected module at every checkpoint of one run. */
export function analyzeRun(baseDir: string, runDir: string, opts: AnalyzeOptions = {}): AnalysisPoint[] {
  const config = models.readModelConfig(baseDir);
  const modules = new Set(opts.modules ?? (config.family === "gpt2" ? ["c_attn"] : ["q_proj", "v_proj"]));
  const base = io.openModelWeights(baseDir);
  const points: AnalysisPoint[] = [];
  try {
    for (const { step, dir } of listCheckpoints(runDir)) {
      const kind = checkpointMethod(dir);
      const method = opts.method ?? kind;
      const add = (path: string, wt: Float32Array, shape: readonly number[], inOut: boolean, magnitude?: Float32Array): void => {
        const key = `${path}.weight`;
        if (!base.has(key)) throw new Error(`analyze: ${baseDir} has no tensor ${key} (is ${runDir} a run of this base model?)`);
        const w0 = base.readFloat32(key);
        const [outF, inF] = inOut ? [shape[1]!, shape[0]!] : [shape[0]!, shape[1]!];
        const d = decompositionDelta(w0, wt, outF, inF, { layout: inOut ? "in-out" : "out-in", ...(magnitude ? { magnitude } : {}) });
        points.push({ method, module: moduleOf(path), layer: layerOf(path), step, ...d });
      };
      if (kind === "FT") {
        const src = io.openModelWeights(dir);
        try {
          for (const key of src.keys()) {
            const path = key.replace(/\.weight$/, "");
            if (!key.endsWith(".weight") || !modules.has(moduleOf(path))) continue;
            add(path, src.readFloat32(key), src.info(key).shape, config.family === "gpt2");
          }
        } finally { src.close(); }
      } else {
        const pm = PeftModel.fromPretrained(models.loadModelFromDir(baseDir), dir);
        const layers = pm.loraLayers().filter(([path]) => modules.has(moduleOf(path)));
        const mags = layers.map(([, l]) => { const m = l.adapters.get(pm.activeAdapter)?.magnitude; return m ? Float32Array.from(m.f32()) : undefined; });
        pm.merge();
        layers.forEach(([path, l], i) => {
          const inOut = "fanInFanOut" in l && (l as { fanInFanOut: boolean }).fanInFanOut;
          add(path.replace(/^base_model\.model\./, ""), Float32Array.from(l.weight.f32()), l.weight.shape, inOut, mags[i]);
        });
      }
    }
  } finally { base.close(); }
  if (points.length === 0) throw new Error(`analyze: no ${[...modules].join("/")} modules in ${runDir}'s checkpoints (see --modules)`);
  return points;
}
