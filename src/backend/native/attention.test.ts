/**
 * Native fused attention and rope against the js spec: MHA, GQA, Sq < Sk (KV cache), one query row, odd sizes,
 * query blocks with ragged ends, head dim 64 at Sq = Sk = 256; operands contiguous [B, H, S, D], transposed
 * out of [B, S, H·D] and with row gaps (a split of a fused projection). Bad sizes throw before native code.
 */
import { describe, expect, it } from "vitest";
import type { AttentionLayout, HeadStrides } from "../backend.js";
import { jsBackend } from "../js/index.js";
import { loadNativeBackend } from "./index.js";
import { loadAddon } from "./addon.js";
import { lcgArray, maxRelDiff } from "../../../test/helpers/arrays.js";

const native = loadNativeBackend();

type Kind = "bhsd" | "bshd" | "gapped";

/** Strides and buffer size of [b, h, s, d] rows: contiguous, a [B, S, H, D] buffer, or [B, S, H·D + 5] rows. */
function place(kind: Kind, b: number, h: number, s: number, d: number): { st: HeadStrides; size: number } {
  if (kind === "bhsd") return { st: [h * s * d, s * d, d], size: b * h * s * d };
  const row = h * d + (kind === "gapped" ? 5 : 0);
  return { st: [s * row, d, row], size: b * s * row };
}

function scatter(x: Float32Array, p: { st: HeadStrides; size: number }, b: number, h: number, s: number, d: number): Float32Array {
  const out = new Float32Array(p.size).fill(NaN); // gaps stay NaN: a kernel reading them would show it
  for (let i = 0; i < b; i++) for (let j = 0; j < h; j++) for (let t = 0; t < s; t++) {
    const o = i * p.st[0] + j * p.st[1] + t * p.st[2];
    out.set(x.subarray(((i * h + j) * s + t) * d, ((i * h + j) * s + t + 1) * d), o);
  }
  return out;
}

function gather(x: Float32Array, st: HeadStrides, b: number, h: number, s: number, d: number): Float32Array {
  const out = new Float32Array(b * h * s * d);
  for (let i = 0; i < b; i++) for (let j = 0; j < h; j++) for (let t = 0; t < s; t++) {
    const o = i * st[0] + j * st[1] + t * st[2];
    out.set(x.subarray(o, o + d), ((i * h + j) * s + t) * d);
  }
  return out;
}

describe("native attention matches the js spec", () => {
  const layouts: [Kind, Kind, Kind, Kind][] = [ // q (and out, dq), k, v, dout
    ["bhsd", "bhsd", "bhsd", "bhsd"], ["bshd", "bshd", "bshd", "bshd"], ["gapped", "bshd", "bhsd", "gapped"],
  ];
  it.each([
    [2, 4, 4, 7, 7, 8], [1, 6, 2, 5, 5, 4], [2, 4, 1, 3, 9, 6], [1, 2, 2, 1, 5, 2], [1, 8, 8, 33, 33, 16],
    [1, 8, 8, 256, 256, 64], [2, 8, 2, 100, 100, 64], [1, 4, 2, 60, 200, 32], [2, 4, 4, 1, 77, 64], [1, 2, 1, 57, 57, 3],
  ])("b %i h %i hkv %i sq %i sk %i d %i", (b, h, hkv, sq, sk, d) => {
    const q0 = lcgArray(b * h * sq * d, 1), k0 = lcgArray(b * hkv * sk * d, 2), v0 = lcgArray(b * hkv * sk * d, 3), g0 = lcgArray(b * h * sq * d, 4);
    const scale = 1 / Math.sqrt(d);
    const run = (be: typeof jsBackend, [kq, kk, kv, kg]: [Kind, Kind, Kind, Kind]) => {
      const pq = place(kq, b, h, sq, d), pk = place(kk, b, hkv, sk, d), pv = place(kv, b, hkv, sk, d), pg = place(kg, b, h, sq, d);
      const layout: AttentionLayout = { q: pq.st, k: pk.st, v: pv.st, out: pq.st };
      const q = scatter(q0, pq, b, h, sq, d), k = scatter(k0, pk, b, hkv, sk, d), v = scatter(v0, pv, b, hkv, sk, d);
      const dout = scatter(g0, pg, b, h, sq, d);
      const out = new Float32Array(pq.size), lse = new Float32Array(b * h * sq);
      be.attentionForward(out, lse, q, k, v, b, h, hkv, sq, sk, d, scale, layout);
      const dq = new Float32Array(pq.size), dk = new Float32Array(pk.size), dv = new Float32Array(pv.size);
      be.attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, b, h, hkv, sq, sk, d, scale, layout, pg.st);
      return {
        out: gather(out, pq.st, b, h, sq, d), lse, dq: gather(dq, pq.st, b, h, sq, d),
        dk: gather(dk, pk.st, b, hkv, sk, d), dv: gather(dv, pv.st, b, hkv, sk, d),
      };
    };
    const ref = run(jsBackend, layouts[0]!);
    for (const layout of layouts) {
      const js = run(jsBackend, layout), nat = run(native, layout);
      for (const key of ["out", "lse", "dq", "dk", "dv"] as const) {
        expect(Array.from(js[key]), `js ${key} ${layout.join("/")}`).toEqual(Array.from(ref[key])); // the spec ignores layout
        expect(maxRelDiff(nat[key], ref[key]), `native ${key} ${layout.join("/")}`).toBeLessThan(2e-5);
      }
    }
  });

  it("throws on bad sizes before calling native code", () => {
    const b = 1, h = 2, s = 4, d = 8, st: HeadStrides = [h * s * d, s * d, d];
    const x = lcgArray(b * h * s * d, 5), lse = new Float32Array(b * h * s);
    const layout: AttentionLayout = { q: st, k: st, v: st, out: st };
    expect(() => native.attentionForward(new Float32Array(10), lse, x, x, x, b, h, h, s, s, d, 0.3, layout)).toThrow(/out has 10 elements/);
    expect(() => native.attentionForward(new Float32Array(x.length), lse, x, x, x, b, h, h, s, s, d, 0.3, { ...layout, out: [0, 0, d] }))
      .toThrow(/out strides \[0, 0, 8\] make rows overlap/);
    expect(() => native.attentionForward(new Float32Array(x.length), lse, x, x, x, b, h, 0, s, s, d, 0.3, layout)).toThrow(/multiple of hkv/);
    expect(() => native.attentionForward(new Float32Array(x.length), lse, x, x, x, b, h, h, s + 1, s, d, 0.3, layout)).toThrow(/sq must be ≤ sk/);
    expect(() => native.attentionBackward(x.slice(), x.slice(), x.slice(0, 5), x, x, x, x, x, lse, b, h, h, s, s, d, 0.3, layout, st))
      .toThrow(/dv has 5 elements/);
    expect(() => native.rope(new Float32Array(x.length), x, x, x, b, h, s, d, false, st, [1, 2, -1])).toThrow(/x strides/);
  });
});

describe("native rope matches the js spec", () => {
  // every ISA this CPU has (the vector kernels take 8 or 4 pairs a block: head dims 22 and 38 leave ragged ends);
  // the vector blocks do the spec's float64 products and sums unfused, so every ISA gives the same bits
  const addon = loadAddon(), defaultIsa = addon.isa();
  const isas = ["avx512", "avx2", "portable"].filter((i) => addon.setIsa(i));
  addon.setIsa(defaultIsa);
  it.each([[2, 3, 5, 8], [1, 8, 256, 64], [3, 1, 1, 2], [2, 2, 3, 22], [1, 3, 4, 38]])("b %i h %i s %i d %i", (b, h, s, d) => {
    const x0 = lcgArray(b * h * s * d, 7), cos = lcgArray(s * d, 8), sin = lcgArray(s * d, 9);
    try {
      for (const inverse of [false, true]) {
        for (const [kx, ko] of [["bhsd", "bhsd"], ["bshd", "bshd"], ["gapped", "bhsd"]] as [Kind, Kind][]) {
          const px = place(kx, b, h, s, d), po = place(ko, b, h, s, d), x = scatter(x0, px, b, h, s, d);
          const ref = new Float32Array(x0.length), js = new Float32Array(po.size);
          const bhsd = place("bhsd", b, h, s, d).st;
          jsBackend.rope(ref, x0, cos, sin, b, h, s, d, inverse, bhsd, bhsd);
          jsBackend.rope(js, x, cos, sin, b, h, s, d, inverse, po.st, px.st);
          expect(Array.from(gather(js, po.st, b, h, s, d))).toEqual(Array.from(ref));
          let first: number[] | null = null;
          for (const isa of isas) {
            addon.setIsa(isa);
            const nat = new Float32Array(po.size);
            native.rope(nat, x, cos, sin, b, h, s, d, inverse, po.st, px.st);
            const got = gather(nat, po.st, b, h, s, d);
            expect(maxRelDiff(got, ref), `${isa} ${kx}→${ko} inverse ${inverse}`).toBeLessThan(1e-6);
            if (first === null) first = Array.from(got);
            else expect(Array.from(got), `${isa} against ${isas[0]}`).toEqual(first);
            if (kx === ko) { // in place: out = x
              const xi = x.slice();
              native.rope(xi, xi, cos, sin, b, h, s, d, inverse, px.st, px.st);
              expect(Array.from(gather(xi, px.st, b, h, s, d)), `${isa} in place`).toEqual(Array.from(got));
            }
          }
        }
      }
    } finally {
      addon.setIsa(defaultIsa);
    }
  });
});

describe("native rope threading", () => {
  it("splits token rows across 1, 2 and 5 threads with bit-identical results (2 × 67 rows: ranges of unequal length)", () => {
    const addon = loadAddon(), threads = addon.numThreads();
    const b = 2, h = 7, s = 67, d = 64; // b·s·h·d above the pool hand-off threshold
    const x0 = lcgArray(b * h * s * d, 11), cos = lcgArray(s * d, 12), sin = lcgArray(s * d, 13);
    const p = place("bshd", b, h, s, d), x = scatter(x0, p, b, h, s, d);
    const ref = new Float32Array(x0.length);
    jsBackend.rope(ref, x0, cos, sin, b, h, s, d, false, place("bhsd", b, h, s, d).st, place("bhsd", b, h, s, d).st);
    const runs: number[][] = [];
    try {
      for (const n of [1, 2, 5]) {
        addon.setNumThreads(n);
        const out = new Float32Array(p.size);
        native.rope(out, x, cos, sin, b, h, s, d, false, p.st, p.st);
        expect(maxRelDiff(gather(out, p.st, b, h, s, d), ref), `${n} threads`).toBeLessThan(1e-6);
        runs.push(Array.from(out));
      }
    } finally {
      addon.setNumThreads(threads);
    }
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
  });
});
