/**
 * QDoRA / QLoRA: adapters over a 4-bit NF4 base (nn.Linear4bit) behave exactly like adapters over a float Linear
 * holding the dequantised weight Ŵ: magnitude init, forward, gradients of A, B, m and x (dropout off and on,
 * train and eval), the factored norm from the quantised weight's cache, and merge (which dequantises the base).
 */
import { describe, expect, it } from "vitest";
import { expectClose } from "../../test/helpers/close.js";
import { Linear, Linear4bit, Module } from "../nn/index.js";
import { quantizeNf4 } from "../quant/index.js";
import { Rng, Tensor, randn, sum, mul } from "../tensor/index.js";
import { LoraLinear } from "./lora-linear.js";
import { weightNorm } from "./dora.js";

const TOL = { rtol: 2e-5, atol: 2e-6 };

function pair(useDora: boolean, dropout: number, bias: boolean): { q: LoraLinear; f: LoraLinear } {
  const rng = new Rng(5);
  const out = 24, inn = 64;
  const qw = quantizeNf4(randn([out, inn], rng, 0.1).f32(), [out, inn]);
  const b = bias ? randn([out], rng, 0.1) : null;
  const base4 = new Linear4bit(qw, b);
  const basef = new Linear(inn, out, bias);
  (basef.weight.data as Float32Array).set(qw.dequantize());
  if (b) (basef.bias!.data as Float32Array).set(b.f32());
  for (const m of [base4, basef] as Module[]) m.requiresGrad_(false);
  const settings = { r: 4, alpha: 8, dropout, useRslora: false, useDora, detachNorm: true, init: false as const, seed: 7 };
  const q = new LoraLinear("proj", base4, false), f = new LoraLinear("proj", basef, false);
  q.addAdapter("default", settings);
  f.addAdapter("default", settings);
  return { q, f };
}

describe("adapters over a 4-bit base = adapters over its dequantised weight", () => {
  for (const useDora of [true, false]) for (const dropout of [0, 0.25]) for (const training of [true, false]) {
    const label = `${useDora ? "QDoRA" : "QLoRA"} dropout ${dropout} ${training ? "train" : "eval"}`;
    it(`${label}: forward and gradients`, () => {
      const { q, f } = pair(useDora, dropout, true);
      q.train(training); f.train(training);
      const aq = q.adapters.get("default")!, af = f.adapters.get("default")!;
      if (useDora) expectClose(aq.magnitude!, af.magnitude!.f32(), "m init", TOL);
      const rng = new Rng(11);
      const x0 = randn([2, 3, 64], rng), g = randn([2, 3, 24], rng);
      const xq = new Tensor(x0.f32().slice(), x0.shape).requiresGrad_(), xf = new Tensor(x0.f32().slice(), x0.shape).requiresGrad_();
      const yq = q.forward(xq), yf = f.forward(xf);
      expectClose(yq, yf.f32(), `${label} y`, TOL);
      sum(mul(yq, g)).backward(); sum(mul(yf, g)).backward();
      expectClose(xq.grad!, xf.grad!.f32(), `${label} dx`, TOL);
      expectClose(aq.A.grad!, af.A.grad!.f32(), `${label} dA`, TOL);
      expectClose(aq.B.grad!, af.B.grad!.f32(), `${label} dB`, TOL);
      if (useDora) expectClose(aq.magnitude!.grad!, af.magnitude!.grad!.f32(), `${label} dm`, TOL);
    });
  }

  it("factored norm from the quantised cache and the fused Ŵ·Aᵀ = direct norm of Ŵ + s·BA", () => {
    const { q } = pair(true, 0, false);
    const op = q.doraOperands(q.adapters.get("default")!);
    expectClose(weightNorm(op, "factored"), weightNorm(op, "direct"), "n", TOL);
  });

  it("merge dequantises the base (with a warning) and equals merging into Ŵ; unmerge restores Ŵ", () => {
    const { q, f } = pair(true, 0, true);
    const x = randn([5, 64], new Rng(2));
    const before = q.forward(x).f32().slice();
    const warnings: string[] = [];
    const onWarn = (w: Error): void => { warnings.push(w.message); };
    process.on("warning", onWarn);
    q.merge(); f.merge();
    return new Promise<void>((resolve) => setImmediate(() => {
      process.off("warning", onWarn);
      expect(warnings.some((w) => /4-bit \(NF4\) base/.test(w))).toBe(true);
      expect(q.baseLayer).toBeInstanceOf(Linear);
      expectClose(q.baseLayer.param("weight"), f.baseLayer.param("weight").f32(), "merged W", TOL);
      expectClose(q.forward(x), before, "merged forward", { rtol: 1e-4, atol: 1e-5 });
      q.unmerge();
      const deq = (f.baseLayer as Linear).weight; // f unmerged below to compare with Ŵ
      f.unmerge();
      expectClose(q.baseLayer.param("weight"), deq.f32(), "unmerged W", TOL);
      resolve();
    }));
  });
});
