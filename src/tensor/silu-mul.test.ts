/** siluMul (one op) against mul(silu(gate), up) (two ops): output and both gradients. */
import { describe, it } from "vitest";
import { Rng, mul, randn, silu, siluMul, sum } from "./index.js";
import { expectClose } from "../../test/helpers/close.js";

describe("siluMul", () => {
  it("matches mul(silu(g), u) forward and backward", () => {
    const run = (fused: boolean) => {
      const g = randn([3, 7], new Rng(1), 3).requiresGrad_(), u = randn([3, 7], new Rng(2)).requiresGrad_();
      const y = fused ? siluMul(g, u) : mul(silu(g), u);
      sum(mul(y, randn([3, 7], new Rng(3)))).backward();
      return [y, g.grad!, u.grad!];
    };
    const a = run(true), b = run(false);
    a.forEach((t, i) => expectClose(t, b[i]!.f32(), ["y", "dgate", "dup"][i]!, { rtol: 1e-6, atol: 1e-7 }));
  });
});
