/**
 * Tensor: a strided view over a flat buffer, plus autograd state. float32 is the compute dtype; int32 holds
 * indices (int64 inputs are narrowed with a range check); float16/bfloat16 are storage dtypes (Uint16Array bits)
 * that any op first widens to float32.
 *
 * Views (reshape of contiguous data, transpose/permute, slice, expand) share the buffer and cost no copy.
 * Ops live in ./ops/*; the methods here are thin forwards so user code reads like PyTorch.
 */
import { runBackward, type GradNode } from "./autograd.js";
import { contiguousStrides, numel, shapeStr } from "./shape.js";
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from "./half.js";
import * as ew from "./ops/elementwise.js";
import * as rd from "./ops/reduce.js";
import * as vw from "./ops/view.js";
import * as mm from "./ops/matmul.js";
import * as nnops from "./ops/nn.js";

export type DType = "float32" | "int32" | "float16" | "bfloat16";
export type Storage = Float32Array | Int32Array | Uint16Array;
type Scalar = number;

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
  /** The buffer. Optimizers update it in place; `dispose()` drops it. */
  data: Storage;
  requiresGrad = false;
  grad: Tensor | null = null;
  /** Bumped by whoever writes `data` in place (optimizers, merges), so caches derived from it can tell they are stale. */
  version = 0;
  gradFn: GradNode | null = null;

  constructor(data: Storage, shape: readonly number[], opts: { strides?: readonly number[]; offset?: number; dtype?: DType } = {}) {
    this.data = data;
    this.shape = shape.slice();
    this.strides = opts.strides ? opts.strides.slice() : contiguousStrides(shape);
    this.offset = opts.offset ?? 0;
    this.dtype = opts.dtype ?? (data instanceof Int32Array ? "int32" : data instanceof Uint16Array ? "float16" : "float32");
    for (const s of shape) {
      if (!Number.isInteger(s) || s < 0) throw new Error(`Tensor: invalid shape ${shapeStr(shape)}`);
    }
  }

  get ndim(): number { return this.shape.length; }
  get numel(): number { return numel(this.shape); }
  get isLeaf(): boolean { return this.gradFn === null; }

  /** Size of dim `d` (negative counts from the end). */
  size(d: number): number {
    const i = d < 0 ? d + this.shape.length : d;
    const s = this.shape[i];
    if (s === undefined) throw new Error(`size: dim ${d} out of range for shape ${shapeStr(this.shape)}`);
    return s;
  }

  isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      if (this.shape[i] !== 1 && this.strides[i] !== acc) return false;
      acc *= this.shape[i]!;
    }
    return true;
  }

  /** The float32 values in row-major order: a view of the buffer when contiguous float32, else a fresh copy. */
  f32(): Float32Array {
    if (this.data.length === 0 && this.numel > 0) {
      throw new Error(`tensor of shape ${shapeStr(this.shape)} has no data: its buffer was released (backward's releaseActivationsSince, or dispose())`);
    }
    if (this.dtype === "float32") {
      if (this.isContiguous()) return (this.data as Float32Array).subarray(this.offset, this.offset + this.numel);
      return this.contiguous().data as Float32Array;
    }
    if (this.dtype === "int32") return Float32Array.from(this.i32());
    return this.float().f32();
  }

  /** The int32 values in row-major order (index tensors). */
  i32(): Int32Array {
    if (this.dtype !== "int32") throw new Error(`i32: tensor has dtype ${this.dtype}, expected int32`);
    return this.rowMajor(this.data as Int32Array, Int32Array);
  }

  toArray(): number[] { return this.dtype === "int32" ? Array.from(this.i32()) : Array.from(this.f32()); }

  item(): number {
    if (this.numel !== 1) throw new Error(`item: tensor has ${this.numel} elements (shape ${shapeStr(this.shape)}), expected 1`);
    return this.toArray()[0]!;
  }

  /** Widen float16/bfloat16 storage to float32 (a copy); float32 returns itself. */
  float(): Tensor {
    if (this.dtype === "float32") return this;
    if (this.dtype === "int32") return new Tensor(Float32Array.from(this.i32()), this.shape);
    const src = this.contiguousBits();
    const data = this.dtype === "float16" ? f16ToF32(src) : bf16ToF32(src);
    return new Tensor(data, this.shape);
  }

  /** Convert to a storage dtype (round-to-nearest-even for the 16-bit floats). No gradient flows through it. */
  to(dtype: DType): Tensor {
    if (dtype === this.dtype) return this;
    if (dtype === "float32") return this.float();
    if (dtype === "int32") {
      const f = this.f32();
      const out = new Int32Array(f.length);
      for (let i = 0; i < f.length; i++) out[i] = Math.trunc(f[i]!);
      return new Tensor(out, this.shape);
    }
    const f = this.f32();
    return new Tensor(dtype === "float16" ? f32ToF16(f) : f32ToBf16(f), this.shape, { dtype });
  }

  private contiguousBits(): Uint16Array {
    return this.rowMajor(this.data as Uint16Array, Uint16Array);
  }

  /** The elements of a non-float32 buffer in row-major order: a view when contiguous, else an element-wise gather. */
  private rowMajor<A extends Int32Array | Uint16Array>(d: A, Ctor: new (n: number) => A): A {
    if (this.isContiguous()) return d.subarray(this.offset, this.offset + this.numel) as A;
    const out = new Ctor(this.numel);
    const idx = new Array<number>(this.ndim).fill(0);
    for (let i = 0; i < out.length; i++) {
      let o = this.offset;
      for (let k = 0; k < this.ndim; k++) o += idx[k]! * this.strides[k]!;
      out[i] = d[o]!;
      for (let k = this.ndim - 1; k >= 0; k--) { if (++idx[k]! < this.shape[k]!) break; idx[k] = 0; }
    }
    return out;
  }

  /** Mark as a trainable leaf (returns this). */
  requiresGrad_(flag = true): this {
    if (flag && this.dtype !== "float32") throw new Error(`requiresGrad_: only float32 tensors can require grad (got ${this.dtype})`);
    this.requiresGrad = flag;
    return this;
  }

  /** A view that shares data but is cut from the graph (torch.detach). */
  detach(): Tensor {
    return new Tensor(this.data, this.shape, { strides: this.strides, offset: this.offset, dtype: this.dtype });
  }

  /**
   * Reverse-mode gradient of this tensor (a scalar unless `grad` is given) into every leaf that requires grad.
   *
   * `releaseActivationsSince`, for training loops that read nothing but the loss's value (before calling this):
   * an `allocationMark()` taken before the forward pass. The graph's intermediate tensors, this one included, then
   * hand their buffers back for the next step's ops instead of leaving them to the garbage collector (at 2 threads
   * that GC cost ~10% of a LoRA step on a LLaMA-shaped model), and are left empty: reading one afterwards throws.
   * Buffers made before the mark, leaves' and gradients' buffers are never released; pooled buffers that came back
   * before the mark and were not taken again during the step are left to the garbage collector.
   */
  backward(grad?: Tensor, opts: { retainGraph?: boolean; releaseActivationsSince?: number } = {}): void {
    if (!this.requiresGrad) {
      throw new Error(`backward: tensor of shape ${shapeStr(this.shape)} does not require grad (no input of its graph has requiresGrad)`);
    }
    if (grad === undefined && this.numel !== 1) {
      throw new Error(`backward: implicit gradient only for scalars; got shape ${shapeStr(this.shape)}, pass a gradient`);
    }
    const g = grad ?? new Tensor(new Float32Array(1).fill(1), this.shape);
    if (g.numel !== this.numel) throw new Error(`backward: gradient shape ${shapeStr(g.shape)} does not match ${shapeStr(this.shape)}`);
    runBackward(this, g, ew.add, opts.retainGraph ?? false, opts.releaseActivationsSince ?? null);
  }

  /** Release the buffer now instead of waiting for the GC (the tensor is unusable afterwards). */
  dispose(): void {
    this.data = new Float32Array(0);
    this.grad = null;
    this.gradFn = null;
  }

  toString(): string {
    return `Tensor(shape=${shapeStr(this.shape)}, dtype=${this.dtype}${this.requiresGrad ? ", requiresGrad" : ""})`;
  }

  // ---- forwards to ops (see ./ops/*) ----
  add(o: Tensor | Scalar): Tensor { return ew.add(this, o); }
  sub(o: Tensor | Scalar): Tensor { return ew.sub(this, o); }
  mul(o: Tensor | Scalar): Tensor { return ew.mul(this, o); }
  div(o: Tensor | Scalar): Tensor { return ew.div(this, o); }
  pow(o: Tensor | Scalar): Tensor { return ew.pow(this, o); }
  neg(): Tensor { return ew.neg(this); }
  exp(): Tensor { return ew.exp(this); }
  log(): Tensor { return ew.log(this); }
  sqrt(): Tensor { return ew.sqrt(this); }
  rsqrt(): Tensor { return ew.rsqrt(this); }
  tanh(): Tensor { return ew.tanh(this); }
  sigmoid(): Tensor { return ew.sigmoid(this); }
  relu(): Tensor { return ew.relu(this); }
  silu(): Tensor { return ew.silu(this); }
  gelu(): Tensor { return ew.gelu(this); }
  abs(): Tensor { return ew.abs(this); }
  sum(dims?: number | readonly number[], keepdim = false): Tensor { return rd.sum(this, dims, keepdim); }
  mean(dims?: number | readonly number[], keepdim = false): Tensor { return rd.mean(this, dims, keepdim); }
  max(dim: number, keepdim = false): Tensor { return rd.max(this, dim, keepdim); }
  norm(dims?: number | readonly number[], keepdim = false): Tensor { return rd.norm(this, dims, keepdim); }
  reshape(shape: readonly number[]): Tensor { return vw.reshape(this, shape); }
  view(shape: readonly number[]): Tensor { return vw.reshape(this, shape); }
  flatten(start = 0, end = -1): Tensor { return vw.flatten(this, start, end); }
  transpose(d0 = -2, d1 = -1): Tensor { return vw.transpose(this, d0, d1); }
  get T(): Tensor { return vw.transpose(this, -2, -1); }
  permute(dims: readonly number[]): Tensor { return vw.permute(this, dims); }
  slice(dim: number, start: number, end: number): Tensor { return vw.slice(this, dim, start, end); }
  expand(shape: readonly number[]): Tensor { return vw.expand(this, shape); }
  unsqueeze(dim: number): Tensor { return vw.unsqueeze(this, dim); }
  squeeze(dim: number): Tensor { return vw.squeeze(this, dim); }
  contiguous(): Tensor { return vw.contiguous(this); }
  matmul(o: Tensor): Tensor { return mm.matmul(this, o); }
  softmax(dim = -1): Tensor { return nnops.softmax(this, dim); }
  logSoftmax(dim = -1): Tensor { return nnops.logSoftmax(this, dim); }
}

/** A float32 (or int32 for Int32Array) tensor from values; the buffer is copied for arrays, adopted for typed arrays. */
export function tensor(values: number[] | Float32Array | Int32Array, shape?: readonly number[]): Tensor {
  const data = Array.isArray(values) ? Float32Array.from(values) : values;
  const sh = shape ?? [data.length];
  if (numel(sh) !== data.length) throw new Error(`tensor: ${data.length} values do not fill shape ${shapeStr(sh)}`);
  return new Tensor(data, sh);
}

/** An int32 index tensor; accepts int64 (BigInt64Array / bigint[]) with a range check. */
export function indexTensor(values: readonly number[] | Int32Array | BigInt64Array | readonly bigint[], shape?: readonly number[]): Tensor {
  const out = new Int32Array(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    const n = typeof v === "bigint" ? Number(v) : v;
    if (!Number.isInteger(n) || n < -2147483648 || n > 2147483647) throw new Error(`indexTensor: value ${String(v)} at ${i} is not an int32 index`);
    out[i] = n;
  }
  return tensor(out, shape);
}

export function zeros(shape: readonly number[]): Tensor { return new Tensor(new Float32Array(numel(shape)), shape); }
export function full(shape: readonly number[], value: number): Tensor { return new Tensor(new Float32Array(numel(shape)).fill(value), shape); }
export function ones(shape: readonly number[]): Tensor { return full(shape, 1); }
export function scalar(v: number): Tensor { return new Tensor(Float32Array.of(v), []); }
export function arange(n: number): Tensor {
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = i;
  return new Tensor(d, [n]);
}
