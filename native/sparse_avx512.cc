// AVX-512 build of the sparse kernels: the per-token inner loops hold the NB = 64 accumulators (spmm) or the
// token's 64 gradient values (sddmm) in zmm registers; the drivers are sparse_impl.h's. Compiled with AVX-512
// flags; used only after dispatch.cc has checked the CPU.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "transpose_avx512.h"

#define DORA_SP_NS sp_avx512
#define DORA_SP_TABLE kSparseAvx512
#define DORA_SP_CUSTOM_INNER 1
#define DORA_SP_NB 64

namespace dora {
namespace sp_avx512 {

constexpr int NV = DORA_SP_NB / 16;  // zmm vectors per panel row

// acc[0:NB] = Σ_e vals[e] · P[(cols[e] − j0)·NB : +NB]; two accumulator sets (even / odd entries) halve the
// FMA dependency chains.
inline void spmm_token(const float* vals, const int32_t* cols, int64_t e0, int64_t e1, const float* P, int64_t j0,
                       float* acc) {
  __m512 a[NV], b[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; v++) a[v] = b[v] = _mm512_setzero_ps();
  int64_t e = e0;
  for (; e + 1 < e1; e += 2) {
    const __m512 x = _mm512_set1_ps(vals[e]), y = _mm512_set1_ps(vals[e + 1]);
    const float* p = P + (cols[e] - j0) * DORA_SP_NB;
    const float* q = P + (cols[e + 1] - j0) * DORA_SP_NB;
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) {
      a[v] = _mm512_fmadd_ps(x, _mm512_load_ps(p + 16 * v), a[v]);
      b[v] = _mm512_fmadd_ps(y, _mm512_load_ps(q + 16 * v), b[v]);
    }
  }
  if (e < e1) {
    const __m512 x = _mm512_set1_ps(vals[e]);
    const float* p = P + (cols[e] - j0) * DORA_SP_NB;
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) a[v] = _mm512_fmadd_ps(x, _mm512_load_ps(p + 16 * v), a[v]);
  }
#pragma GCC unroll 16
  for (int v = 0; v < NV; v++) _mm512_store_ps(acc + 16 * v, _mm512_add_ps(a[v], b[v]));
}

// The four 16-lane partial sums a, b, c, d folded into their four totals (256-bit halves, then 128-bit lanes, then
// within lanes): lane q of the result is entry q's sum.
inline __m128 fold4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab2 = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd2 = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  __m512 q = _mm512_add_ps(_mm512_shuffle_f32x4(ab2, cd2, 0x88), _mm512_shuffle_f32x4(ab2, cd2, 0xDD));
  q = _mm512_add_ps(q, _mm512_permute_ps(q, 0x4E));  // swap 64-bit pairs within each 128-bit lane
  q = _mm512_add_ps(q, _mm512_permute_ps(q, 0xB1));  // swap neighbours: element 4q holds entry q's sum
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), q));
}

// Σ_{i<NB} ab[i]·p[i] as a 16-lane vector (va = ab)
inline __m512 dot_row(const __m512* va, const float* p) {
  __m512 s = _mm512_mul_ps(va[0], _mm512_load_ps(p));
  __m512 t = _mm512_mul_ps(va[1], _mm512_load_ps(p + 16));
#pragma GCC unroll 16
  for (int v = 2; v < NV; v += 2) {
    s = _mm512_fmadd_ps(va[v], _mm512_load_ps(p + 16 * v), s);
    t = _mm512_fmadd_ps(va[v + 1], _mm512_load_ps(p + 16 * v + 16), t);
  }
  return _mm512_add_ps(s, t);
}

// out[e] += Σ_{i<NB} ab[i] · P[(cols[e] − j0)·NB + i]. Four entries share one horizontal reduction (fold4).
inline void sddmm_token(const float* ab, const int32_t* cols, int64_t e0, int64_t e1, const float* P, int64_t j0,
                        float* out) {
  __m512 va[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; v++) va[v] = _mm512_loadu_ps(ab + 16 * v);
  int64_t e = e0;
  for (; e + 3 < e1; e += 4) {
    const __m512 a = dot_row(va, P + (cols[e] - j0) * DORA_SP_NB);
    const __m512 b = dot_row(va, P + (cols[e + 1] - j0) * DORA_SP_NB);
    const __m512 c = dot_row(va, P + (cols[e + 2] - j0) * DORA_SP_NB);
    const __m512 d = dot_row(va, P + (cols[e + 3] - j0) * DORA_SP_NB);
    _mm_storeu_ps(out + e, _mm_add_ps(_mm_loadu_ps(out + e), fold4(a, b, c, d)));
  }
  if (e < e1) {  // the last 1-3 entries share one fold as well
    const int64_t left = e1 - e;
    const __m512 z = _mm512_setzero_ps();
    const __m512 a = dot_row(va, P + (cols[e] - j0) * DORA_SP_NB);
    const __m512 b = left > 1 ? dot_row(va, P + (cols[e + 1] - j0) * DORA_SP_NB) : z;
    const __m512 c = left > 2 ? dot_row(va, P + (cols[e + 2] - j0) * DORA_SP_NB) : z;
    const __mmask8 m = static_cast<__mmask8>((1u << left) - 1);
    _mm_mask_storeu_ps(out + e, m, _mm_add_ps(_mm_maskz_loadu_ps(m, out + e), fold4(a, b, c, z)));
  }
}

// Both in one walk (each panel row loaded once): out[e] += ab·row_e (four entries per reduction, as sddmm_token)
// and acc = Σ_e vals[e]·row_e, summed as spmm_token sums it: two accumulator sets (entries at even / odd offsets from
// e0) added at the end. One set made every entry wait on the previous one's FMA (4-cycle chains), and the panel row
// PREFETCH entries ahead is asked for in L1 while this one is summed (the two uses of a row take long enough that
// the L2 reads no longer overlap by themselves; the forward's spmm_token gains nothing from it). 2048² at p = 0.05,
// hot panel (/tmp harness): 19.7 ms a walk → 16.1 with two sets → 13.7–14.4 with the prefetch (8–12 ahead alike).
inline void sddmm_spmm_token(const float* ab, const float* vals, const int32_t* cols, int64_t e0, int64_t e1,
                             const float* P, int64_t j0, float* out, float* acc) {
  static_assert(NV % 2 == 0, "rows are summed in two halves");
  __m512 va[NV], s[NV], t[NV];
#pragma GCC unroll 16
  for (int v = 0; v < NV; v++) {
    va[v] = _mm512_loadu_ps(ab + 16 * v);
    s[v] = t[v] = _mm512_setzero_ps();
  }
  constexpr int64_t PREFETCH = 10;
  // one row: its dot with ab (16 lanes) returned, vals[e]·row added to S
  auto row = [&](int64_t e, __m512* S) {
    const float* f = P + (cols[std::min(e + PREFETCH, e1 - 1)] - j0) * DORA_SP_NB;  // inside this token's block
#pragma GCC unroll 16
    for (int v = 0; v < NV; v++) _mm_prefetch(reinterpret_cast<const char*>(f + 16 * v), _MM_HINT_T0);
    const float* p = P + (cols[e] - j0) * DORA_SP_NB;
    const __m512 x = _mm512_set1_ps(vals[e]);
    const __m512 r0 = _mm512_load_ps(p), r1 = _mm512_load_ps(p + 16);
    __m512 d0 = _mm512_mul_ps(va[0], r0), d1 = _mm512_mul_ps(va[1], r1);
    S[0] = _mm512_fmadd_ps(x, r0, S[0]);
    S[1] = _mm512_fmadd_ps(x, r1, S[1]);
#pragma GCC unroll 16
    for (int v = 2; v < NV; v += 2) {
      const __m512 ra = _mm512_load_ps(p + 16 * v), rb = _mm512_load_ps(p + 16 * v + 16);
      d0 = _mm512_fmadd_ps(va[v], ra, d0);
      d1 = _mm512_fmadd_ps(va[v + 1], rb, d1);
      S[v] = _mm512_fmadd_ps(x, ra, S[v]);
      S[v + 1] = _mm512_fmadd_ps(x, rb, S[v + 1]);
    }
    return _mm512_add_ps(d0, d1);
  };
  int64_t e = e0;
  for (; e + 3 < e1; e += 4) {
    const __m512 a = row(e, s), b = row(e + 1, t), c = row(e + 2, s), d = row(e + 3, t);
    _mm_storeu_ps(out + e, _mm_add_ps(_mm_loadu_ps(out + e), fold4(a, b, c, d)));
  }
  if (e < e1) {  // the last 1-3 entries share one fold too (a reduction each cost ~20% of a small layer's walk)
    const int64_t left = e1 - e;
    const __m512 z = _mm512_setzero_ps();
    const __m512 a = row(e, s), b = left > 1 ? row(e + 1, t) : z, c = left > 2 ? row(e + 2, s) : z;
    const __mmask8 m = static_cast<__mmask8>((1u << left) - 1);
    _mm_mask_storeu_ps(out + e, m, _mm_add_ps(_mm_maskz_loadu_ps(m, out + e), fold4(a, b, c, z)));
  }
#pragma GCC unroll 16
  for (int v = 0; v < NV; v++) _mm512_store_ps(acc + 16 * v, _mm512_add_ps(s[v], t[v]));
}

// sparse_impl.h pack() for a Linear weight (W stored [n, k], op(W)[j, i] = w[i·k + j]):
// P[jj·NB + ii] = scale[i0 + ii]·W[i0 + ii, j0 + jj] for ii < nb, jj < kb, zero for ii ≥ nb; 16×16 tiles transposed
// in registers (the scalar pack strode through P one float at a time: ~3.5 ms of each 2048² call at p = 0.05).
inline void pack_nt(const float* w, int64_t k, int64_t i0, int64_t nb, int64_t j0, int64_t kb, const float* scale,
                    float* P) {
  for (int64_t ib = 0; ib < DORA_SP_NB; ib += 16) {
    const int64_t lanes = nb - ib <= 0 ? 0 : nb - ib >= 16 ? 16 : nb - ib;
    const __mmask16 lm = static_cast<__mmask16>((1u << lanes) - 1);
    const __m512 sv = scale ? _mm512_maskz_loadu_ps(lm, scale + i0 + ib) : _mm512_set1_ps(1.0f);
    for (int64_t jb = 0; jb < kb; jb += 16) {
      const int64_t je = kb - jb < 16 ? kb - jb : 16;
      const __mmask16 km = static_cast<__mmask16>((1u << je) - 1);
      __m512 r[16];
      for (int i = 0; i < 16; i++)
        r[i] = i < lanes ? _mm512_maskz_loadu_ps(km, w + (i0 + ib + i) * k + j0 + jb) : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t q = 0; q < je; q++) _mm512_store_ps(P + (jb + q) * DORA_SP_NB + ib, _mm512_mul_ps(r[q], sv));
    }
  }
}

}  // namespace sp_avx512
}  // namespace dora

#include "sparse_impl.h"
