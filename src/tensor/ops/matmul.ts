/**
 * Batched matmul on strided operands. A transposed view (e.g. `w.T`) is passed to the GEMM as a form
 * (`nt`, `tn`) rather than copied, so forward x·Wᵀ and the backward products dY·W and dYᵀ·X read the
 * stored weights and activations directly. Gradients are computed only for operands that need them.
 */
import { record } from "../autograd.js";
import { Tensor } from "../tensor.js";
import { broadcastShapes, numel, shapeStr } from "../shape.js";
import { getBackend, type GemmForm } from "../../backend/index.js";
import { sumTo } from "./reduce.js";
import { contiguous, reshape, squeeze, transpose, unsqueeze } from "./view.js";
import { add } from "./elementwise.js";
import { uninitF32 } from "../buffer.js";
import { bf16ToF32, f16ToF32 } from "../half.js";

interface Operand { data: Float32Array; off: number; ld: number; trans: boolean; batchStride: number }

/** How the trailing 2-d block of `t` sits in memory, or null if neither row- nor column-major. */
function layout2d(t: Tensor): { ld: number; trans: boolean } | null {
  const r = t.shape[t.ndim - 2]!, c = t.shape[t.ndim - 1]!;
  const sr = t.strides[t.ndim - 2]!, sc = t.strides[t.ndim - 1]!;
  if ((sc === 1 || c === 1) && (r === 1 || sr >= c)) return { ld: r === 1 ? c : sr, trans: false };
  if ((sr === 1 || r === 1) && (c === 1 || sc >= r)) return { ld: c === 1 ? r : sc, trans: true };
  return null;
}

/** The batch dims of `t` (broadcast to `batch`) as one stride, or null when they do not collapse. */
function batchStride(t: Tensor, batch: readonly number[]): number | null {
  const nb = t.ndim - 2, off = batch.length - nb;
  const st = batch.map((s, i) => (i < off || t.shape[i - off] !== s ? 0 : t.strides[i - off]!));
  const live = batch.map((s, i) => ({ s, st: st[i]! })).filter((d) => d.s !== 1);
  if (live.length === 0) return 0;
  if (live.every((d) => d.st === 0)) return 0;
  for (let i = 0; i + 1 < live.length; i++) if (live[i]!.st !== live[i + 1]!.st * live[i + 1]!.s) return null;
  return live[live.length - 1]!.st;
}

/**
 * float32 of a 16-bit operand keeping its strides: frozen weights are stored 16-bit and read transposed (x·Wᵀ), and
 * widening the transposed view element by element would gather a whole weight in JS. The buffer is widened as
 * stored (contiguous), the view kept.
 */
function widen(t: Tensor): Tensor {
  if (t.dtype === "float32") return t;
  if (t.dtype === "int32" || t.isContiguous()) return t.float();
  const bits = t.data as Uint16Array;
  return new Tensor(t.dtype === "bfloat16" ? bf16ToF32(bits) : f16ToF32(bits), t.shape, { strides: t.strides, offset: t.offset });
}

function operand(t: Tensor, batch: readonly number[]): { op: Operand; t: Tensor } {
  let x = widen(t);
  let l = layout2d(x), bs = l ? batchStride(x, batch) : null;
  if (!l || bs === null) {
    x = contiguous(x);
    l = layout2d(x)!;
    bs = batchStride(x, batch)!;
  }
  return { op: { data: x.data as Float32Array, off: x.offset, ld: l.ld, trans: l.trans, batchStride: bs }, t: x };
}

function matmulRaw(a: Tensor, b: Tensor): Tensor {
  const m = a.shape[a.ndim - 2]!, k = a.shape[a.ndim - 1]!, n = b.shape[b.ndim - 1]!;
  if (b.shape[b.ndim - 2] !== k) {
    throw new Error(`matmul: inner dims differ: ${shapeStr(a.shape)} @ ${shapeStr(b.shape)} (expected b.shape[-2] = ${k})`);
  }
  const batch = broadcastShapes("matmul", a.shape.slice(0, -2), b.shape.slice(0, -2));
  const nb = numel(batch);
  let A = operand(a, batch).op, B = operand(b, batch).op;
  if (A.trans && B.trans) B = operand(contiguous(b), batch).op; // no "tt" form: copy the smaller-risk operand
  const form: GemmForm = A.trans ? "tn" : B.trans ? "nt" : "nn";
  const out = uninitF32(nb * m * n);
  getBackend().gemm(form, m, n, k, A.data, A.off, A.ld, A.batchStride, B.data, B.off, B.ld, B.batchStride,
    out, 0, n, m * n, nb, false);
  return new Tensor(out, [...batch, m, n]);
}

/** torch.matmul for ≥1-d operands (1-d operands are promoted and the added dim removed, as in torch). */
export function matmul(x: Tensor, y: Tensor): Tensor {
  if (x.ndim === 0 || y.ndim === 0) throw new Error(`matmul: scalars are not allowed (${shapeStr(x.shape)} @ ${shapeStr(y.shape)})`);
  if (x.ndim === 1) return squeeze(matmul(unsqueeze(x, 0), y), -2);
  if (y.ndim === 1) return squeeze(matmul(x, unsqueeze(y, 1)), -1);
  // [..., M, K] @ [K, N] with row-major rows: fold the batch into M, one big GEMM (and one dW GEMM in backward)
  if (y.ndim === 2 && x.ndim > 2 && x.isContiguous()) {
    const flat = reshape(x, [-1, x.shape[x.ndim - 1]!]);
    return reshape(matmul(flat, y), [...x.shape.slice(0, -1), y.shape[1]!]);
  }
  const a = widen(x), b = widen(y);
  const out = matmulRaw(a, b);
  // b a transposed view (x·Wᵀ with W stored [out, in]): its gradient aᵀ·g is computed as (gᵀ·a)ᵀ, so it comes
  // out in W's own layout and W.grad is contiguous; as aᵀ·g it was a transposed view that the optimizer copied
  // (57 strided copies of every weight per step when fine-tuning the whole model)
  const bTransposed = b.ndim === 2 && a.ndim === 2 && !b.isContiguous() && layout2d(b)?.trans === true;
  return record(out, "matmul", [a, b], (g, need) => [
    need[0] ? sumTo(matmulRaw(g, transpose(b, -2, -1)), a.shape) : null,
    need[1] ? (bTransposed ? transpose(matmulRaw(transpose(g, 0, 1), a), 0, 1) : sumTo(matmulRaw(transpose(a, -2, -1), g), b.shape)) : null,
  ]);
}

/** y = x·Wᵀ + b with W [out, in] (torch.nn.functional.linear). */
export function linear(x: Tensor, w: Tensor, b?: Tensor | null): Tensor {
  if (w.ndim !== 2 || x.shape[x.ndim - 1] !== w.shape[1]) {
    throw new Error(`linear: input ${shapeStr(x.shape)} does not fit weight ${shapeStr(w.shape)} (expected [..., ${w.shape[1]}])`);
  }
  const y = matmul(x, transpose(w, 0, 1));
  return b ? add(y, b) : y;
}
