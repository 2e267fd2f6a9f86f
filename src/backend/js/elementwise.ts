/** Elementwise kernels (spec): unary maps with their derivatives, broadcasting binary ops, strided copy. */
import type { BinaryOp, UnaryOp } from "../backend.js";

const GELU_C = Math.sqrt(2 / Math.PI);

/** The scalar definition of each unary op; the kernels below are loops over it. */
export function unaryScalar(op: UnaryOp, x: number): number {
  switch (op) {
    case "exp": return Math.exp(x);
    case "log": return Math.log(x);
    case "sqrt": return Math.sqrt(x);
    case "rsqrt": return 1 / Math.sqrt(x);
    case "tanh": return Math.tanh(x);
    case "sigmoid": return 1 / (1 + Math.exp(-x));
    case "relu": return x > 0 ? x : 0;
    case "silu": return x / (1 + Math.exp(-x));
    // GPT-2's gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
    case "gelu": return 0.5 * x * (1 + Math.tanh(GELU_C * (x + 0.044715 * x * x * x)));
    case "neg": return -x;
    case "abs": return Math.abs(x);
  }
}

/** dy/dx of each op at x, given y = op(x). */
export function unaryDerivative(op: UnaryOp, x: number, y: number): number {
  switch (op) {
    case "exp": return y;
    case "log": return 1 / x;
    case "sqrt": return 0.5 / y;
    case "rsqrt": return -0.5 * y * y * y;
    case "tanh": return 1 - y * y;
    case "sigmoid": return y * (1 - y);
    case "relu": return x > 0 ? 1 : 0;
    case "silu": { const s = 1 / (1 + Math.exp(-x)); return s * (1 + x * (1 - s)); }
    case "gelu": {
      const u = GELU_C * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * GELU_C * (1 + 3 * 0.044715 * x * x);
    }
    case "neg": return -1;
    case "abs": return x > 0 ? 1 : x < 0 ? -1 : 0;
  }
}

export function unaryForward(op: UnaryOp, out: Float32Array, x: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = unaryScalar(op, x[i]!);
}

export function unaryBackward(op: UnaryOp, dx: Float32Array, dy: Float32Array, x: Float32Array, y: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) dx[i] = dy[i]! * unaryDerivative(op, x[i]!, y[i]!);
}

export function siluMulForward(out: Float32Array, g: Float32Array, u: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[i] = (g[i]! / (1 + Math.exp(-g[i]!))) * u[i]!;
}

export function siluMulBackward(dg: Float32Array, du: Float32Array, dy: Float32Array, g: Float32Array, u: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) {
    const x = g[i]!, s = 1 / (1 + Math.exp(-x)); // σ(x); silu = x·s, silu' = s·(1 + x·(1 − s))
    du[i] = dy[i]! * x * s;
    dg[i] = dy[i]! * u[i]! * s * (1 + x * (1 - s));
  }
}

export function binaryScalar(op: BinaryOp, a: number, b: number): number {
  switch (op) {
    case "add": return a + b;
    case "sub": return a - b;
    case "mul": return a * b;
    case "div": return a / b;
    case "pow": return Math.pow(a, b);
    case "max": return a > b || Number.isNaN(a) ? a : b;
    case "min": return a < b || Number.isNaN(a) ? a : b;
  }
}

export function binary(
  op: BinaryOp, out: Float32Array,
  a: Float32Array, aOff: number, aStrides: readonly number[],
  b: Float32Array, bOff: number, bStrides: readonly number[],
  shape: readonly number[],
): void {
  const nd = shape.length;
  let total = 1;
  for (const s of shape) total *= s;
  if (total === 0) return;
  const inner = nd === 0 ? 1 : shape[nd - 1]!;
  const as = nd === 0 ? 0 : aStrides[nd - 1]!, bs = nd === 0 ? 0 : bStrides[nd - 1]!;
  const idx = new Array<number>(nd).fill(0);
  let ao = aOff, bo = bOff;
  for (let o = 0; o < total; o += inner) {
    for (let j = 0; j < inner; j++) out[o + j] = binaryScalar(op, a[ao + j * as]!, b[bo + j * bs]!);
    // advance the outer index (odometer over dims nd-2 .. 0)
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      ao += aStrides[d]!; bo += bStrides[d]!;
      if (idx[d]! < shape[d]!) break;
      ao -= aStrides[d]! * shape[d]!; bo -= bStrides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}

export function copyStrided(out: Float32Array, x: Float32Array, off: number, strides: readonly number[], shape: readonly number[]): void {
  const nd = shape.length;
  let total = 1;
  for (const s of shape) total *= s;
  if (total === 0) return;
  const inner = nd === 0 ? 1 : shape[nd - 1]!;
  const is = nd === 0 ? 0 : strides[nd - 1]!;
  const idx = new Array<number>(nd).fill(0);
  let xo = off;
  for (let o = 0; o < total; o += inner) {
    if (is === 1) out.set(x.subarray(xo, xo + inner), o);
    else for (let j = 0; j < inner; j++) out[o + j] = x[xo + j * is]!;
    for (let d = nd - 2; d >= 0; d--) {
      idx[d]!++;
      xo += strides[d]!;
      if (idx[d]! < shape[d]!) break;
      xo -= strides[d]! * shape[d]!;
      idx[d] = 0;
    }
  }
}
