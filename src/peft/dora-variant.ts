/**
 * The DoRA variant (PEFT `DoraLinearVariant`, `DoraEmbeddingVariant`, `DoraConv2dVariant`): the same four hooks
 * for every layer kind, because each layer describes itself to dora.ts as a 2-d [out, in] picture
 * (`LoraLayer.doraOperands`). The maths is in dora.ts; this file only wires it to the layer.
 */
import { Tensor, add, isGradEnabled, mul, sub } from "../tensor/index.js";
import type { FusedOperands, LoraAdapter, LoraLayer } from "./layer.js";
import type { AdapterVariant, ForwardContext } from "./variant.js";
import {
  doraCombine, doraLinear, doraMerge, doraUnmerge, magnitudeInit, magnitudeScale, weightNorm, weightNormGraph,
} from "./dora.js";

export const doraVariant: AdapterVariant = {
  name: "dora",

  init(layer: LoraLayer, a: LoraAdapter): void {
    const m = magnitudeInit(layer.doraOperands(a));
    layer.setMagnitude(a, new Tensor(m, layer.magnitudeShape()));
  },

  forward(layer: LoraLayer, a: LoraAdapter, x: Tensor, ctx: ForwardContext): Tensor {
    const m = a.magnitude!;
    const op = layer.doraOperands(a);
    const shape = layer.scaleShape();
    let scale: Tensor;
    if (!layer.training) {
      // eval: n (and m/n) cached until A, B, m or W change; m keeps its gradient if someone asks for one
      scale = isGradEnabled() && m.requiresGrad ? magnitudeScale(m, a.cache.norm(op), shape) : new Tensor(a.cache.scale(op, m), shape);
    } else {
      const n = a.detachNorm ? weightNorm(op, "factored") : weightNormGraph(op);
      scale = magnitudeScale(m, n, shape);
    }
    const xd = layer.dropoutInput(a, x);
    const lora = layer.loraOut(a, xd ?? x);
    if (ctx.pristine) {
      return doraCombine({ baseNoBias: ctx.baseNoBias, lora, scale, bias: layer.outputBias(), baseDropped: xd ? layer.baseNoBias(xd) : null });
    }
    // another adapter already changed the result: PEFT's additive form on the running result
    const baseD = xd ? layer.baseNoBias(xd) : ctx.baseNoBias;
    return add(add(ctx.result, mul(baseD, sub(scale, 1))), mul(lora, scale));
  },

  fusedForward(layer: LoraLayer, a: LoraAdapter, x: Tensor, fo: FusedOperands): Tensor | null {
    if (layer.training && !a.detachNorm) return null; // n in the graph: the generic form builds W + s·BA
    const op = layer.doraOperands(a);
    const n = layer.training ? weightNorm(op, "factored") : a.cache.norm(op);
    const p = layer.training ? a.dropout : 0;
    return doraLinear(x, fo, a.A, a.B, a.magnitude!, a.scaling, n, p > 0 ? { p, rng: a.rng } : null);
  },

  merge(layer: LoraLayer, a: LoraAdapter): void {
    a.mergedNorm = doraMerge(layer.doraOperands(a), a.magnitude!);
  },

  unmerge(layer: LoraLayer, a: LoraAdapter): void {
    if (!a.mergedNorm) throw new Error(`${layer.path}: adapter "${a.name}" is not merged`);
    doraUnmerge(layer.doraOperands(a), a.magnitude!, a.mergedNorm);
    a.mergedNorm = null;
  },
};
