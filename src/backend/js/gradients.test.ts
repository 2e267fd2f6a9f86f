/**
 * The backward kernels of the js spec against float64 central differences of their forward kernels (issue 2: "every
 * op's gradient against finite differences, float64 on the js backend"). The spec's loops are precision-generic, so
 * they run here on Float64Array buffers (test/helpers/gradcheck.ts `f64view`) and the check holds to ~1e-7 relative,
 * where the float32 op-level checks (src/tensor/ops.test.ts) can only hold to ~1e-2: a backward formula that is off
 * by a small term fails here. The native kernels are held to these spec kernels by their agreement tests.
 *
 * Every fused op of the tensor layer is one forward and one backward kernel; the ops composed of others (broadcasting
 * arithmetic, reductions, views, matmul) are covered at float32 in ops.test.ts, plus here the GEMM forms their
 * backward uses.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../tensor/index.js";
import { f64view as F, gradcheckKernel } from "../../../test/helpers/gradcheck.js";
import type { AttentionLayout, HeadStrides, UnaryOp } from "../backend.js";
import { jsBackend as js } from "./index.js";

const rng = new Rng(2024);
const normal = (n: number, scale = 1): Float64Array => Float64Array.from({ length: n }, () => scale * rng.normal());
const uniform = (n: number, lo: number, hi: number): Float64Array => Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform());
/** Values with |x| ≥ 0.1, away from the kinks of relu and abs. */
const awayFromZero = (n: number): Float64Array => normal(n).map((v) => (v >= 0 ? 0.1 + v : -0.1 + v));

describe("js spec backward kernels match float64 finite differences", () => {
  const unaryInputs: Record<UnaryOp, () => Float64Array> = {
    exp: () => normal(7), log: () => uniform(7, 0.3, 3), sqrt: () => uniform(7, 0.3, 3), rsqrt: () => uniform(7, 0.3, 3),
    tanh: () => normal(7), sigmoid: () => normal(7, 2), relu: () => awayFromZero(7), silu: () => normal(7, 2),
    gelu: () => normal(7, 2), neg: () => normal(7), abs: () => awayFromZero(7),
  };
  it.each(Object.keys(unaryInputs) as UnaryOp[])("unary %s", (op) => {
    const x = unaryInputs[op](), n = x.length;
    const fwd = (): Float64Array => { const y = new Float64Array(n); js.unaryForward(op, F(y), F(x), n); return y; };
    gradcheckKernel(op, { x }, fwd, (w) => {
      const dx = new Float64Array(n);
      js.unaryBackward(op, F(dx), F(w), F(x), F(fwd()), n);
      return { x: dx };
    });
  });

  it("siluMul", () => {
    const g = normal(7, 2), u = normal(7), n = g.length;
    const fwd = (): Float64Array => { const y = new Float64Array(n); js.siluMulForward(F(y), F(g), F(u), n); return y; };
    gradcheckKernel("silu_mul", { g, u }, fwd, (w) => {
      const dg = new Float64Array(n), du = new Float64Array(n);
      js.siluMulBackward(F(dg), F(du), F(w), F(g), F(u), n);
      return { g: dg, u: du };
    });
  });

  it.each([false, true])("softmax (log %s)", (log) => {
    const rows = 3, cols = 5, x = normal(rows * cols, 2);
    const fwd = (): Float64Array => { const y = new Float64Array(x.length); js.softmaxForward(F(y), F(x), rows, cols, log); return y; };
    gradcheckKernel(`softmax log=${log}`, { x }, fwd, (w) => {
      const dx = new Float64Array(x.length);
      js.softmaxBackward(F(dx), F(w), F(fwd()), rows, cols, log);
      return { x: dx };
    });
  });

  it("cross-entropy with an ignored row and per-row scales", () => {
    const rows = 4, cols = 6, logits = normal(rows * cols, 2), targets = Int32Array.from([1, -100, 5, 0]);
    const fwd = (): Float64Array => {
      const loss = new Float64Array(rows), lse = new Float64Array(rows);
      expect(js.crossEntropyForward(F(loss), F(lse), F(logits), targets, rows, cols, -100)).toBe(3);
      return loss;
    };
    gradcheckKernel("cross_entropy", { logits }, fwd, (w) => {
      const loss = new Float64Array(rows), lse = new Float64Array(rows), d = new Float64Array(logits.length);
      js.crossEntropyForward(F(loss), F(lse), F(logits), targets, rows, cols, -100);
      js.crossEntropyBackward(F(d), F(logits), F(lse), targets, rows, cols, -100, F(w));
      return { logits: d };
    });
  });

  it.each([true, false])("rmsNorm (weight %s)", (withWeight) => {
    const rows = 3, cols = 6, x = normal(rows * cols), wt = normal(cols);
    const fwd = (): Float64Array => {
      const y = new Float64Array(x.length), rstd = new Float64Array(rows);
      js.rmsNormForward(F(y), F(rstd), F(x), withWeight ? F(wt) : null, rows, cols, 1e-6);
      return y;
    };
    gradcheckKernel("rmsNorm", withWeight ? { x, wt } : { x }, fwd, (w) => {
      const y = new Float64Array(x.length), rstd = new Float64Array(rows), dx = new Float64Array(x.length), dw = new Float64Array(cols);
      js.rmsNormForward(F(y), F(rstd), F(x), withWeight ? F(wt) : null, rows, cols, 1e-6);
      js.rmsNormBackward(F(dx), withWeight ? F(dw) : null, F(w), F(x), withWeight ? F(wt) : null, F(rstd), rows, cols);
      return { x: dx, wt: dw };
    });
  });

  it("layerNorm", () => {
    const rows = 3, cols = 6, x = normal(rows * cols), wt = normal(cols), b = normal(cols);
    const stats = (): [Float64Array, Float64Array, Float64Array] => {
      const y = new Float64Array(x.length), mean = new Float64Array(rows), rstd = new Float64Array(rows);
      js.layerNormForward(F(y), F(mean), F(rstd), F(x), F(wt), F(b), rows, cols, 1e-5);
      return [y, mean, rstd];
    };
    gradcheckKernel("layerNorm", { x, wt, b }, () => stats()[0], (w) => {
      const [, mean, rstd] = stats();
      const dx = new Float64Array(x.length), dw = new Float64Array(cols), db = new Float64Array(cols);
      js.layerNormBackward(F(dx), F(dw), F(db), F(w), F(x), F(wt), F(mean), F(rstd), rows, cols);
      return { x: dx, wt: dw, b: db };
    });
  });

  it("rope: the inverse map is the backward", () => {
    const b = 1, h = 2, seq = 3, hd = 4, x = normal(b * h * seq * hd), st: HeadStrides = [h * seq * hd, seq * hd, hd];
    const ang = Float64Array.from({ length: seq * hd }, (_, i) => 0.37 * Math.floor(i / hd) * (1 + (i % (hd / 2))));
    const cos = ang.map(Math.cos), sin = ang.map(Math.sin);
    const fwd = (): Float64Array => { const y = new Float64Array(x.length); js.rope(F(y), F(x), F(cos), F(sin), b, h, seq, hd, false, st, st); return y; };
    gradcheckKernel("rope", { x }, fwd, (w) => {
      const dx = new Float64Array(x.length);
      js.rope(F(dx), F(w), F(cos), F(sin), b, h, seq, hd, true, st, st);
      return { x: dx };
    });
  });

  // heads "bhsd": contiguous [B, H, S, D]; "bshd": every operand a [B, S, H, D] buffer (HeadStrides)
  it.each([
    [1, 4, 2, 3, 3, 2, "bhsd"], // GQA
    [2, 2, 1, 2, 4, 3, "bshd"], // Sq < Sk (a KV cache), batch 2
  ] as const)("attention b %i h %i hkv %i sq %i sk %i d %i, %s", (b, h, hkv, sq, sk, d, kind) => {
    const q = normal(b * h * sq * d), k = normal(b * hkv * sk * d), v = normal(b * hkv * sk * d), scale = 1 / Math.sqrt(d);
    const st = (nh: number, s: number): HeadStrides => kind === "bhsd" ? [nh * s * d, s * d, d] : [s * nh * d, d, nh * d];
    const layout: AttentionLayout = { q: st(h, sq), k: st(hkv, sk), v: st(hkv, sk), out: st(h, sq) };
    const fwd = (): [Float64Array, Float64Array] => {
      const out = new Float64Array(q.length), lse = new Float64Array(b * h * sq);
      js.attentionForward(F(out), F(lse), F(q), F(k), F(v), b, h, hkv, sq, sk, d, scale, layout);
      return [out, lse];
    };
    gradcheckKernel("attention", { q, k, v }, () => fwd()[0], (w) => {
      const [out, lse] = fwd();
      const dq = new Float64Array(q.length), dk = new Float64Array(k.length), dv = new Float64Array(v.length);
      js.attentionBackward(F(dq), F(dk), F(dv), F(w), F(q), F(k), F(v), F(out), F(lse), b, h, hkv, sq, sk, d, scale, layout, layout.out);
      return { q: dq, k: dk, v: dv };
    });
  });

  it("embedding gather / scatter-add (repeated ids)", () => {
    const vocab = 5, dim = 3, table = normal(vocab * dim), ids = Int32Array.from([0, 4, 4, 2]);
    const fwd = (): Float64Array => { const y = new Float64Array(ids.length * dim); js.embeddingForward(F(y), F(table), ids, ids.length, dim); return y; };
    gradcheckKernel("embedding", { table }, fwd, (w) => {
      const d = new Float64Array(table.length);
      js.embeddingBackward(F(d), F(w), ids, ids.length, dim);
      return { table: d };
    });
  });

  it("conv2d as im2col + GEMM, backward as GEMMs + col2im (stride 2, padding 1)", () => {
    const c = 2, hgt = 5, wid = 4, o = 3, kh = 3, kw = 2, stride = 2, pad = 1;
    const oh = Math.floor((hgt + 2 * pad - kh) / stride) + 1, ow = Math.floor((wid + 2 * pad - kw) / stride) + 1;
    const ck = c * kh * kw, p = oh * ow, x = normal(c * hgt * wid), wt = normal(o * ck);
    const cols = (): Float64Array => { const cl = new Float64Array(ck * p); js.im2col(F(cl), F(x), 0, c, hgt, wid, kh, kw, stride, pad, oh, ow); return cl; };
    const fwd = (): Float64Array => {
      const y = new Float64Array(o * p);
      js.gemm("nn", o, p, ck, F(wt), 0, ck, 0, F(cols()), 0, p, 0, F(y), 0, p, 0, 1, false);
      return y;
    };
    gradcheckKernel("conv2d", { x, wt }, fwd, (g) => {
      const dw = new Float64Array(o * ck), dcols = new Float64Array(ck * p), dx = new Float64Array(x.length);
      js.gemm("nt", o, ck, p, F(g), 0, p, 0, F(cols()), 0, p, 0, F(dw), 0, ck, 0, 1, false);   // dW = dY·colsᵀ
      js.gemm("tn", ck, p, o, F(wt), 0, ck, 0, F(g), 0, p, 0, F(dcols), 0, p, 0, 1, false);    // dcols = Wᵀ·dY
      js.col2im(F(dx), 0, F(dcols), c, hgt, wid, kh, kw, stride, pad, oh, ow);
      return { x: dx, wt: dw };
    });
  });

  it("matmul's backward GEMM forms: C = A·Bᵀ gives dA = dC·B (nn), dB = dCᵀ·A (tn)", () => {
    const m = 3, n = 4, k = 5, a = normal(m * k), bm = normal(n * k);
    const fwd = (): Float64Array => { const y = new Float64Array(m * n); js.gemm("nt", m, n, k, F(a), 0, k, 0, F(bm), 0, k, 0, F(y), 0, n, 0, 1, false); return y; };
    gradcheckKernel("matmul", { a, bm }, fwd, (g) => {
      const da = new Float64Array(a.length), db = new Float64Array(bm.length);
      js.gemm("nn", m, k, n, F(g), 0, n, 0, F(bm), 0, k, 0, F(da), 0, k, 0, 1, false);
      js.gemm("tn", n, k, m, F(g), 0, n, 0, F(a), 0, k, 0, F(db), 0, k, 0, 1, false);
      return { a: da, bm: db };
    });
  });

  it("DoRA's column epilogue: ∂/∂scale of columnScale is columnDot, ∂/∂x is columnScale of the gradient", () => {
    const rows = 4, cols = 3, x = normal(rows * cols), scale = normal(cols), bias = normal(cols), offset = -1;
    const fwd = (): Float64Array => { const y = new Float64Array(x.length); js.columnScale(F(y), F(x), F(scale), offset, F(bias), rows, cols); return y; };
    gradcheckKernel("columnScale", { x, scale, bias }, fwd, (g) => {
      const dx = new Float64Array(x.length), ds = new Float64Array(cols), db = new Float64Array(cols);
      js.columnScale(F(dx), F(g), F(scale), offset, null, rows, cols);
      js.columnDot(F(ds), F(g), F(x), null, rows, cols);
      js.sumCols(F(db), F(g), rows, cols, false);
      return { x: dx, scale: ds, bias: db };
    });
  });
});

describe("the float64 check has teeth", () => {
  it("a backward off by one part in 10⁵ fails it", () => {
    const x = normal(5);
    const fwd = (): Float64Array => { const y = new Float64Array(5); js.unaryForward("tanh", F(y), F(x), 5); return y; };
    expect(() => gradcheckKernel("tanh, perturbed", { x }, fwd, (w) => {
      const dx = new Float64Array(5);
      js.unaryBackward("tanh", F(dx), F(w), F(x), F(fwd()), 5);
      return { x: dx.map((v) => v * (1 + 1e-5)) };
    })).toThrow(/tanh, perturbed d\/dx/);
  });
});
