/**
 * modules_to_save (PEFT ModulesToSaveWrapper): a module trained in full next to the adapters. The original
 * stays frozen as `original_module`; each adapter owns a trainable copy of its parameters under
 * `modules_to_save.<adapter>.<param path>`, swapped into the module for the duration of a forward call (the
 * graph keeps the copies it used, so backward is unaffected by the swap back).
 */
import { Tensor } from "../tensor/index.js";
import { Module } from "../nn/index.js";

export class ModulesToSave extends Module {
  private readonly copies = new Map<string, Map<string, Tensor>>();
  private readonly originals: Map<string, Tensor>;
  active: string | null = null;

  constructor(readonly path: string, readonly original: Module) {
    super();
    this.registerModule("original_module", original);
    this.registerModule("modules_to_save", new Module());
    this.originals = new Map(original.namedParameters());
  }

  addAdapter(name: string): void {
    const copy = new Map<string, Tensor>();
    const holder = this.child("modules_to_save").registerModule(name, new Module());
    for (const [p, t] of this.originals) {
      const own = new Tensor(Float32Array.from(t.f32()), t.shape).requiresGrad_();
      copy.set(p, own);
      let m = holder;
      const parts = p.split(".");
      for (const part of parts.slice(0, -1)) m = m.children().find(([n]) => n === part)?.[1] ?? m.registerModule(part, new Module());
      m.registerParameter(parts[parts.length - 1]!, own);
    }
    this.copies.set(name, copy);
    if (this.active === null) this.active = name;
  }

  /**
   * Drop adapter `name`'s copy (PEFT ModulesToSaveWrapper.delete_adapter). If it was active, no copy is active
   * afterwards: PeftModel.deleteAdapter picks the next adapter for every module alike.
   */
  deleteAdapter(name: string): void {
    if (!this.copies.delete(name)) return;
    // Module has no removal: rebuild the container without `name`
    const holder = this.child("modules_to_save"), fresh = new Module();
    for (const [k, m] of holder.children()) if (k !== name) fresh.registerModule(k, m);
    this.registerModule("modules_to_save", fresh);
    if (this.active === name) this.active = null;
  }

  /**
   * The module unload() puts back (PEFT unload_and_optionally_merge_module returns modules_to_save[active]):
   * the wrapped module carrying the active adapter's trained copy for good; the original when no copy is active.
   */
  unwrap(): Module {
    const copy = this.active === null ? undefined : this.copies.get(this.active);
    if (copy) this.swap(copy);
    return this.original;
  }

  /** The trainable copy of one adapter (param path → tensor). */
  adapterTensors(name: string): Map<string, Tensor> | undefined { return this.copies.get(name); }

  forward(...args: unknown[]): unknown {
    const f = (this.original as unknown as { forward(...a: unknown[]): unknown }).forward.bind(this.original);
    const copy = this.active === null ? undefined : this.copies.get(this.active);
    if (!copy) return f(...args);
    this.swap(copy);
    try { return f(...args); } finally { this.swap(this.originals); }
  }

  private swap(tensors: Map<string, Tensor>): void {
    for (const [p, t] of tensors) {
      const i = p.lastIndexOf(".");
      const owner = i < 0 ? this.original : this.original.getSubmodule(p.slice(0, i));
      owner.registerParameter(p.slice(i + 1), t);
    }
  }
}
