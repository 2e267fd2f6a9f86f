/**
 * Autograd ops on a frozen NF4 weight: y = x·Ŵᵀ (forward, `nt` fused kernel) with dX = dY·Ŵ (`nn` fused kernel).
 * W is frozen, so there is no dW; Ŵ is never materialised. bitsandbytes' counterpart is `bnb.matmul_4bit`
 * (MatMul4Bit, which dequantises the whole weight on each call).
 */
import { getBackend } from "../backend/index.js";
import { Tensor } from "../tensor/index.js";
import { record } from "../tensor/autograd.js";
import type { Nf4Weight } from "./nf4.js";

function contiguousF32(x: Tensor): Float32Array {
  const c = x.dtype === "float32" && x.isContiguous() ? x : x.float().contiguous();
  return c.f32();
}

/** C [rows, n] = X [rows, k] · op(Ŵ): "nt" reads W as [n, k], "nn" as [k, n]. */
function nf4Gemm(form: "nt" | "nn", x: Float32Array, rows: number, w: Nf4Weight): Float32Array {
  const [wr, wc] = w.shape;
  const k = form === "nt" ? wc : wr, n = form === "nt" ? wr : wc;
  const out = new Float32Array(rows * n);
  getBackend().gemmNf4(form, rows, n, k, x, 0, k, w.codes, w.scales(), w.quantMap, w.blockSize, out, 0, n, false);
  return out;
}

/** x [..., in] → x·Ŵᵀ [..., out] for an NF4 weight [out, in] (torch.nn.functional.linear without bias). */
export function linearNf4(x: Tensor, w: Nf4Weight): Tensor {
  const [out, inn] = w.shape;
  if (x.shape[x.ndim - 1] !== inn) {
    throw new Error(`linearNf4: input [${x.shape.join(", ")}] does not fit the 4-bit weight [${out}, ${inn}] (expected [..., ${inn}])`);
  }
  const rows = x.numel / inn;
  const y = new Tensor(nf4Gemm("nt", contiguousF32(x), rows, w), [...x.shape.slice(0, -1), out]);
  return record(y, "linearNf4", [x], (g) => [new Tensor(nf4Gemm("nn", contiguousF32(g), rows, w), x.shape)]);
}

/** Ŵ·Mᵀ for M [r, in]: [out, r], computed as (M·Ŵᵀ)ᵀ by the fused kernel (DoRA's W·Aᵀ). No gradient. */
export function nf4TimesT(w: Nf4Weight, m: Tensor): Tensor {
  const [out, inn] = w.shape;
  if (m.ndim !== 2 || m.shape[1] !== inn) throw new Error(`nf4TimesT: [${m.shape.join(", ")}] does not fit the 4-bit weight [${out}, ${inn}]`);
  const r = m.shape[0]!;
  const mw = nf4Gemm("nt", contiguousF32(m), r, w); // [r, out]
  const t = new Float32Array(out * r);
  for (let i = 0; i < r; i++) for (let j = 0; j < out; j++) t[j * r + i] = mw[i * out + j]!;
  return new Tensor(t, [out, r]);
}

/** Ŵ as a float32 Tensor [out, in] (merges, DoRA's direct norm, tests): the one place a full Ŵ is built. */
export function dequantizeNf4(w: Nf4Weight): Tensor {
  return new Tensor(w.dequantize(), [...w.shape]);
}
