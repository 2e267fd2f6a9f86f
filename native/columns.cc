// See columns.h. Threading only: the loops are the ISA's elementwise kernels (elementwise_impl.h), where they
// vectorise their float64 arithmetic (compiled here for the baseline ISA they ran two doubles wide and were
// compute-bound: 0.6 ms for DoRA's 1024×1376 magnitude-gradient reduction).
#include "columns.h"

#include <algorithm>
#include <vector>

#include "elementwise.h"
#include "pool.h"
#include "scratch.h"

namespace dora {
namespace {

struct ScaleCtx {
  float* out;
  const float* x;
  const float* scale;
  double offset;
  const float* bias;
  int64_t rows, cols;
};

void scale_task(void* p, int t, int nt) {
  const auto* c = static_cast<const ScaleCtx*>(p);
  elementwise().column_scale_rows(c->out, c->x, c->scale, c->offset, c->bias, c->rows * t / nt, c->rows * (t + 1) / nt,
                                  c->cols);
}

// column_dot in chunks of whole rows, each summed into its own float64 row of `part`, then the chunks added in order:
// every thread reads contiguous rows (two threads each reading half of every row ran slower than one on cold data),
// and the chunks depend on the sizes only, so the result does not depend on the thread count.
struct DotCtx {
  double* part;
  const float* g;
  const float* z;
  const float* bias;
  int64_t rows, cols, chunk;
};

void dot_task(void* p, int t, int) {
  const auto* c = static_cast<const DotCtx*>(p);
  const int64_t r0 = t * c->chunk, r1 = std::min(c->rows, r0 + c->chunk);
  elementwise().column_dot_rows(c->part + t * c->cols, c->g, c->z, c->bias, r0, r1, c->cols);
}

struct NormCtx {
  double* out;
  const float* w;
  int64_t si, sp;
  const float* at;
  int64_t rp;
  const float* b;
  const double* aat;
  double s;
  int64_t rows, cols, r;
};

void norm_task(void* p, int t, int nt) {
  const auto* c = static_cast<const NormCtx*>(p);
  elementwise().dora_norm_terms_rows(c->out, c->w, c->si, c->sp, c->at, c->rp, c->b, c->aat, c->s, c->rows * t / nt,
                                     c->rows * (t + 1) / nt, c->cols, c->r);
}

struct LowRankCtx {
  const float *g, *u, *bq, *z, *bias;
  float* v;       // or nullptr
  float* gut;     // per chunk: its partial gᵀ·u, [n][16]; or nullptr
  double* dacc;   // per chunk: its partial column dot [n]; or nullptr
  int64_t T, n, r, chunk;
};

void low_rank_task(void* p, int t, int) {
  const auto* c = static_cast<const LowRankCtx*>(p);
  const int64_t r0 = t * c->chunk, r1 = std::min(c->T, r0 + c->chunk);
  elementwise().low_rank_products_rows(c->g, c->u, c->r, c->bq, c->n, r0, r1, c->v, c->gut ? c->gut + t * 16 * c->n : nullptr,
                                       c->dacc ? c->dacc + t * c->n : nullptr, c->z, c->bias);
}

struct LowRankSum {
  const LowRankCtx* c;
  int64_t chunks;
  float *gu, *dot;
};

// gu[i, k] and dot[i] (those asked for) for a range of i: the chunks' partials added in chunk order (float64),
// rounded once
void low_rank_sum_task(void* p, int t, int nt) {
  const auto* s = static_cast<const LowRankSum*>(p);
  const LowRankCtx& c = *s->c;
  for (int64_t i = c.n * t / nt; i < c.n * (t + 1) / nt; i++) {
    if (s->gu) {
      double acc[16] = {};
      for (int64_t q = 0; q < s->chunks; q++) {
        const float* src = c.gut + (q * c.n + i) * 16;
        for (int k = 0; k < 16; k++) acc[k] += src[k];
      }
      for (int64_t k = 0; k < c.r; k++) s->gu[i * c.r + k] = static_cast<float>(acc[k]);
    }
    if (s->dot) {
      double d = 0.0;
      for (int64_t q = 0; q < s->chunks; q++) d += c.dacc[q * c.n + i];
      s->dot[i] = static_cast<float>(d);
    }
  }
}

// The first 64-byte boundary in a buffer grown 16 floats past what it needs.
float* aligned64(float* p) {
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(p) + 63) & ~static_cast<uintptr_t>(63));
}

int tasks_for(int64_t work, int64_t units) {
  // ~256K elements per task keeps the pool's hand-off small against the pass itself
  const int64_t by_work = std::max<int64_t>(1, work / (1 << 18));
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>({by_work, units, num_threads()})));
}

}  // namespace

void column_scale(float* out, const float* x, const float* scale, double offset, const float* bias, int64_t rows,
                  int64_t cols) {
  ScaleCtx c{out, x, scale, offset, bias, rows, cols};
  parallel_run(tasks_for(rows * cols, rows), scale_task, &c);
}

void column_dot(float* out, const float* g, const float* z, const float* bias, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  const int64_t chunk = std::max<int64_t>(1, (1 << 16) / cols);  // ~64K elements: tens of µs a chunk
  const int64_t chunks = std::max<int64_t>(1, (rows + chunk - 1) / chunk);
  thread_local std::vector<double> tl_part;
  double* part = grow(tl_part, chunks * cols);  // zeroed below: column_dot_rows adds into it
  for (int64_t i = 0; i < chunks * cols; i++) part[i] = 0.0;
  DotCtx c{part, g, z, bias, rows, cols, chunk};
  if (chunks == 1) dot_task(&c, 0, 1);
  else parallel_run(static_cast<int>(chunks), dot_task, &c);
  for (int64_t i = 0; i < cols; i++) {
    double s = part[static_cast<size_t>(i)];
    for (int64_t t = 1; t < chunks; t++) s += part[static_cast<size_t>(t * cols + i)];
    out[i] = static_cast<float>(s);
  }
}

void low_rank_products(float* gu, float* v, const float* g, const float* u, const float* b, const float* bscale,
                       int64_t T, int64_t n, int64_t r, float* dot, const float* z, const float* bias) {
  if (!gu || !u) gu = nullptr;  // the pairs come together (the TS adapter checks); a half pair asks for nothing
  if (!v || !b) v = nullptr;
  if (!dot || !z) dot = nullptr;
  if (n <= 0) {  // g·B over no columns
    for (int64_t i = 0; v && i < T * r; i++) v[i] = 0.f;
    return;
  }
  // B times its scale with the ranks padded to 16 lanes ([n][16], 64-byte aligned rows for the row kernel)
  thread_local std::vector<float> tl_bq, tl_gut;
  thread_local std::vector<double> tl_dacc;
  float* bq = v ? aligned64(grow(tl_bq, n * 16 + 16)) : nullptr;
  for (int64_t i = 0; bq && i < n; i++)
    for (int64_t k = 0; k < 16; k++) bq[i * 16 + k] = k < r ? (bscale ? b[i * r + k] * bscale[i] : b[i * r + k]) : 0.f;
  // chunks of rows fixed by T (at most 8, at least 32 rows, a multiple of the kernel's 8-row blocks): two threads
  // take four each, and the chunks' [n][16] partials stay few
  const int64_t chunk = std::max<int64_t>(32, ((T + 7) / 8 + 7) / 8 * 8);
  const int64_t chunks = std::max<int64_t>(1, (T + chunk - 1) / chunk);
  float* gut = gu ? aligned64(grow(tl_gut, chunks * n * 16 + 16)) : nullptr;  // written by the chunks
  double* dacc = dot ? grow(tl_dacc, chunks * n) : nullptr;                  // likewise
  LowRankCtx c{g, u, bq, z, bias, v, gut, dacc, T, n, r, chunk};
  if (T > 0) {
    if (chunks == 1) low_rank_task(&c, 0, 1);
    else parallel_run(static_cast<int>(chunks), low_rank_task, &c);
  }
  if (gu || dot) {
    LowRankSum s{&c, T > 0 ? chunks : 0, gu, dot};
    parallel_run(tasks_for(n * std::max<int64_t>(r, 1) * chunks, n), low_rank_sum_task, &s);
  }
}

void dora_norm_terms(double* out, const float* w, int64_t si, int64_t sp, const float* a, const float* b, double s,
                     int64_t rows, int64_t cols, int64_t r) {
  const int64_t rp = (r + 15) / 16 * 16;
  thread_local std::vector<float> tl_at;
  thread_local std::vector<double> tl_aat;
  float* at = grow(tl_at, cols * rp);  // both written in full by dora_norm_prepare
  double* aat = grow(tl_aat, r * r);
  elementwise().dora_norm_prepare(at, aat, a, r, rp, cols);
  NormCtx c{out, w, si, sp, at, rp, b, aat, s, rows, cols, r};
  // A W element costs a broadcast and ⌈r/16⌉ FMAs, several times an elementwise pass's element (the kernel is bound
  // by its arithmetic more than by reading W). Counted as r/4, a 512² weight at r 16 splits in two (2 threads, W from
  // DRAM: 0.129 → 0.077 ms a call); at r/16 it ran on one thread.
  parallel_run(tasks_for(rows * cols * std::max<int64_t>(r, 1) / 4, rows), norm_task, &c);
}

}  // namespace dora
