// Per-column scale and reduction over row-major [rows, cols] float32 buffers (DoRA's m/n epilogue and its
// magnitude-gradient reduction), with the js spec's semantics (src/backend/js/columns.ts): arithmetic in
// float64, one rounding to float32 per output. Threads split rows (scale) or column ranges (dot).
#pragma once
#include <cstdint>

namespace dora {

// out[r,i] = (scale[i] + offset) * x[r,i] + (bias ? bias[i] : 0); out may alias x.
void column_scale(float* out, const float* x, const float* scale, double offset, const float* bias, int64_t rows,
                  int64_t cols);
// out[i] = sum_r g[r,i] * (z[r,i] - (bias ? bias[i] : 0)), summed in float64.
void column_dot(float* out, const float* g, const float* z, const float* bias, int64_t rows, int64_t cols);

}  // namespace dora
