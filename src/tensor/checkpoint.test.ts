/** Gradient checkpointing gives the same outputs and gradients as the plain graph, dropout masks included. */
import { describe, expect, it } from "vitest";
import { expectClose } from "../../test/helpers/close.js";
import { Rng, checkpoint, dropout, linear, randn, silu, tensor } from "./index.js";

describe("checkpoint", () => {
  it("same output, input gradient and parameter gradients; params make a frozen input's output trainable", () => {
    const rng = new Rng(3);
    const w1 = randn([8, 6], rng).requiresGrad_(), w2 = randn([6, 8], rng).requiresGrad_();
    const drop = new Rng(9);
    const block = (x: ReturnType<typeof tensor>) => linear(dropout(silu(linear(x, w1)), 0.3, drop, true), w2);
    const x0 = randn([3, 6], rng);
    for (const inputNeedsGrad of [true, false]) {
      const xa = tensor(x0.f32().slice(), x0.shape).requiresGrad_(inputNeedsGrad);
      const xb = tensor(x0.f32().slice(), x0.shape).requiresGrad_(inputNeedsGrad);
      drop.setState(new Rng(9).getState());
      const ya = block(xa);
      ya.sum().backward();
      const ga = [w1.grad!.f32().slice(), w2.grad!.f32().slice()];
      w1.grad = null; w2.grad = null;
      drop.setState(new Rng(9).getState());
      const yb = checkpoint(block, [xb], { params: [w1, w2], rngs: [drop] });
      expect(yb.requiresGrad).toBe(true);
      expectClose(yb, ya.f32(), "y");
      yb.sum().backward();
      expectClose(w1.grad!, ga[0]!, "dw1");
      expectClose(w2.grad!, ga[1]!, "dw2");
      if (inputNeedsGrad) expectClose(xb.grad!, xa.grad!.f32(), "dx");
      w1.grad = null; w2.grad = null;
    }
  });
});
