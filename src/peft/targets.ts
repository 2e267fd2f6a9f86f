/**
 * Which modules an adapter wraps, exactly as PEFT decides (tuners_utils.check_target_module_exists,
 * _maybe_include_all_linear_layers, lora/model.py's rank/alpha patterns). Paths are HF dotted module names.
 */
import { Conv1D, Linear, Linear4bit, type Module } from "../nn/index.js";
import type { LoraConfig, TargetModules } from "./config.js";

/** list: the path equals an entry or ends with "." + entry; string: the regex matches the whole path. */
export function matchesModules(spec: TargetModules, path: string): boolean {
  if (spec === null) return false;
  if (typeof spec === "string") return new RegExp(`^(?:${spec})$`).test(path);
  return spec.some((t) => path === t || path.endsWith(`.${t}`));
}

/** layers_to_transform: the layer index is the number after `<layers_pattern>.` (default: any name), last match. */
function layerAllowed(config: LoraConfig, path: string): boolean {
  const ltt = config.layersToTransform;
  if (ltt === null) return true;
  const patterns = config.layersPattern === null ? null : typeof config.layersPattern === "string" ? [config.layersPattern] : config.layersPattern;
  let m: RegExpExecArray | null = null;
  if (patterns === null || patterns.length === 0) m = /^.*\.[^.]*\.(\d+)\./.exec(path);
  else for (const p of patterns) { m = new RegExp(`^.*\\.${p}\\.(\\d+)\\.`).exec(path); if (m) break; }
  if (!m) return false;
  const idx = Number(m[1]);
  return typeof ltt === "number" ? idx === ltt : ltt.includes(idx);
}

/** The output head "all-linear" leaves out (PEFT: the model's output embeddings, `lm_head` in HF causal LMs). */
export const OUTPUT_HEAD = "lm_head";

/** "all-linear" → the set of last name components of every Linear/Linear4bit/Conv1D except the output head (PEFT). */
export function expandAllLinear(model: Module): string[] {
  const names = new Set<string>();
  for (const [path, m] of model.namedModules()) {
    if (!(m instanceof Linear || m instanceof Conv1D || m instanceof Linear4bit)) continue;
    const last = path.slice(path.lastIndexOf(".") + 1);
    if (last !== OUTPUT_HEAD) names.add(last);
  }
  return [...names];
}

/** Is the module at `path` a target of `config` (targets already expanded from "all-linear")? */
export function isTarget(config: LoraConfig, targets: TargetModules, path: string): boolean {
  if (!matchesModules(targets, path)) return false;
  if (matchesModules(config.excludeModules, path)) return false;
  return layerAllowed(config, path);
}

/** rank_pattern / alpha_pattern: the first key whose regex matches the end of the path after a dot (PEFT get_pattern_key). */
export function patternValue(pattern: Readonly<Record<string, number>>, path: string): number | undefined {
  for (const [k, v] of Object.entries(pattern)) {
    if (new RegExp(`^(?:.*\\.)?(?:${k})$`).test(path)) return v;
  }
  return undefined;
}
