/**
 * Native elementwise and row kernels against the js backend (the spec): exp, silu, gelu forward and
 * backward; softmax and log-softmax; RMSNorm; AdamW. Within 1e-6 relative (to the value, or to the
 * terms the spec subtracts where it cancels), on random data and edge values (±0, NaN, ±inf, |x| up
 * to 1e4), for every ISA this CPU supports. Bad sizes throw.
 */
import { afterAll, describe, expect, it } from "vitest";
import type { UnaryOp } from "../backend.js";
import { jsBackend } from "../js/index.js";
import { loadAddon } from "./addon.js";
import { loadNativeBackend } from "./index.js";

const addon = loadAddon();
const native = loadNativeBackend();
const defaultIsa = addon.isa();
afterAll(() => { addon.setIsa(defaultIsa); });
const isas = (["avx512", "avx2", "portable"] as const).filter((isa) => addon.setIsa(isa));
addon.setIsa(defaultIsa);

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
function normal(n: number, scale: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => scale * Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()));
}

/** |actual − expected| ≤ 1e-6·scale + 1e-30 elementwise (scale defaults to |expected|); NaN must match NaN. */
function expectClose(name: string, actual: Float32Array, expected: Float32Array, scale?: ArrayLike<number>): void {
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e) || Number.isNaN(a) || !Number.isFinite(e)) {
      if (!Object.is(a, e) && !(a === e)) throw new Error(`${name}[${i}]: got ${a}, expected ${e}`);
      continue;
    }
    const tol = 1e-6 * (scale ? scale[i]! : Math.abs(e)) + 1e-30;
    if (!(Math.abs(a - e) <= tol)) throw new Error(`${name}[${i}]: got ${a}, expected ${e} (|diff| ${Math.abs(a - e)} > ${tol})`);
  }
}

const edge = [0, -0, 1e-8, -1e-8, 0.5, -0.5, 1, -1, 3, -3, 5, -5, 10, -10, 20, -20, 50, -50, 80, -80, 88, -88, 100, -100, 1e4, -1e4,
  NaN, Infinity, -Infinity];

describe.each(isas)("native elementwise kernels vs js (%s)", (isa) => {
  it.each(["exp", "silu", "gelu"] as UnaryOp[])("unary %s forward and backward", (op) => {
    addon.setIsa(isa);
    const x = new Float32Array([...edge, ...normal(5000, 4, 7)]);
    const n = x.length;
    const dy = normal(n, 1, 8);
    const yJ = new Float32Array(n), yN = new Float32Array(n);
    jsBackend.unaryForward(op, yJ, x, n);
    native.unaryForward(op, yN, x, n);
    // The spec's gelu computes 1 + tanh(u) and 1 − tanh²(u) in float64, which hit 0 once |u| > ~19 while
    // the native form x·σ(2u) keeps ~|x|³·e^{-2|u|}: allow that float64 floor, 1e-15·(1 + |x|³).
    const floor = (i: number, s: number) => op === "gelu" ? 1e-9 * s * (1 + Math.abs(x[i]!) ** 3) : 0;
    expectClose(`${op} forward`, yN, yJ, Array.from(yJ, (v, i) => Math.abs(v) + floor(i, 1)));
    const dJ = new Float32Array(n), dN = new Float32Array(n);
    jsBackend.unaryBackward(op, dJ, dy, x, yJ, n);
    native.unaryBackward(op, dN, dy, x, yJ, n);
    expectClose(`${op} backward`, dN, dJ, Array.from(dJ, (v, i) => Math.abs(v) + floor(i, Math.abs(dy[i]!))));
  });

  it.each([false, true])("softmax forward and backward (log=%s)", (log) => {
    addon.setIsa(isa);
    for (const [rows, cols] of [[1, 1], [3, 7], [17, 1000], [2, 4096]] as const) {
      const x = normal(rows * cols, 5, rows * 31 + cols);
      if (cols > 1) { x[0] = -Infinity; x[cols + 1] = 60; }
      const outJ = new Float32Array(rows * cols), outN = new Float32Array(rows * cols);
      jsBackend.softmaxForward(outJ, x, rows, cols, log);
      native.softmaxForward(outN, x, rows, cols, log);
      // log-softmax subtracts the logsumexp from x: relative to |x| + |lse|.
      const fscale = log ? Array.from(outJ, (o, i) => Math.abs(o) + 2 * Math.abs(x[i]!)) : undefined;
      expectClose(`softmax fwd ${rows}x${cols}`, outN, outJ, fscale);
      const dy = normal(rows * cols, 1, 99);
      const dxJ = new Float32Array(rows * cols), dxN = new Float32Array(rows * cols);
      jsBackend.softmaxBackward(dxJ, dy, outJ, rows, cols, log);
      native.softmaxBackward(dxN, dy, outJ, rows, cols, log);
      // dx = dy − e^y·Σdy or y·(dy − Σ dy·y): compare relative to the size of the terms.
      const scale = new Float64Array(rows * cols);
      for (let r = 0; r < rows; r++) {
        let s = 0;
        for (let c = 0; c < cols; c++) s += log ? dy[r * cols + c]! : dy[r * cols + c]! * outJ[r * cols + c]!;
        for (let c = 0; c < cols; c++) {
          const i = r * cols + c;
          scale[i] = log ? Math.abs(dy[i]!) + Math.exp(outJ[i]!) * Math.abs(s) : Math.abs(outJ[i]!) * (Math.abs(dy[i]!) + Math.abs(s));
        }
      }
      expectClose(`softmax bwd ${rows}x${cols}`, dxN, dxJ, scale);
    }
  });

  it.each([true, false])("rmsNorm forward and backward (weight=%s)", (withW) => {
    addon.setIsa(isa);
    const rows = 13, cols = 515;
    const x = normal(rows * cols, 2, 5), w = withW ? normal(cols, 1, 6) : null, dy = normal(rows * cols, 1, 7);
    const yJ = new Float32Array(rows * cols), yN = new Float32Array(rows * cols);
    const rJ = new Float32Array(rows), rN = new Float32Array(rows);
    jsBackend.rmsNormForward(yJ, rJ, x, w, rows, cols, 1e-6);
    native.rmsNormForward(yN, rN, x, w, rows, cols, 1e-6);
    expectClose("rmsNorm y", yN, yJ);
    expectClose("rmsNorm rstd", rN, rJ);
    const dxJ = new Float32Array(rows * cols), dxN = new Float32Array(rows * cols);
    const dwJ = withW ? normal(cols, 1, 9) : null, dwN = dwJ ? dwJ.slice() : null;
    jsBackend.rmsNormBackward(dxJ, dwJ, dy, x, w, rJ, rows, cols);
    native.rmsNormBackward(dxN, dwN, dy, x, w, rJ, rows, cols);
    // dx = r·w·dy − x·k: relative to the two terms.
    const scale = Array.from(dxJ, (_, i) => {
      const r = rJ[Math.floor(i / cols)]!;
      return Math.abs(dy[i]! * (w ? w[i % cols]! : 1) * r) + Math.abs(x[i]!) * r * r * r * 3;
    });
    expectClose("rmsNorm dx", dxN, dxJ, scale);
    if (dwJ && dwN) expectClose("rmsNorm dw", dwN, dwJ, Array.from(dwJ, (v, c) => Math.abs(v) + rows * 10 * Math.abs(x[c]! * dy[c]!) + 1e-3));
  });

  it.each([1, 10, 1000])("adamwStep at step %i", (step) => {
    addon.setIsa(isa);
    const n = 3001;
    const p = normal(n, 1, 1), g = normal(n, 0.1, 2), m = normal(n, 0.01, 3), v = normal(n, 0.001, 4).map(Math.abs);
    const [pJ, mJ, vJ] = [p.slice(), m.slice(), v.slice()];
    const [pN, mN, vN] = [p.slice(), m.slice(), v.slice()];
    jsBackend.adamwStep(pJ, g, mJ, vJ, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, step);
    native.adamwStep(pN, g, mN, vN, n, 1e-3, 0.9, 0.999, 1e-8, 0.01, step);
    expectClose("adamw p", pN, pJ);
    expectClose("adamw m", mN, mJ);
    expectClose("adamw v", vN, vJ);
  });
});

describe("native elementwise argument checks", () => {
  it("too-short arrays throw an Error naming the kernel", () => {
    const a = new Float32Array(10), b = new Float32Array(5);
    expect(() => native.unaryForward("gelu", a, b, 10)).toThrow(/unaryForward\[gelu\]\(n=10\): x has 5 elements, needs 10/);
    expect(() => native.softmaxForward(a, a, 3, 4, false)).toThrow(/softmaxForward\(rows=3, cols=4\): out has 10 elements, needs 12/);
    expect(() => native.rmsNormForward(a, b, a, b, 2, 5, 1e-5)).not.toThrow();
    expect(() => native.rmsNormForward(a, b, a, new Float32Array(3), 2, 5, 1e-5)).toThrow(/w has 3 elements, needs 5/);
    expect(() => native.adamwStep(a, a, a, b, 10, 1e-3, 0.9, 0.999, 1e-8, 0, 1)).toThrow(/adamwStep\(n=10\): v has 5/);
    expect(() => native.unaryForward("exp", a, a, -1)).toThrow(/n must be a non-negative integer/);
  });
  it("ops without a native kernel go to the js spec", () => {
    const x = new Float32Array([-1, 0, 2]), out = new Float32Array(3);
    native.unaryForward("relu", out, x, 3);
    expect(Array.from(out)).toEqual([0, 0, 2]);
  });
});
