// Elementwise and row kernels with the semantics of the js spec (src/backend/js/elementwise.ts,
// softmax.ts, norm.ts, misc.ts adamwStep). One source (elementwise_impl.h) compiled per ISA; the
// table matching the GEMM's ISA is used. Arithmetic is float64 like the spec (exp included, by a
// vectorizable polynomial in elementwise_impl.h), so results match the spec to float32 rounding.
#pragma once
#include <cstdint>

namespace dora {

enum UnaryOp : int { kExp = 0, kSilu = 1, kGelu = 2 };
enum BinaryOp : int { kAdd = 0, kSub = 1, kMul = 2, kDiv = 3 };

struct ElementwiseKernels {
  void (*unary_forward)(int op, float* out, const float* x, int64_t n);
  void (*unary_backward)(int op, float* dx, const float* dy, const float* x, const float* y, int64_t n);
  void (*softmax_forward)(float* out, const float* x, int64_t rows, int64_t cols, bool log);
  void (*softmax_backward)(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, bool log);
  void (*rmsnorm_forward)(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t cols, double eps);
  void (*rmsnorm_backward)(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                           int64_t rows, int64_t cols);
  void (*adamw_step)(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                     double eps, double weight_decay, double step);
  // out = a op b over n contiguous elements (float32 arithmetic, as the spec's binary).
  void (*binary_flat)(int op, float* out, const float* a, const float* b, int64_t n);
  // out = silu(g)·u; backward writes both dg = dy·u·silu'(g) and du = dy·silu(g).
  void (*silu_mul_forward)(float* out, const float* g, const float* u, int64_t n);
  void (*silu_mul_backward)(float* dg, float* du, const float* dy, const float* g, const float* u, int64_t n);
  // Backend.crossEntropyForward/Backward; targets must be ignore or in [0, cols). The backward scale is
  // scale_rows[r] when scale_rows is non-null, else `scale`.
  int64_t (*cross_entropy_forward)(float* loss, float* lse, const float* logits, const int32_t* targets, int64_t rows,
                                   int64_t cols, int64_t ignore);
  void (*cross_entropy_backward)(float* dlogits, const float* logits, const float* lse, const int32_t* targets,
                                 int64_t rows, int64_t cols, int64_t ignore, const float* scale_rows, double scale);
  // columns.h's column_scale on rows [r0, r1); column_dot's sums over rows [r0, r1) added into acc (cols doubles).
  void (*column_scale_rows)(float* out, const float* x, const float* scale, double offset, const float* bias,
                            int64_t r0, int64_t r1, int64_t cols);
  void (*column_dot_rows)(double* acc, const float* g, const float* z, const float* bias, int64_t r0, int64_t r1,
                          int64_t cols);
  // columns.h's dora_norm_terms: the r-sized operands once (at = Aᵀ [cols, rp], rp = r rounded up to 16 and
  // zero-padded; aat = A·Aᵀ [r, r] float64), then rows [i0, i1).
  // columns.h's low_rank_products for rows [t0, t1), each output only when set: v's rows written; gut ([n][16]) and
  // dacc ([n]) written with the rows' partial gᵀ·u and column dot; bq is B times its scale as [n][16], zero-padded.
  void (*low_rank_products_rows)(const float* g, const float* u, int64_t r, const float* bq, int64_t n, int64_t t0,
                                 int64_t t1, float* v, float* gut, double* dacc, const float* z, const float* bias);
  void (*dora_norm_prepare)(float* at, double* aat, const float* a, int64_t r, int64_t rp, int64_t cols);
  void (*dora_norm_terms_rows)(double* out, const float* w, int64_t si, int64_t sp, const float* at, int64_t rp,
                               const float* b, const double* aat, double s, int64_t i0, int64_t i1, int64_t cols,
                               int64_t r);
  // attention.h's rope on token rows [r0, r1) of the b·s (batch, position) rows, every head of a row in turn; os / xs
  // are the element strides (batch, head, seq) of out and x, whose D elements are contiguous.
  void (*rope_rows)(float* out, const int64_t* os, const float* x, const int64_t* xs, const float* cos, const float* sin,
                    int64_t h, int64_t s, int64_t d, bool inverse, int64_t r0, int64_t r1);
};

const ElementwiseKernels& elementwise();

extern const ElementwiseKernels kElementwisePortable;
#ifdef DORA_X86_KERNELS
extern const ElementwiseKernels kElementwiseAvx512;
extern const ElementwiseKernels kElementwiseAvx2;
#endif

}  // namespace dora
