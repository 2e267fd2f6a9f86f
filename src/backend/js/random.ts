/**
 * Random bits and the dropout mask draw. `xoshiroNext` is the one generator step of dora-ts (tensor `Rng` calls it);
 * `dropoutDraw` is the spec of Backend.dropoutDraw, which native/random.cc repeats bit for bit.
 *
 * The gap law. After a drop, the number of kept elements before the next one is the geometric
 *   G(v) = the largest g ≥ 0 with Q(g) ≥ v,   v = 1 − w/2^32 ∈ (0, 1] from one 32-bit draw w,
 * with Q(g) = (1 − p)^g, so P(G ≥ g) = P(v ≤ Q(g)) = (1 − p)^g: the chance that g Bernoulli(p) draws in a row all
 * keep. ⌊ln v / ln(1 − p)⌋ is the same number up to the rounding of the logarithm, and V8's Math.log and the C
 * library's log round differently; so Q(g) is defined by multiplications alone, Q(g) = ∏ (1 − p)^(2^b) over the set
 * bits b of g, low bit first, with (1 − p)^(2^b) by repeated squaring. Both backends take ⌊ln v / ln(1 − p)⌋ as a
 * first guess only and move it to G(v) by comparing v with Q, so they agree whatever their logarithm.
 * (Each squaring doubles the relative error of (1 − p)^(2^b), so Q(g) is within ~g ulps of (1 − p)^g: a relative
 * 1e-12 at most for the g that matter (Q(g) ≥ 2^-32, g ≤ 22.2/p), far below the 2^-32 resolution of v. Q stays strictly
 * decreasing while that error is below the step p between neighbours, i.e. for p above ~1e-7; below, the two
 * backends could stop their searches on different sides of a rounding wiggle.)
 */

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** One xoshiro128** step on the state s (4 words, updated in place); returns 32 uniform bits as an unsigned number. */
export function xoshiroNext(s: Uint32Array): number {
  const s0 = s[0]!, s1 = s[1]!;
  const r = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
  const s2 = s[2]! ^ s0, s3 = s[3]! ^ s1;
  s[0] = s0 ^ s3;
  s[1] = s1 ^ s2;
  s[2] = s2 ^ (s1 << 9);
  s[3] = rotl(s3, 11);
  return r;
}

/** Gap thresholds Q(g) precomputed for g < TABLE (the guess lands there for any p ≥ ~0.005); larger g by bits. */
const TABLE = 4096;

/** (1 − p)^(2^b), b = 0..31, and Q(g) for g < min(TABLE, where Q falls below 2^-32). */
export interface GapLaw { readonly p: number; readonly lnq: number; readonly powers: Float64Array; readonly table: Float64Array }

export function gapLaw(p: number): GapLaw {
  const powers = new Float64Array(32);
  powers[0] = 1 - p;
  for (let b = 1; b < 32; b++) powers[b] = powers[b - 1]! * powers[b - 1]!;
  const law = { p, lnq: Math.log1p(-p), powers, table: new Float64Array(0) };
  const rows: number[] = [];
  for (let g = 0; g < TABLE; g++) {
    const q = thresholdByBits(law, g);
    rows.push(q);
    if (q < 2 ** -32) break; // every v is ≥ 2^-32: G never needs a larger g
  }
  return { ...law, table: Float64Array.from(rows) };
}

function thresholdByBits(law: { powers: Float64Array }, g: number): number {
  let q = 1;
  for (let b = 0; g > 0; b++, g = Math.floor(g / 2)) if (g % 2 === 1) q *= law.powers[b]!;
  return q;
}

/** Q(g) = (1 − p)^g by the fixed product above (table where it has the row). */
export function gapThreshold(law: GapLaw, g: number): number {
  return g < law.table.length ? law.table[g]! : thresholdByBits(law, g);
}

/** G(v): the largest g ≥ 0 with Q(g) ≥ v; gaps beyond `limit` are reported as limit + 1 (the caller stops there). */
export function geometricGap(law: GapLaw, v: number, limit: number): number {
  let g = Math.floor(Math.log(v) / law.lnq); // a guess: ln rounds differently per platform, the comparisons decide
  if (!(g > 0)) g = 0;                        // also NaN and −0
  if (g > limit + 2) return limit + 1;       // G ≥ guess − 1 > limit: past the end whatever the rounding
  while (g > 0 && gapThreshold(law, g) < v) g--;
  while (gapThreshold(law, g + 1) >= v) g++;
  return Math.min(g, limit + 1);
}

let lastLaw: GapLaw | null = null;

/**
 * Backend.dropoutDraw: appends dropped positions to out[count..], ascending, each after the previous one (`last`,
 * −1 at the start): position = last + 1 + G with one draw from `state` per gap. Stops, returning the new count, when
 * a position reaches n (that draw is spent) or when out is full (no draw is made for the next position).
 */
export function dropoutDraw(out: Int32Array, count: number, last: number, n: number, p: number, state: Uint32Array): number {
  const law = lastLaw !== null && lastLaw.p === p ? lastLaw : (lastLaw = gapLaw(p));
  let i = last;
  while (count < out.length) {
    const v = 1 - xoshiroNext(state) / 4294967296;
    i += 1 + geometricGap(law, v, n);
    if (i >= n) break;
    out[count++] = i;
  }
  return count;
}
