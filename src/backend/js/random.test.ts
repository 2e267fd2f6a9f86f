/**
 * The spec of the dropout gap (random.ts): G(v) is the largest g with Q(g) ≥ v, Q(g) the fixed product of
 * (1 − p)^(2^b), whatever the logarithm's rounding. Checked against a linear search over Q, at the thresholds
 * themselves and one ulp either side (where a rounded ln v / ln(1 − p) falls on the wrong side), beyond the table,
 * and past the limit; and the xoshiro128** step against the generator's published first outputs.
 */
import { describe, expect, it } from "vitest";
import { gapLaw, gapThreshold, geometricGap, xoshiroNext } from "./random.js";

/** The largest g with Q(g) ≥ v, by walking up from 0 (what geometricGap must return below the limit). */
function linearGap(law: ReturnType<typeof gapLaw>, v: number): number {
  let g = 0;
  while (gapThreshold(law, g + 1) >= v) g++;
  return g;
}

function nextUp(x: number): number {
  const b = new Float64Array([x]), u = new BigUint64Array(b.buffer);
  u[0]! += 1n;
  return b[0]!;
}
function nextDown(x: number): number {
  const b = new Float64Array([x]), u = new BigUint64Array(b.buffer);
  u[0]! -= 1n;
  return b[0]!;
}

describe("dropout gap law", () => {
  it("Q(g) is (1 − p)^g to ~g ulps and strictly decreasing", () => {
    for (const p of [0.001, 0.05, 0.1, 0.5, 0.9]) {
      const law = gapLaw(p);
      let prev = 2;
      for (let g = 0; g < 6000; g += g < 100 ? 1 : 37) {
        const q = gapThreshold(law, g);
        expect(q).toBeLessThan(prev);
        if (q > 1e-300) expect(Math.abs(q / Math.pow(1 - p, g) - 1)).toBeLessThan((g + 2) * 4.5e-16);
        prev = q;
        if (q === 0) break;
      }
    }
  });

  it("G(v) is the largest g with Q(g) ≥ v: at each threshold, one ulp either side, and at random v", () => {
    for (const p of [0.0007, 0.05, 0.3, 0.9]) {
      const law = gapLaw(p);
      for (let g = 0; g < 300; g++) {
        const q = gapThreshold(law, g);
        if (q < 2 ** -32) break;
        expect(geometricGap(law, q, 1e9)).toBe(g);                                  // v = Q(g): still g
        if (q < 1) expect(geometricGap(law, nextUp(q), 1e9)).toBe(g - 1 < 0 ? 0 : g - 1); // just above: one less
        expect(geometricGap(law, nextDown(q), 1e9)).toBe(linearGap(law, nextDown(q)));   // just below
      }
      let s = 7;
      for (let i = 0; i < 2000; i++) {
        s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
        const v = 1 - s / 2 ** 32;
        expect(geometricGap(law, v, 1e9)).toBe(linearGap(law, v));
      }
    }
  });

  it("reaches past the table by the bit product, and reports gaps past the limit as limit + 1", () => {
    const law = gapLaw(0.0007); // Q falls below 2^-32 near g ≈ 31 700: the table holds 4096 rows
    expect(law.table.length).toBe(4096);
    const v = gapThreshold(law, 20_000);
    expect(geometricGap(law, v, 1e9)).toBe(20_000);
    expect(geometricGap(law, nextUp(v), 1e9)).toBe(19_999);
    expect(geometricGap(law, v, 500)).toBe(501);
    expect(geometricGap(law, 1, 0)).toBe(0);
  });

  it("xoshiro128** gives the reference generator's outputs", () => {
    // state {1, 2, 3, 4}: the first outputs of the reference C implementation (Blackman & Vigna, xoshiro128starstar.c)
    const s = new Uint32Array([1, 2, 3, 4]);
    expect([xoshiroNext(s), xoshiroNext(s), xoshiroNext(s), xoshiroNext(s)]).toEqual([11520, 0, 5927040, 70819200]);
  });
});
