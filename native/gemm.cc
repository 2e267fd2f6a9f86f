// Blocked, packed SGEMM driver (portable C++17) plus gemm_naive and the portable micro-kernel.
//
// Loop nest per thread, for the sub-problem it owns (rows or columns of C, or whole batch items):
//   ic (mc rows of A, packed once per kc step; lives in L3)
//     pc (kc)          pack A[ic:ic+mc, pc:pc+kc] into mr-row slivers
//       jc (nc)        pack B[pc:pc+kc, jc:jc+nc] into nr-column slivers (lives in L2)
//         ir (mr)      one A sliver (mr×kc) stays in L1 ...
//           jr (nr)    ... while B slivers stream from L2 through the micro-kernel.
// The transposed forms are absorbed by the packing routines (no transposed copies of the operands);
// ragged edges are zero-padded in the packs and written by masked edge kernels (or a tile buffer).
// DORA_KC / DORA_MC / DORA_NC override the ISA's block sizes (read once; for tuning runs only).
#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>
#include <new>

#include "pool.h"

namespace dora {
namespace {

// Operand accessors: A(i,p) and B(p,j) of the logical product, whatever the storage form.
inline const float* a_at(int form, const float* a, int64_t lda, int64_t i, int64_t p) {
  return form == kTN ? a + p * lda + i : a + i * lda + p;
}
inline const float* b_at(int form, const float* b, int64_t ldb, int64_t p, int64_t j) {
  return form == kNT ? b + j * ldb + p : b + p * ldb + j;
}

// Pack A[i0:i0+mc, p0:p0+kc] into slivers of MR rows: sliver s, step p holds A(i0+s·MR+r, p0+p), r<MR.
template <int MR>
void pack_a(int form, const float* a, int64_t lda, int64_t i0, int64_t p0, int64_t mc, int64_t kc, float* dst) {
  for (int64_t s = 0; s < mc; s += MR) {
    const int rows = static_cast<int>(std::min<int64_t>(MR, mc - s));
    if (form == kTN) {
      // A stored k×m: each step is a contiguous run of MR floats.
      for (int64_t p = 0; p < kc; p++) {
        const float* src = a + (p0 + p) * lda + i0 + s;
        float* d = dst + p * MR;
        if (rows == MR) {
          for (int r = 0; r < MR; r++) d[r] = src[r];
        } else {
          for (int r = 0; r < rows; r++) d[r] = src[r];
          for (int r = rows; r < MR; r++) d[r] = 0.f;
        }
      }
    } else {
      // A stored m×k: transpose MR row streams into the sliver.
      for (int r = 0; r < MR; r++) {
        float* d = dst + r;
        if (r < rows) {
          const float* src = a + (i0 + s + r) * lda + p0;
          for (int64_t p = 0; p < kc; p++) d[p * MR] = src[p];
        } else {
          for (int64_t p = 0; p < kc; p++) d[p * MR] = 0.f;
        }
      }
    }
    dst += MR * kc;
  }
}

// Pack B[p0:p0+kc, j0:j0+nc] into slivers of NR columns: sliver s, step p holds B(p0+p, j0+s·NR+c), times
// scale[p] (axis 0) or scale[s·NR+c] (axis 1) when scale is set (see PackBFn).
template <int NR>
void pack_b(int form, const float* b, int64_t ldb, int64_t j0, int64_t p0, int64_t nc, int64_t kc, float* dst,
            const float* scale, int axis) {
  const float* sp = scale && axis == 0 ? scale : nullptr;
  for (int64_t s = 0; s < nc; s += NR) {
    const int cols = static_cast<int>(std::min<int64_t>(NR, nc - s));
    const float* sn = scale && axis == 1 ? scale + s : nullptr;
    if (form != kNT) {
      for (int64_t p = 0; p < kc; p++) {
        const float* src = b + (p0 + p) * ldb + j0 + s;
        float* d = dst + p * NR;
        const float f = sp ? sp[p] : 1.f;
        if (sn) for (int c = 0; c < cols; c++) d[c] = src[c] * sn[c];
        else if (sp) for (int c = 0; c < cols; c++) d[c] = src[c] * f;
        else std::memcpy(d, src, sizeof(float) * static_cast<size_t>(cols));
        for (int c = cols; c < NR; c++) d[c] = 0.f;
      }
    } else {
      // B stored n×k: column j of B(p, j) is row j of storage.
      for (int c = 0; c < NR; c++) {
        float* d = dst + c;
        if (c < cols) {
          const float* src = b + (j0 + s + c) * ldb + p0;
          const float f = sn ? sn[c] : 1.f;
          if (sp) for (int64_t p = 0; p < kc; p++) d[p * NR] = src[p] * sp[p];
          else for (int64_t p = 0; p < kc; p++) d[p * NR] = src[p] * f;
        } else {
          for (int64_t p = 0; p < kc; p++) d[p * NR] = 0.f;
        }
      }
    }
    dst += NR * kc;
  }
}

using PackA = void (*)(int, const float*, int64_t, int64_t, int64_t, int64_t, int64_t, float*);

PackA pack_a_for(int mr) {
  switch (mr) {
    case 14: return pack_a<14>;
    case 12: return pack_a<12>;
    case 8: return pack_a<8>;
    case 6: return pack_a<6>;
    default: return pack_a<4>;
  }
}
PackBFn pack_b_for(int nr) {
  switch (nr) {
    case 64: return pack_b<64>;
    case 48: return pack_b<48>;
    case 32: return pack_b<32>;
    case 16: return pack_b<16>;
    default: return pack_b<8>;
  }
}

// Per-thread packing buffers, grown on demand and kept (64-byte aligned).
struct Scratch {
  float* p = nullptr;
  size_t cap = 0;
  ~Scratch() { std::free(p); }  // pool threads end when setNumThreads resizes the pool
  float* get(size_t n) {
    if (n > cap) {
      std::free(p);
      cap = 0;
      p = static_cast<float*>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
      if (!p) throw std::bad_alloc();
      cap = n;
    }
    return p;
  }
};
thread_local Scratch tl_abuf, tl_bbuf;

// Block size for extent `len`: ceil(len / nblocks) rounded up to `unit`, nblocks = ceil(len / target).
int64_t balanced(int64_t len, int64_t target, int64_t unit) {
  target = std::max<int64_t>(unit, target / unit * unit);
  const int64_t blocks = (len + target - 1) / target;
  const int64_t per = (len + blocks - 1) / blocks;
  return (per + unit - 1) / unit * unit;
}

// One single-threaded GEMM on a (sub)problem: C[m×n] (+)= A(·)·B(·) with accessors by form.
// bscale (see GemmArgs) is applied by B's packer.
void gemm_serial(const GemmKernel& K, int form, int64_t m, int64_t n, int64_t k,
                 const float* a, int64_t lda, const float* b, int64_t ldb, float* c, int64_t ldc, bool acc,
                 const float* bscale = nullptr, int bscale_axis = 0) {
  const int MR = K.mr, NR = K.nr;
  static const int64_t eKC = std::getenv("DORA_KC") ? std::atoll(std::getenv("DORA_KC")) : 0;
  static const int64_t eMC = std::getenv("DORA_MC") ? std::atoll(std::getenv("DORA_MC")) : 0;
  static const int64_t eNC = std::getenv("DORA_NC") ? std::atoll(std::getenv("DORA_NC")) : 0;
  // Balanced blocks: split each dimension into equal blocks no larger than the tuned size.
  const int64_t KC = balanced(k, eKC ? eKC : K.kc, 1);
  const int64_t MC = balanced(m, eMC ? eMC : K.mc, MR), NC = balanced(n, eNC ? eNC : K.nc, NR);
  const int64_t mcap = std::min(MC, (m + MR - 1) / MR * MR), ncap = std::min(NC, (n + NR - 1) / NR * NR);
  const int64_t kcap = std::min(KC, k);
  float* abuf = tl_abuf.get(static_cast<size_t>(mcap * kcap));
  float* bbuf = tl_bbuf.get(static_cast<size_t>(ncap * kcap));
  const PackA packA = K.pack_a ? K.pack_a : pack_a_for(MR);
  const PackBFn packB = K.pack_b ? K.pack_b : pack_b_for(NR);
  alignas(64) float tile[16 * 64];

  for (int64_t ic = 0; ic < m; ic += MC) {
    const int64_t mc = std::min(MC, m - ic);
    for (int64_t pc = 0; pc < k; pc += KC) {
      const int64_t kc = std::min(KC, k - pc);
      const int beta = (pc > 0 || acc) ? 1 : 0;
      packA(form, a, lda, ic, pc, mc, kc, abuf);
      for (int64_t jc = 0; jc < n; jc += NC) {
        const int64_t nc = std::min(NC, n - jc);
        packB(form, b, ldb, jc, pc, nc, kc, bbuf, bscale ? bscale + (bscale_axis == 0 ? pc : jc) : nullptr, bscale_axis);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          const int64_t rows = std::min<int64_t>(MR, mc - ir);
          const float* ap = abuf + ir * kc;
          float* crow = c + (ic + ir) * ldc + jc;
          for (int64_t jr = 0; jr < nc; jr += NR) {
            const int64_t cols = std::min<int64_t>(NR, nc - jr);
            const float* bp = bbuf + jr * kc;
            if (rows == MR && cols == NR) {
              K.kernel(kc, ap, bp, crow + jr, ldc, beta);
            } else if (K.edge) {
              K.edge(kc, ap, bp, crow + jr, ldc, beta, static_cast<int>(rows), static_cast<int>(cols));
            } else {
              K.kernel(kc, ap, bp, tile, NR, 0);
              for (int64_t r = 0; r < rows; r++) {
                float* cr = crow + r * ldc + jr;
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

// Tiny problems: direct loops (packing would cost more than the product).
void gemm_small(int form, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
                const float* b, int64_t ldb, float* c, int64_t ldc, bool acc,
                const float* bscale = nullptr, int bscale_axis = 0) {
  const float* sk = bscale && bscale_axis == 0 ? bscale : nullptr;
  const float* sn = bscale && bscale_axis == 1 ? bscale : nullptr;
  for (int64_t i = 0; i < m; i++) {
    float* cr = c + i * ldc;
    if (!acc) for (int64_t j = 0; j < n; j++) cr[j] = 0.f;
    if (form == kNT) {
      const float* ar = a + i * lda;
      for (int64_t j = 0; j < n; j++) {
        const float* br = b + j * ldb;
        float s = 0.f;
        for (int64_t p = 0; p < k; p++) s += ar[p] * (sk ? br[p] * sk[p] : br[p]);
        cr[j] += sn ? s * sn[j] : s;
      }
    } else {
      for (int64_t p = 0; p < k; p++) {
        const float av = *a_at(form, a, lda, i, p) * (sk ? sk[p] : 1.f);
        const float* br = b + p * ldb;
        if (sn) for (int64_t j = 0; j < n; j++) cr[j] += av * (br[j] * sn[j]);
        else for (int64_t j = 0; j < n; j++) cr[j] += av * br[j];
      }
    }
  }
}

void zero_or_keep(int64_t m, int64_t n, float* c, int64_t ldc, bool acc) {
  if (acc) return;
  for (int64_t i = 0; i < m; i++) std::memset(c + i * ldc, 0, sizeof(float) * static_cast<size_t>(n));
}

// Parallel plan: each task runs gemm_serial on whole batch items, or on a band of rows/columns.
struct Plan {
  const GemmArgs* g;
  const GemmKernel* K;
  int tasks;
  bool by_batch;  // tasks own batch items
  bool split_m;   // else split n
  int64_t band;   // rows (split_m) or columns per task
};

void run_item(const Plan& P, int64_t t, int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
  const GemmArgs& g = *P.g;
  const float* a = g.a + t * g.strideA;
  const float* b = g.b + t * g.strideB;
  float* c = g.c + t * g.strideC;
  const int64_t m = i1 - i0, n = j1 - j0;
  if (m <= 0 || n <= 0) return;
  const float* as = g.form == kTN ? a + i0 : a + i0 * g.lda;
  const float* bs = g.form == kNT ? b + j0 * g.ldb : b + j0;
  const float* sc = g.bscale && g.bscale_axis == 1 ? g.bscale + j0 : g.bscale;
  gemm_serial(*P.K, g.form, m, n, g.k, as, g.lda, bs, g.ldb, c + i0 * g.ldc + j0, g.ldc, g.accumulate, sc, g.bscale_axis);
}

void plan_task(void* ctx, int task, int ntasks) {
  const Plan& P = *static_cast<const Plan*>(ctx);
  const GemmArgs& g = *P.g;
  if (P.by_batch) {
    for (int64_t t = task; t < g.batch; t += ntasks) run_item(P, t, 0, g.m, 0, g.n);
    return;
  }
  const int64_t lo = task * P.band, hi = lo + P.band;
  for (int64_t t = 0; t < g.batch; t++) {
    if (P.split_m) run_item(P, t, lo, std::min(hi, g.m), 0, g.n);
    else run_item(P, t, 0, g.m, lo, std::min(hi, g.n));
  }
}

// Portable GEMV (see GemvFn): eight partial sums per dot product so the compiler can vectorise.
void gemv_portable(int form, int64_t n, int64_t k, const float* a, const float* b, int64_t ldb, float* c, bool acc) {
  if (form == kNT) {
    for (int64_t j = 0; j < n; j++) {
      const float* br = b + j * ldb;
      float s8[8] = {};
      int64_t p = 0;
      for (; p + 8 <= k; p += 8)
        for (int q = 0; q < 8; q++) s8[q] += a[p + q] * br[p + q];
      float s = ((s8[0] + s8[1]) + (s8[2] + s8[3])) + ((s8[4] + s8[5]) + (s8[6] + s8[7]));
      for (; p < k; p++) s += a[p] * br[p];
      c[j] = acc ? c[j] + s : s;
    }
  } else {
    if (!acc) std::memset(c, 0, sizeof(float) * static_cast<size_t>(n));
    for (int64_t p = 0; p < k; p++) {
      const float av = a[p];
      const float* br = b + p * ldb;
      for (int64_t j = 0; j < n; j++) c[j] += av * br[j];
    }
  }
}

// Small m (nn / nt): each row of A against B read in place, columns j0..j1 of batch item t.
struct GemvPlan {
  const GemmArgs* g;
  GemvFn fn;
  bool by_batch;
  int64_t band;  // columns per task (when not by batch)
};

void gemv_item(const GemvPlan& P, int64_t t, int64_t j0, int64_t j1) {
  const GemmArgs& g = *P.g;
  if (j1 <= j0) return;
  const float* a = g.a + t * g.strideA;
  const float* b = g.b + t * g.strideB;
  float* c = g.c + t * g.strideC;
  const float* bs = g.form == kNT ? b + j0 * g.ldb : b + j0;
  if (!g.bscale) {
    for (int64_t i = 0; i < g.m; i++) P.fn(g.form, j1 - j0, g.k, a + i * g.lda, bs, g.ldb, c + i * g.ldc + j0, g.accumulate);
    return;
  }
  // a scaled B without touching B: along k, scale the row of A (a·diag(s)·B); along n, scale the product's columns
  std::vector<float> tmp(static_cast<size_t>(g.bscale_axis == 0 ? g.k : j1 - j0));
  for (int64_t i = 0; i < g.m; i++) {
    const float* ar = a + i * g.lda;
    float* cr = c + i * g.ldc + j0;
    if (g.bscale_axis == 0) {
      for (int64_t p = 0; p < g.k; p++) tmp[p] = ar[p] * g.bscale[p];
      P.fn(g.form, j1 - j0, g.k, tmp.data(), bs, g.ldb, cr, g.accumulate);
    } else {
      P.fn(g.form, j1 - j0, g.k, ar, bs, g.ldb, tmp.data(), false);
      for (int64_t j = 0; j < j1 - j0; j++) cr[j] = (g.accumulate ? cr[j] : 0.f) + tmp[j] * g.bscale[j0 + j];
    }
  }
}

void gemv_task(void* ctx, int task, int ntasks) {
  const GemvPlan& P = *static_cast<const GemvPlan*>(ctx);
  const GemmArgs& g = *P.g;
  if (P.by_batch) {
    for (int64_t t = task; t < g.batch; t += ntasks) gemv_item(P, t, 0, g.n);
    return;
  }
  const int64_t lo = task * P.band, hi = std::min(lo + P.band, g.n);
  for (int64_t t = 0; t < g.batch; t++) gemv_item(P, t, lo, hi);
}

void gemv_run(const GemmArgs& g, const GemmKernel& K, int threads) {
  GemvPlan P{&g, K.gemv ? K.gemv : gemv_portable, false, g.n};
  int tasks = 1;
  // ~1M multiply-adds in total before the pool hand-off pays.
  if (threads > 1 && static_cast<double>(g.m) * g.n * g.k * g.batch >= 1048576.0) {
    const bool c_disjoint = g.strideC >= (g.m - 1) * g.ldc + g.n;
    if (g.batch >= threads && c_disjoint) {
      P.by_batch = true;
      tasks = threads;
    } else {
      const int64_t unit = 16, units = (g.n + unit - 1) / unit;
      const int64_t t = std::min<int64_t>(threads, units);
      P.band = (units + t - 1) / t * unit;
      tasks = static_cast<int>((g.n + P.band - 1) / P.band);
    }
  }
  if (tasks <= 1) {
    P.by_batch = false;
    P.band = g.n;
    gemv_task(&P, 0, 1);
  } else {
    parallel_run(tasks, gemv_task, &P);
  }
}

// The driver behind gemm() and gemm_single(); `threads` bounds the pool tasks (1: the calling thread only).
void gemm_run(const GemmArgs& g, int threads) {
  if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return;
  if (g.k <= 0) {
    for (int64_t t = 0; t < g.batch; t++) zero_or_keep(g.m, g.n, g.c + t * g.strideC, g.ldc, g.accumulate);
    return;
  }
  const double flops = 2.0 * static_cast<double>(g.m) * g.n * g.k;
  if (g.m * g.n * g.k <= 512 || g.n < 4) {
    for (int64_t t = 0; t < g.batch; t++)
      gemm_small(g.form, g.m, g.n, g.k, g.a + t * g.strideA, g.lda, g.b + t * g.strideB, g.ldb,
                 g.c + t * g.strideC, g.ldc, g.accumulate, g.bscale, g.bscale_axis);
    return;
  }
  const GemmKernel& K = gemm_kernel();
  // Small m (token-by-token inference): B read in place; packing it would cost more than the product.
  if (g.m <= 4 && g.form != kTN) {
    gemv_run(g, K, threads);
    return;
  }
  Plan P{&g, &K, 1, false, true, g.m};
  // Below ~2 MFLOP in total the pool hand-off costs more than it saves.
  if (threads > 1 && flops * static_cast<double>(g.batch) >= 2e6) {
    // Batch items are independent when the C blocks do not overlap.
    const bool c_disjoint = g.strideC >= (g.m - 1) * g.ldc + g.n;
    if (g.batch >= threads && c_disjoint) {
      P.by_batch = true;
      P.tasks = threads;
    } else {
      // Splitting m repacks B once per task, splitting n repacks A: pick the cheaper duplicate.
      P.split_m = g.m >= g.n;
      const int64_t extent = P.split_m ? g.m : g.n, unit = P.split_m ? K.mr : K.nr;
      const int64_t units = (extent + unit - 1) / unit;
      const int64_t tasks = std::min<int64_t>(threads, units);
      P.band = (units + tasks - 1) / tasks * unit;
      P.tasks = static_cast<int>((extent + P.band - 1) / P.band);
    }
  }
  if (P.tasks <= 1) {
    P.tasks = 1;
    plan_task(&P, 0, 1);
  } else {
    parallel_run(P.tasks, plan_task, &P);
  }
}

}  // namespace

void gemm_naive(const GemmArgs& g) {
  for (int64_t t = 0; t < g.batch; t++) {
    const float* a = g.a + t * g.strideA;
    const float* b = g.b + t * g.strideB;
    float* c = g.c + t * g.strideC;
    for (int64_t i = 0; i < g.m; i++)
      for (int64_t j = 0; j < g.n; j++) {
        float s = 0.f;
        for (int64_t p = 0; p < g.k; p++) {
          float bv = *b_at(g.form, b, g.ldb, p, j);
          if (g.bscale) bv *= g.bscale[g.bscale_axis == 0 ? p : j];
          s += *a_at(g.form, a, g.lda, i, p) * bv;
        }
        float* cij = c + i * g.ldc + j;
        *cij = g.accumulate ? *cij + s : s;
      }
  }
}

void gemm(const GemmArgs& g) { gemm_run(g, num_threads()); }

void gemm_single(const GemmArgs& g) { gemm_run(g, 1); }

// ---- portable micro-kernel: plain loops the compiler vectorizes for the baseline ISA ----
namespace {
constexpr int kPMR = 4, kPNR = 8;
void kernel_portable(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta) {
  float acc[kPMR][kPNR] = {};
  for (int64_t p = 0; p < kc; p++) {
    for (int r = 0; r < kPMR; r++) {
      const float av = a[r];
      for (int q = 0; q < kPNR; q++) acc[r][q] += av * b[q];
    }
    a += kPMR;
    b += kPNR;
  }
  for (int r = 0; r < kPMR; r++) {
    float* cr = c + r * ldc;
    if (beta) for (int q = 0; q < kPNR; q++) cr[q] += acc[r][q];
    else for (int q = 0; q < kPNR; q++) cr[q] = acc[r][q];
  }
}
}  // namespace

const GemmKernel kGemmPortable = {"portable", kPMR, kPNR, 256, 1536, 512, kernel_portable, nullptr, nullptr, nullptr, nullptr};

}  // namespace dora
