/**
 * Gradient buffers of a backward pass go back to the pool (buffer.ts) once nothing holds them: the values every
 * leaf receives stay right however buffers are shared (views, one gradient for two inputs, accumulation), and
 * buffers a caller can still reach (leaf grads, the root gradient, forward activations) are never reused.
 */
import { describe, expect, it } from "vitest";
import { Tensor, add, allocationMark, exp, mul, record, reshape, sum } from "./index.js";
import { pooledBufferBytes, releaseF32, uninitF32 } from "./buffer.js";

const N = 20000; // buffers of this size are pooled

function leaf(fill: number): Tensor {
  const t = new Tensor(new Float32Array(N).fill(fill), [N]);
  t.requiresGrad = true;
  return t;
}

/** Hands out (and scribbles over) every pooled buffer of length N, as later ops would. */
function churn(): void {
  for (let i = 0; i < 16; i++) uninitF32(N).fill(-999);
}

describe("backward releases dead gradient buffers", () => {
  it("shared, viewed and accumulated gradients keep their values; intermediates are pooled", () => {
    const x = leaf(1), w = leaf(3);
    const h = mul(x, w);                       // dh = 2·(h + h)'s g
    const z = add(h, h);                       // add's backward returns one gradient for both inputs
    const r = reshape(z, [100, N / 100]);      // reshape's gradient is a view of its output's
    const s = sum(mul(r, reshape(add(x, x), [100, N / 100]))); // x reached twice: gradients accumulate
    const before = pooledBufferBytes();
    s.backward();
    expect(pooledBufferBytes()).toBeGreaterThan(before);
    churn();
    // s = Σ 2·x·w · 2x = Σ 4 x² w: ds/dx = 8 x w = 24, ds/dw = 4 x² = 4
    expect(x.grad!.toArray().every((v) => v === 24)).toBe(true);
    expect(w.grad!.toArray().every((v) => v === 4)).toBe(true);
  });

  it("a leaf's grad, accumulated over two backward passes, is never reused", () => {
    const x = leaf(2);
    sum(mul(x, x)).backward();
    const first = x.grad!;
    sum(mul(x, x)).backward();
    churn();
    expect(first.toArray().every((v) => v === 4)).toBe(true); // the caller may still hold the first grad
    expect(x.grad!.toArray().every((v) => v === 8)).toBe(true);
  });

  it("a forward activation returned as a gradient is not pooled", () => {
    const x = leaf(1), h = mul(x, 1);               // h not a leaf: its gradient is dropped once x's is made
    const saved = new Tensor(uninitF32(N).fill(5), [N]); // made before the backward pass
    const y = record(new Tensor(uninitF32(N).fill(0), [N]), "custom", [h], () => [saved]);
    sum(mul(y, 1)).backward();
    churn();
    expect(saved.toArray().every((v) => v === 5)).toBe(true);
    expect(x.grad!.toArray().every((v) => v === 5)).toBe(true);
  });
});

describe("backward with releaseActivationsSince gives the graph's activations back", () => {
  it("same gradients; intermediates (root included) are emptied and pooled, views fail loudly", () => {
    const grads = (release: boolean) => {
      const x = leaf(0.5), w = leaf(2);
      const early = exp(x);                              // an activation made before the mark
      const mark = allocationMark();
      const h = mul(mul(x, w), early);
      const v = reshape(h, [100, N / 100]);              // a view of h's buffer
      const s = sum(mul(v, v));
      const before = pooledBufferBytes();
      if (release) s.backward(undefined, { releaseActivationsSince: mark }); else s.backward();
      return { x, w, early, h, v, s, pooled: pooledBufferBytes() - before };
    };
    const plain = grads(false), rel = grads(true);
    churn();
    expect(rel.x.grad!.toArray()).toEqual(plain.x.grad!.toArray());
    expect(rel.w.grad!.toArray()).toEqual(plain.w.grad!.toArray());
    expect(rel.pooled).toBeGreaterThanOrEqual(plain.pooled + 2 * 4 * N); // h, and mul(x, w) behind it
    for (const t of [rel.h, rel.v]) {
      expect(t.data.length).toBe(0);
      expect(() => t.toArray()).toThrow(/released/);
    }
    expect(rel.early.toArray().every((v) => v === Math.fround(Math.exp(0.5)))).toBe(true); // made before the mark
    expect(rel.x.toArray().every((v) => v === 0.5)).toBe(true);                               // leaves untouched
    expect(plain.h.data.length).toBe(N);                                                     // without the option: kept
  });

  it("a forward activation that became a leaf's gradient is kept", () => {
    const x = leaf(1);
    const mark = allocationMark();
    const saved = new Tensor(uninitF32(N).fill(5), [N]);
    const y = record(new Tensor(uninitF32(N).fill(0), [N]), "custom", [x], () => [saved]); // x.grad is `saved`
    const hSaved = record(saved, "identity", [y], (g) => [g]); // `saved` is also an intermediate of the graph
    sum(mul(hSaved, 1)).backward(undefined, { releaseActivationsSince: mark });
    churn();
    expect(x.grad!.toArray().every((v) => v === 5)).toBe(true);
  });

  it("pooled buffers a whole step did not take back are dropped; retainGraph cannot be combined", () => {
    const stale = uninitF32(N + 16);
    releaseF32(stale, allocationMark() - 1);
    const x = leaf(1);
    const mark = allocationMark();
    sum(mul(x, 3)).backward(undefined, { releaseActivationsSince: mark });
    const again = uninitF32(N + 16);
    expect(again).not.toBe(stale);
    expect(() => sum(mul(x, 3)).backward(undefined, { retainGraph: true, releaseActivationsSince: allocationMark() }))
      .toThrow(/retainGraph/);
  });
});
