/** Broadcasting binary ops and unary maps, each with its gradient. */
import { record } from "../autograd.js";
import { Tensor, scalar } from "../tensor.js";
import { broadcastShapes } from "../shape.js";
import { getBackend, type BinaryOp, type UnaryOp } from "../../backend/index.js";
import { sumTo } from "./reduce.js";
import { uninitF32 } from "../buffer.js";

type Operand = Tensor | number;

function asTensor(x: Operand): Tensor {
  if (typeof x === "number") return scalar(x);
  return x.dtype === "float32" ? x : x.float();
}

/** Element strides of `t` read under the broadcast shape `shape` (0 on broadcast dims). */
function broadcastStrides(t: Tensor, shape: readonly number[]): number[] {
  const off = shape.length - t.ndim;
  return shape.map((s, i) => (i < off || t.shape[i - off] !== s ? 0 : t.strides[i - off]!));
}

function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(op, a.shape, b.shape);
  const out = new Tensor(uninitF32(shape.reduce((x, y) => x * y, 1)), shape);
  getBackend().binary(op, out.data as Float32Array,
    a.data as Float32Array, a.offset, broadcastStrides(a, shape),
    b.data as Float32Array, b.offset, broadcastStrides(b, shape), shape);
  return out;
}

export function add(x: Operand, y: Operand): Tensor {
  const a = asTensor(x), b = asTensor(y);
  return record(binaryRaw("add", a, b), "add", [a, b], (g, n) => [n[0] ? sumTo(g, a.shape) : null, n[1] ? sumTo(g, b.shape) : null]);
}

export function sub(x: Operand, y: Operand): Tensor {
  const a = asTensor(x), b = asTensor(y);
  return record(binaryRaw("sub", a, b), "sub", [a, b], (g, n) => [n[0] ? sumTo(g, a.shape) : null, n[1] ? sumTo(neg(g), b.shape) : null]);
}

export function mul(x: Operand, y: Operand): Tensor {
  const a = asTensor(x), b = asTensor(y);
  return record(binaryRaw("mul", a, b), "mul", [a, b], (g, n) => [
    n[0] ? sumTo(binaryRaw("mul", g, b), a.shape) : null,
    n[1] ? sumTo(binaryRaw("mul", g, a), b.shape) : null,
  ]);
}

export function div(x: Operand, y: Operand): Tensor {
  const a = asTensor(x), b = asTensor(y);
  const out = binaryRaw("div", a, b);
  return record(out, "div", [a, b], (g, n) => [
    n[0] ? sumTo(binaryRaw("div", g, b), a.shape) : null,
    // d(a/b)/db = −(a/b)/b
    n[1] ? sumTo(neg(binaryRaw("div", binaryRaw("mul", g, out), b)), b.shape) : null,
  ]);
}

export function pow(x: Operand, y: Operand): Tensor {
  const a = asTensor(x), b = asTensor(y);
  const out = binaryRaw("pow", a, b);
  return record(out, "pow", [a, b], (g, n) => [
    n[0] ? sumTo(binaryRaw("mul", g, binaryRaw("mul", b, binaryRaw("pow", a, binaryRaw("sub", b, scalar(1))))), a.shape) : null,
    n[1] ? sumTo(binaryRaw("mul", g, binaryRaw("mul", out, unaryRaw("log", a))), b.shape) : null,
  ]);
}

/** Elementwise maximum / minimum; the gradient goes to the selected operand (to `x` on ties). */
export function maximum(x: Operand, y: Operand): Tensor { return select("max", x, y); }
export function minimum(x: Operand, y: Operand): Tensor { return select("min", x, y); }

function select(op: "max" | "min", x: Operand, y: Operand): Tensor {
  const a = asTensor(x), b = asTensor(y);
  const out = binaryRaw(op, a, b);
  return record(out, op, [a, b], (g) => {
    const diff = binaryRaw("sub", a, out).f32(); // 0 (or NaN) where a was chosen
    const gf = g.f32();
    const ga = new Float32Array(out.numel), gb = new Float32Array(out.numel);
    for (let i = 0; i < gf.length; i++) {
      if (diff[i] === 0 || Number.isNaN(diff[i])) ga[i] = gf[i]!; else gb[i] = gf[i]!;
    }
    return [sumTo(new Tensor(ga, out.shape), a.shape), sumTo(new Tensor(gb, out.shape), b.shape)];
  });
}

function unaryRaw(op: UnaryOp, x: Tensor): Tensor {
  const xs = x.f32();
  const out = uninitF32(xs.length);
  getBackend().unaryForward(op, out, xs, xs.length);
  return new Tensor(out, x.shape);
}

function unary(op: UnaryOp, x: Tensor): Tensor {
  const a = x.dtype === "float32" ? x : x.float();
  const out = unaryRaw(op, a);
  return record(out, op, [a], (g) => {
    const xs = a.f32();
    const dx = uninitF32(xs.length);
    getBackend().unaryBackward(op, dx, g.f32(), xs, out.data as Float32Array, xs.length);
    return [new Tensor(dx, a.shape)];
  });
}

export const exp = (x: Tensor): Tensor => unary("exp", x);
export const log = (x: Tensor): Tensor => unary("log", x);
export const sqrt = (x: Tensor): Tensor => unary("sqrt", x);
export const rsqrt = (x: Tensor): Tensor => unary("rsqrt", x);
export const tanh = (x: Tensor): Tensor => unary("tanh", x);
export const sigmoid = (x: Tensor): Tensor => unary("sigmoid", x);
export const relu = (x: Tensor): Tensor => unary("relu", x);
export const silu = (x: Tensor): Tensor => unary("silu", x);
/** GELU, tanh approximation (GPT-2's gelu_new). */
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
export const neg = (x: Tensor): Tensor => unary("neg", x);
export const abs = (x: Tensor): Tensor => unary("abs", x);
