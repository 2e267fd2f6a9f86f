/**
 * Optimizers over named float32 parameters, updating their buffers in place: AdamW with torch.optim.AdamW's
 * semantics (decoupled weight decay, bias correction, eps outside the sqrt) and SGD with momentum.
 * Gradient clipping by global L2 norm as torch.nn.utils.clip_grad_norm_.
 */
import { getBackend } from "../backend/index.js";
import { Tensor } from "../tensor/index.js";

export interface NamedParam { name: string; tensor: Tensor }

export interface OptimizerState { kind: string; step: number; buffers: Record<string, Float32Array[]> }

export interface Optimizer {
  readonly params: readonly NamedParam[];
  lr: number;
  step(): void;
  zeroGrad(): void;
  state(): OptimizerState;
  loadState(s: OptimizerState): void;
}

/** The float32 buffer a parameter's values live in (contiguous, offset 0); trainable params must be plain. */
function paramBuffer(p: NamedParam): Float32Array {
  const t = p.tensor;
  if (t.dtype !== "float32" || !t.isContiguous()) throw new Error(`optimizer: parameter ${p.name} must be a contiguous float32 tensor`);
  return (t.data as Float32Array).subarray(t.offset, t.offset + t.numel);
}

function gradBuffer(p: NamedParam): Float32Array | null {
  return p.tensor.grad ? p.tensor.grad.f32() : null;
}

export interface AdamWOptions { lr: number; betas?: [number, number]; eps?: number; weightDecay?: number }

export class AdamW implements Optimizer {
  lr: number;
  readonly beta1: number; readonly beta2: number; readonly eps: number; readonly weightDecay: number;
  private t = 0;
  private readonly m: Float32Array[]; private readonly v: Float32Array[];

  constructor(readonly params: readonly NamedParam[], opts: AdamWOptions) {
    this.lr = opts.lr;
    [this.beta1, this.beta2] = opts.betas ?? [0.9, 0.999];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 0.01; // torch.optim.AdamW's default
    this.m = params.map((p) => new Float32Array(p.tensor.numel));
    this.v = params.map((p) => new Float32Array(p.tensor.numel));
  }

  step(): void {
    this.t++;
    const be = getBackend();
    this.params.forEach((p, i) => {
      const g = gradBuffer(p);
      if (!g) return; // torch skips parameters without a gradient
      be.adamwStep(paramBuffer(p), g, this.m[i]!, this.v[i]!, g.length, this.lr, this.beta1, this.beta2, this.eps, this.weightDecay, this.t);
      p.tensor.version++;
    });
  }

  zeroGrad(): void { for (const p of this.params) p.tensor.grad = null; }

  state(): OptimizerState { return { kind: "adamw", step: this.t, buffers: { exp_avg: this.m, exp_avg_sq: this.v } }; }

  loadState(s: OptimizerState): void {
    if (s.kind !== "adamw") throw new Error(`AdamW.loadState: state is for "${s.kind}"`);
    loadBuffers(this.params, this.m, s.buffers["exp_avg"], "exp_avg");
    loadBuffers(this.params, this.v, s.buffers["exp_avg_sq"], "exp_avg_sq");
    this.t = s.step;
  }
}

export interface SGDOptions { lr: number; momentum?: number; weightDecay?: number }

/** torch.optim.SGD: g += wd·p; buf = μ·buf + g (buf = g on the first step); p −= lr·buf. */
export class SGD implements Optimizer {
  lr: number;
  private t = 0;
  private readonly buf: Float32Array[];
  constructor(readonly params: readonly NamedParam[], readonly opts: SGDOptions) {
    this.lr = opts.lr;
    this.buf = params.map((p) => new Float32Array(p.tensor.numel));
  }
  step(): void {
    this.t++;
    const mu = this.opts.momentum ?? 0, wd = this.opts.weightDecay ?? 0;
    this.params.forEach((p, i) => {
      const g = gradBuffer(p);
      if (!g) return;
      const w = paramBuffer(p), b = this.buf[i]!;
      for (let j = 0; j < w.length; j++) {
        const gj = g[j]! + wd * w[j]!;
        const bj = mu === 0 ? gj : this.t === 1 ? gj : mu * b[j]! + gj;
        b[j] = bj;
        w[j] = w[j]! - this.lr * bj;
      }
      p.tensor.version++;
    });
  }
  zeroGrad(): void { for (const p of this.params) p.tensor.grad = null; }
  state(): OptimizerState { return { kind: "sgd", step: this.t, buffers: { momentum_buffer: this.buf } }; }
  loadState(s: OptimizerState): void {
    if (s.kind !== "sgd") throw new Error(`SGD.loadState: state is for "${s.kind}"`);
    loadBuffers(this.params, this.buf, s.buffers["momentum_buffer"], "momentum_buffer");
    this.t = s.step;
  }
}

function loadBuffers(params: readonly NamedParam[], into: Float32Array[], from: Float32Array[] | undefined, what: string): void {
  if (!from || from.length !== into.length) throw new Error(`optimizer state: "${what}" has ${from?.length ?? 0} buffers, expected ${into.length}`);
  into.forEach((b, i) => {
    const src = from[i]!;
    if (src.length !== b.length) throw new Error(`optimizer state: "${what}" for ${params[i]!.name} has ${src.length} values, expected ${b.length}`);
    b.set(src);
  });
}

/** Global L2 norm of all gradients; scales them to `maxNorm` when above it (0 = no clipping). Returns the norm before clipping. */
export function clipGradNorm(params: readonly NamedParam[], maxNorm: number): number {
  let ss = 0;
  for (const p of params) {
    const g = gradBuffer(p);
    if (g) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  }
  const norm = Math.sqrt(ss);
  if (maxNorm > 0 && norm > maxNorm) {
    const k = maxNorm / (norm + 1e-6); // torch's clip_coef
    for (const p of params) {
      const g = p.tensor.grad;
      if (!g) continue;
      const own = g.isContiguous() && g.offset === 0 && g.dtype === "float32" ? (g.data as Float32Array) : null;
      const src = g.f32();
      const dst = own ?? new Float32Array(src.length);
      for (let i = 0; i < src.length; i++) dst[i] = src[i]! * k;
      if (!own) p.tensor.grad = new Tensor(dst, g.shape);
    }
  }
  return norm;
}
