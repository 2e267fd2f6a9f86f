import { describe, expect, it } from "vitest";
import { decompositionDelta, linearFit } from "./decompose.js";

// W0: 3 output units × 2 inputs, [out, in]
const W0 = [3, 4, 1, 0, 0, 2];

describe("ΔM / ΔD (DoRA §2)", () => {
  it("pure rescaling of each unit: ΔD = 0, ΔM = mean |s_n − 1|·‖W_n‖", () => {
    const s = [2, 0.5, 1];
    const wt = W0.map((v, i) => v * s[Math.floor(i / 2)]!);
    const d = decompositionDelta(W0, wt, 3, 2);
    expect(d.dD).toBeCloseTo(0, 12);
    expect(d.dM).toBeCloseTo((5 * 1 + 1 * 0.5 + 0) / 3, 12);
  });
  it("pure rotation of each unit: ΔM = 0, ΔD = mean (1 − cos θ_n)", () => {
    const th = [Math.PI / 2, Math.PI / 3, 0];
    const wt: number[] = [];
    for (let n = 0; n < 3; n++) {
      const [a, b] = [W0[2 * n]!, W0[2 * n + 1]!], c = Math.cos(th[n]!), s = Math.sin(th[n]!);
      wt.push(c * a - s * b, s * a + c * b);
    }
    const d = decompositionDelta(W0, wt, 3, 2);
    expect(d.dM).toBeCloseTo(0, 12);
    expect(d.dD).toBeCloseTo((1 + 0.5 + 0) / 3, 12);
  });
  it("Conv1D layout [in, out] gives the same answer as the transposed [out, in]", () => {
    const wt = [6, 8, 0, 1, 0, -2];
    const T = (w: number[]): number[] => [w[0]!, w[2]!, w[4]!, w[1]!, w[3]!, w[5]!];
    const a = decompositionDelta(W0, wt, 3, 2), b = decompositionDelta(T(W0), T(wt), 3, 2, { layout: "in-out" });
    expect(b.dM).toBeCloseTo(a.dM, 12);
    expect(b.dD).toBeCloseTo(a.dD, 12);
    expect(a.dD).toBeCloseTo((0 + 1 + 2) / 3, 12); // unchanged, orthogonal, opposite
  });
  it("a given magnitude (DoRA's learned m) replaces ‖W_t,n‖", () => {
    const d = decompositionDelta(W0, W0, 3, 2, { magnitude: [5, 3, 2] });
    expect(d.dM).toBeCloseTo(2 / 3, 12);
    expect(d.dD).toBeCloseTo(0, 12);
  });
  it("linear fit: slope and Pearson r", () => {
    const f = linearFit([0, 1, 2, 3], [1, 3, 5, 7]);
    expect(f.slope).toBeCloseTo(2, 12);
    expect(f.pearson).toBeCloseTo(1, 12);
    expect(linearFit([0, 1, 2], [2, 1, 0]).pearson).toBeCloseTo(-1, 12);
    expect(linearFit([1], [1]).pearson).toBeNaN();
  });
});
