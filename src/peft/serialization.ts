/**
 * PEFT's on-disk adapter format: adapter_config.json + adapter_model.safetensors. The one place where
 * in-memory names become disk keys (PEFT get_peft_model_state_dict / set_peft_model_state_dict):
 *   base_model.model.<module path>.lora_A.weight            [r, in]
 *   base_model.model.<module path>.lora_B.weight            [out, r]
 *   base_model.model.<module path>.lora_magnitude_vector    [out] (conv [1, O, 1, 1]); no ".weight", no adapter name
 *   base_model.model.<module path>.lora_embedding_A / _B    embeddings
 *   base_model.model.<module path>.<param>                  modules_to_save copies
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Tensor } from "../tensor/index.js";
import { SafetensorsFile, readJsonFile, writeFileAtomic, writeSafetensors, type TensorToWrite } from "../io/index.js";
import { LoraConfig } from "./config.js";

export const CONFIG_FILE = "adapter_config.json";
export const WEIGHTS_FILE = "adapter_model.safetensors";

export class AdapterLoadError extends Error {
  override name = "AdapterLoadError";
}

/** `<module path>` + `lora_A.weight` → `base_model.model.<module path>.lora_A.weight`. */
export function diskKey(modulePath: string, suffix: string): string {
  return `base_model.model.${modulePath}.${suffix}`;
}

export function writeAdapter(dir: string, config: LoraConfig, tensors: ReadonlyMap<string, Tensor>): void {
  mkdirSync(dir, { recursive: true });
  const out = new Map<string, TensorToWrite>();
  for (const [k, t] of tensors) out.set(k, { dtype: "F32", shape: t.shape, data: Float32Array.from(t.f32()) });
  writeSafetensors(join(dir, WEIGHTS_FILE), out);
  writeFileAtomic(join(dir, CONFIG_FILE), config.toJSONString());
}

export function readAdapterConfig(dir: string): LoraConfig {
  const path = join(dir, CONFIG_FILE);
  return LoraConfig.fromJSON(readJsonFile(path, "adapter config"), path);
}

/**
 * Copies the file's tensors into `expected` (disk key → tensor, shapes must match). A missing key, a wrong
 * shape, or a file key that matches no module is an AdapterLoadError naming the key and both shapes.
 */
export function readAdapterTensors(dir: string, expected: ReadonlyMap<string, Tensor>): void {
  const path = join(dir, WEIGHTS_FILE);
  const f = SafetensorsFile.openSync(path);
  try {
    const fileKeys = new Set(f.keys());
    for (const k of fileKeys) {
      if (!expected.has(k)) {
        throw new AdapterLoadError(`${path}: key ${JSON.stringify(k)} (shape [${f.info(k).shape.join(", ")}]) matches no adapted module ` +
          `of the model (the adapter was made for another model or another target_modules)`);
      }
    }
    for (const [k, t] of expected) {
      if (!fileKeys.has(k)) throw new AdapterLoadError(`${path}: missing key ${JSON.stringify(k)} (expected shape [${t.shape.join(", ")}])`);
      const info = f.info(k);
      const same = info.shape.length === t.shape.length && info.shape.every((d, i) => d === t.shape[i]);
      if (!same) {
        throw new AdapterLoadError(`${path}: key ${JSON.stringify(k)}: expected shape [${t.shape.join(", ")}], found [${info.shape.join(", ")}]`);
      }
      (t.data as Float32Array).set(f.readFloat32(k), t.offset);
      t.version++;
    }
  } finally {
    f.close();
  }
}
