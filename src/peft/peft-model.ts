/**
 * PeftModel and getPeftModel (PEFT `get_peft_model`, `PeftModel`, `LoraModel`): inject LoRA/DoRA layers by
 * module path, freeze the rest, merge/unmerge/unload, several adapters, PEFT-format save and load.
 *
 * The wrapper is itself a Module with the model under `base_model.model`, so `namedParameters()` gives PEFT's
 * in-memory names (`base_model.model.<path>.lora_A.default.weight`).
 *
 * Eval caching of DoRA's n and m/n: each layer caches per adapter, keyed on the identity, buffer and `version`
 * of A, B, m and W. Optimizers bump `version` when they write a tensor in place (Tensor.version), and
 * train()/eval() drop every cache; after writing `data` by other means, call `invalidateCache()`.
 */
import { join } from "node:path";
import type { Tensor } from "../tensor/index.js";
import { Conv1D, Conv2d, Embedding, Linear, Linear4bit, Module } from "../nn/index.js";
import { LoraConfig, type TargetModules } from "./config.js";
import { LoraLayer, settingsFrom } from "./layer.js";
import { LoraLinear } from "./lora-linear.js";
import { LoraEmbedding } from "./lora-embedding.js";
import { LoraConv2d } from "./lora-conv2d.js";
import { ModulesToSave } from "./modules-to-save.js";
import { expandAllLinear, isTarget, patternValue } from "./targets.js";
import { AdapterLoadError, diskKey, readAdapterConfig, readAdapterTensors, writeAdapter } from "./serialization.js";

export interface PeftOptions {
  /** Seed for A's init and the dropout masks (per module, derived from this and the module's index). */
  seed?: number;
}

export class PeftModel<M extends Module = Module> extends Module {
  readonly configs = new Map<string, LoraConfig>();
  activeAdapter: string;
  private readonly seed: number;

  constructor(readonly model: M, config: LoraConfig, adapterName = "default", opts: PeftOptions = {}) {
    super();
    const wrapper = this.registerModule("base_model", new Module());
    wrapper.registerModule("model", model);
    this.training = model.training;
    this.seed = opts.seed ?? 0;
    this.activeAdapter = adapterName;
    model.requiresGrad_(false);
    this.addAdapter(adapterName, config);
  }

  /** Calls the wrapped model's forward. */
  forward(...args: unknown[]): unknown {
    return (this.model as unknown as { forward(...a: unknown[]): unknown }).forward(...args);
  }

  /** (module path, layer) of every injected layer. */
  loraLayers(): [string, LoraLayer][] {
    return this.model.namedModules().filter((e): e is [string, LoraLayer] => e[1] instanceof LoraLayer);
  }

  private savers(): [string, ModulesToSave][] {
    return this.model.namedModules().filter((e): e is [string, ModulesToSave] => e[1] instanceof ModulesToSave);
  }

  /** Inject adapter `name` into every module `config` targets (PEFT inject_adapter). */
  addAdapter(name: string, config: LoraConfig): void {
    if (this.configs.has(name)) throw new Error(`adapter "${name}" already exists`);
    if (config.targetModules === null) {
      throw new Error(`LoraConfig.targetModules is required (PEFT's per-architecture defaults are not built in): ` +
        `give module name suffixes such as ["q_proj", "v_proj"], a regex, or "all-linear"`);
    }
    const targets: TargetModules = config.targetModules === "all-linear" ? expandAllLinear(this.model) : config.targetModules;
    const entries = this.model.namedModules();
    const under = (p: string, q: string): boolean => p.startsWith(`${q}.`);
    const skip = entries.filter(([, m]) => m instanceof LoraLayer || m instanceof ModulesToSave).map(([p]) => p);
    let found = 0, idx = 0;
    for (const [path, mod] of entries) {
      idx++;
      if (path === "" || skip.some((q) => under(path, q))) continue;
      if (!isTarget(config, targets, path)) continue;
      const r = patternValue(config.rankPattern, path) ?? config.r;
      const alpha = patternValue(config.alphaPattern, path) ?? config.loraAlpha;
      const layer = mod instanceof LoraLayer ? mod : this.wrap(path, mod, config);
      layer.addAdapter(name, settingsFrom(config, r, alpha, (this.seed * 1000003 + idx * 7919 + this.configs.size) >>> 0));
      layer.train(this.training);
      found++;
    }
    if (found === 0) {
      throw new Error(`target modules ${JSON.stringify(config.targetModules)} not found in the base model ` +
        `(module paths look like ${entries.slice(1, 4).map(([p]) => JSON.stringify(p)).join(", ")}…)`);
    }
    for (const target of config.modulesToSave ?? []) {
      for (const [path, mod] of this.model.namedModules()) {
        if (path === "" || !path.endsWith(target) || skip.some((q) => under(path, q))) continue;
        const w = mod instanceof ModulesToSave ? mod : new ModulesToSave(path, mod);
        if (w !== mod) this.model.setSubmodule(path, w);
        w.addAdapter(name);
      }
    }
    this.configs.set(name, config);
    this.setAdapter(this.activeAdapter === name || !this.configs.has(this.activeAdapter) ? name : this.activeAdapter);
  }

  private wrap(path: string, mod: Module, config: LoraConfig): LoraLayer {
    let layer: LoraLayer;
    if (mod instanceof Linear || mod instanceof Conv1D || mod instanceof Linear4bit) layer = new LoraLinear(path, mod, config.fanInFanOut);
    else if (mod instanceof Embedding) layer = new LoraEmbedding(path, mod);
    else if (mod instanceof Conv2d) layer = new LoraConv2d(path, mod);
    else {
      throw new Error(`target module ${JSON.stringify(path)} is a ${mod.constructor.name}; supported: Linear, Linear4bit, Conv1D, Embedding, Conv2d ` +
        `(target a layer inside it, or narrow targetModules / use excludeModules)`);
    }
    this.model.setSubmodule(path, layer);
    return layer;
  }

  /** Make `name` the active adapter: only its tensors train (PEFT set_adapter). */
  setAdapter(name: string): void {
    if (!this.configs.has(name)) throw new Error(`no adapter "${name}" (have ${[...this.configs.keys()].join(", ")})`);
    this.activeAdapter = name;
    for (const [, layer] of this.loraLayers()) {
      layer.activeAdapters = layer.adapters.has(name) ? [name] : [];
      for (const [n, a] of layer.adapters) for (const t of [a.A, a.B, a.magnitude]) if (t) t.requiresGrad = n === name;
    }
    for (const [, s] of this.savers()) {
      s.active = s.adapterTensors(name) ? name : null;
      for (const [, t] of s.adapterTensors(name) ?? []) t.requiresGrad = true;
    }
  }

  deleteAdapter(name: string): void {
    if (!this.configs.has(name)) throw new Error(`no adapter "${name}"`);
    for (const [, layer] of this.loraLayers()) if (layer.adapters.has(name)) layer.deleteAdapter(name);
    for (const [, s] of this.savers()) s.deleteAdapter(name); // PEFT deletes the modules_to_save copies too
    this.configs.delete(name);
    if (this.activeAdapter === name) {
      const next = this.configs.keys().next();
      if (!next.done) this.setAdapter(next.value);
    }
  }

  /** The trainable tensors by PEFT's in-memory name (for the optimizer). */
  trainableParameters(): [string, Tensor][] {
    return this.namedParameters().filter(([, t]) => t.requiresGrad);
  }

  /** PEFT print_trainable_parameters, returned (and printed when `print`). */
  printTrainableParameters(print = true): string {
    let trainable = 0, all = 0;
    for (const [, t] of this.namedParameters()) { all += t.numel; if (t.requiresGrad) trainable += t.numel; }
    for (const [, m] of this.namedModules()) if (m instanceof Linear4bit) all += m.qweight.numel; // 4-bit weights are not Tensors
    const fmt = (n: number): string => n.toLocaleString("en-US");
    const s = `trainable params: ${fmt(trainable)} || all params: ${fmt(all)} || trainable%: ${(100 * trainable / all).toFixed(4)}`;
    if (print) console.log(s);
    return s;
  }

  merge(names?: readonly string[]): void {
    for (const [, l] of this.loraLayers()) l.merge((names ?? [this.activeAdapter]).filter((n) => l.adapters.has(n)));
  }

  unmerge(): void {
    for (const [, l] of this.loraLayers()) l.unmerge();
  }

  /** Merge the active adapter and put the base modules back (PEFT merge_and_unload). Returns the model. */
  mergeAndUnload(): M {
    this.merge();
    return this.unload(true);
  }

  /**
   * Put the base modules back without merging (PEFT unload). A modules_to_save module keeps the active adapter's
   * trained copy, as PEFT's unload and merge_and_unload do (the copy is part of the fine-tuned model).
   */
  unload(keepMerged = false): M {
    for (const [path, l] of this.loraLayers()) {
      if (!keepMerged) l.unmerge();
      this.model.setSubmodule(path, l.baseLayer);
    }
    for (const [path, s] of this.savers()) this.model.setSubmodule(path, s.unwrap());
    return this.model;
  }

  /** Run `fn` with every adapter off (PEFT's `with model.disable_adapter():`). */
  disableAdapter<T>(fn: () => T): T {
    const layers = this.loraLayers(), savers = this.savers();
    const prev = savers.map(([, s]) => s.active);
    for (const [, l] of layers) l.disabled = true;
    for (const [, s] of savers) s.active = null;
    try { return fn(); } finally {
      for (const [, l] of layers) l.disabled = false;
      savers.forEach(([, s], i) => (s.active = prev[i]!));
    }
  }

  invalidateCache(): void {
    for (const [, l] of this.loraLayers()) l.invalidateCache();
  }

  /** Disk key → tensor of one adapter (PEFT get_peft_model_state_dict). */
  adapterStateDict(name = this.activeAdapter): Map<string, Tensor> {
    const out = new Map<string, Tensor>();
    for (const [path, l] of this.loraLayers()) {
      if (!l.adapters.has(name)) continue;
      for (const [suffix, t] of l.diskTensors(name)) out.set(diskKey(path, suffix), t);
    }
    for (const [path, s] of this.savers()) for (const [p, t] of s.adapterTensors(name) ?? []) out.set(diskKey(path, p), t);
    return out;
  }

  /** PEFT save_pretrained: `dir` for "default", `dir/<name>` for other adapters. Atomic writes. */
  savePretrained(dir: string, adapterNames: readonly string[] = [...this.configs.keys()]): void {
    for (const name of adapterNames) {
      const config = this.configs.get(name);
      if (!config) throw new Error(`savePretrained: no adapter "${name}"`);
      writeAdapter(name === "default" ? dir : join(dir, name), config.with({ inferenceMode: true }), this.adapterStateDict(name));
    }
  }

  /** Load an adapter folder PEFT (or savePretrained) wrote, as adapter `name` (frozen, and the model put in eval mode, unless isTrainable). */
  loadAdapter(dir: string, name: string, opts: { isTrainable?: boolean } = {}): void {
    const config = readAdapterConfig(dir);
    this.addAdapter(name, config.with({ inferenceMode: !opts.isTrainable }));
    try {
      readAdapterTensors(dir, this.adapterStateDict(name));
    } catch (e) {
      if (this.configs.size > 1) this.deleteAdapter(name);
      throw e instanceof AdapterLoadError ? e : new AdapterLoadError(`${dir}: ${(e as Error).message}`, { cause: e });
    }
    this.invalidateCache();
    if (!opts.isTrainable) {
      for (const [, t] of this.adapterStateDict(name)) t.requiresGrad = false;
      this.eval(); // PEFT load_adapter: eval mode unless trainable, so no dropout reaches an inference run
    }
  }

  /** PEFT PeftModel.from_pretrained: wrap `model` and load the adapter in `dir` (frozen and in eval mode unless isTrainable). */
  static fromPretrained<M extends Module>(model: M, dir: string, opts: { adapterName?: string; isTrainable?: boolean; seed?: number } = {}): PeftModel<M> {
    const name = opts.adapterName ?? "default";
    const config = readAdapterConfig(dir).with({ inferenceMode: !opts.isTrainable });
    const pm = new PeftModel(model, config, name, opts.seed === undefined ? {} : { seed: opts.seed });
    readAdapterTensors(dir, pm.adapterStateDict(name));
    pm.invalidateCache();
    if (!opts.isTrainable) {
      for (const [, t] of pm.adapterStateDict(name)) t.requiresGrad = false;
      pm.eval(); // as PEFT's from_pretrained (through load_adapter): eval mode unless trainable
    }
    return pm;
  }
}

/** PEFT get_peft_model. */
export function getPeftModel<M extends Module>(model: M, config: LoraConfig, adapterName = "default", opts: PeftOptions = {}): PeftModel<M> {
  return new PeftModel(model, config, adapterName, opts);
}
