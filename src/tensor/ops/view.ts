/** Views that share storage (reshape of contiguous data, transpose/permute, slice, expand) and contiguous(). */
import { record } from "../autograd.js";
import { Tensor } from "../tensor.js";
import { contiguousStrides, normDim, numel, shapeStr } from "../shape.js";
import { getBackend } from "../../backend/index.js";
import { sumTo } from "./reduce.js";
import { uninitF32 } from "../buffer.js";

function viewOf(x: Tensor, shape: readonly number[], strides: readonly number[], offset: number): Tensor {
  return new Tensor(x.data, shape, { strides, offset, dtype: x.dtype });
}

/** A contiguous copy (itself when already contiguous). */
export function contiguous(x: Tensor): Tensor {
  if (x.isContiguous()) return x;
  if (x.dtype !== "float32") {
    // index and 16-bit storage tensors: gather element by element (rare, never on a hot path)
    const src = x.dtype === "int32" ? x.i32() : null;
    if (src) return new Tensor(src.slice(), x.shape);
    return x.float().to(x.dtype);
  }
  const out = uninitF32(x.numel);
  getBackend().copyStrided(out, x.data as Float32Array, x.offset, x.strides, x.shape);
  return record(new Tensor(out, x.shape), "contiguous", [x], (g) => [g]);
}

export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const sh = shape.slice();
  const infer = sh.indexOf(-1);
  if (infer >= 0) {
    const rest = numel(sh.filter((_, i) => i !== infer));
    if (rest === 0 || x.numel % rest !== 0) throw new Error(`reshape: cannot infer -1 reshaping ${shapeStr(x.shape)} to ${shapeStr(shape)}`);
    sh[infer] = x.numel / rest;
  }
  if (numel(sh) !== x.numel) throw new Error(`reshape: ${shapeStr(x.shape)} (${x.numel} elements) cannot become ${shapeStr(shape)}`);
  const src = x.isContiguous() ? x : contiguous(x);
  const out = viewOf(src, sh, contiguousStrides(sh), src.offset);
  return record(out, "reshape", [src], (g) => [reshape(g, src.shape)]);
}

export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normDim("flatten", start, x.ndim), e = normDim("flatten", end, x.ndim);
  const shape = [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)];
  return reshape(x, shape);
}

export function permute(x: Tensor, dims: readonly number[]): Tensor {
  if (dims.length !== x.ndim) throw new Error(`permute: ${dims.length} dims given for a ${x.ndim}-d tensor`);
  const d = dims.map((v) => normDim("permute", v, x.ndim));
  if (new Set(d).size !== d.length) throw new Error(`permute: dims [${dims.join(", ")}] repeat a dim`);
  const out = viewOf(x, d.map((i) => x.shape[i]!), d.map((i) => x.strides[i]!), x.offset);
  const inv = new Array<number>(d.length);
  d.forEach((v, i) => (inv[v] = i));
  return record(out, "permute", [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, d0: number, d1: number): Tensor {
  const a = normDim("transpose", d0, x.ndim), b = normDim("transpose", d1, x.ndim);
  const dims = x.shape.map((_, i) => i);
  dims[a] = b; dims[b] = a;
  return permute(x, dims);
}

/** x[..., start:end, ...] along `dim` (a view). */
export function slice(x: Tensor, dim: number, start: number, end: number): Tensor {
  const d = normDim("slice", dim, x.ndim);
  const n = x.shape[d]!;
  const s = Math.max(0, Math.min(n, start < 0 ? start + n : start));
  const e = Math.max(s, Math.min(n, end < 0 ? end + n : end));
  const shape = x.shape.slice();
  shape[d] = e - s;
  const out = viewOf(x, shape, x.strides, x.offset + s * x.strides[d]!);
  return record(out, "slice", [x], (g) => {
    // scatter the gradient into zeros of the input's shape
    const full = new Float32Array(x.numel);
    const gs = g.f32();
    const outer = numel(x.shape.slice(0, d)), inner = numel(x.shape.slice(d + 1));
    for (let o = 0; o < outer; o++) {
      full.set(gs.subarray(o * (e - s) * inner, (o + 1) * (e - s) * inner), (o * n + s) * inner);
    }
    return [new Tensor(full, x.shape)];
  });
}

/** Broadcast size-1 dims to `shape` without copying (stride 0); -1 keeps a dim. */
export function expand(x: Tensor, shape: readonly number[]): Tensor {
  const nd = shape.length;
  if (nd < x.ndim) throw new Error(`expand: cannot expand ${shapeStr(x.shape)} to fewer dims ${shapeStr(shape)}`);
  const outShape: number[] = [], strides: number[] = [];
  for (let i = 0; i < nd; i++) {
    const j = i - (nd - x.ndim);
    const have = j >= 0 ? x.shape[j]! : 1;
    const want = shape[i] === -1 ? have : shape[i]!;
    if (have !== want && have !== 1) throw new Error(`expand: ${shapeStr(x.shape)} cannot expand to ${shapeStr(shape)} (dim ${i})`);
    outShape.push(want);
    strides.push(j >= 0 && have === want ? x.strides[j]! : 0);
  }
  const out = viewOf(x, outShape, strides, x.offset);
  return record(out, "expand", [x], (g) => [sumTo(g, x.shape)]);
}

export function unsqueeze(x: Tensor, dim: number): Tensor {
  const d = normDim("unsqueeze", dim, x.ndim + 1);
  const shape = x.shape.slice(), strides = x.strides.slice();
  shape.splice(d, 0, 1);
  strides.splice(d, 0, d < x.ndim ? x.strides[d]! * x.shape[d]! : 1);
  const out = viewOf(x, shape, strides, x.offset);
  return record(out, "unsqueeze", [x], (g) => [reshape(g, x.shape)]);
}

export function squeeze(x: Tensor, dim: number): Tensor {
  const d = normDim("squeeze", dim, x.ndim);
  if (x.shape[d] !== 1) throw new Error(`squeeze: dim ${dim} of ${shapeStr(x.shape)} has size ${x.shape[d]}, expected 1`);
  const shape = x.shape.slice(), strides = x.strides.slice();
  shape.splice(d, 1); strides.splice(d, 1);
  const out = viewOf(x, shape, strides, x.offset);
  return record(out, "squeeze", [x], (g) => [reshape(g, x.shape)]);
}

/** Concatenate along `dim` (a copy). */
export function cat(xs: readonly Tensor[], dim: number): Tensor {
  if (xs.length === 0) throw new Error("cat: no tensors given");
  const first = xs[0]!;
  const d = normDim("cat", dim, first.ndim);
  for (const t of xs) {
    if (t.ndim !== first.ndim || t.shape.some((s, i) => i !== d && s !== first.shape[i])) {
      throw new Error(`cat: shapes ${xs.map((x) => shapeStr(x.shape)).join(", ")} differ outside dim ${d}`);
    }
  }
  const shape = first.shape.slice();
  shape[d] = xs.reduce((a, t) => a + t.shape[d]!, 0);
  const outer = numel(shape.slice(0, d)), inner = numel(shape.slice(d + 1));
  const out = uninitF32(numel(shape));
  let at = 0;
  for (const t of xs) {
    const src = t.f32(), w = t.shape[d]! * inner;
    for (let o = 0; o < outer; o++) out.set(src.subarray(o * w, (o + 1) * w), o * shape[d]! * inner + at);
    at += w;
  }
  return record(new Tensor(out, shape), "cat", xs, (g) => {
    let s = 0;
    return xs.map((t) => { const r = slice(g, d, s, s + t.shape[d]!); s += t.shape[d]!; return r; });
  });
}

/** Split along `dim` into pieces of the given sizes (views). */
export function split(x: Tensor, sizes: readonly number[], dim: number): Tensor[] {
  const d = normDim("split", dim, x.ndim);
  if (sizes.reduce((a, b) => a + b, 0) !== x.shape[d]) {
    throw new Error(`split: sizes [${sizes.join(", ")}] do not add up to dim ${d} of ${shapeStr(x.shape)}`);
  }
  let s = 0;
  return sizes.map((n) => { const r = slice(x, d, s, s + n); s += n; return r; });
}
