/** The native binary fast paths (fastpath.ts) and the column kernels (each ISA this CPU has) against the js spec. */
import { afterAll, describe, expect, it } from "vitest";
import { jsBackend } from "../js/index.js";
import { loadAddon } from "./addon.js";
import { loadNativeBackend } from "./index.js";
import { lcgArray, maxRelDiff } from "../../../test/helpers/arrays.js";

const native = loadNativeBackend();

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
    const a = lcgArray(1 + sa.reduce((p, q) => p * q, 1), 5), b = lcgArray(1 + sb.reduce((p, q) => p * q, 1), 6);
    const n = out.reduce((p, q) => p * q, 1);
    for (const op of ["add", "sub", "mul", "div", "max"] as const) {
      const x = new Float32Array(n), y = new Float32Array(n);
      jsBackend.binary(op, x, a, 1, strides(sa), b, 1, strides(sb), out);
      native.binary(op, y, a, 1, strides(sa), b, 1, strides(sb), out);
      expect(Array.from(y), op).toEqual(Array.from(x));
    }
  });
});

/** Index of the first element where a and b differ (bitwise, NaN equal to NaN), −1 if none: cheaper than toEqual on 600K. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

describe("native column kernels match the js spec", () => {
  const addon = loadAddon(), defaultIsa = addon.isa();
  afterAll(() => { addon.setIsa(defaultIsa); });
  const isas = ["avx512", "avx2", "portable"].filter((i) => addon.setIsa(i));
  addon.setIsa(defaultIsa);
  it.each(isas.flatMap((isa) => [[1, 1], [3, 17], [70, 33], [600, 1000]].map(([r, c]) => [isa, r!, c!] as const)))("%s: rows %i cols %i", (isa, rows, cols) => {
    addon.setIsa(isa);
    const x = lcgArray(rows * cols, 11), sc = lcgArray(cols, 12), b = lcgArray(cols, 13), g = lcgArray(rows * cols, 14);
    for (const bias of [null, b]) {
      for (const offset of [0, -1]) {
        const a = new Float32Array(rows * cols), n = new Float32Array(rows * cols);
        jsBackend.columnScale(a, x, sc, offset, bias, rows, cols);
        native.columnScale(n, x, sc, offset, bias, rows, cols);
        expect(firstDifference(n, a)).toBe(-1);
      }
      const a = new Float32Array(cols), n = new Float32Array(cols);
      jsBackend.columnDot(a, g, x, bias, rows, cols);
      native.columnDot(n, g, x, bias, rows, cols);
      expect(maxRelDiff(n, a)).toBeLessThan(1e-6);
    }
    const inPlace = x.slice(), ref = new Float32Array(rows * cols);
    jsBackend.columnScale(ref, x, sc, 0, b, rows, cols);
    native.columnScale(inPlace, inPlace, sc, 0, b, rows, cols);
    expect(firstDifference(inPlace, ref)).toBe(-1);
  });
});
