// AVX2+FMA SGEMM micro-kernel, 6×16: 12 ymm accumulators, two B loads and six A broadcasts per k step.
// Compiled with -mavx2 -mfma; called only after dispatch.cc has checked the CPU.
#include <immintrin.h>

#include "gemm.h"

namespace dora {
namespace {

constexpr int MR = 6, NR = 16;

void kernel_6x16(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta) {
  __m256 acc[MR][2];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
  for (int64_t p = 0; p < kc; p++) {
    const __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
    a += MR;
    b += NR;
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    float* cr = c + r * ldc;
    if (beta) {
      acc[r][0] = _mm256_add_ps(_mm256_loadu_ps(cr), acc[r][0]);
      acc[r][1] = _mm256_add_ps(_mm256_loadu_ps(cr + 8), acc[r][1]);
    }
    _mm256_storeu_ps(cr, acc[r][0]);
    _mm256_storeu_ps(cr + 8, acc[r][1]);
  }
}

}  // namespace

extern const GemmKernel kGemmAvx2 = {"avx2", MR, NR, 256, 1536, 512, kernel_6x16, nullptr, nullptr, nullptr, nullptr};

}  // namespace dora
