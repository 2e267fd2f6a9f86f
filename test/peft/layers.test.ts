/**
 * Every layer fixture of test/fixtures/golden (PEFT 0.20 semantics, PyTorch float64 reference): forward,
 * gradients (norm detached as PEFT, and the `_full` non-detached variant), magnitude init, merge, unmerge,
 * forward through the merged weight. Tolerances from GOLDEN.md (rtol 1e-4, atol 1e-5).
 */
import { describe, expect, it } from "vitest";
import { Rng, Tensor, linear, mul, noGrad, sum } from "../../src/tensor/index.js";
import { Conv1D, Conv2d, Embedding, Linear, Module } from "../../src/nn/index.js";
import { LoraLinear } from "../../src/peft/lora-linear.js";
import { LoraEmbedding } from "../../src/peft/lora-embedding.js";
import { LoraConv2d } from "../../src/peft/lora-conv2d.js";
import type { LoraLayer } from "../../src/peft/layer.js";
import { CANCEL, NORM_EPS, NORM_KERNEL_MAX_RANK, weightNorm } from "../../src/peft/dora.js";
import { AdamW } from "../../src/train/optim.js";
import { getBackend, type Backend } from "../../src/backend/index.js";
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
      // lora_linear's fixture has no y_from_merged: a plain Linear on the fixture's merged weight is the expectation
      const fromMerged = g.tensors.has("y_from_merged") ? g.get("y_from_merged").f32() : linear(input, g.get("W_merged"), g.get("b")).f32();
      expectClose(layer.forward(input), fromMerged, `${caseName} y_from_merged`, TOL);
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

describe("weight norm at degenerate rows", () => {
  // row 2 of W is −s·B₂·A plus a residual 1e-4 the size of its entries, so n₂² ≈ 1e-9·‖W₂‖²: the factored form's
  // ‖W₂‖² + (terms) keeps no correct digit of it in float32 (the GEMM path above NORM_KERNEL_MAX_RANK) and must
  // take the row directly; the expectation is the float64 norm of the float32 operands
  it.each([1, NORM_KERNEL_MAX_RANK + 1])("rank %i: a row where W + s·BA nearly cancels comes out exact", (r) => {
    const rng = new Rng(11 + r), out = 5, inn = 23, s = 0.5;
    const A = randn([r, inn], rng), B = randn([out, r], rng), W = randn([out, inn], rng);
    const Wf = W.f32(), Af = A.f32(), Bf = B.f32();
    const ba = (i: number, j: number): number => { let v = 0; for (let k = 0; k < r; k++) v += Bf[i * r + k]! * Af[k * inn + j]!; return v; };
    for (let j = 0; j < inn; j++) Wf[2 * inn + j] = -s * ba(2, j) + 1e-4 * Math.sin(j + 1);
    const exact = new Float32Array(out);
    let w2 = 0;
    for (let i = 0; i < out; i++) {
      let acc = 0;
      for (let j = 0; j < inn; j++) acc += (Wf[i * inn + j]! + s * ba(i, j)) ** 2;
      exact[i] = Math.sqrt(acc);
      if (i === 2) for (let j = 0; j < inn; j++) w2 += Wf[i * inn + j]! ** 2;
    }
    expect(exact[2]! ** 2 / w2).toBeLessThan(CANCEL); // the row does cancel
    const op = { W, weightKey: W, A, B, aKey: A, bKey: B, s };
    expectClose(weightNorm(op, "factored"), exact, `rank ${r} cancelling row`, { rtol: 1e-5, atol: 0 });
  });

  // PEFT divides by a zero norm here (peft#2049); dora-ts floors n at NORM_EPS. Row 0 of W is zero and B = 0, so row
  // 0 of W + s·BA is zero: n₀ = m₀ = NORM_EPS, y₀ = b₀, and with the norm not detached the floor's gradient is
  // zero, so row 0's gradients equal the detached ones (the chain through sqrt at 0 used to give NaN there)
  it("an all-zero row of W + s·BA: floored norm, finite gradients, the same row-0 gradients detached or not", () => {
    const grads = [true, false].map((detachNorm) => {
      const base = new Linear(7, 4, true, new Rng(5));
      base.requiresGrad_(false);
      (base.param("weight").data as Float32Array).fill(0, 0, 7);
      base.param("weight").version++;
      const layer = new LoraLinear("l", base, false);
      const a = layer.addAdapter("default", { r: 2, alpha: 4, dropout: 0, useRslora: false, useDora: true, detachNorm, init: true, seed: 3 });
      expect(a.magnitude!.f32()[0]).toBe(Math.fround(NORM_EPS));
      const x = randn([3, 7], new Rng(6)).requiresGrad_();
      const y = layer.forward(x);
      const yf = y.f32(), bias = base.param("bias").f32();
      for (let t = 0; t < 3; t++) expect(yf[t * 4]).toBe(bias[0]);
      sum(mul(y, randn([3, 4], new Rng(8)))).backward();
      for (const t of [x.grad!, a.A.grad!, a.B.grad!, a.magnitude!.grad!]) expect(t.f32().every(Number.isFinite)).toBe(true);
      return { dB0: Array.from(a.B.grad!.f32().subarray(0, 2)), dm0: a.magnitude!.grad!.f32()[0]! };
    });
    // (the two modes take different code paths, the fused op and the graph: equal to float32 rounding)
    expectClose(Float32Array.from(grads[1]!.dB0), Float32Array.from(grads[0]!.dB0), "row-0 dB, not detached vs detached", { rtol: 1e-6, atol: 0 });
    expectClose(Float32Array.of(grads[1]!.dm0), Float32Array.of(grads[0]!.dm0), "row-0 dm, not detached vs detached", { rtol: 1e-6, atol: 0 });
    expect(grads[0]!.dB0.some((v) => v !== 0)).toBe(true); // row 0 does get a gradient (m/n = 1, s·g·(Ax)ᵀ)
  });
});

/** Calls `fn` with the backend's gemm and gemmScaled counted by their (m, n, k); restores them after. */
function countGemms(fn: () => void): Map<string, number> {
  const be = getBackend() as Backend & Record<string, unknown>;
  const calls = new Map<string, number>();
  const saved = { gemm: be.gemm, gemmScaled: be.gemmScaled };
  const count = (m: number, n: number, k: number): void => { const key = `${m}x${n}x${k}`; calls.set(key, (calls.get(key) ?? 0) + 1); };
  be.gemm = (...args: Parameters<Backend["gemm"]>) => { count(args[1], args[2], args[3]); saved.gemm.apply(be, args); };
  be.gemmScaled = (...args: Parameters<Backend["gemmScaled"]>) => { count(args[1], args[2], args[3]); saved.gemmScaled.apply(be, args); };
  try { fn(); } finally { Object.assign(be, saved); }
  return calls;
}

describe("DoRA reuses base(x) where PEFT does", () => {
  // PEFT's DoRA forward needs x̃Wᵀ; with dropout 0 or in eval x̃ = x and it reuses base(x) instead of a second
  // base-size product. Count the [T, out] × in products of one forward.
  const T = 5, inF = 24, outF = 20;
  const baseProducts = (p: number, train: boolean): number => {
    const base = new Linear(inF, outF, true, new Rng(2));
    base.requiresGrad_(false);
    const layer = new LoraLinear("l", base, false);
    layer.addAdapter("default", { r: 3, alpha: 6, dropout: p, useRslora: false, useDora: true, detachNorm: true, init: false, seed: 4 });
    if (!train) layer.eval();
    const x = randn([T, inF], new Rng(9));
    return countGemms(() => noGrad(() => layer.forward(x))).get(`${T}x${outF}x${inF}`) ?? 0;
  };
  it("one base product at p = 0 (training and eval) and in eval at p = 0.5; two with dense dropout in training", () => {
    expect(baseProducts(0, true)).toBe(1);
    expect(baseProducts(0, false)).toBe(1);
    expect(baseProducts(0.5, false)).toBe(1);
    expect(baseProducts(0.5, true)).toBe(2); // the count does see PEFT's second product where it is needed
  });
});

/**
 * Runs `fn` with every Float32Array / Float64Array constructed through the globals (as `new Float32Array(n)`,
 * `Float32Array.from`, and uninitF32's views over fresh memory) recorded by element count.
 */
function allocations(fn: () => void): number[] {
  const g = globalThis as unknown as Record<string, unknown>;
  const saved = { f32: g["Float32Array"], f64: g["Float64Array"] };
  const seen: number[] = [];
  const spy = <C extends object>(C: C): C => new Proxy(C, {
    construct(target, args: unknown[]) {
      const r = Reflect.construct(target as unknown as new (...a: unknown[]) => ArrayLike<number>, args);
      seen.push(r.length);
      return r;
    },
  });
  g["Float32Array"] = spy(Float32Array);
  g["Float64Array"] = spy(Float64Array);
  try { fn(); } finally { g["Float32Array"] = saved.f32; g["Float64Array"] = saved.f64; }
  return seen;
}

describe("no out×in temporary in a DoRA training step", () => {
  // A layer whose out×in (48·40 = 1920) is larger than anything else a step needs ([T, in] = 4·48, A, B, m and their
  // AdamW moments): magnitude init and training steps (forward, backward, AdamW) at p = 0, 0.1 (the sparse dropout
  // path) and 0.6 (dense) allocate nothing that size, while PEFT's non-detached norm (`detachNorm: false`), which
  // builds W + s·BA, does: the spy sees it.
  const T = 4, inF = 48, outF = 40;
  const largest = (p: number, detachNorm: boolean): number => {
    const base = new Linear(inF, outF, true, new Rng(12)); // its weight is the one out×in buffer allowed
    base.requiresGrad_(false);
    const layer = new LoraLinear("l", base, false);
    return allocations(() => {
    const a = layer.addAdapter("default", { r: 4, alpha: 8, dropout: p, useRslora: false, useDora: true, detachNorm, init: false, seed: 5 });
    const opt = new AdamW([{ name: "A", tensor: a.A }, { name: "B", tensor: a.B }, { name: "m", tensor: a.magnitude! }], { lr: 1e-2 });
    const x = randn([T, inF], new Rng(13)), dy = randn([T, outF], new Rng(14));
    for (let step = 0; step < 2; step++) {
      sum(mul(layer.forward(x), dy)).backward();
      opt.step();
      opt.zeroGrad();
    }
    }).reduce((m, n) => Math.max(m, n), 0);
  };
  it.each([0, 0.1, 0.6])("dropout %s", (p) => expect(largest(p, true)).toBeLessThan(outF * inF));
  it("the spy sees the out×in product of the non-detached norm", () => expect(largest(0, false)).toBeGreaterThanOrEqual(outF * inF));
});
