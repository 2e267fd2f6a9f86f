/**
 * Exact float32 ↔ float16 (IEEE 754 binary16) and float32 ↔ bfloat16 conversion, bit for bit what
 * PyTorch's `tensor.to(torch.float16 / torch.bfloat16)` does on CPU:
 * - float32 → half rounds to nearest, ties to even; values past the largest finite half become ±inf,
 *   tiny values become (signed) subnormals or ±0; NaN becomes PyTorch's canonical quiet NaN
 *   (float16: sign | 0x7e00, as c10 `fp16_ieee_from_fp32_value`; bfloat16: 0x7fc0, as c10
 *   `round_to_nearest_even`).
 * - half → float32 is exact (every half value is a float32); NaN payloads are kept in the array forms.
 * Half values travel as their raw bits in a Uint16Array (JS has no float16 array in Node 20).
 * Array forms write into `dst` when given (it must have the same length) and return it.
 */

// Scratch views for reinterpreting one float32 as its bits (scalar paths).
const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The bits of Math.fround(x) as an unsigned 32-bit integer. */
function f32Bits(x: number): number {
  f32Scratch[0] = x;
  return u32Scratch[0]!;
}

/** float32 bits → float16 bits, round to nearest even. Works on bits so it never double-rounds. */
function f16FromF32Bits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) {
    return mant === 0 ? sign | 0x7c00 : sign | 0x7e00; // ±inf, or canonical quiet NaN (sign kept, as c10)
  }
  const e = exp - 127 + 15; // rebiased exponent
  if (e >= 0x1f) return sign | 0x7c00; // |x| ≥ 2^16: beyond 65504 + half an ulp, rounds to inf
  if (e <= 0) {
    // Result is a half subnormal (or rounds up to the smallest normal, which the encoding absorbs).
    // |x| < 2^-25 (e < -10) is below half the smallest subnormal 2^-24: rounds to ±0.
    // float32 subnormals land here too (exp 0, tiny) and round to ±0.
    if (e < -10) return sign;
    const m = mant | 0x800000; // 24-bit significand with the implicit bit
    const shift = 14 - e; // units of 2^-24: x = m·2^(e-15-23) → m >> (14 - e)
    const q = m >>> shift;
    const r = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    return sign | (r > half || (r === half && (q & 1) === 1) ? q + 1 : q);
  }
  const q = (e << 10) | (mant >>> 13);
  const r = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent, and 0x7bff + 1 = 0x7c00 is inf: both correct.
  return sign | (r > 0x1000 || (r === 0x1000 && (q & 1) === 1) ? q + 1 : q);
}

/** float16 bits → float32 bits (exact). */
function f32BitsFromF16(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0; // inf / NaN (payload kept)
  if (exp !== 0) return (sign | ((exp - 15 + 127) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0; // ±0
  // Subnormal mant·2^-24: normalise so the leading 1 becomes the implicit bit.
  const lead = 31 - Math.clz32(mant); // position of the top set bit, 0..9
  const e32 = lead - 24 + 127; // value = 1.f × 2^(lead-24)
  return (sign | (e32 << 23) | ((mant << (23 - lead)) & 0x7fffff)) >>> 0;
}

/** float32 bits → bfloat16 bits, round to nearest even (bfloat16 is the top half of a float32). */
function bf16FromF32Bits(x: number): number {
  if ((x & 0x7fffffff) > 0x7f800000) return 0x7fc0; // NaN: canonical quiet NaN, as c10
  const lsb = (x >>> 16) & 1;
  // Adding 0x7fff + lsb carries into bit 16 exactly when the low half is above the tie, or a tie with an
  // odd upper half. Max non-NaN input 0xff800000 keeps the sum below 2^32, and the carry out of the
  // largest finite value yields inf, as it should.
  return ((x + 0x7fff + lsb) >>> 16) & 0xffff;
}

/** Number → float16 bits. The number is first rounded to float32 (as `torch.tensor(x).half()` does). */
export function f32ToF16Scalar(x: number): number {
  return f16FromF32Bits(f32Bits(x));
}

/** float16 bits → the number it encodes (NaN payload is not kept in a JS number). */
export function f16ToF32Scalar(h: number): number {
  u32Scratch[0] = f32BitsFromF16(h & 0xffff);
  return f32Scratch[0]!;
}

/** Number → bfloat16 bits (via float32, as PyTorch does). */
export function f32ToBf16Scalar(x: number): number {
  return bf16FromF32Bits(f32Bits(x));
}

/** bfloat16 bits → the number it encodes. */
export function bf16ToF32Scalar(h: number): number {
  u32Scratch[0] = (h & 0xffff) << 16;
  return f32Scratch[0]!;
}

function checkDst(what: string, srcLength: number, dstLength: number): void {
  if (srcLength !== dstLength) {
    throw new RangeError(`${what}: dst has ${dstLength} elements, src has ${srcLength}`);
  }
}

/** Bit views of a Float32Array (a Float32Array's byteOffset is always a multiple of 4). */
function bitsOf(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}

/** float32 → float16 bits, elementwise (`tensor.half()`). */
export function f32ToF16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst("f32ToF16", src.length, dst.length);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) dst[i] = f16FromF32Bits(bits[i]!);
  return dst;
}

// 65536-entry decode table (256 KiB), built on first use: decoding checkpoints is the hot path.
let f16Table: Uint32Array | undefined;

/** float16 bits → float32, elementwise (`tensor.float()`). Exact. */
export function f16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkDst("f16ToF32", src.length, dst.length);
  if (f16Table === undefined) {
    f16Table = new Uint32Array(65536);
    for (let h = 0; h < 65536; h++) f16Table[h] = f32BitsFromF16(h);
  }
  const table = f16Table;
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = table[src[i]!]!;
  return dst;
}

/** float32 → bfloat16 bits, elementwise (`tensor.bfloat16()`). */
export function f32ToBf16(src: Float32Array, dst: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  checkDst("f32ToBf16", src.length, dst.length);
  const bits = bitsOf(src);
  for (let i = 0; i < bits.length; i++) dst[i] = bf16FromF32Bits(bits[i]!);
  return dst;
}

/** bfloat16 bits → float32, elementwise. Exact. */
export function bf16ToF32(src: Uint16Array, dst: Float32Array = new Float32Array(src.length)): Float32Array {
  checkDst("bf16ToF32", src.length, dst.length);
  const out = bitsOf(dst);
  for (let i = 0; i < src.length; i++) out[i] = src[i]! << 16;
  return dst;
}
