/**
 * The fused single-adapter ops (`loraLinear` in lora-linear.ts, `doraLinear` in dora.ts) against the generic
 * graph they replace: same output and gradients for x, A, B, m, with and without dropout (the same seeded
 * mask), Linear and Conv1D layouts, bias or none, and DoRA rows whose m/n is ~0 (dm recomputed, not read back).
 */
import { describe, it } from "vitest";
import { Rng, Tensor, mul, randn, sum } from "../tensor/index.js";
import { Conv1D, Linear } from "../nn/index.js";
import { LoraLinear } from "./lora-linear.js";
import type { FusedOperands } from "./layer.js";
import { doraTuning } from "./dora.js";
import { expectClose } from "../../test/helpers/close.js";

class GenericLoraLinear extends LoraLinear {
  override fusedOperands(): FusedOperands | null { return null; }
}

interface Case { dora: boolean; fifo: boolean; bias: boolean; p: number; zeroRow: boolean }

function run(c: Case, generic: boolean): Tensor[] {
  const rng = new Rng(7);
  const base = c.fifo ? new Conv1D(12, 10, rng) : new Linear(12, 10, c.bias, rng);
  if (c.fifo && !c.bias) base.registerParameter("bias", null);
  base.requiresGrad_(false);
  const layer = new (generic ? GenericLoraLinear : LoraLinear)("l", base, c.fifo);
  const a = layer.addAdapter("default", { r: 3, alpha: 6, dropout: c.p, useRslora: false, useDora: c.dora, detachNorm: true, init: false, seed: 3 });
  if (c.zeroRow && a.magnitude) { (a.magnitude.data as Float32Array)[2] = 0; a.magnitude.version++; }
  const x = randn([2, 5, 12], new Rng(9)).requiresGrad_();
  const dy = randn([2, 5, 10], new Rng(11));
  const y = layer.forward(x);
  sum(mul(y, dy)).backward();
  return [y, x.grad!, a.A.grad!, a.B.grad!, ...(a.magnitude ? [a.magnitude.grad!] : [])];
}

const cases: Case[] = [];
for (const dora of [false, true]) for (const fifo of [false, true]) for (const bias of [false, true]) for (const p of [0, 0.3]) {
  cases.push({ dora, fifo, bias, p, zeroRow: false });
}
cases.push({ dora: true, fifo: false, bias: true, p: 0, zeroRow: true });

describe("fused adapter ops match the generic graph", () => {
  it.each(cases)("%o", (c) => {
    const block = doraTuning.dxBlockElems;
    doraTuning.dxBlockElems = 36; // 3 rows per dx block: several blocks and a ragged last one
    const f = run(c, false);
    doraTuning.dxBlockElems = block;
    const g = run(c, true);
    const names = ["y", "dx", "dA", "dB", "dm"];
    f.forEach((t, i) => expectClose(t, g[i]!.f32(), `${JSON.stringify(c)} ${names[i]}`, { rtol: 1e-4, atol: 1e-5 }));
  });
});
