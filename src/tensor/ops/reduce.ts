/** Reductions along dims (sum, mean, max, L2 norm) and sumTo, the adjoint of broadcasting. */
import { record } from "../autograd.js";
import { Tensor } from "../tensor.js";
import { normDim, numel, sameShape, shapeStr } from "../shape.js";
import { getBackend } from "../../backend/index.js";
import { expand, permute, reshape } from "./view.js";
import { mul } from "./elementwise.js";

function dimList(x: Tensor, dims: number | readonly number[] | undefined, op: string): number[] {
  if (dims === undefined) return x.shape.map((_, i) => i);
  const list = (typeof dims === "number" ? [dims] : dims).map((d) => normDim(op, d, x.ndim));
  return [...new Set(list)].sort((a, b) => a - b);
}

/** Moves `dims` last and returns the contiguous [rows, cols] data plus the kept shape. */
function rowsLayout(x: Tensor, dims: readonly number[]): { data: Float32Array; rows: number; cols: number; kept: number[] } {
  const keep = x.shape.map((_, i) => i).filter((i) => !dims.includes(i));
  const moved = keep.length === 0 || dims.every((d, i) => d === x.ndim - dims.length + i) ? x : permute(x, [...keep, ...dims]);
  const cols = numel(dims.map((d) => x.shape[d]!));
  const kept = keep.map((d) => x.shape[d]!);
  return { data: moved.f32(), rows: numel(kept), cols, kept };
}

function keptShape(x: Tensor, dims: readonly number[], keepdim: boolean): number[] {
  return keepdim ? x.shape.map((s, i) => (dims.includes(i) ? 1 : s)) : x.shape.filter((_, i) => !dims.includes(i));
}

export function sum(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const a = x.dtype === "float32" ? x : x.float();
  const ds = dimList(a, dims, "sum");
  const { data, rows, cols } = rowsLayout(a, ds);
  const out = new Float32Array(rows);
  getBackend().sumRows(out, data, rows, cols);
  const shape = keptShape(a, ds, keepdim);
  return record(new Tensor(out, shape), "sum", [a], (g) => [expand(reshape(g, keptShape(a, ds, true)), a.shape)]);
}

export function mean(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const ds = dimList(x, dims, "mean");
  const count = numel(ds.map((d) => x.shape[d]!));
  return mul(sum(x, ds, keepdim), 1 / count);
}

/** Max along one dim; the gradient flows to the (first) argmax. */
export function max(x: Tensor, dim: number, keepdim = false): Tensor {
  const a = x.dtype === "float32" ? x : x.float();
  const d = normDim("max", dim, a.ndim);
  const { data, rows, cols } = rowsLayout(a, [d]);
  const out = new Float32Array(rows), idx = new Int32Array(rows);
  getBackend().maxRows(out, idx, data, rows, cols);
  return record(new Tensor(out, keptShape(a, [d], keepdim)), "max", [a], (g) => {
    // scatter into [rows, cols] then move dim d back into place
    const gs = g.f32();
    const full = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) full[r * cols + idx[r]!] = gs[r]!;
    const keep = a.shape.map((_, i) => i).filter((i) => i !== d);
    const movedShape = [...keep.map((i) => a.shape[i]!), cols];
    const inv = new Array<number>(a.ndim);
    [...keep, d].forEach((v, i) => (inv[v] = i));
    return [permute(new Tensor(full, movedShape), inv).contiguous()];
  });
}

/**
 * L2 vector norm over dims (torch.linalg.vector_norm, ord 2). Its own node rather than sqrt(sum(x²)): the gradient
 * x·g/‖x‖ is 0 where ‖x‖ = 0 (PyTorch's choice), where the chain through sqrt gives 0·∞ = NaN even when g = 0,
 * e.g. DoRA's non-detached norm at an all-zero row of W + s·BA, whose floor max(n, ε) passes g = 0 to it.
 */
export function norm(x: Tensor, dims?: number | readonly number[], keepdim = false): Tensor {
  const a = x.dtype === "float32" ? x : x.float();
  const ds = dimList(a, dims, "norm");
  const { data, rows, cols } = rowsLayout(a, ds);
  const squares = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) squares[i] = data[i]! * data[i]!;
  const out = new Float32Array(rows);
  getBackend().sumRows(out, squares, rows, cols);
  for (let r = 0; r < rows; r++) out[r] = Math.sqrt(out[r]!);
  return record(new Tensor(out, keptShape(a, ds, keepdim)), "norm", [a], (g) => {
    const gs = g.f32(), q = new Float32Array(rows); // g/‖x‖ per reduced row, 0 where the norm is 0
    for (let r = 0; r < rows; r++) q[r] = out[r] === 0 ? 0 : gs[r]! / out[r]!;
    return [mul(a, expand(new Tensor(q, keptShape(a, ds, true)), a.shape))];
  });
}

/** Sum a broadcast gradient back to `shape` (the adjoint of broadcasting `shape` up to g.shape). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new Error(`sumTo: gradient ${shapeStr(g.shape)} has fewer dims than ${shapeStr(shape)}`);
  const dims: number[] = [];
  for (let i = 0; i < g.ndim; i++) if (i < lead || (shape[i - lead] === 1 && g.shape[i] !== 1)) dims.push(i);
  const s = dims.length > 0 ? sum(g, dims, true) : g;
  return reshape(s, shape);
}
