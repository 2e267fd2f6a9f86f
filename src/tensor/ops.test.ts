/**
 * Table-driven op suite: every differentiable op against central finite differences, plus closed forms
 * for the values. Runs on whichever backend DORA_BACKEND selects (npm test runs it on both).
 */
import { describe, expect, it } from "vitest";
import * as T from "./index.js";
import { Rng, Tensor, indexTensor, randn, tensor } from "./index.js";
import { gradcheck } from "../../test/helpers/gradcheck.js";
import { expectClose } from "../../test/helpers/close.js";

const rng = new Rng(1);
const r = (shape: number[], scale = 1): Tensor => randn(shape, rng, scale).requiresGrad_();
const pos = (shape: number[]): Tensor => {
  const t = T.randUniform(shape, rng, 0.5, 2);
  return t.requiresGrad_();
};

describe("gradients match finite differences", () => {
  const cases: [string, () => Tensor[], (...x: Tensor[]) => Tensor][] = [
    ["add broadcast", () => [r([3, 4]), r([4])], (a, b) => T.add(a!, b!)],
    ["sub broadcast", () => [r([2, 1, 4]), r([3, 1])], (a, b) => T.sub(a!, b!)],
    ["mul broadcast", () => [r([3, 4]), r([3, 1])], (a, b) => T.mul(a!, b!)],
    ["div", () => [r([3, 4]), pos([3, 4])], (a, b) => T.div(a!, b!)],
    ["pow scalar", () => [pos([5])], (a) => T.pow(a!, 3)],
    ["pow tensor", () => [pos([5]), r([5], 0.5)], (a, b) => T.pow(a!, b!)],
    ["neg", () => [r([4])], (a) => T.neg(a!)],
    ["exp", () => [r([6])], (a) => T.exp(a!)],
    ["log", () => [pos([6])], (a) => T.log(a!)],
    ["sqrt", () => [pos([6])], (a) => T.sqrt(a!)],
    ["rsqrt", () => [pos([6])], (a) => T.rsqrt(a!)],
    ["tanh", () => [r([6])], (a) => T.tanh(a!)],
    ["sigmoid", () => [r([6])], (a) => T.sigmoid(a!)],
    ["relu", () => [r([6])], (a) => T.relu(a!)],
    ["silu", () => [r([6])], (a) => T.silu(a!)],
    ["gelu", () => [r([6])], (a) => T.gelu(a!)],
    ["sum dims", () => [r([2, 3, 4])], (a) => T.sum(a!, [0, 2])],
    ["mean keepdim", () => [r([2, 3, 4])], (a) => T.mean(a!, 1, true)],
    ["max dim", () => [r([3, 5])], (a) => T.max(a!, 1)],
    ["max dim0", () => [r([4, 3])], (a) => T.max(a!, 0)],
    ["norm", () => [r([3, 5])], (a) => T.norm(a!, 1)],
    ["matmul 2d", () => [r([3, 4]), r([4, 5])], (a, b) => T.matmul(a!, b!)],
    ["matmul nt view", () => [r([3, 4]), r([5, 4])], (a, b) => T.matmul(a!, b!.T)],
    ["matmul tn view", () => [r([4, 3]), r([4, 5])], (a, b) => T.matmul(a!.T, b!)],
    ["matmul tt views", () => [r([4, 3]), r([5, 4])], (a, b) => T.matmul(a!.T, b!.T)],
    ["matmul batched broadcast", () => [r([2, 3, 4]), r([4, 2])], (a, b) => T.matmul(a!, b!)],
    ["matmul batch vs batch", () => [r([2, 3, 4]), r([1, 4, 2])], (a, b) => T.matmul(a!, b!)],
    ["linear", () => [r([2, 3, 4]), r([5, 4]), r([5])], (x, w, b) => T.linear(x!, w!, b!)],
    ["softmax", () => [r([3, 5])], (a) => T.softmax(a!)],
    ["softmax dim0", () => [r([3, 5])], (a) => T.softmax(a!, 0)],
    ["log_softmax", () => [r([3, 5])], (a) => T.logSoftmax(a!)],
    ["rmsNorm", () => [r([3, 6]), r([6])], (x, w) => T.rmsNorm(x!, w!, 1e-6)],
    ["layerNorm", () => [r([3, 6]), r([6]), r([6])], (x, w, b) => T.layerNorm(x!, w!, b!, 1e-5)],
    ["rope", () => [r([1, 2, 3, 4])], (x) => T.rope(x!, tensor([...Array(12)].map((_, i) => Math.cos(i * 0.3)), [3, 4]), tensor([...Array(12)].map((_, i) => Math.sin(i * 0.3)), [3, 4]))],
    ["attention gqa", () => [r([1, 4, 3, 2]), r([1, 2, 3, 2]), r([1, 2, 3, 2])], (q, k, v) => T.scaledDotProductAttention(q!, k!, v!)],
    ["attention sq<sk", () => [r([1, 2, 2, 3]), r([1, 1, 4, 3]), r([1, 1, 4, 3])], (q, k, v) => T.scaledDotProductAttention(q!, k!, v!)],
    ["rope + attention on heads of [B, S, H·D]", () => [r([2, 3, 4 * 2]), r([2, 3, 2 * 2]), r([2, 3, 2 * 2])], (q, k, v) => {
      const heads = (t: Tensor, n: number): Tensor => T.transpose(T.reshape(t, [2, 3, n, 2]), 1, 2);
      const cos = tensor([...Array(6)].map((_, i) => Math.cos(0.4 * i)), [3, 2]), sin = tensor([...Array(6)].map((_, i) => Math.sin(0.4 * i)), [3, 2]);
      const a = T.scaledDotProductAttention(T.rope(heads(q!, 4), cos, sin), heads(k!, 2), heads(v!, 2));
      return T.reshape(T.transpose(a, 1, 2), [2, 3, 8]);
    }],
    ["embedding", () => [r([5, 3])], (w) => T.embedding(w!, indexTensor([0, 4, 4, 2], [2, 2]))],
    ["where", () => [r([2, 3]), r([3])], (a, b) => T.where(tensor([1, 0, 1, 0, 0, 1], [2, 3]), a!, b!)],
    ["cat", () => [r([2, 3]), r([2, 2])], (a, b) => T.cat([a!, b!], 1)],
    ["split+mul", () => [r([2, 5])], (a) => { const [x, y] = T.split(a!, [2, 3], 1); return T.matmul(x!.T, y!); }],
    ["slice", () => [r([4, 3])], (a) => T.slice(a!, 0, 1, 3)],
    ["permute+contiguous", () => [r([2, 3, 4])], (a) => T.contiguous(T.permute(a!, [2, 0, 1]))],
    ["expand", () => [r([3, 1])], (a) => T.mul(T.expand(a!, [2, 3, 4]), 1)],
    ["conv2d", () => [r([2, 2, 4, 4]), r([3, 2, 3, 3]), r([3])], (x, w, b) => T.conv2d(x!, w!, b!, 1, 1)],
    ["conv2d stride2", () => [r([1, 2, 5, 5]), r([2, 2, 3, 3])], (x, w) => T.conv2d(x!, w!, null, 2, 0)],
    ["cross_entropy", () => [r([4, 6])], (a) => T.crossEntropy(a!, indexTensor([1, -100, 5, 0]))],
  ];
  for (const [name, make, fn] of cases) it(name, () => gradcheck(name, fn, make()));
});

describe("closed forms", () => {
  it("norm: values, and a zero gradient (not NaN) at an all-zero row, as PyTorch's vector_norm", () => {
    const x = tensor([0, 0, 0, 3, 4, 0], [2, 3]).requiresGrad_();
    const n = T.norm(x, 1);
    expect(Array.from(n.f32())).toEqual([0, 5]);
    T.sum(T.mul(n, tensor([2, 1], [2]))).backward();
    expect(Array.from(x.grad!.f32())).toEqual([0, 0, 0, Math.fround(0.6), Math.fround(0.8), 0]);
  });
  it("cross-entropy ignores -100 and averages over counted rows", () => {
    const logits = tensor([1, 2, 3, 0, 0, 0, 5, 1, 1], [3, 3]);
    const loss = T.crossEntropy(logits, indexTensor([2, -100, 0]));
    const lse = (a: number[]): number => Math.log(a.reduce((s, v) => s + Math.exp(v), 0));
    expectClose([loss.item()], [((lse([1, 2, 3]) - 3) + (lse([5, 1, 1]) - 5)) / 2], "ce");
  });
  it("gelu is GPT-2's tanh form", () => {
    const x = [-3, -0.5, 0, 0.7, 2];
    const ref = x.map((v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))));
    expectClose(T.gelu(tensor(x)), ref, "gelu", { rtol: 1e-6, atol: 1e-7 });
  });
  it("attention with one key returns v", () => {
    const q = randn([1, 2, 1, 3], rng), k = randn([1, 1, 1, 3], rng), v = randn([1, 1, 1, 3], rng);
    const o = T.scaledDotProductAttention(q, k, v);
    expectClose(o, [...v.f32(), ...v.f32()], "attn");
  });
  it("rope and attention read heads of a [B, S, H·D] projection in place and lay results out the same way", () => {
    const [b, s, h, hkv, d] = [2, 5, 4, 2, 6];
    const x = randn([b, s, h * d], rng).requiresGrad_(), kv = randn([b, s, hkv * d], rng).requiresGrad_();
    const ang = [...Array(s * d)].map((_, i) => 0.3 * Math.floor(i / d) * (1 + (i % (d / 2))));
    const cos = tensor(ang.map(Math.cos), [s, d]), sin = tensor(ang.map(Math.sin), [s, d]);
    const run = (copy: boolean) => {
      const heads = (t: Tensor, n: number): Tensor => {
        const v = T.transpose(T.reshape(t, [b, s, n, d]), 1, 2);
        return copy ? v.contiguous() : v;
      };
      const q = T.rope(heads(x, h), cos, sin), k = T.rope(heads(kv, hkv), cos, sin);
      const a = T.scaledDotProductAttention(q, k, heads(kv, hkv));
      const y = T.reshape(T.transpose(a, 1, 2), [b, s, h * d]);
      x.grad = null; kv.grad = null;
      T.sum(T.mul(y, y)).backward();
      return { q, a, y: y.f32().slice(), dx: x.grad!.f32().slice(), dkv: kv.grad!.f32().slice() };
    };
    const views = run(false), copies = run(true);
    expect(views.q.strides).toEqual([s * h * d, d, h * d, 1]); // rope kept the [B, S, H, D] layout
    expect(views.a.strides).toEqual([s * h * d, d, h * d, 1]); // so did attention: the transpose back is contiguous
    expect(copies.a.isContiguous()).toBe(true);
    expectClose(views.y, copies.y, "y", { rtol: 1e-6, atol: 1e-7 });
    expectClose(views.dx, copies.dx, "dx", { rtol: 1e-6, atol: 1e-7 });
    expectClose(views.dkv, copies.dkv, "dkv", { rtol: 1e-6, atol: 1e-7 });
  });
  it("causal attention ignores future keys", () => {
    const q = randn([1, 1, 3, 4], rng), k = randn([1, 1, 3, 4], rng), v = randn([1, 1, 3, 4], rng);
    const o1 = T.scaledDotProductAttention(q, k, v).f32().slice(0, 8);
    const k2 = k.f32().slice(); k2.fill(9, 8); const v2 = v.f32().slice(); v2.fill(-9, 8);
    const o2 = T.scaledDotProductAttention(q, tensor(k2, [1, 1, 3, 4]), tensor(v2, [1, 1, 3, 4])).f32().slice(0, 8);
    expectClose(o1, Array.from(o2), "causal", { rtol: 0, atol: 0 });
  });
  it("views share storage and reshape of a transposed view copies", () => {
    const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const t = a.T;
    expect(t.data).toBe(a.data);
    expect(t.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    expect(t.reshape([6]).toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    expect(a.slice(1, 1, 3).toArray()).toEqual([2, 3, 5, 6]);
    expect(a.slice(1, 1, 3).data).toBe(a.data);
    expect(tensor([7, 8], [2, 1]).expand([2, 3]).toArray()).toEqual([7, 7, 7, 8, 8, 8]);
    expect(indexTensor([1, 2, 3, 4, 5, 6], [2, 3]).T.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    expect(tensor([1, 2.5, -3, 4], [2, 2]).to("bfloat16").T.float().toArray()).toEqual([1, -3, 2.5, 4]);
  });
  it("gradients accumulate across backward calls and detach cuts the graph", () => {
    const x = tensor([1, 2, 3]).requiresGrad_();
    T.sum(T.mul(x, x)).backward();
    T.sum(T.mul(x, x)).backward();
    expect(x.grad!.toArray()).toEqual([4, 8, 12]);
    const y = T.mul(x.detach(), 2);
    expect(y.requiresGrad).toBe(false);
  });
  it("noGrad records nothing; a frozen weight gets no gradient", () => {
    const w = randn([4, 3], rng); // frozen
    const x = randn([2, 3], rng).requiresGrad_();
    const out = T.noGrad(() => T.linear(x, w));
    expect(out.requiresGrad).toBe(false);
    T.sum(T.linear(x, w)).backward();
    expect(w.grad).toBe(null);
    expect(x.grad).not.toBe(null);
  });
  it("dropout keeps the expectation and is identity in eval", () => {
    const x = T.ones([20000]);
    const y = T.dropout(x, 0.25, new Rng(3));
    const m = T.mean(y).item();
    expect(Math.abs(m - 1)).toBeLessThan(0.03);
    const zeros = y.toArray().filter((v) => v === 0).length / 20000;
    expect(Math.abs(zeros - 0.25)).toBeLessThan(0.02);
    expect(T.dropout(x, 0.25, new Rng(3), false)).toBe(x);
    expect(T.dropout(x, 0.25, new Rng(3)).toArray()).toEqual(y.toArray());
  });
  it("linear's weight gradient comes out in the weight's own layout (contiguous), equal to gᵀ·x", () => {
    const x = randn([2, 3, 4], rng), w = randn([5, 4], rng).requiresGrad_(), g = randn([2, 3, 5], rng);
    T.linear(x, w).backward(g);
    expect(w.grad!.isContiguous()).toBe(true); // a transposed view made the optimizer copy every weight each step
    const want = T.matmul(T.reshape(g, [6, 5]).T, T.reshape(x, [6, 4]));
    expectClose(w.grad!.toArray(), want.toArray(), "dW", { rtol: 1e-6, atol: 1e-6 });
  });
  it("float16/bfloat16 storage widens exactly", () => {
    const x = tensor([1, 0.1, -2.5, 65504]);
    expect(x.to("float16").float().toArray()).toEqual([1, 0.0999755859375, -2.5, 65504]);
    expect(x.to("bfloat16").float().toArray()).toEqual([1, 0.10009765625, -2.5, 65536]);
  });
});

describe("bad input names the op and shapes", () => {
  it("matmul inner mismatch", () => expect(() => T.matmul(randn([2, 3], rng), randn([4, 5], rng))).toThrow(/matmul: inner dims differ: \[2, 3\] @ \[4, 5\]/));
  it("broadcast mismatch", () => expect(() => T.add(randn([2, 3], rng), randn([4], rng))).toThrow(/add: shapes \[2, 3\] and \[4\] cannot broadcast/));
  it("embedding index out of range", () => expect(() => T.embedding(randn([5, 2], rng), indexTensor([5]))).toThrow(/index 5 at position 0 out of range \[0, 5\)/));
  it("backward without grad", () => expect(() => T.sum(randn([2], rng)).backward()).toThrow(/does not require grad/));
  it("cross-entropy target range", () => expect(() => T.crossEntropy(randn([1, 3], rng), indexTensor([3]))).toThrow(/target 3 at row 0 out of range/));
  it("reshape size", () => expect(() => randn([2, 3], rng).reshape([4])).toThrow(/cannot become \[4\]/));
});
