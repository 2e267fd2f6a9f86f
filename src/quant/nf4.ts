/**
 * NF4 quantisation as bitsandbytes defines it (QLoRA, Dettmers et al. 2023, arXiv 2305.14314), so weights
 * quantised here and weights read from an HF `*-bnb-4bit` checkpoint mean the same thing:
 *
 * - Levels: the 16 NormalFloat values of `bitsandbytes.functional.get_4bit_type("nf4")` (also
 *   `backends/utils.py` `_NF4_QUANT_TABLE`), index 7 is exactly 0.
 * - Blocks of `blockSize` (64) consecutive values of the flattened row-major weight; absmax per block;
 *   code = argmin_j |clamp(x·(1/absmax), −1, 1) − level_j| (bnb `backends/default/ops.py`
 *   `quantize_4bit`: float32 scale, first index on ties).
 * - Packing: two codes per byte, the EVEN flat index in the HIGH nibble (`packed = q[::2] << 4 | q[1::2]`;
 *   `_dequantize_4bit_impl` reads `out[::2] = A >> 4`, `out[1::2] = A & 0xF`).
 * - Double quantisation (`bnb_4bit_use_double_quant`, bnb `functional.quantize_4bit(compress_statistics=True)`):
 *   offset = mean(absmax); absmax − offset is quantised with `quantize_blockwise(blocksize=256)` against the
 *   signed dynamic 8-bit map (`create_dynamic_map`): nested absmax per 256 scales, one uint8 code per scale.
 *   Dequantised scale = nested_code[q]·nested_absmax[i/256] + offset (bnb `dequantize_4bit` / `gemm_4bit`).
 *
 * Ŵ (the dequantised weight) is what every consumer sees: the fused GEMM, DoRA's norm and merge. ‖Ŵ_i‖² per row
 * is computed once here, because the base is frozen.
 */

/** The NF4 levels (bnb `get_4bit_type("nf4")`), float32. */
export const NF4_LEVELS = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
  0.7229568362236023, 1.0,
]);

export const NF4_BLOCK_SIZE = 64;
export const NESTED_BLOCK_SIZE = 256;

/** torch.linspace(start, end, steps) in float32 (the two-sided form torch uses on CPU). */
function linspaceF32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  const step = Math.fround((end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? Math.fround(start + step * i) : Math.fround(end - step * (steps - i - 1));
  return out;
}

/**
 * bnb `create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8)`: for exponent i in 0..6, the 2^i
 * midpoints of linspace(0.1, 1, 2^i + 1) times 10^(i−6), both signs, plus 0 and 1; sorted (256 values).
 */
export function dynamicMap(): Float32Array {
  const data: number[] = [];
  for (let i = 0; i < 7; i++) {
    const b = linspaceF32(0.1, 1, 2 ** i + 1);
    const scale = Math.fround(10 ** (i - 6));
    for (let j = 0; j + 1 < b.length; j++) {
      const mean = Math.fround(Math.fround(b[j]! + b[j + 1]!) / 2);
      const v = Math.fround(scale * mean);
      data.push(v, -v);
    }
  }
  data.push(0, 1);
  return Float32Array.from(data.sort((a, b) => a - b));
}

/** Index of the level nearest to v in an ascending table (first index on ties, as argmin). */
function nearest(levels: Float32Array, v: number): number {
  let lo = 0, hi = levels.length - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (levels[mid]! <= v) lo = mid; else hi = mid;
  }
  return Math.fround(Math.abs(v - levels[lo]!)) <= Math.fround(Math.abs(levels[hi]! - v)) ? lo : hi;
}

/** Double-quantised scales (bnb's nested QuantState `state2` plus `offset`). */
export interface NestedScales {
  /** One uint8 code per 64-block scale (into `code`). */
  readonly q: Uint8Array;
  /** absmax of (scale − offset) per `blockSize` scales. */
  readonly absmax: Float32Array;
  /** The 256-entry signed dynamic map. */
  readonly code: Float32Array;
  readonly blockSize: number;
  readonly offset: number;
}

export interface Nf4Parts {
  shape: readonly [number, number];
  blockSize: number;
  codes: Uint8Array;
  /** Plain float32 scales, or null when `nested` holds them. */
  absmax: Float32Array | null;
  nested: NestedScales | null;
  /** The 16 levels (a bnb checkpoint's `quant_map`; NF4_LEVELS when quantised here). */
  quantMap?: Float32Array;
}

/**
 * A frozen [out, in] weight in NF4: packed codes plus scales. The equivalent of bnb's `Params4bit` with its
 * `QuantState`. Never materialises Ŵ except on request (`dequantize`, merges, tests).
 */
export class Nf4Weight {
  readonly shape: readonly [number, number];
  readonly blockSize: number;
  readonly codes: Uint8Array;
  readonly absmax: Float32Array | null;
  readonly nested: NestedScales | null;
  readonly quantMap: Float32Array;
  /** ‖Ŵ_i‖² per output row, float64, computed once (the weight is frozen). */
  readonly rowNormSq: Float64Array;

  constructor(p: Nf4Parts) {
    const [rows, cols] = p.shape;
    const n = rows * cols, blocks = Math.ceil(n / p.blockSize);
    if (p.codes.length !== Math.ceil(n / 2)) throw new Error(`Nf4Weight [${rows}, ${cols}]: ${p.codes.length} code bytes, expected ${Math.ceil(n / 2)}`);
    const nScales = p.absmax ? p.absmax.length : p.nested ? p.nested.q.length : -1;
    if (nScales !== blocks) throw new Error(`Nf4Weight [${rows}, ${cols}]: ${nScales} scales, expected ${blocks} (block size ${p.blockSize})`);
    if (p.nested && p.nested.absmax.length !== Math.ceil(blocks / p.nested.blockSize)) {
      throw new Error(`Nf4Weight [${rows}, ${cols}]: ${p.nested.absmax.length} nested scales, expected ${Math.ceil(blocks / p.nested.blockSize)}`);
    }
    this.shape = [rows, cols];
    this.blockSize = p.blockSize;
    this.codes = p.codes;
    this.absmax = p.absmax;
    this.nested = p.nested;
    this.quantMap = p.quantMap ?? NF4_LEVELS;
    if (this.quantMap.length !== 16) throw new Error(`Nf4Weight: quant_map has ${this.quantMap.length} values, expected 16`);
    this.rowNormSq = this.computeRowNormSq();
  }

  /** Cache-key surface shared with Tensor (DoRA keys its caches on `data` and `version`; a frozen base never changes). */
  get data(): Uint8Array { return this.codes; }
  version = 0;

  get numel(): number { return this.shape[0] * this.shape[1]; }

  /** Bytes held for this weight (codes, scales, nested scales, maps). */
  get bytes(): number {
    const s = this.absmax ? this.absmax.byteLength
      : this.nested!.q.byteLength + this.nested!.absmax.byteLength + this.nested!.code.byteLength;
    return this.codes.byteLength + s + this.quantMap.byteLength;
  }

  /** The float32 scale of every block (double-quantised scales are expanded: a transient n/64 array). */
  scales(): Float32Array {
    if (this.absmax) return this.absmax;
    const { q, absmax, code, blockSize, offset } = this.nested!;
    const out = new Float32Array(q.length);
    for (let i = 0; i < q.length; i++) out[i] = Math.fround(Math.fround(code[q[i]!]! * absmax[Math.floor(i / blockSize)]!) + offset);
    return out;
  }

  /** Ŵ row i into `out` (length `in`). */
  dequantizeRow(i: number, out: Float32Array, scales = this.scales()): Float32Array {
    const cols = this.shape[1], bs = this.blockSize, lut = this.quantMap, codes = this.codes;
    const f0 = i * cols, f1 = f0 + cols;
    // block by block: one scale lookup per run, Math.fround(level·scale) as bnb's float32 product
    for (let f = f0; f < f1;) {
      const b = Math.floor(f / bs), end = Math.min(f1, (b + 1) * bs), sc = scales[b]!;
      for (; f < end; f++) {
        const byte = codes[f >> 1]!;
        out[f - f0] = Math.fround(lut[(f & 1) === 0 ? byte >> 4 : byte & 15]! * sc);
      }
    }
    return out;
  }

  /** Ŵ as a new float32 [out, in] array. */
  dequantize(): Float32Array {
    const [rows, cols] = this.shape, out = new Float32Array(rows * cols), sc = this.scales();
    for (let i = 0; i < rows; i++) this.dequantizeRow(i, out.subarray(i * cols, (i + 1) * cols), sc);
    return out;
  }

  private computeRowNormSq(): Float64Array {
    const [rows, cols] = this.shape, sc = this.scales(), row = new Float32Array(cols), out = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      this.dequantizeRow(i, row, sc);
      let acc = 0;
      for (let j = 0; j < cols; j++) acc += row[j]! * row[j]!;
      out[i] = acc;
    }
    return out;
  }
}

export interface QuantizeOptions {
  blockSize?: number;
  /** bnb_4bit_use_double_quant (default true: 0.516 bytes per weight instead of 0.5625). */
  doubleQuant?: boolean;
}

/** Blockwise absmax quantisation of `x` against an ascending table (bnb `quantize_blockwise` / `quantize_4bit`). */
function quantizeBlocks(x: Float32Array, blockSize: number, levels: Float32Array, put: (i: number, code: number) => void): Float32Array {
  const blocks = Math.ceil(x.length / blockSize), absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const lo = b * blockSize, hi = Math.min(lo + blockSize, x.length);
    let m = 0;
    for (let i = lo; i < hi; i++) m = Math.max(m, Math.abs(x[i]!));
    absmax[b] = m;
    // torch computes x * (1/absmax) in float32; an all-zero block (absmax 0) gives NaN in bnb: we code zeros as 0
    const inv = m === 0 ? 0 : Math.fround(1 / absmax[b]!);
    for (let i = lo; i < hi; i++) put(i, nearest(levels, Math.min(1, Math.max(-1, Math.fround(x[i]! * inv)))));
  }
  return absmax;
}

/** Midpoints between consecutive NF4 levels (exact in float64): nearest level = count of midpoints below. */
const NF4_MIDS = Float64Array.from({ length: 15 }, (_, j) => (NF4_LEVELS[j]! + NF4_LEVELS[j + 1]!) / 2);

/**
 * quantizeBlocks specialised to the 16 NF4 levels (the load-time hot loop): the code is the number of midpoints
 * below the scaled value, ties to the lower level as argmin; codes packed high nibble first.
 */
function quantizeNf4Blocks(x: Float32Array, blockSize: number, codes: Uint8Array): Float32Array {
  const blocks = Math.ceil(x.length / blockSize), absmax = new Float32Array(blocks), M = NF4_MIDS;
  const m0 = M[0]!, m1 = M[1]!, m2 = M[2]!, m3 = M[3]!, m4 = M[4]!, m5 = M[5]!, m6 = M[6]!, m7 = M[7]!;
  const m8 = M[8]!, m9 = M[9]!, m10 = M[10]!, m11 = M[11]!, m12 = M[12]!, m13 = M[13]!, m14 = M[14]!;
  for (let b = 0; b < blocks; b++) {
    const lo = b * blockSize, hi = Math.min(lo + blockSize, x.length);
    let m = 0;
    for (let i = lo; i < hi; i++) { const a = Math.abs(x[i]!); if (a > m) m = a; }
    absmax[b] = m;
    const inv = m === 0 ? 0 : Math.fround(1 / absmax[b]!);
    for (let i = lo; i < hi; i++) {
      let v = Math.fround(x[i]! * inv);
      if (v > 1) v = 1; else if (v < -1) v = -1;
      // branch-free (random weights defeat the branch predictor): the number of midpoints below v
      const c = (v > m0 ? 1 : 0) + (v > m1 ? 1 : 0) + (v > m2 ? 1 : 0) + (v > m3 ? 1 : 0) + (v > m4 ? 1 : 0) +
        (v > m5 ? 1 : 0) + (v > m6 ? 1 : 0) + (v > m7 ? 1 : 0) + (v > m8 ? 1 : 0) + (v > m9 ? 1 : 0) +
        (v > m10 ? 1 : 0) + (v > m11 ? 1 : 0) + (v > m12 ? 1 : 0) + (v > m13 ? 1 : 0) + (v > m14 ? 1 : 0);
      codes[i >> 1] = (i & 1) === 0 ? c << 4 : codes[i >> 1]! | c;
    }
  }
  return absmax;
}

/** Quantises a row-major [out, in] float32 weight to NF4 (bnb `quantize_4bit(quant_type="nf4")`). */
export function quantizeNf4(w: Float32Array, shape: readonly [number, number], opts: QuantizeOptions = {}): Nf4Weight {
  const blockSize = opts.blockSize ?? NF4_BLOCK_SIZE;
  if (w.length !== shape[0] * shape[1]) throw new Error(`quantizeNf4: ${w.length} values do not fill [${shape.join(", ")}]`);
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize % 2 !== 0) throw new Error(`quantizeNf4: block size must be an even integer ≥ 2, got ${blockSize}`);
  const codes = new Uint8Array(Math.ceil(w.length / 2));
  const absmax = quantizeNf4Blocks(w, blockSize, codes);
  if (opts.doubleQuant === false) return new Nf4Weight({ shape, blockSize, codes, absmax, nested: null });
  return new Nf4Weight({ shape, blockSize, codes, absmax: null, nested: doubleQuantize(absmax) });
}

/** bnb's nested quantisation of the scales: offset = mean, then 8-bit dynamic blockwise in blocks of 256. */
export function doubleQuantize(absmax: Float32Array, blockSize = NESTED_BLOCK_SIZE): NestedScales {
  let sum = 0;
  for (let i = 0; i < absmax.length; i++) sum += absmax[i]!;
  const offset = Math.fround(sum / absmax.length);
  const centred = new Float32Array(absmax.length);
  for (let i = 0; i < absmax.length; i++) centred[i] = absmax[i]! - offset;
  const code = dynamicMap(), q = new Uint8Array(absmax.length);
  const nestedAbsmax = quantizeBlocks(centred, blockSize, code, (i, c) => { q[i] = c; });
  return { q, absmax: nestedAbsmax, code, blockSize, offset };
}
