// AVX-512 dequantising B pack for the NF4 GEMM (nr = 32, the 14×32 float micro-kernel's sliver width).
// 16 codes (8 bytes) become 16 floats with one byte-duplicating unpack, one widening, one variable shift
// (even lanes take the high nibble, as bitsandbytes packs them) and a 16-entry in-register table lookup
// (vpermps reads only the low 4 index bits), times the block's scale.
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma; called only when dispatch picked avx512.
#include <immintrin.h>

#include "gemm.h"
#include "gemm_nf4.h"
#include "transpose_avx512.h"

namespace dora {
namespace {

constexpr int NR = 32;

// 16 values of Ŵ from flat index f (f % 16 == 0, so all in one quantisation block when block % 16 == 0).
inline __m512 decode16(const Nf4GemmArgs& g, __m512 lut, __m512i shifts, int64_t f) {
  const __m128i bytes = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(g.codes + (f >> 1)));
  const __m512i idx = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(bytes, bytes)), shifts);
  return _mm512_mul_ps(_mm512_permutexvar_ps(idx, lut), _mm512_set1_ps(g.absmax[f / g.block]));
}

}  // namespace

bool nf4_pack_b_avx512(const Nf4GemmArgs& g, int64_t j0, int64_t p0, int64_t nc, int64_t kc, float* dst) {
  if (g.block % 16 != 0) return false;
  const __m512 lut = _mm512_loadu_ps(g.lut);
  const __m512i shifts = _mm512_set_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4);
  if (g.form == kNT) {
    // W is n×k: B(p, j) = W[j][p]. Decode 16 rows × 16 steps, transpose into the sliver.
    if (g.k % 16 != 0 || p0 % 16 != 0 || kc % 16 != 0) return false;
    for (int64_t s = 0; s < nc; s += NR) {
      for (int h = 0; h < NR; h += 16) {
        const int64_t left = nc - s - h;
        const int lanes = left <= 0 ? 0 : left >= 16 ? 16 : static_cast<int>(left);
        for (int64_t p = 0; p < kc; p += 16) {
          __m512 r[16];
          for (int i = 0; i < 16; i++)
            r[i] = i < lanes ? decode16(g, lut, shifts, (j0 + s + h + i) * g.k + p0 + p) : _mm512_setzero_ps();
          transpose16(r);
          for (int q = 0; q < 16; q++) _mm512_store_ps(dst + (p + q) * NR + h, r[q]);
        }
      }
      dst += NR * kc;
    }
    return true;
  }
  // nn: W is k×n: B(p, j) = W[p][j], each step a contiguous run of the row.
  if (g.n % 16 != 0 || j0 % 16 != 0) return false;
  for (int64_t s = 0; s < nc; s += NR) {
    const int64_t cols = nc - s < NR ? nc - s : NR;
    for (int64_t p = 0; p < kc; p++) {
      const int64_t f = (p0 + p) * g.n + j0 + s;
      float* d = dst + p * NR;
      _mm512_store_ps(d, cols > 0 ? decode16(g, lut, shifts, f) : _mm512_setzero_ps());
      _mm512_store_ps(d + 16, cols > 16 ? decode16(g, lut, shifts, f + 16) : _mm512_setzero_ps());
    }
    dst += NR * kc;
  }
  return true;
}

}  // namespace dora
