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
  std::vector<double> part(static_cast<size_t>(chunks * cols), 0.0);
  DotCtx c{part.data(), g, z, bias, rows, cols, chunk};
  if (chunks == 1) dot_task(&c, 0, 1);
  else parallel_run(static_cast<int>(chunks), dot_task, &c);
  for (int64_t i = 0; i < cols; i++) {
    double s = part[static_cast<size_t>(i)];
    for (int64_t t = 1; t < chunks; t++) s += part[static_cast<size_t>(t * cols + i)];
    out[i] = static_cast<float>(s);
  }
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
