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
