/**
 * Module: a named tree of submodules and parameters, as torch.nn.Module. Dotted paths
 * (`model.layers.0.self_attn.q_proj`) are HF's module names, so PEFT's target matching and adapter keys
 * line up. Children are looked up by name at call time, so replacing one (`setSubmodule`) is all that
 * adapter injection needs.
 */
import type { Rng, Tensor } from "../tensor/index.js";

export class Module {
  training = true;
  private readonly paramMap = new Map<string, Tensor | null>();
  private readonly childMap = new Map<string, Module>();

  /** Register (or replace) a parameter or buffer-like tensor under `name`. */
  registerParameter(name: string, t: Tensor | null): void {
    if (name.includes(".")) throw new Error(`registerParameter: name "${name}" must not contain "."`);
    this.paramMap.set(name, t);
  }

  registerModule<M extends Module>(name: string, m: M): M {
    if (name.includes(".")) throw new Error(`registerModule: name "${name}" must not contain "."`);
    this.childMap.set(name, m);
    return m;
  }

  /** The parameter `name` of this module; throws when it does not exist. */
  param(name: string): Tensor {
    const t = this.paramMap.get(name);
    if (!t) throw new Error(`${this.constructor.name}: no parameter "${name}"`);
    return t;
  }

  paramOrNull(name: string): Tensor | null {
    return this.paramMap.get(name) ?? null;
  }

  /** The direct child `name`; throws when it does not exist. */
  child<M extends Module = Module>(name: string): M {
    const m = this.childMap.get(name);
    if (!m) throw new Error(`${this.constructor.name}: no submodule "${name}"`);
    return m as M;
  }

  children(): [string, Module][] {
    return [...this.childMap.entries()];
  }

  /** Every (path, module) pair in the tree, depth-first, this one first under `prefix`. */
  namedModules(prefix = ""): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.childMap) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  /** Every (path, tensor) parameter pair; a tensor shared by two modules (tied weights) is listed once. */
  namedParameters(prefix = "", seen = new Set<Tensor>()): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [n, t] of this.paramMap) {
      if (t && !seen.has(t)) { seen.add(t); out.push([prefix ? `${prefix}.${n}` : n, t]); }
    }
    for (const [n, m] of this.childMap) out.push(...m.namedParameters(prefix ? `${prefix}.${n}` : n, seen));
    return out;
  }

  /** Own parameters only (not children's), with their local names. */
  ownParameters(): [string, Tensor | null][] {
    return [...this.paramMap.entries()];
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** The module at a dotted path ("" is this one). */
  getSubmodule(path: string): Module {
    if (path === "") return this;
    let m: Module = this;
    for (const part of path.split(".")) {
      const next = m.childMap.get(part);
      if (!next) throw new Error(`getSubmodule: "${path}" not found (no "${part}" under ${m.constructor.name})`);
      m = next;
    }
    return m;
  }

  /** Replace the module at a dotted path. */
  setSubmodule(path: string, replacement: Module): void {
    const i = path.lastIndexOf(".");
    const parent = i < 0 ? this : this.getSubmodule(path.slice(0, i));
    const name = i < 0 ? path : path.slice(i + 1);
    if (!parent.childMap.has(name)) throw new Error(`setSubmodule: "${path}" does not exist`);
    parent.childMap.set(name, replacement);
  }

  /** Training mode for this module and all below (dropout active, eval caches off). */
  train(flag = true): this {
    for (const [, m] of this.namedModules()) m.training = flag;
    for (const [, m] of this.namedModules()) m.onModeChange();
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** Generators this module itself draws from in forward (dropout): gradient checkpointing replays them. */
  ownRngs(): Rng[] { return []; }

  /** Every generator in the tree (see ownRngs). */
  rngs(): Rng[] { return this.namedModules().flatMap(([, m]) => m.ownRngs()); }

  /** Hook for modules that cache values in eval mode (DoRA's norm); called after train()/eval(). */
  protected onModeChange(): void {}

  /** Freeze or unfreeze every parameter. */
  requiresGrad_(flag: boolean): this {
    for (const t of this.parameters()) t.requiresGrad = flag;
    return this;
  }

  /** Parameters by dotted path (tied tensors appear under their first name). */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
  }
}

/** A module mapping one tensor to one tensor (Linear, norms, adapters around them). */
export interface Layer extends Module {
  forward(x: Tensor): Tensor;
}
