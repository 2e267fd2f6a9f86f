/** Native kernels composed in TS (attention, binary fast paths) and the column kernels against the js spec: MHA, GQA, Sq < Sk (KV cache), odd sizes. */
import { describe, expect, it } from "vitest";
import { jsBackend } from "../js/index.js";
import { loadNativeBackend } from "./index.js";

const native = loadNativeBackend();

function rand(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 2 ** 32 - 0.5; });
}

function maxRel(a: Float32Array, b: Float32Array): number {
  let m = 0, scale = 0;
  for (let i = 0; i < a.length; i++) { m = Math.max(m, Math.abs(a[i]! - b[i]!)); scale = Math.max(scale, Math.abs(b[i]!)); }
  return m / Math.max(scale, 1e-30);
}

describe("native attention matches the js spec", () => {
  it.each([
    [2, 4, 4, 7, 7, 8], [1, 6, 2, 5, 5, 4], [2, 4, 1, 3, 9, 6], [1, 2, 2, 1, 5, 2], [1, 8, 8, 33, 33, 16],
  ])("b %i h %i hkv %i sq %i sk %i d %i", (b, h, hkv, sq, sk, d) => {
    const q = rand(b * h * sq * d, 1), k = rand(b * hkv * sk * d, 2), v = rand(b * hkv * sk * d, 3), dout = rand(b * h * sq * d, 4);
    const scale = 1 / Math.sqrt(d);
    const run = (be: typeof jsBackend) => {
      const out = new Float32Array(q.length), lse = new Float32Array(b * h * sq);
      be.attentionForward(out, lse, q, k, v, b, h, hkv, sq, sk, d, scale);
      const dq = new Float32Array(q.length), dk = new Float32Array(k.length), dv = new Float32Array(v.length);
      be.attentionBackward(dq, dk, dv, dout, q, k, v, out, lse, b, h, hkv, sq, sk, d, scale);
      return { out, lse, dq, dk, dv };
    };
    const js = run(jsBackend), nat = run(native);
    for (const key of ["out", "lse", "dq", "dk", "dv"] as const) expect(maxRel(nat[key], js[key]), key).toBeLessThan(2e-5);
  });
});

describe("native binary fast paths match the js spec", () => {
  const shapes: [number[], number[], number[]][] = [
    [[3, 5], [3, 5], [3, 5]], [[3, 5], [5], [3, 5]], [[5], [3, 5], [3, 5]], [[3, 5], [], [3, 5]], [[], [3, 5], [3, 5]],
    [[3, 1], [3, 5], [3, 5]], [[2, 3, 4], [1, 1, 4], [2, 3, 4]], [[1], [4], [4]],
  ];
  it.each(shapes)("%j op %j", (sa, sb, out) => {
    const strides = (s: number[]): number[] => {
      const c = s.map((_, i) => s.slice(i + 1).reduce((p, q) => p * q, 1));
      const off = out.length - s.length;
      return out.map((n, i) => (i < off || s[i - off] !== n ? 0 : c[i - off]!));
    };
    const a = rand(1 + sa.reduce((p, q) => p * q, 1), 5), b = rand(1 + sb.reduce((p, q) => p * q, 1), 6);
    const n = out.reduce((p, q) => p * q, 1);
    for (const op of ["add", "sub", "mul", "div", "max"] as const) {
      const x = new Float32Array(n), y = new Float32Array(n);
      jsBackend.binary(op, x, a, 1, strides(sa), b, 1, strides(sb), out);
      native.binary(op, y, a, 1, strides(sa), b, 1, strides(sb), out);
      expect(Array.from(y), op).toEqual(Array.from(x));
    }
  });
});

describe("native column kernels match the js spec", () => {
  it.each([[1, 1], [3, 17], [70, 33], [600, 1000]])("rows %i cols %i", (rows, cols) => {
    const x = rand(rows * cols, 11), sc = rand(cols, 12), b = rand(cols, 13), g = rand(rows * cols, 14);
    for (const bias of [null, b]) {
      for (const offset of [0, -1]) {
        const a = new Float32Array(rows * cols), n = new Float32Array(rows * cols);
        jsBackend.columnScale(a, x, sc, offset, bias, rows, cols);
        native.columnScale(n, x, sc, offset, bias, rows, cols);
        expect(Array.from(n)).toEqual(Array.from(a));
      }
      const a = new Float32Array(cols), n = new Float32Array(cols);
      jsBackend.columnDot(a, g, x, bias, rows, cols);
      native.columnDot(n, g, x, bias, rows, cols);
      expect(maxRel(n, a)).toBeLessThan(1e-6);
    }
    const inPlace = x.slice(), ref = new Float32Array(rows * cols);
    jsBackend.columnScale(ref, x, sc, 0, b, rows, cols);
    native.columnScale(inPlace, inPlace, sc, 0, b, rows, cols);
    expect(Array.from(inPlace)).toEqual(Array.from(ref));
  });
});
