/**
 * Rotary embedding and causal grouped-query attention (spec). Scores are built one query row at a time.
 * Operands are [B, H, S, D] row sets placed by HeadStrides (backend.ts): row (b, h, s) starts at b·sb + h·sh + s·ss.
 */
import type { AttentionLayout, HeadStrides } from "../backend.js";

function row(st: HeadStrides, b: number, h: number, s: number): number {
  return b * st[0] + h * st[1] + s * st[2];
}

export function rope(out: Float32Array, x: Float32Array, cos: Float32Array, sin: Float32Array,
  b: number, h: number, seq: number, headDim: number, inverse: boolean, outStrides: HeadStrides, xStrides: HeadStrides): void {
  // out = x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x2, x1): per pair (i, i+half) the matrix
  // [[c_i, −s_i], [s_j, c_j]] (j = i+half). `inverse` applies its transpose [[c_i, s_j], [−s_i, c_j]] (the backward).
  const half = headDim >> 1;
  for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) {
    for (let s = 0; s < seq; s++) {
      const xo = row(xStrides, bi, hi, s), o = row(outStrides, bi, hi, s), t = s * headDim;
      for (let i = 0; i < half; i++) {
        const x1 = x[xo + i]!, x2 = x[xo + i + half]!;
        const ci = cos[t + i]!, si = sin[t + i]!, cj = cos[t + i + half]!, sj = sin[t + i + half]!;
        if (inverse) {
          out[o + i] = x1 * ci + x2 * sj;
          out[o + i + half] = x2 * cj - x1 * si;
        } else {
          out[o + i] = x1 * ci - x2 * si;
          out[o + i + half] = x2 * cj + x1 * sj;
        }
      }
    }
  }
}

export function attentionForward(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
  b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number, layout: AttentionLayout): void {
  const group = h / hkv;
  const p = new Float64Array(sk);
  for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) {
    const kvh = Math.floor(hi / group);
    for (let i = 0; i < sq; i++) {
      const last = sk - sq + i; // keys 0..last are visible
      const qo = row(layout.q, bi, hi, i);
      let mx = -Infinity;
      for (let j = 0; j <= last; j++) {
        let s = 0;
        const ko = row(layout.k, bi, kvh, j);
        for (let e = 0; e < d; e++) s += q[qo + e]! * k[ko + e]!;
        s *= scale;
        p[j] = s;
        if (s > mx) mx = s;
      }
      let sum = 0;
      for (let j = 0; j <= last; j++) { const e = Math.exp(p[j]! - mx); p[j] = e; sum += e; }
      const oo = row(layout.out, bi, hi, i);
      for (let e = 0; e < d; e++) out[oo + e] = 0;
      const inv = 1 / sum;
      for (let j = 0; j <= last; j++) {
        const w = p[j]! * inv, vo = row(layout.v, bi, kvh, j);
        for (let e = 0; e < d; e++) out[oo + e] = out[oo + e]! + w * v[vo + e]!;
      }
      lse[(bi * h + hi) * sq + i] = mx + Math.log(sum);
    }
  }
}

export function attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array,
  b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number,
  layout: AttentionLayout, doutStrides: HeadStrides): void {
  // P = exp(S − lse); dP = dO·Vᵀ; dS = P ⊙ (dP − rowsum(dO ⊙ O)); dQ = s·dS·K; dK = s·dSᵀ·Q; dV = Pᵀ·dO
  const group = h / hkv;
  for (let bi = 0; bi < b; bi++) for (let kvh = 0; kvh < hkv; kvh++) for (let j = 0; j < sk; j++) {
    const ko = row(layout.k, bi, kvh, j), vo = row(layout.v, bi, kvh, j);
    dk.fill(0, ko, ko + d); dv.fill(0, vo, vo + d);
  }
  for (let bi = 0; bi < b; bi++) for (let hi = 0; hi < h; hi++) {
    const kvh = Math.floor(hi / group);
    for (let i = 0; i < sq; i++) {
      const last = sk - sq + i;
      const qo = row(layout.q, bi, hi, i), go = row(doutStrides, bi, hi, i), oo = row(layout.out, bi, hi, i);
      const l = lse[(bi * h + hi) * sq + i]!;
      let dsum = 0;
      for (let e = 0; e < d; e++) dsum += dout[go + e]! * out[oo + e]!;
      for (let e = 0; e < d; e++) dq[qo + e] = 0;
      for (let j = 0; j <= last; j++) {
        const ko = row(layout.k, bi, kvh, j), vo = row(layout.v, bi, kvh, j);
        let s = 0, dp = 0;
        for (let e = 0; e < d; e++) { s += q[qo + e]! * k[ko + e]!; dp += dout[go + e]! * v[vo + e]!; }
        const pij = Math.exp(s * scale - l);
        const ds = pij * (dp - dsum) * scale;
        for (let e = 0; e < d; e++) {
          dq[qo + e] = dq[qo + e]! + ds * k[ko + e]!;
          dk[ko + e] = dk[ko + e]! + ds * q[qo + e]!;
          dv[vo + e] = dv[vo + e]! + pij * dout[go + e]!;
        }
      }
    }
  }
}
