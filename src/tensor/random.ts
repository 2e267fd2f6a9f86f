/**
 * Seeded random numbers so runs repeat: xoshiro128** for uniform bits, Box–Muller for normals.
 * (PyTorch's own generator is not reproduced; same seed → same values within dora-ts.)
 */
import { getBackend, xoshiroNext } from "../backend/index.js";
import { Tensor } from "./tensor.js";
import { numel } from "./shape.js";

export class Rng {
  /** xoshiro128** state, 4 words (the dropout kernels advance it in place: Backend.dropoutDraw). */
  private readonly s = new Uint32Array(4);
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
    for (let i = 0; i < 4; i++) this.s[i] = next();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number { return xoshiroNext(this.s); }

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
  getState(): number[] { return [this.s[0]!, this.s[1]!, this.s[2]!, this.s[3]!, this.spare ?? NaN]; }
  setState(s: readonly number[]): void {
    for (let i = 0; i < 4; i++) this.s[i] = s[i]! >>> 0;
    this.spare = s[4] === undefined || Number.isNaN(s[4]) ? null : s[4];
  }

  /** The live state words, for kernels that draw from this generator (dropoutPositions). */
  words(): Uint32Array { return this.s; }
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
 * (i.i.d. Bernoulli, as torch's dropout). Drawn as geometric gaps between drops, one 32-bit draw per DROPPED element
 * instead of one per element: after a drop, the number of kept elements before the next one is the largest g with
 * (1 − p)^g ≥ v, v = 1 − w/2^32 ∈ (0, 1] (w the draw), and P(gap ≥ g) = (1 − p)^g is exactly the chance that g
 * Bernoulli(p) draws in a row all keep. (v has 32-bit resolution, so gaps are cut off where (1 − p)^g < 2^-32, the
 * same resolution as comparing one 32-bit uniform per element against p.) The draw is a backend kernel
 * (Backend.dropoutDraw; backend/js/random.ts defines (1 − p)^g so that every backend gives the same positions).
 * Every dropout in dora-ts draws its mask here: tensor `dropout` and the fused adapter ops (peft/flat.ts) give the
 * same mask for the same generator state. O(p·n) work; p ≤ 0 drops nothing, p ≥ 1 everything.
 */
export function dropoutPositions(n: number, p: number, rng: Rng): Int32Array {
  if (!Number.isSafeInteger(n) || n < 0 || n > 0x7fffffff) throw new Error(`dropoutPositions: n must be an integer in [0, 2^31), got ${n}`);
  if (!(p > 0) || n === 0) return new Int32Array(0);
  if (p >= 1) { const all = new Int32Array(n); for (let i = 0; i < n; i++) all[i] = i; return all; }
  const be = getBackend();
  let out = new Int32Array(Math.min(n, Math.ceil(n * p + 6 * Math.sqrt(n * p) + 16)));
  let count = be.dropoutDraw(out, 0, -1, n, p, rng.words());
  while (count === out.length && out.length < n) { // full (rare: 6 sd above the mean): grow and go on
    const grown = new Int32Array(Math.min(n, 2 * out.length));
    grown.set(out);
    out = grown;
    count = be.dropoutDraw(out, count, out[count - 1]!, n, p, rng.words());
  }
  return out.subarray(0, count);
}
