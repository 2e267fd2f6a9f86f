/**
 * Finite-difference gradient check. The loss is L = Σ out ⊙ w for a fixed random w, accumulated in float64;
 * central differences with step h against the analytic gradient of every input that requires grad.
 * Tolerance 2e-3: at h = 1e-2 in float32 the truncation error (h²/6·f''') of the steepest op here, a/b with b ≥ 0.5,
 * reaches 1e-3; the float64 kernel checks below hold the backward formulas themselves to 1e-7.
 */
import { Rng, Tensor, noGrad, randn } from "../../src/tensor/index.js";
import { expectClose } from "./close.js";

export function gradcheck(name: string, fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { h?: number; rtol?: number; atol?: number; seed?: number } = {}): void {
  const h = opts.h ?? 1e-2;
  const rng = new Rng(opts.seed ?? 99);
  const out0 = fn(...inputs);
  const w = randn(out0.shape, rng);
  const wf = w.f32();
  const lossOf = (o: Tensor): number => {
    const f = o.f32();
    let s = 0;
    for (let i = 0; i < f.length; i++) s += f[i]! * wf[i]!;
    return s;
  };
  for (const x of inputs) x.grad = null;
  out0.backward(w);
  inputs.forEach((x, xi) => {
    if (!x.requiresGrad) return;
    const data = x.data as Float32Array;
    const numeric = new Float64Array(x.numel);
    noGrad(() => {
      for (let i = 0; i < x.numel; i++) {
        const j = x.offset + i; // inputs are contiguous
        const keep = data[j]!;
        data[j] = keep + h; const lp = lossOf(fn(...inputs));
        data[j] = keep - h; const lm = lossOf(fn(...inputs));
        data[j] = keep;
        numeric[i] = (lp - lm) / (2 * h);
      }
    });
    if (x.grad === null) throw new Error(`${name}: input ${xi} got no gradient`);
    expectClose(x.grad, numeric, `${name} d/dinput${xi}`, { rtol: opts.rtol ?? 2e-3, atol: opts.atol ?? 2e-3 });
  });
}

/**
 * Float64 finite-difference check of a kernel pair of the js backend. The spec's loops are precision-generic (plain
 * indexing, arithmetic in JS doubles), so they run unchanged on Float64Array buffers: `f64view` hands them one under
 * the Float32Array type of the contract. L = Σ w ⊙ forward(); each entry of each array in `wrt` is moved by ±h
 * and the central difference compared with what `backward(w)` returns for that array, at float64 tolerances.
 */
export function gradcheckKernel(name: string, wrt: Record<string, Float64Array>, forward: () => Float64Array,
  backward: (w: Float64Array) => Record<string, Float64Array>, opts: { h?: number; rtol?: number; atol?: number; seed?: number } = {}): void {
  const h = opts.h ?? 1e-6;
  const rng = new Rng(opts.seed ?? 7);
  const out0 = forward();
  const w = Float64Array.from({ length: out0.length }, () => rng.normal());
  const loss = (o: Float64Array): number => { let s = 0; for (let i = 0; i < o.length; i++) s += o[i]! * w[i]!; return s; };
  const analytic = backward(w);
  for (const [key, x] of Object.entries(wrt)) {
    const numeric = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const keep = x[i]!;
      x[i] = keep + h; const lp = loss(forward());
      x[i] = keep - h; const lm = loss(forward());
      x[i] = keep;
      numeric[i] = (lp - lm) / (2 * h);
    }
    const got = analytic[key];
    if (!got) throw new Error(`${name}: backward returned no gradient for ${key}`);
    let scale = 0;
    for (const v of numeric) scale = Math.max(scale, Math.abs(v));
    expectClose(got, numeric, `${name} d/d${key}`, { rtol: opts.rtol ?? 1e-7, atol: (opts.atol ?? 1e-8) * Math.max(1, scale) });
  }
}

/** A Float64Array typed as the contract's Float32Array, for running the js spec kernels in float64 (see above). */
export function f64view(x: Float64Array): Float32Array {
  return x as unknown as Float32Array;
}
