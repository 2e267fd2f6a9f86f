/**
 * Every layer fixture of test/fixtures/golden (PEFT 0.20 semantics, PyTorch float64 reference): forward,
 * gradients (norm detached as PEFT, and the `_full` non-detached variant), magnitude init, merge, unmerge,
 * forward through the merged weight. Tolerances from GOLDEN.md (rtol 1e-4, atol 1e-5).
 */
import { describe, expect, it } from "vitest";
import { Rng, Tensor, mul, noGrad, sum } from "../../src/tensor/index.js";
import { Conv1D, Conv2d, Embedding, Linear, Module } from "../../src/nn/index.js";
import { LoraLinear } from "../../src/peft/lora-linear.js";
import { LoraEmbedding } from "../../src/peft/lora-embedding.js";
import { LoraConv2d } from "../../src/peft/lora-conv2d.js";
import type { LoraLayer } from "../../src/peft/layer.js";
import { NORM_KERNEL_MAX_RANK, weightNorm } from "../../src/peft/dora.js";
import { randn } from "../../src/tensor/index.js";
import { expectClose } from "../helpers/close.js";
import { loadGolden, type Golden } from "../helpers/golden.js";

const TOL = { rtol: 1e-4, atol: 1e-5 };

function copyInto(dst: Tensor, src: Tensor): void {
  expect(dst.shape).toEqual(src.shape);
  (dst.data as Float32Array).set(src.f32());
  dst.version++;
}

interface Built { layer: LoraLayer; g: Golden; input: Tensor }

function build(caseName: string, opts: { detachNorm?: boolean } = {}): Built {
  const g = loadGolden(caseName);
  const c = g.config;
  const W = g.get("W");
  let base: Module, input: Tensor, layer: LoraLayer;
  const r = c["r"] as number, alpha = c["lora_alpha"] as number;
  if (caseName === "dora_embedding") {
    base = new Embedding(W.shape[0]!, W.shape[1]!);
    copyInto(base.param("weight"), W);
    layer = new LoraEmbedding("emb", base);
    input = g.get("ids");
  } else if (caseName === "dora_conv2d") {
    base = new Conv2d(W.shape[1]!, W.shape[0]!, W.shape[2]!, 1, 1, true);
    copyInto(base.param("weight"), W);
    copyInto(base.param("bias"), g.get("b"));
    layer = new LoraConv2d("conv", base);
    input = g.get("x");
  } else {
    const fifo = c["fan_in_fan_out"] === true;
    base = fifo ? new Conv1D(W.shape[0]!, W.shape[1]!) : new Linear(W.shape[1]!, W.shape[0]!, true);
    copyInto(base.param("weight"), W);
    copyInto(base.param("bias"), g.get("b"));
    layer = new LoraLinear("lin", base, fifo);
    input = g.get("x");
  }
  base.requiresGrad_(false);
  const a = layer.addAdapter("default", {
    r, alpha, dropout: 0, useRslora: c["use_rslora"] === true, useDora: c["use_dora"] === true,
    detachNorm: opts.detachNorm ?? true, init: true, seed: 0,
  });
  copyInto(a.A, g.get("A"));
  copyInto(a.B, g.get("B"));
  if (a.magnitude) {
    // magnitude init for the fixture's A, B (so not the zero-B init value)
    a.variant!.init(layer, a);
    expectClose(a.magnitude, g.get("m_init").f32(), `${caseName} m_init`, TOL);
    copyInto(a.magnitude, g.get("m"));
  }
  return { layer, g, input };
}

function checkGrads(caseName: string, full: boolean): void {
  const { layer, g, input } = build(caseName, { detachNorm: !full });
  const a = layer.adapters.get("default")!;
  const x = input.dtype === "float32" ? input.requiresGrad_() : input;
  const y = layer.forward(x);
  expectClose(y, g.get("y").f32(), `${caseName} y`, TOL);
  sum(mul(y, g.get("dy"))).backward();
  const suf = full ? "_full" : "";
  if (g.tensors.has("dx")) expectClose(x.grad!, g.get(`dx${suf}`).f32(), `${caseName} dx${suf}`, TOL);
  expectClose(a.A.grad!, g.get(`dA${suf}`).f32(), `${caseName} dA${suf}`, TOL);
  expectClose(a.B.grad!, g.get(`dB${suf}`).f32(), `${caseName} dB${suf}`, TOL);
  if (a.magnitude) expectClose(a.magnitude.grad!, g.get(`dm${suf}`).f32(), `${caseName} dm${suf}`, TOL);
}

const CASES = ["lora_linear", "dora_linear", "dora_linear_fan_in_fan_out", "dora_linear_rslora", "dora_embedding", "dora_conv2d"];

describe.each(CASES)("%s", (caseName) => {
  it("forward and gradients (norm detached, as PEFT)", () => checkGrads(caseName, false));

  if (caseName !== "lora_linear") {
    it("gradients with doraDetachNorm: false match the *_full fixtures", () => checkGrads(caseName, true));

    it("factored and direct norms agree", () => {
      const { layer } = build(caseName);
      const op = layer.doraOperands(layer.adapters.get("default")!);
      expectClose(weightNorm(op, "factored"), weightNorm(op, "direct"), `${caseName} n factored vs direct`, { rtol: 1e-5, atol: 1e-6 });
    });
  }

  it("merge, forward through the merged weight, exact unmerge", () => {
    const { layer, g, input } = build(caseName);
    noGrad(() => {
      layer.merge();
      expectClose(layer.weight, g.get("W_merged").f32(), `${caseName} W_merged`, TOL);
      if (g.tensors.has("y_from_merged")) expectClose(layer.forward(input), g.get("y_from_merged").f32(), `${caseName} y_from_merged`, TOL);
      layer.unmerge();
      expectClose(layer.weight, g.get("W_unmerged").f32(), `${caseName} W_unmerged`, TOL);
      expectClose(layer.weight, g.get("W").f32(), `${caseName} W restored`, TOL);
      expectClose(layer.forward(input), g.get("y").f32(), `${caseName} y after unmerge`, TOL);
    });
  });

  it("eval mode gives the training output (cached norm)", () => {
    const { layer, g, input } = build(caseName);
    layer.eval();
    noGrad(() => {
      expectClose(layer.forward(input), g.get("y").f32(), `${caseName} eval y`, TOL);
      expectClose(layer.forward(input), g.get("y").f32(), `${caseName} eval y (cached)`, TOL);
    });
  });
});

describe("LoRA init", () => {
  it("DoRA equals LoRA at step 0 (B = 0, m = ‖W‖)", () => {
    const base = new Linear(8, 6, true, new Rng(3));
    base.requiresGrad_(false);
    const layer = new LoraLinear("l", base, false);
    layer.addAdapter("default", { r: 2, alpha: 4, dropout: 0, useRslora: false, useDora: true, detachNorm: true, init: true, seed: 1 });
    const x = new Tensor(Float32Array.from({ length: 16 }, (_, i) => Math.sin(i)), [2, 8]);
    expectClose(layer.forward(x), base.forward(x).f32(), "dora at init", { rtol: 1e-5, atol: 1e-6 });
  });
});

describe("factored weight norm on both sides of NORM_KERNEL_MAX_RANK", () => {
  // the native one-pass kernel up to the threshold, GEMMs above it: both against the direct form, both weight layouts
  it.each([1, NORM_KERNEL_MAX_RANK, NORM_KERNEL_MAX_RANK + 1, 2 * NORM_KERNEL_MAX_RANK + 3])("rank %i", (r) => {
    const rng = new Rng(7 + r);
    const stored = randn([37, 29], rng, 0.1), A = randn([r, 29], rng, 0.1), B = randn([37, r], rng, 0.1);
    const storedT = randn([29, 37], rng, 0.1), Bt = randn([37, r], rng, 0.1);
    for (const op of [
      { W: stored, weightKey: stored, A, B, aKey: A, bKey: B, s: 0.7 }, // Linear: [out 37, in 29] as stored
      { W: storedT.T, weightKey: storedT, A, B: Bt, aKey: A, bKey: Bt, s: 1.3 }, // Conv1D: a transposed view
    ]) expectClose(weightNorm(op, "factored"), weightNorm(op, "direct"), `rank ${r} factored vs direct`, { rtol: 1e-5, atol: 1e-6 });
  });
});
