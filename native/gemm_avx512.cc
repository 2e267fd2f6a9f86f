// AVX-512 SGEMM micro-kernel, 14×32: 28 zmm accumulators, per k step two aligned loads of the B
// sliver and 14 broadcasts of the A sliver (folded into the FMAs as {1to16} memory operands).
// Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mfma; called only after dispatch.cc
// has checked the CPU.
#include <immintrin.h>

#include "gemm.h"
#include "transpose_avx512.h"

namespace dora {
namespace {

constexpr int MR = 14, NR = 32;

void kernel_14x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta) {
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; p++) {
    const __m512 b0 = _mm512_load_ps(b), b1 = _mm512_load_ps(b + 16);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8 * NR), _MM_HINT_T0);
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
  if (beta) {
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      float* cr = c + r * ldc;
      _mm512_storeu_ps(cr, _mm512_add_ps(_mm512_loadu_ps(cr), acc[r][0]));
      _mm512_storeu_ps(cr + 16, _mm512_add_ps(_mm512_loadu_ps(cr + 16), acc[r][1]));
    }
  } else {
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      float* cr = c + r * ldc;
      _mm512_storeu_ps(cr, acc[r][0]);
      _mm512_storeu_ps(cr + 16, acc[r][1]);
    }
  }
}

// Edge tiles: R rows (a still strided by MR in the pack) × NV vectors of 16 columns, the last masked.
// Skips the zero padding's FMAs (n = 16 LoRA ranks would waste half of a 32-wide tile) and the tile copy.
template <int R, int NV>
void kernel_edge(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta, __mmask16 last) {
  __m512 acc[R][NV];
#pragma GCC unroll 14
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < kc; p++) {
    __m512 bv[NV];
    for (int v = 0; v < NV; v++) bv[v] = _mm512_load_ps(b + 16 * v);
#pragma GCC unroll 14
    for (int r = 0; r < R; r++) {
      const __m512 av = _mm512_set1_ps(a[r]);
      for (int v = 0; v < NV; v++) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 14
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) {
      const __mmask16 m = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
      float* cr = c + r * ldc + 16 * v;
      const __m512 x = beta ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, cr), acc[r][v]) : acc[r][v];
      _mm512_mask_storeu_ps(cr, m, x);
    }
}

template <int R>
void edge_rows(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta, int cols) {
  const int tail = cols - (cols > 16 ? 16 : 0);
  const __mmask16 last = static_cast<__mmask16>(tail >= 16 ? 0xFFFF : (1u << tail) - 1);
  if (cols > 16) kernel_edge<R, 2>(kc, a, b, c, ldc, beta, last);
  else kernel_edge<R, 1>(kc, a, b, c, ldc, beta, last);
}

void kernel_edge_14x32(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta, int rows, int cols) {
  using Fn = void (*)(int64_t, const float*, const float*, float*, int64_t, int, int);
  static const Fn by_rows[MR] = {edge_rows<1>, edge_rows<2>, edge_rows<3>, edge_rows<4>, edge_rows<5>,
                                 edge_rows<6>, edge_rows<7>, edge_rows<8>, edge_rows<9>, edge_rows<10>,
                                 edge_rows<11>, edge_rows<12>, edge_rows<13>, edge_rows<14>};
  by_rows[rows - 1](kc, a, b, c, ldc, beta, cols);
}

// Transposing pack: `lanes` (≤ 16) storage rows of `src` (row stride ld, starting at column p0), each
// read along kc, written so that step p holds the lanes contiguously at dst + p·pitch + lane; times sp[p] per
// step and sl[lane] per lane where those are set (B's scale, PackBFn).
inline void pack_transpose(const float* src, int64_t ld, int lanes, int64_t kc, float* dst, int pitch,
                           const float* sp = nullptr, const float* sl = nullptr) {
  const __mmask16 lm = static_cast<__mmask16>((1u << lanes) - 1);
  const __m512 lane_scale = sl ? _mm512_maskz_loadu_ps(lm, sl) : _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= kc; p += 16) {
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = i < lanes ? _mm512_loadu_ps(src + i * ld + p) : _mm512_setzero_ps();
    if (sp) {
      const __m512 f = _mm512_loadu_ps(sp + p);
      for (int i = 0; i < lanes; i++) r[i] = _mm512_mul_ps(r[i], f);
    }
    transpose16(r);
    if (sl) for (int q = 0; q < 16; q++) r[q] = _mm512_mul_ps(r[q], lane_scale);
    for (int q = 0; q < 16; q++) _mm512_mask_storeu_ps(dst + (p + q) * pitch, lm, r[q]);
  }
  if (p < kc) {
    const __mmask16 km = static_cast<__mmask16>((1u << (kc - p)) - 1);
    __m512 r[16];
    for (int i = 0; i < 16; i++) r[i] = i < lanes ? _mm512_maskz_loadu_ps(km, src + i * ld + p) : _mm512_setzero_ps();
    if (sp) {
      const __m512 f = _mm512_maskz_loadu_ps(km, sp + p);
      for (int i = 0; i < lanes; i++) r[i] = _mm512_mul_ps(r[i], f);
    }
    transpose16(r);
    if (sl) for (int q = 0; q < 16; q++) r[q] = _mm512_mul_ps(r[q], lane_scale);
    for (int q = 0; q < kc - p; q++) _mm512_mask_storeu_ps(dst + (p + q) * pitch, lm, r[q]);
  }
}

// Contiguous pack: step p copies `lanes` floats from src + p·ld to dst + p·pitch, zero-filling to `width`;
// times sp[p] per step and sl[lane] per lane where those are set (B's scale, PackBFn).
inline void pack_copy(const float* src, int64_t ld, int lanes, int64_t kc, float* dst, int width,
                      const float* sp = nullptr, const float* sl = nullptr) {
  for (int off = 0; off < width; off += 16) {
    const int n = lanes - off;
    const __mmask16 m = n >= 16 ? 0xFFFF : n <= 0 ? 0 : static_cast<__mmask16>((1u << n) - 1);
    const __mmask16 wm = width - off >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << (width - off)) - 1);
    if (sl) {
      const __m512 f = _mm512_maskz_loadu_ps(m, sl + off);
      for (int64_t p = 0; p < kc; p++)
        _mm512_mask_storeu_ps(dst + p * width + off, wm, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + p * ld + off), f));
    } else if (sp) {
      for (int64_t p = 0; p < kc; p++)
        _mm512_mask_storeu_ps(dst + p * width + off, wm,
                              _mm512_mul_ps(_mm512_maskz_loadu_ps(m, src + p * ld + off), _mm512_set1_ps(sp[p])));
    } else {
      for (int64_t p = 0; p < kc; p++)
        _mm512_mask_storeu_ps(dst + p * width + off, wm, _mm512_maskz_loadu_ps(m, src + p * ld + off));
    }
  }
}

void pack_a_avx512(int form, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc, int64_t kc, float* dst) {
  for (int64_t s = 0; s < mc; s += MR) {
    const int rows = static_cast<int>(mc - s < MR ? mc - s : MR);
    if (form == kTN) pack_copy(a + p0 * lda + i0 + s, lda, rows, kc, dst, MR);
    else pack_transpose(a + (i0 + s) * lda + p0, lda, rows, kc, dst, MR);
    dst += MR * kc;
  }
}

void pack_b_avx512(int form, const float* b, int64_t ldb, int64_t j0, int64_t p0, int64_t nc, int64_t kc, float* dst,
                   const float* scale, int axis) {
  const float* sp = scale && axis == 0 ? scale : nullptr;
  for (int64_t s = 0; s < nc; s += NR) {
    const int cols = static_cast<int>(nc - s < NR ? nc - s : NR);
    const float* sn = scale && axis == 1 ? scale + s : nullptr;
    if (form != kNT) {
      pack_copy(b + p0 * ldb + j0 + s, ldb, cols, kc, dst, NR, sp, sn);
    } else {
      for (int h = 0; h < NR; h += 16) {
        const int lanes = cols - h <= 0 ? 0 : cols - h >= 16 ? 16 : cols - h;
        pack_transpose(b + (j0 + s + h) * ldb + p0, ldb, lanes, kc, dst + h, NR, sp, sn ? sn + h : nullptr);
        if (lanes == 0) for (int64_t p = 0; p < kc; p++) _mm512_store_ps(dst + p * NR + h, _mm512_setzero_ps());
      }
    }
    dst += NR * kc;
  }
}

// ---- GEMV (small m, see GemvFn in gemm.h): B read in place, no packing ----

inline __mmask16 tail_mask(int64_t r) { return static_cast<__mmask16>(r >= 16 ? 0xFFFF : (1u << r) - 1); }

// nt: R rows of B against a, R independent accumulators (one per row) to hide the FMA latency.
template <int R>
inline void dot_rows(int64_t k, const float* a, const float* b, int64_t ldb, float* c, bool acc) {
  __m512 s[R];
  for (int r = 0; r < R; r++) s[r] = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 16 <= k; p += 16) {
    const __m512 av = _mm512_loadu_ps(a + p);
    for (int r = 0; r < R; r++) s[r] = _mm512_fmadd_ps(av, _mm512_loadu_ps(b + r * ldb + p), s[r]);
  }
  if (p < k) {
    const __mmask16 m = tail_mask(k - p);
    const __m512 av = _mm512_maskz_loadu_ps(m, a + p);
    for (int r = 0; r < R; r++) s[r] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(m, b + r * ldb + p), s[r]);
  }
  for (int r = 0; r < R; r++) {
    const float v = _mm512_reduce_add_ps(s[r]);
    c[r] = acc ? c[r] + v : v;
  }
}

// One row of B, two accumulators.
inline void dot_row(int64_t k, const float* a, const float* b, float* c, bool acc) {
  __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
  int64_t p = 0;
  for (; p + 32 <= k; p += 32) {
    s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p), _mm512_loadu_ps(b + p), s0);
    s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + p + 16), _mm512_loadu_ps(b + p + 16), s1);
  }
  for (; p < k; p += 16) {
    const __mmask16 m = tail_mask(k - p);
    s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + p), _mm512_maskz_loadu_ps(m, b + p), s0);
  }
  const float v = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
  *c = acc ? *c + v : v;
}

// nn: NV vectors of 16 columns held in registers over all k rows of B; the last vector masked.
template <int NV>
inline void axpy_cols(int64_t k, const float* a, const float* b, int64_t ldb, float* c, bool acc, __mmask16 last) {
  __m512 s[NV];
  for (int v = 0; v < NV; v++) s[v] = _mm512_setzero_ps();
  for (int64_t p = 0; p < k; p++) {
    const __m512 av = _mm512_set1_ps(a[p]);
    const float* br = b + p * ldb;
    for (int v = 0; v < NV - 1; v++) s[v] = _mm512_fmadd_ps(av, _mm512_loadu_ps(br + 16 * v), s[v]);
    s[NV - 1] = _mm512_fmadd_ps(av, _mm512_maskz_loadu_ps(last, br + 16 * (NV - 1)), s[NV - 1]);
  }
  for (int v = 0; v < NV; v++) {
    const __mmask16 m = v == NV - 1 ? last : static_cast<__mmask16>(0xFFFF);
    float* cv = c + 16 * v;
    const __m512 x = acc ? _mm512_add_ps(_mm512_maskz_loadu_ps(m, cv), s[v]) : s[v];
    _mm512_mask_storeu_ps(cv, m, x);
  }
}

void gemv_avx512(int form, int64_t n, int64_t k, const float* a, const float* b, int64_t ldb, float* c, bool acc) {
  if (form == kNT) {
    int64_t j = 0;
    for (; j + 8 <= n; j += 8) dot_rows<8>(k, a, b + j * ldb, ldb, c + j, acc);
    if (j + 4 <= n) {
      dot_rows<4>(k, a, b + j * ldb, ldb, c + j, acc);
      j += 4;
    }
    for (; j < n; j++) dot_row(k, a, b + j * ldb, c + j, acc);
    return;
  }
  constexpr int64_t W = 8 * 16;
  int64_t j = 0;
  for (; j + W <= n; j += W) axpy_cols<8>(k, a, b + j, ldb, c + j, acc, 0xFFFF);
  const int64_t rest = n - j;
  if (rest <= 0) return;
  const int nv = static_cast<int>((rest + 15) / 16);
  const __mmask16 last = tail_mask(rest - 16 * (nv - 1));
  switch (nv) {
    case 1: axpy_cols<1>(k, a, b + j, ldb, c + j, acc, last); break;
    case 2: axpy_cols<2>(k, a, b + j, ldb, c + j, acc, last); break;
    case 3: axpy_cols<3>(k, a, b + j, ldb, c + j, acc, last); break;
    case 4: axpy_cols<4>(k, a, b + j, ldb, c + j, acc, last); break;
    case 5: axpy_cols<5>(k, a, b + j, ldb, c + j, acc, last); break;
    case 6: axpy_cols<6>(k, a, b + j, ldb, c + j, acc, last); break;
    case 7: axpy_cols<7>(k, a, b + j, ldb, c + j, acc, last); break;
    default: axpy_cols<8>(k, a, b + j, ldb, c + j, acc, last); break;
  }
}

}  // namespace

// kc·NR·4 = 48 KiB B sliver streamed from L2; A sliver mr·kc·4 = 21 KiB in L1; B block kc×nc = 768 KiB
// (kc 384 / nc 512 measured best among kc 256-512, nc 384-1536 on the 2-core Zen 5 box).
extern const GemmKernel kGemmAvx512 = {"avx512", MR, NR, 384, 2016, 512, kernel_14x32, pack_a_avx512, pack_b_avx512,
                                        kernel_edge_14x32, gemv_avx512};

}  // namespace dora
