/**
 * Module hooks for the profiler (src/tensor/profile.ts): `instrumentModules(root)` wraps the `forward` of every
 * module in the tree (instance-level, once) so ops run inside it are attributed to its dotted path (HF's names,
 * `model.layers.3.mlp.up_proj`). A no-op unless profiling is on, so callers (Trainer, benches) call it freely.
 */
import { enterModule, exitModule, profiling } from "../tensor/profile.js";
import type { Module } from "./module.js";

const wrapped = new WeakSet<Module>();

export function instrumentModules(root: Module, prefix = ""): void {
  if (!profiling) return;
  for (const [path, m] of root.namedModules(prefix)) {
    const mod = m as Module & { forward?: (...args: unknown[]) => unknown };
    if (wrapped.has(m) || typeof mod.forward !== "function") continue;
    wrapped.add(m);
    const inner = mod.forward;
    const name = path === "" ? "(model)" : path;
    mod.forward = function (this: unknown, ...args: unknown[]): unknown {
      enterModule(name);
      try { return inner.apply(this, args); } finally { exitModule(); }
    };
  }
}
