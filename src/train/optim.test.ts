import { describe, expect, it } from "vitest";
import { AdamW, SGD, clipGradNorm } from "./optim.js";
import { lrMultiplier } from "./schedule.js";
import { tensor } from "../tensor/index.js";
import { expectClose } from "../../test/helpers/close.js";

describe("AdamW", () => {
  it("follows torch.optim.AdamW's update, step by step (closed form in float64)", () => {
    const p = tensor([0.5, -1, 2]).requiresGrad_();
    const opt = new AdamW([{ name: "p", tensor: p }], { lr: 0.1, weightDecay: 0.01 });
    const grads = [[0.1, -0.2, 0.3], [0.05, 0.4, -0.1], [1, 1, 1]];
    let ref = [0.5, -1, 2], m = [0, 0, 0], v = [0, 0, 0];
    grads.forEach((g, t) => {
      p.grad = tensor(g);
      opt.step();
      const step = t + 1;
      ref = ref.map((x, i) => {
        x = x * (1 - 0.1 * 0.01);
        m[i] = 0.9 * m[i]! + 0.1 * g[i]!;
        v[i] = 0.999 * v[i]! + 0.001 * g[i]! * g[i]!;
        const mh = m[i]! / (1 - 0.9 ** step), vh = v[i]! / (1 - 0.999 ** step);
        return x - 0.1 * mh / (Math.sqrt(vh) + 1e-8);
      });
      expectClose(p, ref, `adamw step ${step}`, { rtol: 1e-6, atol: 1e-7 });
    });
    expect(p.version).toBe(3);
  });
  it("state round-trips", () => {
    const p = tensor([1, 2]).requiresGrad_();
    const a = new AdamW([{ name: "p", tensor: p }], { lr: 0.1 });
    p.grad = tensor([1, -1]); a.step();
    const q = tensor(p.toArray()).requiresGrad_();
    const b = new AdamW([{ name: "p", tensor: q }], { lr: 0.1 });
    b.loadState(a.state());
    p.grad = tensor([0.3, 0.2]); q.grad = tensor([0.3, 0.2]);
    a.step(); b.step();
    expect(q.toArray()).toEqual(p.toArray());
  });
});

describe("SGD with momentum", () => {
  it("matches torch.optim.SGD", () => {
    const p = tensor([1]).requiresGrad_();
    const opt = new SGD([{ name: "p", tensor: p }], { lr: 0.5, momentum: 0.9 });
    p.grad = tensor([2]); opt.step(); // buf = 2, p = 1 - 1 = 0
    p.grad = tensor([1]); opt.step(); // buf = 2.8, p = -1.4
    expectClose(p, [-1.4], "sgd", { rtol: 1e-6 });
  });
});

describe("clipGradNorm", () => {
  it("scales to max norm and returns the norm before clipping", () => {
    const a = tensor([3, 0]).requiresGrad_(), b = tensor([4]).requiresGrad_();
    a.grad = tensor([3, 0]); b.grad = tensor([4]);
    const n = clipGradNorm([{ name: "a", tensor: a }, { name: "b", tensor: b }], 1);
    expect(n).toBe(5);
    expectClose(a.grad!, [0.6, 0], "a", { rtol: 1e-5 });
    expectClose(b.grad!, [0.8], "b", { rtol: 1e-5 });
  });
});

describe("LR schedules (HF definitions)", () => {
  it("warmup then linear / cosine / constant", () => {
    expect(lrMultiplier("linear", 0, 2, 10)).toBe(0);
    expect(lrMultiplier("linear", 1, 2, 10)).toBe(0.5);
    expect(lrMultiplier("linear", 2, 2, 10)).toBe(1);
    expect(lrMultiplier("linear", 6, 2, 10)).toBe(0.5);
    expect(lrMultiplier("cosine", 6, 2, 10)).toBeCloseTo(0.5, 12);
    expect(lrMultiplier("cosine", 10, 2, 10)).toBeCloseTo(0, 12);
    expect(lrMultiplier("constant", 9, 0, 10)).toBe(1);
    expect(lrMultiplier("constant", 1, 4, 10)).toBe(0.25);
  });
});
