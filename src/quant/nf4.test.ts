/**
 * NF4 against an independent float64 implementation written here (levels, blocks, nearest level, bnb's nibble
 * order, double quantisation), per-block error bounds, and the fused matmul against a matmul of Ŵ (both forms,
 * forward and backward). Runs on the active backend (npm test runs native and js).
 */
import { describe, expect, it } from "vitest";
import { expectClose } from "../../test/helpers/close.js";
import { Rng, linear, randn, tensor } from "../tensor/index.js";
import { NF4_LEVELS, dynamicMap, quantizeNf4 } from "./nf4.js";
import { dequantizeNf4, linearNf4, nf4TimesT } from "./matmul.js";

// The NF4 levels as QLoRA defines them (bnb get_4bit_type("nf4")), in float64.
const LEVELS = [-1, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634,
  0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1];

/** Float64 reference: per block absmax, nearest level by argmin, value = level·absmax. */
function reference(w: Float32Array, bs: number): { codes: number[]; deq: Float64Array; absmax: number[] } {
  const codes: number[] = [], deq = new Float64Array(w.length), absmax: number[] = [];
  for (let b = 0; b * bs < w.length; b++) {
    const lo = b * bs, hi = Math.min(w.length, lo + bs);
    let m = 0;
    for (let i = lo; i < hi; i++) m = Math.max(m, Math.abs(w[i]!));
    absmax.push(m);
    for (let i = lo; i < hi; i++) {
      const s = m === 0 ? 0 : w[i]! / m;
      let best = 0;
      for (let j = 1; j < 16; j++) if (Math.abs(s - LEVELS[j]!) < Math.abs(s - LEVELS[best]!)) best = j;
      codes.push(best);
      deq[i] = LEVELS[best]! * m;
    }
  }
  return { codes, deq, absmax };
}

describe("NF4 quantisation", () => {
  const rng = new Rng(1);
  const w = randn([24, 80], rng, 0.05).f32(); // 1920 values: 30 blocks, rows not aligned to blocks
  w[5] = 0.4; // an outlier sets one block's scale

  it("levels are bitsandbytes' NF4 table", () => {
    expect(Array.from(NF4_LEVELS)).toEqual(LEVELS.map((v) => Math.fround(v)));
  });

  it("codes, packing (even index in the high nibble) and Ŵ match the float64 reference", () => {
    const q = quantizeNf4(w, [24, 80], { doubleQuant: false });
    const ref = reference(w, 64);
    for (let i = 0; i < w.length; i++) {
      const byte = q.codes[i >> 1]!;
      expect((i & 1) === 0 ? byte >> 4 : byte & 15, `code ${i}`).toBe(ref.codes[i]);
    }
    expectClose(q.dequantize(), ref.deq, "Ŵ", { rtol: 1e-6, atol: 1e-9 });
  });

  it("error per block is at most half the widest level gap times the block absmax", () => {
    const q = quantizeNf4(w, [24, 80], { doubleQuant: false });
    const deq = q.dequantize();
    let maxGap = 0;
    for (let j = 1; j < 16; j++) maxGap = Math.max(maxGap, LEVELS[j]! - LEVELS[j - 1]!);
    for (let b = 0; b < 30; b++) {
      let m = 0, err = 0;
      for (let i = b * 64; i < (b + 1) * 64; i++) { m = Math.max(m, Math.abs(w[i]!)); err = Math.max(err, Math.abs(deq[i]! - w[i]!)); }
      expect(err, `block ${b}`).toBeLessThanOrEqual((maxGap / 2) * m * (1 + 1e-6));
    }
  });

  it("double quantisation: scales within the dynamic map's resolution, codes unchanged", () => {
    const plain = quantizeNf4(w, [24, 80], { doubleQuant: false });
    const dq = quantizeNf4(w, [24, 80]);
    expect(dq.codes).toEqual(plain.codes);
    const code = dynamicMap();
    expect(code.length).toBe(256);
    // signed map: 127 negatives down to −(10⁰·mean of the last linspace pair) ≈ −0.993, then 0, 127 positives and 1
    expect(code[0]).toBeCloseTo(-0.99297, 4); expect(code[255]).toBe(1); expect(Array.from(code).includes(0)).toBe(true);
    // float64 reference of the nested scheme: offset = mean, 8-bit dynamic codes over blocks of 256
    const a = plain.absmax!, offset = a.reduce((s, v) => s + v, 0) / a.length;
    let nabs = 0;
    for (const v of a) nabs = Math.max(nabs, Math.abs(v - offset));
    const sc = dq.scales();
    for (let i = 0; i < a.length; i++) {
      const t = (a[i]! - offset) / nabs;
      let best = 0;
      for (let j = 1; j < 256; j++) if (Math.abs(t - code[j]!) < Math.abs(t - code[best]!)) best = j;
      expect(sc[i]!).toBeCloseTo(code[best]! * nabs + offset, 6);
      expect(Math.abs(sc[i]! - a[i]!)).toBeLessThan(0.05 * nabs + 1e-7);
    }
    // memory: 4 bits + 8-bit scales per 64 + float32 per 256 scales (+ the 1 KiB map) vs 4 bits + float32 per 64
    const big = randn([512, 1024], rng, 0.02).f32();
    expect(quantizeNf4(big, [512, 1024]).bytes / big.length).toBeLessThan(0.53);
    expect(quantizeNf4(big, [512, 1024], { doubleQuant: false }).bytes / big.length).toBeCloseTo(0.5 + 4 / 64, 3);
  });

  it("‖Ŵ_i‖² is cached from the dequantised rows", () => {
    const q = quantizeNf4(w, [24, 80]);
    const deq = q.dequantize();
    for (let i = 0; i < 24; i++) {
      let s = 0;
      for (let j = 0; j < 80; j++) s += deq[i * 80 + j]! ** 2;
      expect(q.rowNormSq[i]).toBeCloseTo(s, 10);
    }
  });
});

describe("fused NF4 matmul", () => {
  const rng = new Rng(2);
  for (const [out, inn] of [[40, 64], [33, 96], [7, 50]] as const) {
    it(`x·Ŵᵀ and dX = dY·Ŵ equal the float matmul of Ŵ ([${out}, ${inn}])`, () => {
      const q = quantizeNf4(randn([out, inn], rng, 0.1).f32(), [out, inn]);
      const wd = dequantizeNf4(q);
      const x = randn([2, 5, inn], rng).requiresGrad_();
      const y = linearNf4(x, q);
      const x2 = tensor(x.f32().slice(), x.shape).requiresGrad_();
      const y2 = linear(x2, wd);
      expectClose(y, y2.f32(), "y", { rtol: 1e-5, atol: 1e-5 });
      const g = randn(y.shape, rng);
      y.backward(g); y2.backward(g);
      expectClose(x.grad!, x2.grad!.f32(), "dx", { rtol: 1e-5, atol: 1e-5 });
      const a = randn([4, inn], rng);
      expectClose(nf4TimesT(q, a), wd.matmul(a.T).f32(), "Ŵ·Aᵀ", { rtol: 1e-5, atol: 1e-5 });
    });
  }
});
