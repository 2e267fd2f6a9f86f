// Kernel bodies for sparse.h, included once per ISA with DORA_SP_NS and DORA_SP_TABLE defined. The per-token inner
// loops (spmm_token, sddmm_token, sddmm_spmm_token) are plain fixed-width loops unless the including file defines
// DORA_SP_CUSTOM_INNER and provides its own, along with pack_nt (sparse_avx512.cc keeps the NB-wide accumulators in
// registers and packs a Linear weight by 16×16 in-register transposes).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "gemm.h"
#include "pool.h"
#include "sparse.h"

namespace dora {
namespace DORA_SP_NS {

#ifndef DORA_SP_NB
#define DORA_SP_NB 64
#endif
constexpr int64_t NB = DORA_SP_NB;               // output columns (i) per panel (a multiple of 16)
constexpr int64_t KB = 131072 / DORA_SP_NB;      // inputs (j) per panel: NB·KB floats = 512 KiB, L2-resident

#ifndef DORA_SP_CUSTOM_INNER
// acc[0:NB] = Σ_{e in [e0, e1)} vals[e] · P[(cols[e] − j0)·NB : +NB]
inline void spmm_token(const float* vals, const int32_t* cols, int64_t e0, int64_t e1, const float* P, int64_t j0,
                       float* acc) {
  for (int64_t i = 0; i < NB; i++) acc[i] = 0.0f;
  for (int64_t e = e0; e < e1; e++) {
    const float xv = vals[e];
    const float* p = P + (cols[e] - j0) * NB;
    for (int64_t i = 0; i < NB; i++) acc[i] += xv * p[i];
  }
}

// out[e] += Σ_{i<NB} ab[i] · P[(cols[e] − j0)·NB + i] for e in [e0, e1)
inline void sddmm_token(const float* ab, const int32_t* cols, int64_t e0, int64_t e1, const float* P, int64_t j0,
                        float* out) {
  for (int64_t e = e0; e < e1; e++) {
    const float* p = P + (cols[e] - j0) * NB;
    float s[16] = {0};
    for (int64_t i = 0; i < NB; i += 16)
      for (int l = 0; l < 16; l++) s[l] += ab[i + l] * p[i + l];
    float t = 0.0f;
    for (int l = 0; l < 16; l++) t += s[l];
    out[e] += t;
  }
}

// Both of the above over the same entries (sampled_gemm's fused dot): out[e] += ab·row_e, acc = Σ_e vals[e]·row_e.
inline void sddmm_spmm_token(const float* ab, const float* vals, const int32_t* cols, int64_t e0, int64_t e1,
                             const float* P, int64_t j0, float* out, float* acc) {
  sddmm_token(ab, cols, e0, e1, P, j0, out);
  spmm_token(vals, cols, e0, e1, P, j0, acc);
}
#endif

// P[jj·NB + ii] = (scale ? scale[i0 + ii] : 1) · op(W)[j0 + jj, i0 + ii] for jj < kb, ii < nb; zero for ii ≥ nb.
// Token t's drops run from e0 (its cursor) to the returned index within the input block ending at j1; the last
// block takes the rest of the row.
inline int64_t block_end(const SparseArgs& A, int64_t t, int64_t e0, int64_t j1) {
  const int64_t end = A.row_ptr[t + 1];
  if (j1 >= A.k) return end;
  int64_t e = e0;
  while (e < end && A.cols[e] < j1) e++;
  return e;
}

void pack(const SparseArgs& A, int64_t i0, int64_t nb, int64_t j0, int64_t kb, const float* scale, float* P) {
#ifdef DORA_SP_CUSTOM_INNER
  if (A.form == kNT) {
    pack_nt(A.w, A.k, i0, nb, j0, kb, scale, P);  // the ISA's transposing pack (sparse_avx512.cc)
    return;
  }
#endif
  if (A.form == kNT) {
    // op(W)[j, i] = w[i·k + j]: rows of W become columns of the panel, 16 inputs at a time (both sides in L1)
    for (int64_t jb = 0; jb < kb; jb += 16) {
      const int64_t je = std::min<int64_t>(16, kb - jb);
      for (int64_t ii = 0; ii < nb; ii++) {
        const float* src = A.w + (i0 + ii) * A.k + j0 + jb;
        const float s = scale ? scale[i0 + ii] : 1.0f;
        float* dst = P + jb * NB + ii;
        for (int64_t jj = 0; jj < je; jj++) dst[jj * NB] = src[jj] * s;
      }
      if (nb < NB)
        for (int64_t jj = 0; jj < je; jj++) std::memset(P + (jb + jj) * NB + nb, 0, (NB - nb) * sizeof(float));
    }
  } else {
    for (int64_t jj = 0; jj < kb; jj++) {
      const float* src = A.w + (j0 + jj) * A.n + i0;
      float* dst = P + jj * NB;
      if (scale) {
        for (int64_t ii = 0; ii < nb; ii++) dst[ii] = src[ii] * scale[i0 + ii];
      } else {
        for (int64_t ii = 0; ii < nb; ii++) dst[ii] = src[ii];
      }
      for (int64_t ii = nb; ii < NB; ii++) dst[ii] = 0.0f;
    }
  }
}

// The calling thread's panel: 64-byte aligned, kept between calls (a fresh mapping per call costs page faults).
float* panel_buffer(int64_t floats) {
  struct Buf {
    float* p = nullptr;
    int64_t cap = 0;
    ~Buf() { std::free(p); }
  };
  thread_local Buf buf;
  if (buf.cap < floats) {
    std::free(buf.p);
    buf.p = static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>((floats * 4 + 63) / 64 * 64)));
    buf.cap = floats;
  }
  return buf.p;
}

// sparse_gemm asks for token t + CPF's C segment (NB floats, n floats after the previous token's: a stride the
// hardware prefetchers do not follow) while token t is walked, with intent to write: the walk adds into C, and
// waiting for each segment's line fills stalled the stores (a quarter of spmm_range's samples in perf on Zen 4).
// 2048², p = 0.05, C cold, 1 thread: 23.3 → 17.9 ms a call; distances 2 to 16 alike (1: 19.0). The column-dot
// form reads g's segments in the same pattern and asks for them the same way.
constexpr int64_t CPF = 8;

// sparse_gemm over column blocks [b0, b1) and tokens [t0, t1); vals[e] is entry e's value. With A.g set (the
// column-dot form) nothing is written to C: dot[i] += Σ_t g[t, i]·(S·op(W))[t, i] in float64 instead.
void spmm_range(const SparseArgs& A, const float* vals, int64_t b0, int64_t b1, int64_t t0, int64_t t1, double* dot) {
  if (b0 >= b1 || t0 >= t1) return;
  float* P = panel_buffer(NB * std::max<int64_t>(1, std::min(KB, A.k)));
  alignas(64) float acc[NB];
  std::vector<int32_t> cur(static_cast<size_t>(t1 - t0));
  for (int64_t b = b0; b < b1; b++) {
    const int64_t i0 = b * NB, nb = std::min(NB, A.n - i0);
    for (int64_t t = t0; t < t1; t++) cur[t - t0] = A.row_ptr[t];
    for (int64_t j0 = 0; j0 == 0 || j0 < A.k; j0 += KB) {
      const int64_t kb = std::min(KB, A.k - j0), j1 = j0 + kb;
      pack(A, i0, nb, j0, kb, A.scale, P);
      const bool write = j0 == 0 && !A.accumulate && !A.g;
      for (int64_t t = t0; t < t1; t++) {
        const int64_t e0 = cur[t - t0], e = block_end(A, t, e0, j1);
        cur[t - t0] = static_cast<int32_t>(e);
        float* cr = A.g ? nullptr : A.c + t * A.n + i0;
        if (t + CPF < t1) {
          const float* ahead = (A.g ? A.g : A.c) + (t + CPF) * A.n + i0;
          for (int64_t i = 0; i < nb; i += 16) {
            if (A.g) __builtin_prefetch(ahead + i, 0, 3);
            else __builtin_prefetch(ahead + i, 1 /* write */, 3);
          }
        }
        if (e == e0) {
          if (write) std::memset(cr, 0, static_cast<size_t>(nb) * sizeof(float));
          continue;
        }
        spmm_token(vals, A.cols, e0, e, P, j0, acc);
        if (A.g) {
          const float* gr = A.g + t * A.n + i0;
          for (int64_t i = 0; i < nb; i++) dot[i0 + i] += static_cast<double>(gr[i]) * acc[i];
        } else if (write) {
          for (int64_t i = 0; i < nb; i++) cr[i] = A.alpha * acc[i];
        } else {
          for (int64_t i = 0; i < nb; i++) cr[i] += A.alpha * acc[i];
        }
      }
    }
  }
}

// sampled_gemm's tokens are visited in chunks of TC. A token's a segment (NB floats, n floats after the previous
// token's) is a stride the hardware prefetchers do not follow, and loading it at the start of each visit made every
// visit wait for DRAM (one load, ~20% of a 2048² fused walk's samples in perf). Per chunk the segments are copied in
// one tight loop whose misses overlap, and the visits read a contiguous L1 buffer. Each visit also asks for the
// segment of the token one chunk ahead, so that loop finds them in cache (2048², p = 0.05, a cold, 1 thread, two
// runs: 24.4 / 25.3 → 22.7 / 24.2 ms a call). (sparse_gemm's C segments are prefetched instead, CPF above:
// chunking its stores changed nothing.)
constexpr int64_t TC = 32;

// sampled_gemm over column blocks [b0, b1) and tokens [t0, t1), adding into out[e − base]. With dot set (the fused
// column dot, A.dot): the panel stays unscaled (the scale goes on the token's a values instead) and the same panel
// rows also give (S·op(W))[t, block], so dot[i] += a[t, i]·(S·op(W))[t, i] (vals[e] = the S values).
void sddmm_range(const SparseArgs& A, int64_t b0, int64_t b1, int64_t t0, int64_t t1, float* out, int64_t base,
                 const float* vals, double* dot) {
  if (b0 >= b1 || t0 >= t1) return;
  float* P = panel_buffer(NB * std::max<int64_t>(1, std::min(KB, A.k)));
  alignas(64) float ab[TC * NB];   // the chunk's a segments (scaled when the scale goes on a), zero past nb
  alignas(64) float acc[NB];
  std::vector<int32_t> cur(static_cast<size_t>(t1 - t0));
  float* o = out ? out - base : nullptr;
  const bool fused = dot != nullptr, scale_a = fused && A.scale;
  for (int64_t b = b0; b < b1; b++) {
    const int64_t i0 = b * NB, nb = std::min(NB, A.n - i0);
    const float* sc = scale_a ? A.scale + i0 : nullptr;  // no arithmetic on a null scale
    for (int64_t t = t0; t < t1; t++) cur[t - t0] = A.row_ptr[t];
    for (int64_t j0 = 0; j0 < A.k; j0 += KB) {
      const int64_t kb = std::min(KB, A.k - j0), j1 = j0 + kb;
      pack(A, i0, nb, j0, kb, fused ? nullptr : A.scale, P);
      for (int64_t tc = t0; tc < t1; tc += TC) {
        const int64_t tn = std::min(TC, t1 - tc);
        // the fused dot's chunk sums: float over the chunk's tokens, added to the float64 column sums once a chunk
        // (a float64 update per token visit cost ~5% of a small layer's walk)
        alignas(64) float fdot[NB];
        if (fused) for (int64_t i = 0; i < NB; i++) fdot[i] = 0.0f;
        // plain loops the compiler vectorises (one loop with a per-element select ran scalar)
        for (int64_t q = 0; q < tn; q++) {
          const float* a0 = A.x + (tc + q) * A.n + i0;
          float* d = ab + q * NB;
          int64_t i = 0;
          if (scale_a) for (; i < nb; i++) d[i] = a0[i] * sc[i];
          else for (; i < nb; i++) d[i] = a0[i];
          for (; i < NB; i++) d[i] = 0.0f;
        }
        for (int64_t q = 0; q < tn; q++) {
          const int64_t t = tc + q, e0 = cur[t - t0], e = block_end(A, t, e0, j1);
          cur[t - t0] = static_cast<int32_t>(e);
          if (t + TC < t1)
            for (int64_t i = 0; i < nb; i += 16) __builtin_prefetch(A.x + (t + TC) * A.n + i0 + i, 0, 3);
          if (e == e0) continue;
          const float* abq = ab + q * NB;
          if (fused) {
            if (out) sddmm_spmm_token(abq, vals, A.cols, e0, e, P, j0, o, acc);
            else spmm_token(vals, A.cols, e0, e, P, j0, acc);
            const float* a0 = A.x + t * A.n + i0;  // unscaled, in cache since the chunk's gather
            for (int64_t i = 0; i < nb; i++) fdot[i] += a0[i] * acc[i];
          } else {
            sddmm_token(abq, A.cols, e0, e, P, j0, o);
          }
        }
        if (fused) for (int64_t i = 0; i < nb; i++) dot[i0 + i] += fdot[i];
      }
    }
  }
}

struct Ctx {
  const SparseArgs* a;
  int64_t nblk;
  bool by_cols;          // tasks own column blocks (else token ranges)
  float** outs;          // sampled_gemm, by_cols: where task t adds (task 0: out itself)
  const float* vals;     // S's values, indexed like cols (sparse_gemm, and sampled_gemm's fused dot)
  double** dots;         // sparse_gemm_dot: task t's float64 column sums (one shared array when by_cols)
  int64_t base;          // sampled_gemm: index of the first entry
};

void spmm_task(void* p, int t, int nt) {
  const Ctx* c = static_cast<const Ctx*>(p);
  const SparseArgs& A = *c->a;
  double* dot = c->dots ? c->dots[c->by_cols ? 0 : t] : nullptr;
  if (c->by_cols) spmm_range(A, c->vals, c->nblk * t / nt, c->nblk * (t + 1) / nt, 0, A.rows, dot);
  else spmm_range(A, c->vals, 0, c->nblk, A.rows * t / nt, A.rows * (t + 1) / nt, dot);
}

void sddmm_task(void* p, int t, int nt) {
  const Ctx* c = static_cast<const Ctx*>(p);
  const SparseArgs& A = *c->a;
  double* dot = c->dots ? c->dots[c->by_cols ? 0 : t] : nullptr;
  if (c->by_cols) sddmm_range(A, c->nblk * t / nt, c->nblk * (t + 1) / nt, 0, A.rows, c->outs[t], c->base, c->vals, dot);
  else sddmm_range(A, 0, c->nblk, A.rows * t / nt, A.rows * (t + 1) / nt, c->outs[0], c->base, c->vals, dot);
}

// Tasks: one per thread once the work (entries × n, plus the packing n × k) is worth a hand-off.
int tasks_for(const SparseArgs& A, int64_t nblk) {
  const int64_t nnz = A.row_ptr[A.rows] - A.row_ptr[0];
  const int64_t work = nnz * A.n + A.n * A.k;
  const int64_t by_work = std::max<int64_t>(1, work / (1 << 20));
  (void)nblk;
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({by_work, A.rows, num_threads()})));
}

void sparse_gemm(const SparseArgs& A) {
  if (A.rows <= 0 || A.n <= 0) return;
  const int64_t nblk = (A.n + NB - 1) / NB;
  const int tasks = tasks_for(A, nblk);
  Ctx c{&A, nblk, nblk >= tasks, nullptr, A.vals, nullptr, 0};
  parallel_run(tasks, spmm_task, &c);
}

// sparse_gemm's column-dot form (A.g set, A.c = out [n]): out[i] = Σ_t g[t, i]·(S·op(W)·diag(scale))[t, i].
void sparse_gemm_dot(const SparseArgs& A) {
  if (A.n <= 0) return;
  std::vector<double> sum(static_cast<size_t>(A.n), 0.0);
  if (A.rows > 0) {
    const int64_t nblk = (A.n + NB - 1) / NB;
    const int tasks = tasks_for(A, nblk);
    const bool by_cols = nblk >= tasks;
    std::vector<std::vector<double>> part(by_cols ? 0 : static_cast<size_t>(tasks - 1));
    std::vector<double*> dots(static_cast<size_t>(tasks), sum.data());
    for (size_t t = 0; t < part.size(); t++) {
      part[t].assign(static_cast<size_t>(A.n), 0.0);
      dots[t + 1] = part[t].data();
    }
    Ctx c{&A, nblk, by_cols, nullptr, A.vals, dots.data(), 0};
    parallel_run(tasks, spmm_task, &c);
    for (const auto& p : part)
      for (int64_t i = 0; i < A.n; i++) sum[static_cast<size_t>(i)] += p[static_cast<size_t>(i)];
  }
  for (int64_t i = 0; i < A.n; i++) A.c[i] = static_cast<float>(sum[static_cast<size_t>(i)]);
}

void sampled_gemm(const SparseArgs& A) {
  if (A.dot)
    for (int64_t i = 0; i < A.n; i++) A.dot[i] = 0.0f;
  if (A.rows <= 0) return;
  const int64_t base = A.row_ptr[0], nnz = A.row_ptr[A.rows] - base;
  if (nnz <= 0) return;
  if (A.c && !A.accumulate) std::memset(A.c + base, 0, static_cast<size_t>(nnz) * sizeof(float));
  if (A.n <= 0 || A.k <= 0) return;
  const int64_t nblk = (A.n + NB - 1) / NB;
  const int tasks = tasks_for(A, nblk);
  const bool by_cols = tasks > 1 && nblk >= tasks;
  std::vector<std::vector<float>> partial(by_cols && A.c ? static_cast<size_t>(tasks - 1) : 0);
  std::vector<float*> outs(static_cast<size_t>(tasks), A.c ? A.c + base : nullptr);
  for (size_t t = 0; t < partial.size(); t++) {
    partial[t].assign(static_cast<size_t>(nnz), 0.0f);
    outs[t + 1] = partial[t].data();
  }
  // the fused column dot: float64 sums, one shared array when tasks own column blocks, else one per task
  std::vector<std::vector<double>> dsum(A.dot ? (by_cols ? 1 : static_cast<size_t>(tasks)) : 0);
  std::vector<double*> dots(static_cast<size_t>(tasks), nullptr);
  for (size_t t = 0; t < dsum.size(); t++) dsum[t].assign(static_cast<size_t>(A.n), 0.0);
  for (size_t t = 0; t < dots.size() && !dsum.empty(); t++) dots[t] = dsum[by_cols ? 0 : t].data();
  Ctx c{&A, nblk, by_cols, outs.data(), A.dot ? A.vals : nullptr, A.dot ? dots.data() : nullptr, base};
  parallel_run(tasks, sddmm_task, &c);
  if (A.c) {
    float* o = A.c + base;
    for (const auto& p : partial)
      for (int64_t e = 0; e < nnz; e++) o[e] += p[static_cast<size_t>(e)];
  }
  if (A.dot)
    for (int64_t i = 0; i < A.n; i++) {
      double d = 0.0;
      for (const auto& p : dsum) d += p[static_cast<size_t>(i)];
      A.dot[i] = static_cast<float>(d);
    }
}

}  // namespace DORA_SP_NS

extern const SparseKernels DORA_SP_TABLE = {DORA_SP_NS::sparse_gemm, DORA_SP_NS::sampled_gemm, DORA_SP_NS::sparse_gemm_dot};

}  // namespace dora
