/**
 * Adapter variants (PEFT `LoraVariant`): a variant changes how one adapter initialises, runs, merges and
 * unmerges; plain LoRA runs inline in the layer. One table maps (layer kind, sorted variant flags) to a
 * variant; a combination not in the table is an error naming the module path and the flags. A new variant
 * is one file plus one row here.
 */
import type { Tensor } from "../tensor/index.js";
import type { FusedOperands, LoraAdapter, LoraLayer } from "./layer.js";
import { doraVariant } from "./dora-variant.js";

export type LayerKind = "linear" | "embedding" | "conv2d";

/** What a variant's forward gets besides x: the base output with and without bias. */
export interface ForwardContext {
  /** base(x) without the bias (x·Wᵀ, the embedding lookup, conv(x, W)). */
  readonly baseNoBias: Tensor;
  /** The running result: base(x) plus the adapters applied before this one. */
  readonly result: Tensor;
  /** True when no adapter has been applied yet (result = baseNoBias + bias): lets DoRA use its one-pass form. */
  readonly pristine: boolean;
}

export interface AdapterVariant {
  readonly name: string;
  /** After A and B exist (PEFT `init`): e.g. DoRA's magnitude m = ‖W + s·BA‖. */
  init(layer: LoraLayer, a: LoraAdapter): void;
  /** The new running result with this adapter applied. */
  forward(layer: LoraLayer, a: LoraAdapter, x: Tensor, ctx: ForwardContext): Tensor;
  /**
   * Optional: the whole layer (base + this adapter, the only live one) as one fused op on a Linear-like layer;
   * null when the variant cannot fuse this configuration (the generic `forward` runs then).
   */
  fusedForward?(layer: LoraLayer, a: LoraAdapter, x: Tensor, fo: FusedOperands): Tensor | null;
  /** Merge the adapter into the base weight in place. */
  merge(layer: LoraLayer, a: LoraAdapter): void;
  /** Undo `merge` exactly. */
  unmerge(layer: LoraLayer, a: LoraAdapter): void;
}

/** Variant flags an adapter may carry (from LoraConfig), sorted in the table keys. */
export type VariantFlag = "use_dora";

const TABLE: ReadonlyMap<string, AdapterVariant | null> = new Map([
  ["linear:", null],
  ["embedding:", null],
  ["conv2d:", null],
  ["linear:use_dora", doraVariant],
  ["embedding:use_dora", doraVariant],
  ["conv2d:use_dora", doraVariant],
]);

/** The variant for (kind, flags); null = plain LoRA (inline). Throws naming the module path for unknown rows. */
export function resolveVariant(kind: LayerKind, flags: readonly VariantFlag[], modulePath: string): AdapterVariant | null {
  const key = `${kind}:${[...flags].sort().join(",")}`;
  if (!TABLE.has(key)) {
    throw new Error(`${modulePath}: no adapter variant for a ${kind} layer with flags [${[...flags].sort().join(", ")}] ` +
      `(supported: ${[...TABLE.keys()].join("; ")})`);
  }
  return TABLE.get(key) ?? null;
}
