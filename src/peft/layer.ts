/**
 * LoraLayer: the module that replaces an adapted layer (PEFT `LoraLayer`). It keeps the original module as
 * child `base_layer` and, per adapter, its tensors under PEFT's attribute names, so `namedParameters()` gives
 * PEFT's in-memory names: `<path>.lora_A.<adapter>.weight`, `<path>.lora_B.<adapter>.weight`,
 * `<path>.lora_magnitude_vector.<adapter>.weight`, embeddings `<path>.lora_embedding_A.<adapter>`.
 *
 * Plain LoRA runs inline (y = base(x) + s·B(A x̃)); a variant (DoRA) gets the adapter otherwise. Subclasses
 * (lora-linear.ts, lora-embedding.ts, lora-conv2d.ts) say how to run the base without bias, the LoRA path,
 * and how the layer looks to DoRA as a 2-d [out, in] picture.
 */
import { Rng, Tensor, add, dropout, kaimingUniform, randn, zeros } from "../tensor/index.js";
import { Module } from "../nn/index.js";
import type { LoraConfig } from "./config.js";
import { DoraScaleCache, loraMergeDelta, type DoraOperands } from "./dora.js";
import { resolveVariant, type AdapterVariant, type LayerKind, type VariantFlag } from "./variant.js";

export interface AdapterSettings {
  readonly r: number;
  readonly alpha: number;
  readonly dropout: number;
  readonly useRslora: boolean;
  readonly useDora: boolean;
  readonly detachNorm: boolean;
  readonly init: boolean | "gaussian";
  readonly seed: number;
}

/** A Linear-like layer as the fused adapter ops see it (frozen float32 weight, contiguous). */
export interface FusedOperands {
  /** Stored weight: [out, in], or [in, out] when `fanInFanOut` (Conv1D). */
  readonly weight: Tensor;
  readonly fanInFanOut: boolean;
  readonly bias: Tensor | null;
  readonly inF: number;
  readonly outF: number;
}

export interface LoraAdapter {
  readonly name: string;
  readonly r: number;
  readonly alpha: number;
  readonly scaling: number;
  readonly dropout: number;
  readonly rng: Rng;
  readonly detachNorm: boolean;
  readonly variant: AdapterVariant | null;
  A: Tensor;
  B: Tensor;
  magnitude: Tensor | null;
  /** DoRA: n at merge time, for the exact unmerge. */
  mergedNorm: Float32Array | null;
  /** DoRA: eval-mode cache of n and m/n. */
  readonly cache: DoraScaleCache;
}

/** Adapter settings for one module path from a config (rank_pattern / alpha_pattern applied by the caller). */
export function settingsFrom(config: LoraConfig, r: number, alpha: number, seed: number): AdapterSettings {
  return {
    r, alpha, dropout: config.loraDropout, useRslora: config.useRslora, useDora: config.useDora,
    detachNorm: config.doraDetachNorm, init: config.initLoraWeights, seed,
  };
}

export abstract class LoraLayer extends Module {
  abstract readonly kind: LayerKind;
  readonly adapters = new Map<string, LoraAdapter>();
  activeAdapters: string[] = [];
  /** Adapters merged into the base weight, in merge order. */
  merged: string[] = [];
  /** disableAdapter(): run the base layer only. */
  disabled = false;

  /** The wrapped module (`base_layer`); a 4-bit base is swapped for its dequantised Linear when merged into. */
  protected constructor(readonly path: string, public baseLayer: Module) {
    super();
    this.registerModule("base_layer", baseLayer);
    this.training = baseLayer.training;
  }

  /** The frozen base weight as stored by the base module. */
  get weight(): Tensor { return this.baseLayer.param("weight"); }
  get bias(): Tensor | null { return this.baseLayer.paramOrNull("bias"); }
  /** The bias shaped to add to the output (conv: [1, O, 1, 1]). */
  outputBias(): Tensor | null { return this.bias; }

  /** [in, out] sizes of the adapter: A is [r, in], B is [out, r] (conv: channels). */
  abstract features(): { inF: number; outF: number };
  /** base(x) without bias. */
  abstract baseNoBias(x: Tensor): Tensor;
  /** s·B(A x̃) in the output layout. */
  abstract loraOut(a: LoraAdapter, x: Tensor): Tensor;
  /** The layer as DoRA's 2-d picture (see dora.ts). */
  abstract doraOperands(a: LoraAdapter): DoraOperands;
  /** How m/n broadcasts against the output ([out]; conv [1, O, 1, 1]). */
  abstract scaleShape(): number[];
  /** Shape m is stored and saved with (PEFT's). */
  magnitudeShape(): number[] { return this.scaleShape(); }
  /** Shapes of A and B as stored. */
  protected abstract abShapes(r: number): { a: number[]; b: number[] };
  /** Registers A and B under PEFT's names: `lora_A.<adapter>.weight`, `lora_B.<adapter>.weight` (embeddings override). */
  protected registerAB(name: string, A: Tensor, B: Tensor): void {
    for (const [attr, t] of [["lora_A", A], ["lora_B", B]] as const) {
      const m = new Module();
      m.registerParameter("weight", t);
      this.container(attr).registerModule(name, m);
    }
  }

  /** (suffix of the on-disk key, tensor) pairs of one adapter, e.g. ["lora_A.weight", A] (embeddings override). */
  diskTensors(name: string): [string, Tensor][] {
    const a = this.adapters.get(name)!;
    const out: [string, Tensor][] = [["lora_A.weight", a.A], ["lora_B.weight", a.B]];
    if (a.magnitude) out.push(["lora_magnitude_vector", a.magnitude]);
    return out;
  }

  /** The layer for the fused single-adapter ops, or null when they do not apply (the generic graph runs). */
  fusedOperands(): FusedOperands | null { return null; }

  /** The fused forward of plain LoRA (LoraLinear overrides it); null = not available. */
  protected fusedLora(_a: LoraAdapter, _x: Tensor, _fo: FusedOperands): Tensor | null { return null; }

  /** The adapters' dropout generators (gradient checkpointing replays them). */
  override ownRngs(): Rng[] { return [...this.adapters.values()].map((a) => a.rng); }

  /** x̃ = dropout(x) when the adapter's dropout is active, else null (PEFT's fast path reuses base(x)). */
  dropoutInput(a: LoraAdapter, x: Tensor): Tensor | null {
    if (!this.training || a.dropout === 0) return null;
    return dropout(x, a.dropout, a.rng, true);
  }

  /** PEFT `update_layer`: create A, B (and m for DoRA) for adapter `name`. */
  addAdapter(name: string, st: AdapterSettings): LoraAdapter {
    if (this.adapters.has(name)) throw new Error(`${this.path}: adapter "${name}" already exists`);
    const flags: VariantFlag[] = st.useDora ? ["use_dora"] : [];
    const variant = resolveVariant(this.kind, flags, this.path);
    const rng = new Rng(st.seed);
    const { a: aShape, b: bShape } = this.abShapes(st.r);
    const [A, B] = this.initAB(st, aShape, bShape, rng);
    A.requiresGrad_(); B.requiresGrad_();
    const scaling = st.useRslora ? st.alpha / Math.sqrt(st.r) : st.alpha / st.r;
    const a: LoraAdapter = {
      name, r: st.r, alpha: st.alpha, scaling, dropout: st.dropout, rng: new Rng(st.seed ^ 0x5bd1e995),
      detachNorm: st.detachNorm, variant, A, B, magnitude: null, mergedNorm: null, cache: new DoraScaleCache(),
    };
    this.adapters.set(name, a);
    this.registerAB(name, A, B);
    variant?.init(this, a);
    if (this.activeAdapters.length === 0) this.activeAdapters = [name];
    return a;
  }

  /** PEFT reset_lora_parameters: true = kaiming-uniform(a=√5) A, zero B; "gaussian" = N(0, 1/r) A, zero B; false = both random. */
  protected initAB(st: AdapterSettings, aShape: number[], bShape: number[], rng: Rng): [Tensor, Tensor] {
    if (st.init === false) return [kaimingUniform(aShape, rng), kaimingUniform(bShape, rng)];
    if (st.init === "gaussian") return [randn(aShape, rng, 1 / st.r), zeros(bShape)];
    return [kaimingUniform(aShape, rng), zeros(bShape)];
  }

  setMagnitude(a: LoraAdapter, m: Tensor): void {
    m.requiresGrad_();
    a.magnitude = m;
    const holder = this.container("lora_magnitude_vector");
    const mod = new Module();
    mod.registerParameter("weight", m);
    holder.registerModule(a.name, mod);
  }

  protected container(attr: string): Module {
    try { return this.child(attr); } catch { return this.registerModule(attr, new Module()); }
  }

  deleteAdapter(name: string): void {
    if (!this.adapters.has(name)) throw new Error(`${this.path}: no adapter "${name}"`);
    if (this.merged.includes(name)) throw new Error(`${this.path}: adapter "${name}" is merged; unmerge it before deleting`);
    this.adapters.delete(name);
    // Module has no removal: rebuild each adapter container without `name`
    for (const [attr, holder] of this.children()) {
      if (attr === "base_layer") continue;
      const fresh = new Module();
      for (const [k, m] of holder.children()) if (k !== name) fresh.registerModule(k, m);
      for (const [k, t] of holder.ownParameters()) if (k !== name) fresh.registerParameter(k, t);
      this.registerModule(attr, fresh);
    }
    this.activeAdapters = this.activeAdapters.filter((n) => n !== name);
  }

  forward(x: Tensor): Tensor {
    if (this.disabled) {
      if (this.merged.length > 0) this.unmerge();
      return (this.baseLayer as unknown as { forward(x: Tensor): Tensor }).forward(x);
    }
    const live = this.activeAdapters.filter((n) => !this.merged.includes(n)).map((n) => this.adapters.get(n)!);
    if (live.length === 0) return (this.baseLayer as unknown as { forward(x: Tensor): Tensor }).forward(x);
    if (live.length === 1 && x.dtype === "float32" && x.isContiguous()) {
      // one adapter on a frozen Linear: one autograd op, the adapter fused into the base GEMM's output
      const fo = this.fusedOperands(), a = live[0]!;
      const y = fo === null ? null : a.variant ? (a.variant.fusedForward?.(this, a, x, fo) ?? null) : this.fusedLora(a, x, fo);
      if (y) return y;
    }
    const baseNoBias = this.baseNoBias(x);
    const bias = this.outputBias();
    let result: Tensor | null = null; // null: still base(x) = baseNoBias + bias, not yet formed
    for (const a of live) {
      const cur = result ?? (bias ? add(baseNoBias, bias) : baseNoBias);
      if (a.variant) {
        result = a.variant.forward(this, a, x, { baseNoBias, result: cur, pristine: result === null });
      } else {
        result = add(cur, this.loraOut(a, this.dropoutInput(a, x) ?? x));
      }
    }
    return result!;
  }

  /** Merge the active (or given) adapters into the base weight (PEFT merge). */
  merge(names: readonly string[] = this.activeAdapters): void {
    for (const n of names) {
      if (this.merged.includes(n)) continue;
      const a = this.adapters.get(n);
      if (!a) throw new Error(`${this.path}: no adapter "${n}" to merge`);
      if (a.variant) a.variant.merge(this, a); else loraMergeDelta(this.doraOperands(a), 1);
      this.merged.push(n);
    }
  }

  /** Undo every merge, last merged first (exact for DoRA: the merge-time norm is cached). */
  unmerge(): void {
    while (this.merged.length > 0) {
      const n = this.merged.pop()!;
      const a = this.adapters.get(n)!;
      if (a.variant) a.variant.unmerge(this, a); else loraMergeDelta(this.doraOperands(a), -1);
    }
  }

  /** Drop eval caches (called on train()/eval(); call after changing A, B or m in a way `version` does not show). */
  invalidateCache(): void {
    for (const a of this.adapters.values()) a.cache.invalidate();
  }

  protected override onModeChange(): void {
    this.invalidateCache();
  }
}
