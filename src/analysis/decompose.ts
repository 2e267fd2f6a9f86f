/**
 * The weight-decomposition analysis of DoRA's §2 (Liu et al. 2024, arXiv 2402.09353, eq. 2-4, Figure 2): how far
 * a fine-tuned weight W_t moved from the pretrained W_0 in magnitude and in direction, per output unit.
 *
 *   m_n   = ‖W_n‖                       the norm of output unit n's weights (a row of PyTorch's [out, in];
 *                                        a column of GPT-2's Conv1D [in, out]); for DoRA, the learned m
 *   ΔM_t  = mean_n |m_t,n − m_0,n|
 *   ΔD_t  = mean_n (1 − cos(W_t,n, W_0,n))
 *
 * Pure rescaling of units leaves ΔD = 0; a rotation of each unit leaves ΔM = 0. Accumulated in float64.
 */

export interface DecompositionDelta { dM: number; dD: number }

export interface DecomposeOptions {
  /** "out-in" (nn.Linear, default) or "in-out" (GPT-2 Conv1D). */
  layout?: "out-in" | "in-out";
  /** The fine-tuned magnitudes to use instead of ‖W_t,n‖ (DoRA's lora_magnitude_vector). */
  magnitude?: ArrayLike<number>;
}

/** ΔM and ΔD of `wt` against `w0`, both [out, in] (or [in, out] with layout "in-out"), of `outF` × `inF` values. */
export function decompositionDelta(w0: ArrayLike<number>, wt: ArrayLike<number>, outF: number, inF: number, opts: DecomposeOptions = {}): DecompositionDelta {
  if (w0.length !== outF * inF || wt.length !== outF * inF) {
    throw new RangeError(`decompositionDelta: expected ${outF}×${inF} = ${outF * inF} values, got W0 ${w0.length} and Wt ${wt.length}`);
  }
  if (opts.magnitude && opts.magnitude.length !== outF) {
    throw new RangeError(`decompositionDelta: magnitude has ${opts.magnitude.length} values, expected one per output unit (${outF})`);
  }
  const inOut = opts.layout === "in-out";
  let sumM = 0, sumD = 0;
  for (let n = 0; n < outF; n++) {
    let n0 = 0, nt = 0, dot = 0;
    for (let k = 0; k < inF; k++) {
      const i = inOut ? k * outF + n : n * inF + k;
      const a = w0[i]!, b = wt[i]!;
      n0 += a * a; nt += b * b; dot += a * b;
    }
    n0 = Math.sqrt(n0); nt = Math.sqrt(nt);
    const mt = opts.magnitude ? Math.abs(opts.magnitude[n]!) : nt;
    sumM += Math.abs(mt - n0);
    // a zero unit has no direction: count it as unchanged when both are zero, as orthogonal otherwise
    const cos = n0 > 0 && nt > 0 ? dot / (n0 * nt) : n0 === nt ? 1 : 0;
    sumD += 1 - Math.min(1, Math.max(-1, cos));
  }
  return { dM: sumM / outF, dD: sumD / outF };
}

/** Least-squares slope of y on x and Pearson's r (NaN when a variable is constant or there are < 2 points). */
export function linearFit(xs: readonly number[], ys: readonly number[]): { slope: number; intercept: number; pearson: number } {
  const n = xs.length;
  if (n !== ys.length) throw new RangeError(`linearFit: ${n} x values, ${ys.length} y values`);
  if (n < 2) return { slope: NaN, intercept: NaN, pearson: NaN };
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxx = 0, syy = 0, sxy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx, dy = ys[i]! - my;
    sxx += dx * dx; syy += dy * dy; sxy += dx * dy;
  }
  const slope = sxx > 0 ? sxy / sxx : NaN;
  return { slope, intercept: my - slope * mx, pearson: sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : NaN };
}
