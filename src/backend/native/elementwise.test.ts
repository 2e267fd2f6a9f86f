/**
 * Native elementwise and row kernels against the js backend (the spec): exp, silu, gelu forward and
 * backward; siluMul; same-shape binary ops; softmax and log-softmax; cross-entropy; RMSNorm; AdamW. Within
 * 1e-6 relative (to the value, or to the terms the spec subtracts where it cancels), on random data and edge
 * values (±0, NaN, ±inf, |x| up to 1e4), for every ISA this CPU supports, at sizes that split into several
 * chunks of the addon's threading; results are identical at 1 and 2 threads. Bad sizes throw.
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

  it("siluMul forward and backward", () => {
    addon.setIsa(isa);
    const g = new Float32Array([...edge, ...normal(70000, 4, 17)]), n = g.length;
    const u = normal(n, 1, 18), dy = normal(n, 1, 19);
    u[0] = Infinity; u[1] = NaN;
    const yJ = new Float32Array(n), yN = new Float32Array(n);
    jsBackend.siluMulForward(yJ, g, u, n);
    native.siluMulForward(yN, g, u, n);
    expectClose("siluMul forward", yN, yJ);
    const [dgJ, duJ, dgN, duN] = [0, 0, 0, 0].map(() => new Float32Array(n)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    jsBackend.siluMulBackward(dgJ, duJ, dy, g, u, n);
    native.siluMulBackward(dgN, duN, dy, g, u, n);
    expectClose("siluMul du", duN, duJ);
    expectClose("siluMul dg", dgN, dgJ);
  });

  it("same-shape binary ops equal the spec exactly", () => {
    addon.setIsa(isa);
    const n = 100003, a = new Float32Array([...edge, ...normal(n, 3, 21)]), b = new Float32Array([...normal(n, 3, 22), ...edge]);
    const len = a.length;
    for (const op of ["add", "sub", "mul", "div"] as const) {
      const x = new Float32Array(len - 5), y = new Float32Array(len - 5);
      jsBackend.binary(op, x, a, 2, [1], b, 3, [1], [len - 5]);
      native.binary(op, y, a, 2, [1], b, 3, [1], [len - 5]);
      expect(Array.from(y), op).toEqual(Array.from(x));
    }
  });

  it("cross-entropy forward and backward, with ignored rows, edge rows and per-row scales", () => {
    addon.setIsa(isa);
    const rows = 37, cols = 4096, x = normal(rows * cols, 6, 23);
    x[cols + 5] = 80; x[2 * cols + 1] = -Infinity; x[3 * cols + 7] = NaN; x.fill(-Infinity, 4 * cols, 5 * cols);
    const t = Int32Array.from({ length: rows }, (_, r) => (r % 5 === 2 ? -100 : (r * 977) % cols));
    t[1] = 5;
    const run = (be: typeof jsBackend, scale: Float32Array | number) => {
      const loss = new Float32Array(rows), lse = new Float32Array(rows), d = new Float32Array(rows * cols).fill(7);
      const counted = be.crossEntropyForward(loss, lse, x, t, rows, cols, -100);
      be.crossEntropyBackward(d, x, lse, t, rows, cols, -100, scale);
      return { counted, loss, lse, d };
    };
    for (const scale of [0.25, normal(rows, 1, 24)]) {
      const a = run(jsBackend, scale), b = run(native, scale);
      expect(b.counted).toBe(a.counted);
      // loss = lse − x_t and lse = max + log Σ: relative to |lse| + |x_t|
      expectClose("ce lse", b.lse, a.lse);
      expectClose("ce loss", b.loss, a.loss, Array.from(a.loss, (v, r) => Math.abs(v) + Math.abs(a.lse[r]!)));
      // d = g·p − g·onehot: relative to |g| at the target, to the value elsewhere
      expectClose("ce dlogits", b.d, a.d, Array.from(a.d, (v, i) => Math.abs(v) +
        (i % cols === t[Math.floor(i / cols)] ? Math.abs(typeof scale === "number" ? scale : scale[Math.floor(i / cols)]!) : 0)));
    }
  });

  it.each([false, true])("softmax forward and backward (log=%s)", (log) => {
    addon.setIsa(isa);
    for (const [rows, cols] of [[1, 1], [3, 7], [17, 1000], [2, 4096], [100, 1000]] as const) {
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

  it.each([[true, 13], [false, 13], [true, 200], [false, 200]] as const)("rmsNorm forward and backward (weight=%s, rows %i)", (withW, rows) => {
    addon.setIsa(isa);
    const cols = 515;
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

describe("native elementwise threading", () => {
  it("large calls give identical results at 1 and 2 threads", () => {
    const threads = addon.numThreads();
    try {
      const rows = 300, cols = 515, n = rows * cols;
      const x = normal(n, 2, 31), w = normal(cols, 1, 32), dy = normal(n, 1, 33);
      const t = Int32Array.from({ length: rows }, (_, r) => (r * 7) % cols);
      const run = () => {
        const y = new Float32Array(n), rstd = new Float32Array(rows), dx = new Float32Array(n), dw = new Float32Array(cols);
        native.rmsNormForward(y, rstd, x, w, rows, cols, 1e-6);
        native.rmsNormBackward(dx, dw, dy, x, w, rstd, rows, cols);
        const sm = new Float32Array(n), loss = new Float32Array(rows), lse = new Float32Array(rows), dl = new Float32Array(n);
        native.softmaxForward(sm, x, rows, cols, false);
        const counted = native.crossEntropyForward(loss, lse, x, t, rows, cols, -100);
        native.crossEntropyBackward(dl, x, lse, t, rows, cols, -100, 0.5);
        const g = new Float32Array(n), dg = new Float32Array(n), du = new Float32Array(n), s = new Float32Array(n);
        native.siluMulForward(g, x, dy, n);
        native.siluMulBackward(dg, du, dy, x, dy, n);
        native.binary("add", s, x, 0, [1], dy, 0, [1], [n]);
        return [y, rstd, dx, dw, sm, loss, lse, dl, g, dg, du, s, Float32Array.of(counted)].map((a) => Array.from(a));
      };
      addon.setNumThreads(1);
      const one = run();
      addon.setNumThreads(2);
      expect(run()).toEqual(one);
    } finally {
      addon.setNumThreads(threads);
    }
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
    expect(() => native.siluMulBackward(a, a, a, a, b, 10)).toThrow(/siluMulBackward\(n=10\): u has 5 elements, needs 10/);
    expect(() => native.binary("add", a, a, 6, [1], a, 0, [1], [5])).toThrow(/binary\[add\]\(n=5, aOff=6, bOff=0\): a has 10 elements, needs 11/);
    const t = Int32Array.from([0, 4]);
    expect(() => native.crossEntropyForward(b, b, a, t, 2, 4, -100)).toThrow(/target 4 at row 1 out of range \[0, 4\)/);
    expect(() => native.crossEntropyForward(b, new Float32Array(1), a, t, 2, 3, 4)).toThrow(/lse has 1 elements, needs 2/);
    expect(() => native.crossEntropyBackward(a, a, b, t, 2, 5, 4, new Float32Array(1))).toThrow(/scale has 1 elements, needs 2/);
  });
  it("ops without a native kernel go to the js spec", () => {
    const x = new Float32Array([-1, 0, 2]), out = new Float32Array(3);
    native.unaryForward("relu", out, x, 3);
    expect(Array.from(out)).toEqual([0, 0, 2]);
  });
});
