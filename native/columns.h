// Per-column scale and reduction over row-major [rows, cols] float32 buffers (DoRA's m/n epilogue and its
// magnitude-gradient reduction), with the js spec's semantics (src/backend/js/columns.ts): arithmetic in
// float64, one rounding to float32 per output. Threads split rows (the dot: in chunks fixed by the sizes).
#pragma once
#include <cstdint>

namespace dora {

// out[r,i] = (scale[i] + offset) * x[r,i] + (bias ? bias[i] : 0); out may alias x.
void column_scale(float* out, const float* x, const float* scale, double offset, const float* bias, int64_t rows,
                  int64_t cols);
// out[i] = sum_r g[r,i] * (z[r,i] - (bias ? bias[i] : 0)), summed in float64.
void column_dot(float* out, const float* g, const float* z, const float* bias, int64_t rows, int64_t cols);
// Backend.lowRankProducts over g [T, n], r ≤ 16, each output only when set (with its operand): gu = gᵀ·u [n, r],
// v = g·diag(bscale)·B [T, r], dot[i] = Σ_t g[t,i]·(z[t,i] − bias[i]) in float64. Threads take chunks of rows fixed
// by the sizes; the chunks' partial sums are added in order, so the result does not depend on the thread count.
void low_rank_products(float* gu, float* v, const float* g, const float* u, const float* b, const float* bscale,
                       int64_t T, int64_t n, int64_t r, float* dot, const float* z, const float* bias);
// DoRA's factored weight norm less ‖W_i‖² (src/peft/dora.ts), W(i, p) = w[i·si + p·sp] for i < rows, p < cols
// (a Linear's [out, in] weight, or a Conv1D's stored [in, out] read transposed), A [r, cols], B [rows, r] row-major:
// out[i] = 2s·Σ_k B[i,k]·(W_i·A_k) + s²·Σ_{k,l} B[i,k]·(A·Aᵀ)[k,l]·B[i,l], in float64. One pass over W, nothing
// [rows, r] kept; threads split rows.
void dora_norm_terms(double* out, const float* w, int64_t si, int64_t sp, const float* a, const float* b, double s,
                     int64_t rows, int64_t cols, int64_t r);

}  // namespace dora
