/**
 * The one comparison helper of the test suite: |actual − expected| ≤ atol + rtol·|expected| elementwise,
 * failing with the tensor's name, shape, max difference and first bad index.
 */
import { expect } from "vitest";
import type { Tensor } from "../../src/tensor/index.js";

export interface Tol { rtol?: number; atol?: number }

export function expectClose(actual: Tensor | ArrayLike<number>, expected: ArrayLike<number>, name: string, tol: Tol = {}): void {
  const rtol = tol.rtol ?? 1e-4, atol = tol.atol ?? 1e-5;
  const a = "f32" in actual ? (actual as Tensor).f32() : actual;
  const shape = "shape" in actual ? `[${(actual as Tensor).shape.join(", ")}]` : `[${a.length}]`;
  if (a.length !== expected.length) {
    expect.fail(`${name}: ${a.length} values (shape ${shape}), expected ${expected.length}`);
  }
  let maxDiff = 0, firstBad = -1;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - expected[i]!);
    const ok = d <= atol + rtol * Math.abs(expected[i]!) || (Number.isNaN(a[i]) && Number.isNaN(expected[i]));
    if (!(d <= maxDiff) && !Number.isNaN(d)) maxDiff = d;
    if ((!ok || Number.isNaN(d) && !(Number.isNaN(a[i]) && Number.isNaN(expected[i]))) && firstBad < 0) firstBad = i;
  }
  if (firstBad >= 0) {
    expect.fail(`${name} (shape ${shape}): max |diff| ${maxDiff.toExponential(3)} > atol ${atol} + rtol ${rtol}·|ref|; ` +
      `first bad index ${firstBad}: got ${a[firstBad]}, expected ${expected[firstBad]}`);
  }
}
