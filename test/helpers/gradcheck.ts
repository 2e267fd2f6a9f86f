/**
 * Finite-difference gradient check. The loss is L = Σ out ⊙ w for a fixed random w, accumulated in float64;
 * central differences with step h against the analytic gradient of every input that requires grad.
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
    expectClose(x.grad, numeric, `${name} d/dinput${xi}`, { rtol: opts.rtol ?? 2e-2, atol: opts.atol ?? 2e-2 });
  });
}
