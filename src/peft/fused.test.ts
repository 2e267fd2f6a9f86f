/**
 * The fused single-adapter ops (`loraLinear` in lora-linear.ts, `doraLinear` in dora.ts) against the generic
 * graph they replace: same output and gradients for x, A, B, m, with and without dropout (the same seeded
 * mask), the dropout corrections both sparse (drop lists, Backend.sparseGemm / sampledGemm) and dense, Linear and
 * Conv1D layouts, bias or none, sizes past the sparse kernels' 64-column panels, and DoRA rows whose m/n is ~0
 * (dm recomputed, not read back).
 */
import { describe, it } from "vitest";
import { Rng, Tensor, mul, randn, sum } from "../tensor/index.js";
import { Conv1D, Linear } from "../nn/index.js";
import { LoraLinear } from "./lora-linear.js";
import type { FusedOperands } from "./layer.js";
import { doraTuning } from "./dora.js";
import { dropoutTuning } from "./flat.js";
import { expectClose } from "../../test/helpers/close.js";

class GenericLoraLinear extends LoraLinear {
  override fusedOperands(): FusedOperands | null { return null; }
}

interface Case {
  dora: boolean; fifo: boolean; bias: boolean; p: number; zeroRow: boolean; sparse?: boolean; size?: [number, number, number];
  /** one row with m/n = p, where y carries no trace of x̃Wᵀ (1 + (m/n − 1)/(1 − p) = 0): dm recomputed */
  blindRow?: boolean;
  /** x needs no gradient (a first layer): DoRA's dm alone takes the sparse column dot */
  noDx?: boolean;
}

function run(c: Case, generic: boolean): Tensor[] {
  const rng = new Rng(7);
  const [inF, outF, seq] = c.size ?? [12, 10, 5];
  const base = c.fifo ? new Conv1D(inF, outF, rng) : new Linear(inF, outF, c.bias, rng);
  if (c.fifo && !c.bias) base.registerParameter("bias", null);
  base.requiresGrad_(false);
  const layer = new (generic ? GenericLoraLinear : LoraLinear)("l", base, c.fifo);
  const a = layer.addAdapter("default", { r: 3, alpha: 6, dropout: c.p, useRslora: false, useDora: c.dora, detachNorm: true, init: false, seed: 3 });
  if (a.magnitude) { // m/n away from 1 (at init m = n, and every (m/n − 1) term of the dropout path would vanish)
    const mf = a.magnitude.data as Float32Array;
    for (let i = 0; i < mf.length; i++) mf[i] = mf[i]! * (0.4 + (i % 7) / 5);
    if (c.zeroRow) mf[2] = 0;
    if (c.blindRow) mf[3] = mf[3]! / (0.4 + 3 / 5) * c.p;
    a.magnitude.version++;
  }
  const x = randn([2, seq, inF], new Rng(9));
  if (!c.noDx) x.requiresGrad_();
  const dy = randn([2, seq, outF], new Rng(11));
  const y = layer.forward(x);
  sum(mul(y, dy)).backward();
  return [y, ...(c.noDx ? [] : [x.grad!]), a.A.grad!, a.B.grad!, ...(a.magnitude ? [a.magnitude.grad!] : [])];
}

const cases: Case[] = [];
for (const dora of [false, true]) for (const fifo of [false, true]) for (const bias of [false, true]) {
  cases.push({ dora, fifo, bias, p: 0, zeroRow: false });
  for (const sparse of [false, true]) cases.push({ dora, fifo, bias, p: 0.3, zeroRow: false, sparse });
}
for (const dora of [false, true]) for (const fifo of [false, true]) {
  cases.push({ dora, fifo, bias: true, p: 0.1, zeroRow: false, sparse: true, size: [70, 130, 19] });
}
cases.push({ dora: true, fifo: false, bias: true, p: 0.3, zeroRow: false, sparse: false, size: [70, 130, 19] });
for (const fifo of [false, true]) cases.push({ dora: true, fifo, bias: true, p: 0.3, zeroRow: false, sparse: true, blindRow: true });
for (const fifo of [false, true]) cases.push({ dora: true, fifo, bias: true, p: 0.1, zeroRow: false, sparse: true, noDx: true, size: [70, 130, 19] });
cases.push({ dora: true, fifo: false, bias: true, p: 0, zeroRow: true });

describe("fused adapter ops match the generic graph", () => {
  it.each(cases)("%o", (c) => {
    const block = doraTuning.dxBlockElems, saved = { ...dropoutTuning };
    doraTuning.dxBlockElems = c.size ? 4 * c.size[1] : 36; // 3-4 rows per dx block: several blocks and a ragged last one
    dropoutTuning.sparseMaxP = dropoutTuning.loraSparseMaxP = c.sparse ? 1 : 0;
    const f = run(c, false);
    doraTuning.dxBlockElems = block;
    Object.assign(dropoutTuning, saved);
    const g = run(c, true);
    const names = c.noDx ? ["y", "dA", "dB", "dm"] : ["y", "dx", "dA", "dB", "dm"];
    // atol relative to the tensor's scale: an element that cancels to near zero (a dA entry of 0.007 where dA's
    // entries reach ~160 at the 70×130 size) differs by float32 rounding between two summation orders (the fused
    // op's rank kernel against the generic graph's GEMM: 4.6e-5 there, 3e-7 of the scale)
    f.forEach((t, i) => {
      const ref = g[i]!.f32(), scale = ref.reduce((m, v) => Math.max(m, Math.abs(v)), 1);
      expectClose(t, ref, `${JSON.stringify(c)} ${names[i]}`, { rtol: 1e-4, atol: 1e-5 * scale });
    });
  });
});
