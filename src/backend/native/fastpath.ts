/**
 * Tight TypeScript loops for the broadcast layouts of the binary kernels the addon does not implement, used by
 * the native backend before falling back to the js spec's general strided loops (which dispatch on the op per
 * element): a contiguous operand against a broadcast row (bias) or a scalar, on either side. Two contiguous
 * same-shape operands go to the addon (binaryFlat). Results are identical to the spec's.
 */
import type { BinaryOp } from "../backend.js";

type Kind = "flat" | "row" | "scalar" | null;

/** How an operand with `strides` is read under `shape`: contiguous, a broadcast last-dim row, a scalar. */
function kind(strides: readonly number[], shape: readonly number[]): Kind {
  const nd = shape.length;
  let acc = 1, flat = true, zeroLead = true, scalar = true;
  for (let d = nd - 1; d >= 0; d--) {
    const s = shape[d]!, st = strides[d]!;
    if (s !== 1 && st !== acc) flat = false;
    if (s !== 1 && st !== 0) scalar = false;
    if (d < nd - 1 && s !== 1 && st !== 0) zeroLead = false;
    acc *= s;
  }
  if (flat) return "flat";
  if (scalar) return "scalar";
  if (zeroLead && nd > 0 && (shape[nd - 1] === 1 || strides[nd - 1] === 1)) return "row";
  return null;
}

/** True when an operand with `strides` is read contiguously under `shape` (size-1 dims ignored). */
export function isFlat(strides: readonly number[], shape: readonly number[]): boolean {
  return kind(strides, shape) === "flat";
}

/** out = a op b for the broadcast layouts; returns false (nothing written) when the layout is not one of them. */
export function binaryFast(op: BinaryOp, out: Float32Array, a: Float32Array, aOff: number, aStrides: readonly number[],
  b: Float32Array, bOff: number, bStrides: readonly number[], shape: readonly number[]): boolean {
  if (op !== "add" && op !== "sub" && op !== "mul" && op !== "div") return false;
  const ka = kind(aStrides, shape), kb = kind(bStrides, shape);
  if (ka === null || kb === null || (ka !== "flat") === (kb !== "flat")) return false; // exactly one side flat
  let n = 1;
  for (const s of shape) n *= s;
  const cols = shape.length > 0 ? shape[shape.length - 1]! : 1;
  // normalise to: x flat, y flat | row | scalar, with `swap` when a was the broadcast one
  const swap = ka !== "flat";
  const x = swap ? b : a, xo = swap ? bOff : aOff, y = swap ? a : b, yo = swap ? aOff : bOff, ky = swap ? ka : kb;
  const f = OPS[op](swap);
  if (ky === "scalar") f.scalar(out, x, xo, y[yo]!, n);
  else f.row(out, x, xo, y, yo, n, cols);
  return true;
}

interface Loops {
  scalar(out: Float32Array, x: Float32Array, xo: number, s: number, n: number): void;
  row(out: Float32Array, x: Float32Array, xo: number, y: Float32Array, yo: number, n: number, cols: number): void;
}

// one monomorphic loop per (op, side), so each stays a tight typed-array loop after JIT
const OPS: Record<"add" | "sub" | "mul" | "div", (swap: boolean) => Loops> = {
  add: () => ({
    scalar(o, x, xo, s, n) { for (let i = 0; i < n; i++) o[i] = x[xo + i]! + s; },
    row(o, x, xo, y, yo, n, c) { for (let r = 0; r < n; r += c) for (let j = 0; j < c; j++) o[r + j] = x[xo + r + j]! + y[yo + j]!; },
  }),
  mul: () => ({
    scalar(o, x, xo, s, n) { for (let i = 0; i < n; i++) o[i] = x[xo + i]! * s; },
    row(o, x, xo, y, yo, n, c) { for (let r = 0; r < n; r += c) for (let j = 0; j < c; j++) o[r + j] = x[xo + r + j]! * y[yo + j]!; },
  }),
  sub: (swap) => swap ? {
    scalar(o, x, xo, s, n) { for (let i = 0; i < n; i++) o[i] = s - x[xo + i]!; },
    row(o, x, xo, y, yo, n, c) { for (let r = 0; r < n; r += c) for (let j = 0; j < c; j++) o[r + j] = y[yo + j]! - x[xo + r + j]!; },
  } : {
    scalar(o, x, xo, s, n) { for (let i = 0; i < n; i++) o[i] = x[xo + i]! - s; },
    row(o, x, xo, y, yo, n, c) { for (let r = 0; r < n; r += c) for (let j = 0; j < c; j++) o[r + j] = x[xo + r + j]! - y[yo + j]!; },
  },
  div: (swap) => swap ? {
    scalar(o, x, xo, s, n) { for (let i = 0; i < n; i++) o[i] = s / x[xo + i]!; },
    row(o, x, xo, y, yo, n, c) { for (let r = 0; r < n; r += c) for (let j = 0; j < c; j++) o[r + j] = y[yo + j]! / x[xo + r + j]!; },
  } : {
    scalar(o, x, xo, s, n) { for (let i = 0; i < n; i++) o[i] = x[xo + i]! / s; },
    row(o, x, xo, y, yo, n, c) { for (let r = 0; r < n; r += c) for (let j = 0; j < c; j++) o[r + j] = x[xo + r + j]! / y[yo + j]!; },
  },
};
