/**
 * Seeded random numbers so runs repeat: xoshiro128** for uniform bits, Box–Muller for normals.
 * (PyTorch's own generator is not reproduced; same seed → same values within dora-ts.)
 */
import { Tensor } from "./tensor.js";
import { numel } from "./shape.js";

export class Rng {
  private s0: number; private s1: number; private s2: number; private s3: number;
  private spare: number | null = null;

  constructor(seed: number) {
    // splitmix32 expands the seed into the 128-bit state
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = next(); this.s1 = next(); this.s2 = next(); this.s3 = next();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const r = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0; this.s3 ^= this.s1; this.s1 ^= this.s2; this.s0 ^= this.s3;
    this.s2 ^= t; this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0; this.s1 >>>= 0; this.s2 >>>= 0; this.s3 >>>= 0;
    return r;
  }

  /** Uniform in [0, 1). */
  uniform(): number { return this.nextU32() / 4294967296; }

  /** Standard normal. */
  normal(): number {
    if (this.spare !== null) { const s = this.spare; this.spare = null; return s; }
    let u = 0;
    while (u === 0) u = this.uniform();
    const v = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** Integer in [0, n). */
  int(n: number): number { return Math.floor(this.uniform() * n); }

  /** The generator's state, to save in checkpoints and restore exactly. */
  getState(): number[] { return [this.s0, this.s1, this.s2, this.s3, this.spare ?? NaN]; }
  setState(s: readonly number[]): void {
    [this.s0, this.s1, this.s2, this.s3] = [s[0]! >>> 0, s[1]! >>> 0, s[2]! >>> 0, s[3]! >>> 0];
    this.spare = s[4] === undefined || Number.isNaN(s[4]) ? null : s[4];
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export function randUniform(shape: readonly number[], rng: Rng, low = 0, high = 1): Tensor {
  const d = new Float32Array(numel(shape));
  for (let i = 0; i < d.length; i++) d[i] = low + (high - low) * rng.uniform();
  return new Tensor(d, shape);
}

export function randn(shape: readonly number[], rng: Rng, std = 1, mean = 0): Tensor {
  const d = new Float32Array(numel(shape));
  for (let i = 0; i < d.length; i++) d[i] = mean + std * rng.normal();
  return new Tensor(d, shape);
}

/**
 * torch.nn.init.kaiming_uniform_(w, a) for a weight whose fan_in is shape[1]·(receptive field):
 * bound = gain·√(3/fan_in), gain = √(2/(1+a²)). With a = √5 (nn.Linear's and PEFT lora_A's default) the bound is 1/√fan_in.
 */
export function kaimingUniform(shape: readonly number[], rng: Rng, a = Math.sqrt(5)): Tensor {
  const fanIn = numel(shape.slice(1));
  const bound = Math.sqrt(2 / (1 + a * a)) * Math.sqrt(3 / fanIn);
  return randUniform(shape, rng, -bound, bound);
}

/**
 * The positions inverted dropout zeroes among n elements, ascending: each element independently with probability p
 * (i.i.d. Bernoulli, as torch's dropout). Drawn as geometric gaps between drops, one `rng.uniform()` per DROPPED
 * element instead of one per element: after a drop, the number of kept elements before the next one is
 * G = ⌊ln U / ln(1 − p)⌋ with U = 1 − uniform() ∈ (0, 1], and P(G ≥ g) = P(U ≤ (1 − p)^g) = (1 − p)^g is exactly
 * the chance that g Bernoulli(p) draws in a row all keep. (U has 32-bit resolution, so gaps are cut off where
 * (1 − p)^g < 2^-32, the same resolution as comparing one 32-bit uniform per element against p.)
 * Every dropout in dora-ts draws its mask here: tensor `dropout` and the fused adapter ops (peft/flat.ts) give the
 * same mask for the same generator state. O(p·n) work; p ≤ 0 drops nothing, p ≥ 1 everything.
 */
export function dropoutPositions(n: number, p: number, rng: Rng): Int32Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0x7fffffff) throw new Error(`dropoutPositions: n must be an integer in [0, 2^31), got ${n}`);
  if (!(p > 0) || n === 0) return new Int32Array(0);
  if (p >= 1) { const all = new Int32Array(n); for (let i = 0; i < n; i++) all[i] = i; return all; }
  const lq = Math.log1p(-p);
  let out = new Int32Array(Math.min(n, Math.ceil(n * p + 6 * Math.sqrt(n * p) + 16)));
  let count = 0;
  for (let i = -1; ;) {
    i += 1 + Math.floor(Math.log(1 - rng.uniform()) / lq);
    if (i >= n) break;
    if (count === out.length) { const grown = new Int32Array(Math.min(n, 2 * out.length)); grown.set(out); out = grown; }
    out[count++] = i;
  }
  return out.subarray(0, count);
}
