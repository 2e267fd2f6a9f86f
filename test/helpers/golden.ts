/**
 * The one loader of the golden fixtures (test/fixtures/golden/<name>.json, format in GOLDEN.md):
 * `loadGolden("dora_linear")` → { config, description, tensors }. float32 tensors come back as float32
 * Tensors (values parsed as double, rounded to float32, exactly as written); int64 tensors as int32 index
 * tensors (range-checked by `indexTensor`). Files are parsed once per process and cached; callers get fresh
 * Tensors each time, so mutating one cannot leak into another test.
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tensor, indexTensor } from "../../src/tensor/index.js";

/** test/fixtures/golden, for tests that open the model and adapter folders beside the JSON files. */
export const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "fixtures", "golden");

interface RawTensor { shape: number[]; dtype: "float32" | "int64"; data: number[] }
interface RawCase { case: string; description: string; config: Record<string, unknown>; tensors: Record<string, RawTensor> }

export interface Golden {
  readonly name: string;
  readonly description: string;
  /** The case's `config` object as written (snake_case, PEFT/HF names). */
  readonly config: Record<string, unknown>;
  /** Every tensor of the case by its fixture name (e.g. "x", "dA_full", "grad.base_model.model...."). */
  readonly tensors: Map<string, Tensor>;
  /** The tensor `key`; throws naming the case and key when absent. */
  get(key: string): Tensor;
}

const cache = new Map<string, RawCase>();

function readCase(name: string): RawCase {
  let raw = cache.get(name);
  if (raw === undefined) {
    const path = join(GOLDEN_DIR, `${name}.json`);
    raw = JSON.parse(readFileSync(path, "utf8")) as RawCase;
    cache.set(name, raw);
  }
  return raw;
}

function toTensor(caseName: string, key: string, t: RawTensor): Tensor {
  const count = t.shape.reduce((a, b) => a * b, 1);
  if (t.data.length !== count) throw new Error(`golden ${caseName}: tensor "${key}" has ${t.data.length} values for shape [${t.shape.join(", ")}]`);
  if (t.dtype === "int64") return indexTensor(t.data, t.shape);
  if (t.dtype !== "float32") throw new Error(`golden ${caseName}: tensor "${key}" has unsupported dtype ${String(t.dtype)}`);
  return new Tensor(Float32Array.from(t.data), t.shape);
}

/** Loads test/fixtures/golden/<name>.json (name without ".json"). */
export function loadGolden(name: string): Golden {
  const raw = readCase(name);
  const tensors = new Map<string, Tensor>();
  for (const [k, t] of Object.entries(raw.tensors)) tensors.set(k, toTensor(name, k, t));
  return {
    name,
    description: raw.description,
    config: raw.config,
    tensors,
    get(key: string): Tensor {
      const t = tensors.get(key);
      if (t === undefined) throw new Error(`golden ${name}: no tensor "${key}" (has ${[...tensors.keys()].slice(0, 12).join(", ")}…)`);
      return t;
    },
  };
}
