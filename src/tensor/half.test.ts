/**
 * half.ts against an independent reference: half values decoded from the IEEE formula in float64
 * (sign · 2^(e-bias) · (1 + m/2^p), subnormals m · 2^min), encoding by nearest-value search over the
 * sorted list of all representable values with ties to the even bit pattern. No bit tricks of half.ts.
 */
import { describe, expect, it } from "vitest";
import {
  bf16ToF32, bf16ToF32Scalar, f16ToF32, f16ToF32Scalar, f32ToBf16, f32ToBf16Scalar, f32ToF16, f32ToF16Scalar,
} from "./half.js";

const ALL = Uint16Array.from({ length: 65536 }, (_, i) => i);

function decodeF16Ref(h: number): number {
  const s = h >> 15 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0x1f) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -24;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

function decodeBf16Ref(h: number): number {
  const s = h >> 15 ? -1 : 1, e = (h >> 7) & 0xff, m = h & 0x7f;
  if (e === 0xff) return m ? NaN : s * Infinity;
  if (e === 0) return s * m * 2 ** -133;
  return s * 2 ** (e - 127) * (1 + m / 128);
}

/** Positive finite values in bit order (= value order), plus the next power of two standing for inf. */
function positiveTable(decode: (h: number) => number, infBits: number, infValue: number) {
  const values: number[] = [], bits: number[] = [];
  for (let h = 0; h < infBits; h++) { values.push(decode(h)); bits.push(h); }
  values.push(infValue); bits.push(infBits); // rounding past max finite lands on inf (bits even)
  return { values, bits };
}

/** Nearest representable, ties to the even bit pattern; |x| at or past the inf stand-in is inf. */
function encodeRef(x: number, t: { values: number[]; bits: number[] }, signBit: number, nanBits: (neg: boolean) => number) {
  if (Number.isNaN(x)) return nanBits(false);
  const neg = x < 0 || Object.is(x, -0), a = Math.abs(x);
  const last = t.values.length - 1;
  let r: number;
  if (a >= t.values[last]!) r = t.bits[last]!;
  else {
    let lo = 0, hi = last; // values[lo] <= a < values[hi]
    while (hi - lo > 1) { const mid = (lo + hi) >> 1; if (t.values[mid]! <= a) lo = mid; else hi = mid; }
    const dl = a - t.values[lo]!, dh = t.values[hi]! - a;
    r = dl < dh ? t.bits[lo]! : dh < dl ? t.bits[hi]! : (t.bits[lo]! & 1) === 0 ? t.bits[lo]! : t.bits[hi]!;
  }
  return neg ? r | signBit : r;
}

const F16 = positiveTable(decodeF16Ref, 0x7c00, 65536);
const BF16 = positiveTable(decodeBf16Ref, 0x7f80, 2 ** 128);

// float32 neighbours, by bits (test-side helpers, not half.ts).
const f = new Float32Array(1), u = new Uint32Array(f.buffer);
function f32FromBits(b: number): number { u[0] = b; return f[0]!; }
function nextUp(x: number): number { f[0] = x; u[0] = u[0]! + 1; return f[0]!; } // x > 0 finite
function nextDown(x: number): number { f[0] = x; u[0] = u[0]! - 1; return f[0]!; }

function sameValue(actual: number, expected: number): boolean {
  return Number.isNaN(expected) ? Number.isNaN(actual) : Object.is(actual, expected);
}

/** Seeded xorshift32 float32 bit patterns over the whole range (incl. NaN, inf, subnormals). */
function randomF32(n: number, seed: number): Float32Array {
  const bits = new Uint32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; bits[i] = s; }
  return new Float32Array(bits.buffer);
}

describe.each([
  { name: "float16", table: F16, decode: decodeF16Ref, toF32: f16ToF32, fromF32: f32ToF16, toScalar: f16ToF32Scalar,
    fromScalar: f32ToF16Scalar, signBit: 0x8000, isNaN: (h: number) => (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0,
    nan: (neg: boolean) => (neg ? 0xfe00 : 0x7e00) },
  { name: "bfloat16", table: BF16, decode: decodeBf16Ref, toF32: bf16ToF32, fromF32: f32ToBf16, toScalar: bf16ToF32Scalar,
    fromScalar: f32ToBf16Scalar, signBit: 0x8000, isNaN: (h: number) => (h & 0x7f80) === 0x7f80 && (h & 0x7f) !== 0,
    nan: () => 0x7fc0 },
])("$name", ({ table, decode, toF32, fromF32, toScalar, fromScalar, signBit, isNaN, nan }) => {
  it("decodes all 65536 bit patterns exactly (each a float32)", () => {
    const out = toF32(ALL);
    for (let h = 0; h < 65536; h++) {
      const want = decode(h);
      if (!sameValue(out[h]!, want) || !sameValue(toScalar(h), want)) {
        throw new Error(`bits 0x${h.toString(16)}: got ${out[h]} / ${toScalar(h)}, want ${want}`);
      }
      if (!Number.isNaN(want) && Math.fround(want) !== want) throw new Error(`0x${h.toString(16)}: ${want} is not a float32`);
    }
  });

  it("round-trips all 65536 bit patterns half -> f32 -> half (NaN stays NaN)", () => {
    const back = fromF32(toF32(ALL));
    for (let h = 0; h < 65536; h++) {
      const ok = isNaN(h) ? isNaN(back[h]!) : back[h] === h;
      if (!ok) throw new Error(`bits 0x${h.toString(16)} came back as 0x${back[h]!.toString(16)}`);
    }
  });

  it("rounds every midpoint between neighbours to even, and its float32 neighbours to the nearer side", () => {
    const xs: number[] = [], want: number[] = [];
    for (let i = 0; i + 1 < table.values.length; i++) {
      const a = table.values[i]!, b = table.values[i + 1]!, mid = (a + b) / 2;
      // A half midpoint needs one more bit than half has: exact in float32.
      if (Math.fround(mid) !== mid) throw new Error(`midpoint ${mid} is not a float32`);
      const even = (table.bits[i]! & 1) === 0 ? table.bits[i]! : table.bits[i + 1]!;
      xs.push(mid, nextDown(mid), nextUp(mid), -mid, -nextUp(mid));
      want.push(even, table.bits[i]!, table.bits[i + 1]!, even | signBit, table.bits[i + 1]! | signBit);
    }
    const got = fromF32(Float32Array.from(xs));
    for (let k = 0; k < xs.length; k++) {
      const scalar = fromScalar(xs[k]!);
      if (got[k] !== want[k] || scalar !== want[k]) {
        throw new Error(`x=${xs[k]}: got 0x${got[k]!.toString(16)} / 0x${scalar.toString(16)}, want 0x${want[k]!.toString(16)}`);
      }
    }
  });

  it("matches nearest-value search on 200k random float32 bit patterns", () => {
    const xs = randomF32(200_000, 12345);
    const got = fromF32(xs);
    for (let k = 0; k < xs.length; k++) {
      const want = encodeRef(xs[k]!, table, signBit, nan);
      const ok = Number.isNaN(xs[k]!) ? isNaN(got[k]!) : got[k] === want;
      if (!ok) throw new Error(`x=${xs[k]} (bits 0x${u32(xs[k]!).toString(16)}): got 0x${got[k]!.toString(16)}, want 0x${want.toString(16)}`);
    }
  });

  it("checks dst length and writes into dst", () => {
    const dst = new Uint16Array(2);
    expect(fromF32(new Float32Array([1, -2]), dst)).toBe(dst);
    expect(Array.from(toF32(dst))).toEqual([1, -2]);
    expect(() => fromF32(new Float32Array(3), new Uint16Array(2))).toThrow(/dst has 2 elements, src has 3/);
    expect(() => toF32(new Uint16Array(3), new Float32Array(2))).toThrow(/dst has 2 elements, src has 3/);
  });
});

function u32(x: number): number { f[0] = x; return u[0]!; }

describe("hand-picked values", () => {
  it("float16", () => {
    const cases: [number, number][] = [
      [1, 0x3c00], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [1 + 2 ** -11 + 2 ** -23, 0x3c01],
      [-2, 0xc000], [0.1, 0x2e66], [65504, 0x7bff], [65519, 0x7bff], [65520, 0x7c00], [1e6, 0x7c00],
      [Infinity, 0x7c00], [-Infinity, 0xfc00], [0, 0], [-0, 0x8000], [NaN, 0x7e00],
      [2 ** -14, 0x0400], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [nextUp(2 ** -25), 0x0001], [3 * 2 ** -25, 0x0002],
      [-(2 ** -25), 0x8000], [2 ** -14 - 2 ** -25, 0x0400], [f32FromBits(1), 0x0000], [f32FromBits(0x80000001), 0x8000],
      [f32FromBits(0x7f800001), 0x7e00],
    ];
    for (const [x, bits] of cases) expect([x, f32ToF16Scalar(x)]).toEqual([x, bits]);
    expect(Object.is(f16ToF32Scalar(0x8000), -0)).toBe(true);
    expect(f16ToF32Scalar(0x0001)).toBe(2 ** -24);
    expect(f16ToF32Scalar(0x7bff)).toBe(65504);
  });

  it("bfloat16", () => {
    const cases: [number, number][] = [
      [1, 0x3f80], [1 + 2 ** -8, 0x3f80], [1 + 3 * 2 ** -8, 0x3f82], [1 + 2 ** -8 + 2 ** -23, 0x3f81],
      [-2, 0xc000], [3.4028234663852886e38, 0x7f80], [Infinity, 0x7f80], [-Infinity, 0xff80], [-0, 0x8000],
      [NaN, 0x7fc0], [f32FromBits(0xff800001), 0x7fc0], [f32FromBits(0x00008000), 0x0000], [f32FromBits(0x00018000), 0x0002],
    ];
    for (const [x, bits] of cases) expect([x, f32ToBf16Scalar(x)]).toEqual([x, bits]);
    expect(Object.is(bf16ToF32Scalar(0x8000), -0)).toBe(true);
  });

  it("keeps NaN payloads when decoding arrays", () => {
    const out = new Uint32Array(f16ToF32(Uint16Array.of(0x7c01, 0xfe00)).buffer);
    expect([out[0], out[1]]).toEqual([0x7f802000, 0xffc00000]);
    // Encoding reads bits, so a negative NaN keeps its sign in float16 (as c10) and not in bfloat16.
    const negNaN = new Float32Array(Uint32Array.of(0xffc00001).buffer);
    expect([f32ToF16(negNaN)[0], f32ToBf16(negNaN)[0]]).toEqual([0xfe00, 0x7fc0]);
  });
});
