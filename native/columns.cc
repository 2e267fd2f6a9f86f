// See columns.h. Plain loops (the compiler vectorises them); both kernels are memory-bound passes.
#include "columns.h"

#include <algorithm>
#include <vector>

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
  const int64_t r0 = c->rows * t / nt, r1 = c->rows * (t + 1) / nt, n = c->cols;
  for (int64_t r = r0; r < r1; r++) {
    const float* x = c->x + r * n;
    float* o = c->out + r * n;
    if (c->bias) {
      for (int64_t i = 0; i < n; i++)
        o[i] = static_cast<float>((static_cast<double>(c->scale[i]) + c->offset) * x[i] + c->bias[i]);
    } else {
      for (int64_t i = 0; i < n; i++) o[i] = static_cast<float>((static_cast<double>(c->scale[i]) + c->offset) * x[i]);
    }
  }
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
  const int64_t c0 = c->cols * t / nt, c1 = c->cols * (t + 1) / nt, w = c1 - c0;
  if (w <= 0) return;
  std::vector<double> acc(static_cast<size_t>(w), 0.0), b(static_cast<size_t>(w), 0.0);
  if (c->bias) for (int64_t i = 0; i < w; i++) b[i] = c->bias[c0 + i];
  for (int64_t r = 0; r < c->rows; r++) {
    const float* g = c->g + r * c->cols + c0;
    const float* z = c->z + r * c->cols + c0;
    for (int64_t i = 0; i < w; i++) acc[i] += static_cast<double>(g[i]) * (static_cast<double>(z[i]) - b[i]);
  }
  for (int64_t i = 0; i < w; i++) c->out[c0 + i] = static_cast<float>(acc[i]);
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

}  // namespace dora
