/** Helpers the commands share: path checks that name the flag, and loading a model folder with its tokenizer. */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../args.js";
import { HfTokenizer, PeftModel, io, models } from "../../index.js";

/** A path given by --flag must exist (and be a folder / a file when asked). */
export function requirePath(flag: string, path: string | undefined, kind: "dir" | "file" | "any" = "any"): string {
  const label = /^[A-Z]+$/.test(flag) ? flag : `--${flag}`; // a positional (DIR) or a flag
  if (path === undefined) throw new UsageError(`missing required ${label}`);
  if (!existsSync(path)) throw new UsageError(`${label} ${path}: no such ${kind === "dir" ? "folder" : kind === "file" ? "file" : "path"}`);
  const isDir = statSync(path).isDirectory();
  if (kind === "dir" && !isDir) throw new UsageError(`${label} ${path}: expected a folder, found a file`);
  if (kind === "file" && isDir) throw new UsageError(`${label} ${path}: expected a file, found a folder`);
  return path;
}

/** The tokenizer of a model folder, or null when it has none (pre-tokenized data still works). */
export function tokenizerIfAny(dir: string): HfTokenizer | null {
  return existsSync(join(dir, "tokenizer.json")) ? HfTokenizer.fromDir(dir) : null;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** --model: a local folder, or a hub id (downloaded once into the HF cache). */
export async function openModel(flag: string, value: string | undefined, opts: models.LoadOptions = {}): Promise<{ model: models.CausalLM; dir: string }> {
  if (value === undefined) throw new UsageError(`missing required flag --${flag}`);
  if (!existsSync(value) && !models.looksLikeHubId(value)) throw new UsageError(`--${flag} ${value}: no such folder (and not a hub id)`);
  if (existsSync(value)) requirePath(flag, value, "dir");
  const dir = existsSync(value) ? value : await models.downloadModel(value);
  return { model: models.loadModelFromDir(dir, opts), dir };
}

/** --adapter DIR: wrap the model with the PEFT adapter in DIR (frozen unless trainable); no flag → the model itself. */
export function loadAdapterFlag(model: models.CausalLM, dir: string | undefined, trainable = false): models.CausalLM | PeftModel<models.CausalLM> {
  if (dir === undefined) return model;
  requirePath("adapter", dir, "dir");
  if (!existsSync(join(dir, "adapter_config.json"))) throw new UsageError(`--adapter ${dir}: no adapter_config.json in this folder`);
  return PeftModel.fromPretrained(model, dir, { isTrainable: trainable });
}

/** The storage dtype most of a model folder's weights use (merge writes the base's dtype by default). */
export function weightsDtype(dir: string): "float32" | "float16" | "bfloat16" {
  const src = io.openModelWeights(dir);
  const count: Record<string, number> = {};
  for (const k of src.keys()) {
    const i = src.info(k);
    count[i.dtype] = (count[i.dtype] ?? 0) + i.shape.reduce((a, b) => a * b, 1);
  }
  const top = Object.entries(count).sort((a, b) => b[1] - a[1])[0]?.[0];
  return top === "F16" ? "float16" : top === "BF16" ? "bfloat16" : "float32";
}
