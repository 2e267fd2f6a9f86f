// NF4 GEMM driver (portable C++17): the float GEMM's blocking with the B pack replaced by a dequantising one.
//
// Loop nest per thread, for its band of columns of C (rows of W in the nt form):
//   jc (nc)      ┐ B block kc×nc dequantised once (each weight element is decoded exactly once per call,
//     pc (kc)    ┘ whatever m is), kept in L2
//       ic (mc)    pack A[ic:+mc, pc:+kc] (float, cheap: m·k per jc block)
//         ir (mr)  A sliver in L1 while B slivers stream through the float micro-kernel.
// kc is a multiple of 64 so that 16-value runs never straddle a quantisation block in the SIMD packer.
#include "gemm_nf4.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "gemm.h"
#include "pool.h"

namespace dora {
namespace {

inline float deq(const Nf4GemmArgs& g, int64_t f) {
  const uint8_t byte = g.codes[f >> 1];
  return g.lut[(f & 1) == 0 ? byte >> 4 : byte & 15] * g.absmax[f / g.block];
}

// Ŵ-element of B(p, j): nt reads W[j][p] (W is n×k), nn reads W[p][j] (W is k×n).
inline int64_t flat(const Nf4GemmArgs& g, int64_t p, int64_t j) { return g.form == kNT ? j * g.k + p : p * g.n + j; }

void pack_b_generic(const Nf4GemmArgs& g, int nr, int64_t j0, int64_t p0, int64_t nc, int64_t kc, float* dst) {
  for (int64_t s = 0; s < nc; s += nr) {
    for (int c = 0; c < nr; c++) {
      const int64_t j = j0 + s + c;
      float* d = dst + c;
      if (s + c >= nc) {
        for (int64_t p = 0; p < kc; p++) d[p * nr] = 0.f;
      } else {
        for (int64_t p = 0; p < kc; p++) d[p * nr] = deq(g, flat(g, p0 + p, j));
      }
    }
    dst += nr * kc;
  }
}

// Generic A pack (row-major A, m×k): sliver s, step p holds A(i0+s·mr+r, p0+p).
void pack_a_generic(int mr, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc, int64_t kc, float* dst) {
  for (int64_t s = 0; s < mc; s += mr) {
    for (int r = 0; r < mr; r++) {
      float* d = dst + r;
      if (s + r < mc) {
        const float* src = a + (i0 + s + r) * lda + p0;
        for (int64_t p = 0; p < kc; p++) d[p * mr] = src[p];
      } else {
        for (int64_t p = 0; p < kc; p++) d[p * mr] = 0.f;
      }
    }
    dst += mr * kc;
  }
}

struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      p = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
      if (!p) throw std::bad_alloc();
      cap = n;
    }
    return p;
  }
};
thread_local Scratch tl_a, tl_b;

int64_t round_up(int64_t x, int64_t unit) { return (x + unit - 1) / unit * unit; }
// ceil(len / ceil(len / target)) rounded up to `unit`: equal blocks no larger than ~target.
int64_t balanced(int64_t len, int64_t target, int64_t unit) {
  target = std::max<int64_t>(unit, target / unit * unit);
  const int64_t blocks = (len + target - 1) / target;
  return round_up((len + blocks - 1) / blocks, unit);
}

struct Plan {
  const Nf4GemmArgs* g;
  const GemmKernel* K;
  Nf4PackB fast;  // nullptr: generic packer only
  int64_t band;   // columns of C per task (multiple of nr)
};

void serial(const Plan& P, int64_t j0, int64_t j1) {
  const Nf4GemmArgs& g = *P.g;
  const GemmKernel& K = *P.K;
  const int MR = K.mr, NR = K.nr;
  const int64_t KC = balanced(g.k, 384, 64), NC = balanced(j1 - j0, 512, NR), MC = balanced(g.m, K.mc, MR);
  float* abuf = tl_a.get(static_cast<size_t>(std::min(MC, round_up(g.m, MR)) * std::min(KC, g.k)));
  float* bbuf = tl_b.get(static_cast<size_t>(std::min(NC, round_up(j1 - j0, NR)) * std::min(KC, g.k)));
  alignas(64) float tile[16 * 64];
  for (int64_t jc = j0; jc < j1; jc += NC) {
    const int64_t nc = std::min(NC, j1 - jc);
    for (int64_t pc = 0; pc < g.k; pc += KC) {
      const int64_t kc = std::min(KC, g.k - pc);
      const int beta = (pc > 0 || g.accumulate) ? 1 : 0;
      if (!(P.fast && P.fast(g, jc, pc, nc, kc, bbuf))) pack_b_generic(g, NR, jc, pc, nc, kc, bbuf);
      for (int64_t ic = 0; ic < g.m; ic += MC) {
        const int64_t mc = std::min(MC, g.m - ic);
        if (K.pack_a) K.pack_a(kNN, g.a, g.lda, ic, pc, mc, kc, abuf);
        else pack_a_generic(MR, g.a, g.lda, ic, pc, mc, kc, abuf);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int64_t rows = std::min<int64_t>(MR, mc - ir);
          const float* ap = abuf + ir * kc;
          float* crow = g.c + (ic + ir) * g.ldc + jc;
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t cols = std::min<int64_t>(NR, nc - jr);
            const float* bp = bbuf + jr * kc;
            if (rows == MR && cols == NR) {
              K.kernel(kc, ap, bp, crow + jr, g.ldc, beta);
            } else if (K.edge) {
              K.edge(kc, ap, bp, crow + jr, g.ldc, beta, static_cast<int>(rows), static_cast<int>(cols));
            } else {
              K.kernel(kc, ap, bp, tile, NR, 0);
              for (int64_t r = 0; r < rows; r++) {
                float* cr = crow + r * g.ldc + jr;
                const float* tr = tile + r * NR;
                if (beta) for (int64_t q = 0; q < cols; q++) cr[q] += tr[q];
                else for (int64_t q = 0; q < cols; q++) cr[q] = tr[q];
              }
            }
          }
        }
      }
    }
  }
}

void task(void* ctx, int t, int) {
  const Plan& P = *static_cast<const Plan*>(ctx);
  const int64_t lo = t * P.band, hi = std::min(P.g->n, lo + P.band);
  if (lo < hi) serial(P, lo, hi);
}

}  // namespace

void gemm_nf4_naive(const Nf4GemmArgs& g) {
  for (int64_t i = 0; i < g.m; i++)
    for (int64_t j = 0; j < g.n; j++) {
      float s = 0.f;
      for (int64_t p = 0; p < g.k; p++) s += g.a[i * g.lda + p] * deq(g, flat(g, p, j));
      float* cij = g.c + i * g.ldc + j;
      *cij = g.accumulate ? *cij + s : s;
    }
}

void gemm_nf4(const Nf4GemmArgs& g) {
  if (g.m <= 0 || g.n <= 0) return;
  if (g.k <= 0) {
    if (!g.accumulate)
      for (int64_t i = 0; i < g.m; i++) std::memset(g.c + i * g.ldc, 0, sizeof(float) * static_cast<size_t>(g.n));
    return;
  }
  const GemmKernel& K = gemm_kernel();
  Plan P{&g, &K, nullptr, g.n};
#ifdef DORA_X86_KERNELS
  if (std::strcmp(K.isa, "avx512") == 0 && K.nr == 32) P.fast = nf4_pack_b_avx512;
#endif
  const int threads = num_threads();
  const double flops = 2.0 * static_cast<double>(g.m) * g.n * g.k;
  int tasks = 1;
  if (threads > 1 && flops >= 2e6) {
    const int64_t units = (g.n + K.nr - 1) / K.nr;
    tasks = static_cast<int>(std::min<int64_t>(threads, units));
    P.band = (units + tasks - 1) / tasks * K.nr;
    tasks = static_cast<int>((g.n + P.band - 1) / P.band);
  }
  if (tasks <= 1) serial(P, 0, g.n);
  else parallel_run(tasks, task, &P);
}

}  // namespace dora
