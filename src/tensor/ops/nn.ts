/**
 * Fused neural-network ops, each one kernel forward and one backward: softmax/log_softmax, cross-entropy,
 * RMSNorm, LayerNorm, rotary embedding, causal grouped-query attention, embedding, dropout, conv2d, where.
 */
import { record } from "../autograd.js";
import { Tensor } from "../tensor.js";
import { broadcastShapes, normDim, numel, sameShape, shapeStr } from "../shape.js";
import { getBackend, type AttentionLayout, type HeadStrides } from "../../backend/index.js";
import { dropoutPositions, type Rng } from "../random.js";
import { contiguous, expand, transpose } from "./view.js";
import { sumTo } from "./reduce.js";
import { bf16ToF32, f16ToF32 } from "../half.js";
import { uninitF32 } from "../buffer.js";

function f32(x: Tensor): Tensor {
  return x.dtype === "float32" ? x : x.float();
}

/** Runs a last-axis row kernel on `x` along `dim` (moving it last and back when needed). */
function alongDim(x: Tensor, dim: number, fn: (t: Tensor) => Tensor): Tensor {
  const d = normDim("softmax", dim, x.ndim);
  if (d === x.ndim - 1) return fn(x);
  return transpose(fn(contiguous(transpose(x, d, -1))), d, -1);
}

function softmaxImpl(x: Tensor, log: boolean): Tensor {
  const a = f32(x);
  const cols = a.shape[a.ndim - 1] ?? 1, rows = a.numel / Math.max(cols, 1);
  const out = uninitF32(a.numel);
  getBackend().softmaxForward(out, a.f32(), rows, cols, log);
  const y = new Tensor(out, a.shape);
  return record(y, log ? "log_softmax" : "softmax", [a], (g) => {
    const dx = uninitF32(a.numel);
    getBackend().softmaxBackward(dx, g.f32(), out, rows, cols, log);
    return [new Tensor(dx, a.shape)];
  });
}

export function softmax(x: Tensor, dim = -1): Tensor { return alongDim(x, dim, (t) => softmaxImpl(t, false)); }
export function logSoftmax(x: Tensor, dim = -1): Tensor { return alongDim(x, dim, (t) => softmaxImpl(t, true)); }

/**
 * Mean cross-entropy of logits [N, C] against int targets [N]; targets equal to `ignoreIndex` (-100) are
 * skipped and the mean is over the counted ones (torch.nn.functional.cross_entropy). No softmax copy is kept:
 * backward recomputes it from the logits and the saved row logsumexp.
 */
export function crossEntropy(logits: Tensor, targets: Tensor, ignoreIndex = -100): Tensor {
  const a = f32(logits);
  if (a.ndim !== 2 || targets.ndim !== 1 || targets.shape[0] !== a.shape[0]) {
    throw new Error(`crossEntropy: expected logits [N, C] and targets [N], got ${shapeStr(a.shape)} and ${shapeStr(targets.shape)}`);
  }
  if (targets.dtype !== "int32") throw new Error(`crossEntropy: targets must be an int32 index tensor, got ${targets.dtype}`);
  const [rows, cols] = a.shape as [number, number];
  const t = targets.i32();
  for (let i = 0; i < rows; i++) {
    const v = t[i]!;
    if (v !== ignoreIndex && (v < 0 || v >= cols)) throw new Error(`crossEntropy: target ${v} at row ${i} out of range [0, ${cols}) (ignore_index ${ignoreIndex})`);
  }
  const x = a.f32();
  const loss = new Float32Array(rows), lse = new Float32Array(rows);
  const counted = getBackend().crossEntropyForward(loss, lse, x, t, rows, cols, ignoreIndex);
  let total = 0;
  for (let i = 0; i < rows; i++) total += loss[i]!;
  const out = new Tensor(Float32Array.of(counted === 0 ? NaN : total / counted), []);
  return record(out, "cross_entropy", [a], (g) => {
    const dx = uninitF32(rows * cols);
    getBackend().crossEntropyBackward(dx, x, lse, t, rows, cols, ignoreIndex, g.item() / counted);
    return [new Tensor(dx, a.shape)];
  });
}

/** RMSNorm over the last dim: w ⊙ x / √(mean(x²) + eps) (LlamaRMSNorm). */
export function rmsNorm(x: Tensor, w: Tensor | null, eps: number): Tensor {
  const a = f32(x), wt = w ? f32(w) : null;
  const cols = a.shape[a.ndim - 1]!, rows = a.numel / cols;
  if (wt && (wt.ndim !== 1 || wt.shape[0] !== cols)) throw new Error(`rmsNorm: weight ${shapeStr(wt.shape)} does not match input ${shapeStr(a.shape)}`);
  const xs = a.f32(), ws = wt ? wt.f32() : null;
  const y = uninitF32(a.numel), rstd = new Float32Array(rows);
  getBackend().rmsNormForward(y, rstd, xs, ws, rows, cols, eps);
  const inputs = wt ? [a, wt] : [a];
  return record(new Tensor(y, a.shape), "rms_norm", inputs, (g, need) => {
    const dx = uninitF32(a.numel);
    const dw = wt && need[1] ? new Float32Array(cols) : null;
    getBackend().rmsNormBackward(dx, dw, g.f32(), xs, ws, rstd, rows, cols);
    return [new Tensor(dx, a.shape), dw ? new Tensor(dw, [cols]) : null];
  });
}

/** LayerNorm over the last dim (torch.nn.functional.layer_norm). */
export function layerNorm(x: Tensor, w: Tensor | null, b: Tensor | null, eps: number): Tensor {
  const a = f32(x), wt = w ? f32(w) : null, bt = b ? f32(b) : null;
  const cols = a.shape[a.ndim - 1]!, rows = a.numel / cols;
  for (const p of [wt, bt]) if (p && (p.ndim !== 1 || p.shape[0] !== cols)) throw new Error(`layerNorm: parameter ${shapeStr(p.shape)} does not match input ${shapeStr(a.shape)}`);
  const xs = a.f32(), ws = wt ? wt.f32() : null, bs = bt ? bt.f32() : null;
  const y = uninitF32(a.numel), mean = new Float32Array(rows), rstd = new Float32Array(rows);
  getBackend().layerNormForward(y, mean, rstd, xs, ws, bs, rows, cols, eps);
  const inputs = [a, ...(wt ? [wt] : []), ...(bt ? [bt] : [])];
  return record(new Tensor(y, a.shape), "layer_norm", inputs, (g, need) => {
    const dx = uninitF32(a.numel);
    const dw = wt && need[1] ? new Float32Array(cols) : null;
    const db = bt && need[wt ? 2 : 1] ? new Float32Array(cols) : null;
    getBackend().layerNormBackward(dx, dw, db, g.f32(), xs, ws, mean, rstd, rows, cols);
    const out: (Tensor | null)[] = [new Tensor(dx, a.shape)];
    if (wt) out.push(dw ? new Tensor(dw, [cols]) : null);
    if (bt) out.push(db ? new Tensor(db, [cols]) : null);
    return out;
  });
}

/**
 * x [B, H, S, D] as the head kernels read it (HeadStrides, backend.ts): a view whose D is contiguous and whose rows
 * tile [0, numel) of its buffer in some order (e.g. heads transposed out of a [B, S, H·D] projection) is read in
 * place; anything else is copied. A fresh buffer with the returned strides holds the same layout, which is how
 * outputs and gradients come back laid out like their inputs (so the transposes around them stay views).
 */
function heads(x: Tensor): { t: Tensor; data: Float32Array; strides: HeadStrides } {
  const t = headsDense(x) ? x : contiguous(x);
  return { t, data: (t.data as Float32Array).subarray(t.offset), strides: [t.strides[0]!, t.strides[1]!, t.strides[2]!] };
}

function headsDense(x: Tensor): boolean {
  if (x.ndim !== 4 || x.dtype !== "float32" || x.numel === 0) return false;
  const d = x.shape[3]!;
  if (d > 1 && x.strides[3] !== 1) return false;
  // the dims of size > 1, innermost (smallest stride) first, must each step over exactly what the inner ones span
  const dims = [0, 1, 2].filter((i) => x.shape[i]! > 1).sort((i, j) => x.strides[i]! - x.strides[j]!);
  let span = d;
  for (const i of dims) {
    if (x.strides[i] !== span) return false;
    span *= x.shape[i]!;
  }
  return true;
}

/** Rotary position embedding (HF rotate_half) on x [B, H, S, D] with cos/sin [S, D]; the result is laid out like x. */
export function rope(x: Tensor, cos: Tensor, sin: Tensor): Tensor {
  const xf = f32(x);
  if (xf.ndim !== 4) throw new Error(`rope: expected x [B, H, S, D], got ${shapeStr(xf.shape)}`);
  const [b, h, s, d] = xf.shape as [number, number, number, number];
  if (!sameShape(cos.shape, [s, d]) || !sameShape(sin.shape, [s, d]) || d % 2 !== 0) {
    throw new Error(`rope: cos/sin must be [${s}, ${d}] with even D, got ${shapeStr(cos.shape)} / ${shapeStr(sin.shape)}`);
  }
  const X = heads(xf), a = X.t;
  const c = cos.f32(), sn = sin.f32();
  const out = uninitF32(a.numel);
  getBackend().rope(out, X.data, c, sn, b, h, s, d, false, X.strides, X.strides);
  return record(new Tensor(out, a.shape, { strides: a.strides }), "rope", [a], (g) => {
    const G = heads(g), dx = uninitF32(a.numel);
    getBackend().rope(dx, G.data, c, sn, b, h, s, d, true, X.strides, G.strides);
    return [new Tensor(dx, a.shape, { strides: a.strides })];
  });
}

/**
 * Causal scaled-dot-product attention with grouped KV heads: q [B, H, Sq, D], k/v [B, Hkv, Sk, D] → [B, H, Sq, D].
 * The Sq queries are the last Sq positions of the Sk keys (Sq = Sk in training, 1 per step with a KV cache).
 * One fused kernel: no [Sq, Sk] score tensor is kept for backward, only the row logsumexp. Heads are read in
 * place (see `heads`): the output is laid out like q and each gradient like its input, so with q/k/v transposed
 * out of [B, S, H·D] projections the output transposes back into [B, S, H·D] without a copy.
 */
export function scaledDotProductAttention(q: Tensor, k: Tensor, v: Tensor, scale?: number): Tensor {
  const qf = f32(q), kf = f32(k), vf = f32(v);
  if (qf.ndim !== 4 || kf.ndim !== 4 || !sameShape(kf.shape, vf.shape)) {
    throw new Error(`attention: expected q [B,H,Sq,D], k and v [B,Hkv,Sk,D]; got ${shapeStr(qf.shape)}, ${shapeStr(kf.shape)}, ${shapeStr(vf.shape)}`);
  }
  const [b, h, sq, d] = qf.shape as [number, number, number, number];
  const [kb, hkv, sk, kd] = kf.shape as [number, number, number, number];
  if (kb !== b || kd !== d || hkv === 0 || h % hkv !== 0 || sq > sk) {
    throw new Error(`attention: q ${shapeStr(qf.shape)} and k ${shapeStr(kf.shape)} disagree (need same B and D, H divisible by Hkv, Sq ≤ Sk)`);
  }
  const sc = scale ?? 1 / Math.sqrt(d);
  const Q = heads(qf), K = heads(kf), V = heads(vf);
  const layout: AttentionLayout = { q: Q.strides, k: K.strides, v: V.strides, out: Q.strides };
  const out = uninitF32(Q.t.numel), lse = new Float32Array(b * h * sq);
  getBackend().attentionForward(out, lse, Q.data, K.data, V.data, b, h, hkv, sq, sk, d, sc, layout);
  const like = (t: Tensor, data: Float32Array): Tensor => new Tensor(data, t.shape, { strides: t.strides });
  return record(like(Q.t, out), "attention", [Q.t, K.t, V.t], (g) => {
    const G = heads(g);
    const dq = uninitF32(Q.t.numel), dk = uninitF32(K.t.numel), dv = uninitF32(V.t.numel);
    getBackend().attentionBackward(dq, dk, dv, G.data, Q.data, K.data, V.data, out, lse, b, h, hkv, sq, sk, d, sc, layout, G.strides);
    return [like(Q.t, dq), like(K.t, dk), like(V.t, dv)];
  });
}

/**
 * A frozen 16-bit table (16-bit tensors never require grad): widen only the gathered rows, not the whole
 * [V, D] table (a 32000×2048 bf16 table would be 262 MB of float32 per call).
 */
function embedding16(table: Tensor, ids: Tensor): Tensor {
  if (table.ndim !== 2) throw new Error(`embedding: table must be [V, D], got ${shapeStr(table.shape)}`);
  if (ids.dtype !== "int32") throw new Error(`embedding: ids must be an int32 index tensor, got ${ids.dtype}`);
  const t = table.isContiguous() ? table : table.contiguous();
  const [vocab, dim] = t.shape as [number, number];
  const ix = ids.i32(), bits = t.data as Uint16Array, out = new Float32Array(ix.length * dim);
  const widen = table.dtype === "bfloat16" ? bf16ToF32 : f16ToF32;
  for (let i = 0; i < ix.length; i++) {
    const r = ix[i]!;
    if (r < 0 || r >= vocab) throw new Error(`embedding: index ${r} at position ${i} out of range [0, ${vocab})`);
    out.set(widen(bits.subarray(t.offset + r * dim, t.offset + (r + 1) * dim)), i * dim);
  }
  return new Tensor(out, [...ids.shape, dim]);
}

/**
 * silu(gate) ⊙ up in one op (LLaMA's MLP, transformers' `act_fn(gate_proj(x)) * up_proj(x)`): nothing but the two
 * inputs is kept for backward (silu(gate) is recomputed), one kernel each way (Backend.siluMulForward/Backward).
 * Backward: d_up = dy ⊙ silu(gate); d_gate = dy ⊙ up ⊙ silu'(gate).
 */
export function siluMul(gate: Tensor, up: Tensor): Tensor {
  const g = contiguous(f32(gate)), u = contiguous(f32(up));
  if (!sameShape(g.shape, u.shape)) throw new Error(`siluMul: gate ${shapeStr(g.shape)} and up ${shapeStr(u.shape)} differ`);
  const gs = g.f32(), us = u.f32(), n = gs.length;
  const out = uninitF32(n);
  getBackend().siluMulForward(out, gs, us, n);
  return record(new Tensor(out, g.shape), "silu_mul", [g, u], (grad) => {
    const dg = uninitF32(n), du = uninitF32(n);
    getBackend().siluMulBackward(dg, du, grad.f32(), gs, us, n);
    return [new Tensor(dg, g.shape), new Tensor(du, u.shape)];
  });
}

/** table[ids] for a [V, D] table and int ids of any shape → [...ids.shape, D]; backward scatter-adds. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  if (table.dtype === "float16" || table.dtype === "bfloat16") return embedding16(table, ids);
  const w = f32(table);
  if (w.ndim !== 2) throw new Error(`embedding: table must be [V, D], got ${shapeStr(w.shape)}`);
  if (ids.dtype !== "int32") throw new Error(`embedding: ids must be an int32 index tensor, got ${ids.dtype}`);
  const [vocab, dim] = w.shape as [number, number];
  const ix = ids.i32();
  for (let i = 0; i < ix.length; i++) {
    if (ix[i]! < 0 || ix[i]! >= vocab) throw new Error(`embedding: index ${ix[i]} at position ${i} out of range [0, ${vocab})`);
  }
  const out = uninitF32(ix.length * dim);
  getBackend().embeddingForward(out, w.f32(), ix, ix.length, dim);
  return record(new Tensor(out, [...ids.shape, dim]), "embedding", [w], (g) => {
    const dw = new Float32Array(vocab * dim);
    getBackend().embeddingBackward(dw, g.f32(), ix, ix.length, dim);
    return [new Tensor(dw, w.shape)];
  });
}

/** Inverted dropout: zero with probability p, scale the rest by 1/(1−p); identity when p = 0 or not training. */
export function dropout(x: Tensor, p: number, rng: Rng, training = true): Tensor {
  if (p < 0 || p >= 1) throw new Error(`dropout: p must be in [0, 1), got ${p}`);
  if (!training || p === 0) return x;
  const a = f32(x);
  const xs = a.f32();
  const keep = 1 / (1 - p);
  const mask = new Float32Array(xs.length).fill(keep), out = new Float32Array(xs.length);
  for (const i of dropoutPositions(xs.length, p, rng)) mask[i] = 0; // the one mask draw (random.ts), shared with peft/flat.ts
  for (let i = 0; i < xs.length; i++) out[i] = xs[i]! * mask[i]!;
  return record(new Tensor(out, a.shape), "dropout", [a], (g) => {
    const gs = g.f32(), dx = new Float32Array(gs.length);
    for (let i = 0; i < gs.length; i++) dx[i] = gs[i]! * mask[i]!;
    return [new Tensor(dx, a.shape)];
  });
}

/** torch.where(cond, a, b) with broadcasting; cond is nonzero for true (float32 or int32). */
export function where(cond: Tensor, a: Tensor | number, b: Tensor | number): Tensor {
  const A = typeof a === "number" ? new Tensor(Float32Array.of(a), []) : f32(a);
  const B = typeof b === "number" ? new Tensor(Float32Array.of(b), []) : f32(b);
  const shape = broadcastShapes("where", broadcastShapes("where", cond.shape, A.shape), B.shape);
  const c = (cond.dtype === "int32" ? cond : f32(cond));
  const cv = contiguous(expand(c, shape)), av = contiguous(expand(A, shape)).f32(), bv = contiguous(expand(B, shape)).f32();
  const cs = cv.dtype === "int32" ? cv.i32() : cv.f32();
  const out = new Float32Array(numel(shape));
  for (let i = 0; i < out.length; i++) out[i] = cs[i] !== 0 ? av[i]! : bv[i]!;
  return record(new Tensor(out, shape), "where", [A, B], (g) => {
    const gs = g.f32(), ga = new Float32Array(gs.length), gb = new Float32Array(gs.length);
    for (let i = 0; i < gs.length; i++) if (cs[i] !== 0) ga[i] = gs[i]!; else gb[i] = gs[i]!;
    return [sumTo(new Tensor(ga, shape), A.shape), sumTo(new Tensor(gb, shape), B.shape)];
  });
}

/** x with `value` where mask is nonzero (torch.Tensor.masked_fill). */
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return where(mask, value, x);
}

/**
 * conv2d, NCHW: x [N, C, H, W], w [O, C, kh, kw], optional bias [O]; square stride and padding.
 * Per image: im2col then one GEMM; backward dW = dY·colsᵀ (nt), dcols = Wᵀ·dY (tn) then col2im.
 */
export function conv2d(x: Tensor, w: Tensor, bias: Tensor | null = null, stride = 1, padding = 0): Tensor {
  const X = contiguous(f32(x)), W = contiguous(f32(w));
  if (X.ndim !== 4 || W.ndim !== 4 || X.shape[1] !== W.shape[1]) {
    throw new Error(`conv2d: expected x [N,C,H,W] and w [O,C,kh,kw] with the same C, got ${shapeStr(X.shape)} and ${shapeStr(W.shape)}`);
  }
  const [n, c, hgt, wid] = X.shape as [number, number, number, number];
  const [o, , kh, kw] = W.shape as [number, number, number, number];
  const oh = Math.floor((hgt + 2 * padding - kh) / stride) + 1, ow = Math.floor((wid + 2 * padding - kw) / stride) + 1;
  if (oh <= 0 || ow <= 0) throw new Error(`conv2d: kernel ${kh}×${kw} does not fit input ${hgt}×${wid} with padding ${padding}`);
  const B = bias ? f32(bias) : null;
  if (B && (B.ndim !== 1 || B.shape[0] !== o)) throw new Error(`conv2d: bias ${shapeStr(B.shape)} does not match ${o} output channels`);
  const be = getBackend();
  const ck = c * kh * kw, p = oh * ow;
  const xs = X.f32(), ws = W.f32();
  const out = new Float32Array(n * o * p);
  const cols = new Float32Array(ck * p);
  for (let i = 0; i < n; i++) {
    be.im2col(cols, xs, i * c * hgt * wid, c, hgt, wid, kh, kw, stride, padding, oh, ow);
    be.gemm("nn", o, p, ck, ws, 0, ck, 0, cols, 0, p, 0, out, i * o * p, p, 0, 1, false);
  }
  if (B) {
    const bs = B.f32();
    for (let i = 0; i < n; i++) for (let oc = 0; oc < o; oc++) {
      const base = (i * o + oc) * p;
      for (let j = 0; j < p; j++) out[base + j] = out[base + j]! + bs[oc]!;
    }
  }
  const inputs = B ? [X, W, B] : [X, W];
  return record(new Tensor(out, [n, o, oh, ow]), "conv2d", inputs, (g, need) => {
    const gs = g.f32();
    const dx = need[0] ? new Float32Array(X.numel) : null;
    const dw = need[1] ? new Float32Array(W.numel) : null;
    const dcols = new Float32Array(ck * p);
    for (let i = 0; i < n; i++) {
      if (dw) {
        be.im2col(cols, xs, i * c * hgt * wid, c, hgt, wid, kh, kw, stride, padding, oh, ow);
        be.gemm("nt", o, ck, p, gs, i * o * p, p, 0, cols, 0, p, 0, dw, 0, ck, 0, 1, true);
      }
      if (dx) {
        be.gemm("tn", ck, p, o, ws, 0, ck, 0, gs, i * o * p, p, 0, dcols, 0, p, 0, 1, false);
        be.col2im(dx, i * c * hgt * wid, dcols, c, hgt, wid, kh, kw, stride, padding, oh, ow);
      }
    }
    let db: Tensor | null = null;
    if (B && need[2]) {
      const d = new Float32Array(o);
      for (let i = 0; i < n; i++) for (let oc = 0; oc < o; oc++) {
        let s = 0;
        const base = (i * o + oc) * p;
        for (let j = 0; j < p; j++) s += gs[base + j]!;
        d[oc] = d[oc]! + s;
      }
      db = new Tensor(d, [o]);
    }
    return [dx ? new Tensor(dx, X.shape) : null, dw ? new Tensor(dw, W.shape) : null, db];
  });
}
