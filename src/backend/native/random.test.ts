/**
 * Native dropoutDraw against the js spec (backend/js/random.ts): the same positions and the same generator state
 * after, for densities from 1e-4 (gaps past the 4096-row table) to 0.95, sizes from 1 to 2^21, output arrays that
 * fill up mid-draw (resumed from the last position, as tensor dropoutPositions grows them); first draws steered next
 * to the thresholds and onto exact ties v = Q(g), where a rounded ln v / ln(1 − p) lands below g (without the
 * threshold comparisons the native kernel fails there); bad calls rejected before the addon.
 */
import { describe, expect, it } from "vitest";
import { jsBackend } from "../js/index.js";
import { gapLaw, gapThreshold, xoshiroNext } from "../js/random.js";
import { loadNativeBackend } from "./index.js";

const native = loadNativeBackend();

/** Runs dropoutDraw to the end with outputs of `chunk` slots, resuming like dropoutPositions; positions + final state. */
function drawAll(be: typeof jsBackend, n: number, p: number, seedWords: number[], chunk: number): { pos: number[]; state: number[] } {
  const state = new Uint32Array(seedWords), pos: number[] = [];
  let last = -1;
  for (;;) {
    const out = new Int32Array(chunk).fill(-7);
    const count = be.dropoutDraw(out, 0, last, n, p, state);
    for (let i = 0; i < count; i++) pos.push(out[i]!);
    let written = 0;
    for (let i = count; i < chunk; i++) if (out[i] !== -7) written++;
    expect(written).toBe(0); // nothing written past the count
    if (count < chunk || pos.length === n) break;
    last = pos[pos.length - 1]!;
  }
  return { pos, state: Array.from(state) };
}

// xoshiro128**'s output is rotl(s1·5, 7)·9, a bijection of s1 alone: invert it to make the first draw w
const inv = (a: number): number => { let x = a; for (let i = 0; i < 5; i++) x = Math.imul(x, 2 - Math.imul(a, x)); return x >>> 0; };
const rotr = (x: number, k: number): number => ((x >>> k) | (x << (32 - k))) >>> 0;
const s1For = (w: number): number => Math.imul(rotr(Math.imul(w, inv(9)) >>> 0, 7), inv(5)) >>> 0;

describe("native dropoutDraw", () => {
  const cases: [number, number][] = [[1, 0.5], [7, 0.95], [1000, 0.0001], [100_000, 0.0001], [50_000, 0.05], [2 ** 21, 0.05],
    [65_537, 0.1], [10_000, 0.5], [3000, 0.9], [200_000, 0.003]];
  it.each(cases)("n %i, p %f: the spec's positions and final state", (n, p) => {
    for (const [seed, chunk] of [[[1, 2, 3, 4], n + 1], [[0x9e3779b9, 7, 0xffffffff, 12345], 997], [[42, 0, 0, 1], 1]] as const) {
      if (chunk === 1 && n * p > 20_000) continue; // one call per position: kept to the smaller cases
      const want = drawAll(jsBackend, n, p, [...seed], chunk), got = drawAll(native, n, p, [...seed], chunk);
      expect(got.pos.length).toBe(want.pos.length);
      expect(got.pos).toEqual(want.pos);
      expect(got.state).toEqual(want.state);
    }
  });

  it("agrees next to every threshold (first draws steered to the 32-bit grid points either side of Q(g))", () => {
    for (const w of [0, 1, 123456789, 2 ** 32 - 1]) expect(xoshiroNext(new Uint32Array([1, s1For(w), 3, 4]))).toBe(w);
    let checked = 0;
    for (const p of [0.0007, 0.05, 0.3, 0.9]) {
      const q = (g: number): number => Math.pow(1 - p, g);
      for (let g = 0; q(g) >= 2 ** -31; g += p < 0.01 ? 97 : 1) {
        const w0 = Math.floor((1 - q(g)) * 2 ** 32);
        for (let w = Math.max(0, w0 - 1); w <= Math.min(2 ** 32 - 1, w0 + 2); w++) {
          const a = new Int32Array(1), b = new Int32Array(1);
          const sa = new Uint32Array([11, s1For(w), 13, 14]), sb = sa.slice();
          expect(native.dropoutDraw(a, 0, -1, 2 ** 31 - 1, p, sa)).toBe(jsBackend.dropoutDraw(b, 0, -1, 2 ** 31 - 1, p, sb));
          expect(a[0]).toBe(b[0]);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(2000);
  });

  it("decides exact ties by the threshold, not by the rounded logarithm (v = Q(g) on the 32-bit grid)", () => {
    // p = m/2^16 makes (1 − p)² exact on the 32-bit grid of v, p = m/2^8 the same for (1 − p)^4: the first draw steered
    // to v = Q(g) must give the gap g (Q(g) ≥ v), where ln v / ln(1 − p) rounds to either side of g
    let guessLow = 0;
    for (const [g, bits] of [[2, 16], [4, 8]] as const) {
      for (let m = 1; m < 2 ** bits; m += bits === 16 ? 61 : 1) {
        const p = m / 2 ** bits, v = (1 - p) ** g, w = (1 - v) * 2 ** 32;
        if (w >= 2 ** 32 || v < 2 ** -32) continue;
        const law = gapLaw(p);
        expect(gapThreshold(law, g)).toBe(v);
        if (Math.floor(Math.log(v) / Math.log1p(-p)) < g) guessLow++;
        for (const be of [native, jsBackend]) {
          const out = new Int32Array(1);
          be.dropoutDraw(out, 0, -1, 1 << 30, p, new Uint32Array([3, s1For(w), 5, 6]));
          expect(out[0], `${be.name} p ${p}`).toBe(g);
        }
      }
    }
    expect(guessLow).toBeGreaterThan(10); // the case the comparisons exist for does occur
  });

  it("appends after count and leaves earlier slots alone", () => {
    const out = new Int32Array(64).fill(-1);
    out[0] = 123; out[1] = 456;
    const s1 = new Uint32Array([5, 6, 7, 8]), s2 = new Uint32Array([5, 6, 7, 8]);
    const ref = new Int32Array(64).fill(-1);
    ref[0] = 123; ref[1] = 456;
    const c1 = native.dropoutDraw(out, 2, 456, 100_000, 0.2, s1), c2 = jsBackend.dropoutDraw(ref, 2, 456, 100_000, 0.2, s2);
    expect(c1).toBe(64);
    expect(c2).toBe(64);
    expect(Array.from(out)).toEqual(Array.from(ref));
    expect(out[2]!).toBeGreaterThan(456);
  });

  it("rejects bad calls before the addon, naming the argument", () => {
    const out = new Int32Array(4), st = new Uint32Array(4);
    expect(() => native.dropoutDraw(out, 5, -1, 10, 0.5, st)).toThrow(/out must be an Int32Array/);
    expect(() => native.dropoutDraw(out, 0, 10, 10, 0.5, st)).toThrow(/last must be an integer in \[-1, n\)/);
    expect(() => native.dropoutDraw(out, 0, -1, 10, 1, st)).toThrow(/p must be in \(0, 1\)/);
    expect(() => native.dropoutDraw(out, 0, -1, 10, 0.5, new Uint32Array(3))).toThrow(/state must be a Uint32Array of 4 words/);
    expect(() => native.dropoutDraw(out, 0, -1, 1.5, 0.5, st)).toThrow(/n must be a non-negative integer/);
  });
});
