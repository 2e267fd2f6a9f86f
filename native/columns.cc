// See columns.h. Threading only: the loops are the ISA's elementwise kernels (elementwise_impl.h), where they
// vectorise their float64 arithmetic (compiled here for the baseline ISA they ran two doubles wide and were
// compute-bound: 0.6 ms for DoRA's 1024×1376 magnitude-gradient reduction).
#include "columns.h"

#include <algorithm>
#include <vector>

#include "elementwise.h"
#include "pool.h"

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

struct DotCtx {
  float* out;
  const float* g;
  const float* z;
  const float* bias;
  int64_t rows, cols;
};

void dot_task(void* p, int t, int nt) {
  const auto* c = static_cast<const DotCtx*>(p);
  const int64_t c0 = c->cols * t / nt, c1 = c->cols * (t + 1) / nt;
  if (c1 <= c0) return;
  std::vector<double> acc(static_cast<size_t>(c1 - c0));
  elementwise().column_dot_cols(c->out, c->g, c->z, c->bias, c->rows, c->cols, c0, c1, acc.data());
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
  DotCtx c{out, g, z, bias, rows, cols};
  parallel_run(tasks_for(rows * cols, cols), dot_task, &c);
}

void dora_norm_terms(double* out, const float* w, int64_t si, int64_t sp, const float* a, const float* b, double s,
                     int64_t rows, int64_t cols, int64_t r) {
  const int64_t rp = (r + 15) / 16 * 16;
  std::vector<float> at(static_cast<size_t>(cols * rp));
  std::vector<double> aat(static_cast<size_t>(r * r));
  elementwise().dora_norm_prepare(at.data(), aat.data(), a, r, rp, cols);
  NormCtx c{out, w, si, sp, at.data(), rp, b, aat.data(), s, rows, cols, r};
  parallel_run(tasks_for(rows * cols * std::max<int64_t>(r, 1) / 16, rows), norm_task, &c);
}

}  // namespace dora
