/** Native kernels composed in TS (binary fast paths) and the column kernels against the js spec. */
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
