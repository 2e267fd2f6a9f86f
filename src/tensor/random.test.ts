/**
 * The dropout mask draw (`dropoutPositions`): i.i.d. Bernoulli(p) per element drawn as geometric gaps. Checked here:
 * ascending positions inside [0, n), the count, the per-position rate (no drift along the buffer), the gap law
 * P(gap = g) = (1 − p)^g·p, independence of neighbours, and that tensor `dropout` zeroes exactly these positions.
 */
import { describe, expect, it } from "vitest";
import { Rng, dropout, dropoutPositions, ones } from "./index.js";

describe("dropoutPositions", () => {
  it("returns ascending in-range positions, none for p = 0, all for p = 1", () => {
    expect(dropoutPositions(100, 0, new Rng(1)).length).toBe(0);
    expect(dropoutPositions(0, 0.5, new Rng(1)).length).toBe(0);
    expect(Array.from(dropoutPositions(5, 1, new Rng(1)))).toEqual([0, 1, 2, 3, 4]);
    for (const p of [0.01, 0.05, 0.3, 0.9]) {
      const d = dropoutPositions(10007, p, new Rng(2));
      for (let i = 0; i < d.length; i++) {
        expect(d[i]!).toBeGreaterThanOrEqual(i === 0 ? 0 : d[i - 1]! + 1);
        expect(d[i]!).toBeLessThan(10007);
      }
    }
  });

  it("has the Bernoulli(p) law: count, rate along the buffer, geometric gaps, independent neighbours", () => {
    for (const p of [0.05, 0.25, 0.7]) {
      const n = 400_000, d = dropoutPositions(n, p, new Rng(5));
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(d.length - n * p)).toBeLessThan(5 * sd);
      // rate in each quarter of the buffer
      for (let q = 0; q < 4; q++) {
        const c = d.filter((i) => i >= (q * n) / 4 && i < ((q + 1) * n) / 4).length;
        expect(Math.abs(c - (n * p) / 4)).toBeLessThan(5 * sd / 2);
      }
      // gaps (kept elements between consecutive drops): P(g) = (1 − p)^g p for g = 0..4
      const hist = new Float64Array(5);
      for (let i = 1; i < d.length; i++) { const g = d[i]! - d[i - 1]! - 1; if (g < 5) hist[g]!++; }
      for (let g = 0; g < 5; g++) {
        const want = (d.length - 1) * Math.pow(1 - p, g) * p;
        expect(Math.abs(hist[g]! - want)).toBeLessThan(5 * Math.sqrt(want) + 1);
      }
      // P(i and i+1 both dropped) = p²
      const set = new Uint8Array(n);
      for (const i of d) set[i] = 1;
      let both = 0;
      for (let i = 0; i + 1 < n; i++) both += set[i]! & set[i + 1]!;
      const want = (n - 1) * p * p;
      expect(Math.abs(both - want)).toBeLessThan(5 * Math.sqrt(want));
    }
  });

  it("is the mask tensor dropout applies (same generator state, same zeros)", () => {
    const y = dropout(ones([3, 1000]), 0.2, new Rng(9)).f32();
    const d = dropoutPositions(3000, 0.2, new Rng(9));
    const zeros = [];
    for (let i = 0; i < y.length; i++) if (y[i] === 0) zeros.push(i); else expect(y[i]).toBeCloseTo(1 / 0.8, 6);
    expect(zeros).toEqual(Array.from(d));
  });
});
