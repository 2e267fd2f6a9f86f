// Fused causal grouped-query attention (see attention.h), portable C++17.
//
// Work goes in blocks of kRows query rows. A block's rows i0..i0+rows see keys 0..n−1 (n = Sk − Sq + i0 + rows),
// so only that rectangle of scores is computed: the masked triangle above it is skipped, and inside it only the
// block's own diagonal corner is masked. The rectangle's products are single-threaded GEMMs (gemm_single: the
// packed ISA micro-kernels) reading q/k/v rows in place through their strides; exp is the elementwise table's,
// once per visible score in each pass.
//   forward  (task: batch, head, query block):  S = Q·Kᵀ; P = exp(scale·S − rowmax) on the visible keys, 0 past
//            the diagonal; O = (P·V) / rowsum P; lse = rowmax + log rowsum P.
//   backward (task: batch, kv head, so dK / dV of a task are its own): per query head of the group and block,
//            P = exp(scale·S − lse) rebuilt (no [Sq, Sk] tensor between passes); dP = dO·Vᵀ;
//            dS = scale·P ⊙ (dP − rowsum(P ⊙ dP)); dV += Pᵀ·dO; dQ = dS·K; dK += dSᵀ·Q. (rowsum(P ⊙ dP) is
//            the spec's rowsum(dO ⊙ O), so `out` is not read.)
// Scratch: two [kRows, Sk] float buffers per thread.
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "elementwise.h"
#include "gemm.h"
#include "pool.h"
#include "scratch.h"

namespace dora {
namespace {

// Query rows per block: a block's scores [kRows, Sk] stay in L2 for Sk in the thousands, and 56 = 4 × 14 fills
// the AVX-512 micro-kernel's row tiles.
constexpr int64_t kRows = 56;

thread_local std::vector<float> tl_s, tl_p;

// C (m×n) = op(A)·op(B) (+ C when acc), one batch item, on this thread.
void product(int form, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
             float* c, int64_t ldc, bool acc) {
  const GemmArgs g{form, m, n, k, a, lda, 0, b, ldb, 0, c, ldc, 0, 1, acc};
  gemm_single(g);
}

// Σ x[j] and Σ x[j]·y[j] in float64 over 8 partial sums: one running float64 sum is a single dependency chain the
// compiler may not reorder (it cost a third as much as the row's scalar exps).
double sum8(const float* x, int64_t n) {
  double acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; l++) acc[l] += x[j + l];
  for (; j < n; j++) acc[0] += x[j];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

double dot8(const float* x, const float* y, int64_t n) {
  double acc[8] = {};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; l++) acc[l] += static_cast<double>(x[j + l]) * y[j + l];
  for (; j < n; j++) acc[0] += static_cast<double>(x[j]) * y[j];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// max_j scale·x[j] over 8 partial maxima (as sum8: a single running max is one dependency chain).
float scaled_max8(const float* x, int64_t n, float scale) {
  float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  int64_t j = 0;
  for (; j + 8 <= n; j += 8)
    for (int l = 0; l < 8; l++) m[l] = std::max(m[l], x[j + l] * scale);
  for (; j < n; j++) m[0] = std::max(m[0], x[j] * scale);
  return std::max(std::max(std::max(m[0], m[1]), std::max(m[2], m[3])), std::max(std::max(m[4], m[5]), std::max(m[6], m[7])));
}

struct Block {
  int64_t i0, rows, n;  // query rows i0..i0+rows, keys 0..n
};

Block block_at(const AttentionArgs& A, int64_t i0) {
  const int64_t rows = std::min(kRows, A.sq - i0);
  return {i0, rows, A.sk - A.sq + i0 + rows};
}

// P[r, j] = exp(scale·S[r, j] − shift[r]) for the keys row r sees (j ≤ Sk − Sq + i0 + r), 0 for the rest (whose
// exps are skipped). S is overwritten. With shift == nullptr the row maximum of scale·S is used and stored into mx.
void probabilities(const AttentionArgs& A, const Block& B, float* s, float* p, const float* shift, float* mx) {
  const auto exp_rows = elementwise().unary_forward;
  for (int64_t r = 0; r < B.rows; r++) {
    float *z = s + r * B.n, *pr = p + r * B.n;
    const int64_t vis = B.n - B.rows + r + 1;
    const float m = shift ? shift[r] : (mx[r] = scaled_max8(z, vis, A.scale));
    for (int64_t j = 0; j < vis; j++) z[j] = z[j] * A.scale - m;
    exp_rows(kExp, pr, z, vis);
    std::memset(pr + vis, 0, sizeof(float) * static_cast<size_t>(B.n - vis));
  }
}

struct ForwardJob {
  const AttentionArgs* a;
  int64_t blocks;
};

void forward_task(void* ctx, int task, int) {
  const ForwardJob& J = *static_cast<const ForwardJob*>(ctx);
  const AttentionArgs& A = *J.a;
  // Heaviest blocks (the last query rows see the most keys) are handed out first.
  const int64_t bh = task % (A.b * A.h), blk = J.blocks - 1 - task / (A.b * A.h);
  const int64_t bi = bh / A.h, hi = bh % A.h, kvh = hi / (A.h / A.hkv);
  const Block B = block_at(A, blk * kRows);
  const float* Q = A.q + bi * A.qs.b + hi * A.qs.h + B.i0 * A.qs.s;
  const float* K = A.k + bi * A.ks.b + kvh * A.ks.h;
  const float* V = A.v + bi * A.vs.b + kvh * A.vs.h;
  float* O = A.out + bi * A.os.b + hi * A.os.h + B.i0 * A.os.s;
  float* lse = A.lse + (bi * A.h + hi) * A.sq + B.i0;
  float* s = grow(tl_s, B.rows * B.n);
  float* p = grow(tl_p, B.rows * B.n);
  float mx[kRows];

  product(kNT, B.rows, B.n, A.d, Q, A.qs.s, K, A.ks.s, s, B.n, false);
  probabilities(A, B, s, p, nullptr, mx);
  product(kNN, B.rows, A.d, B.n, p, B.n, V, A.vs.s, O, A.os.s, false);
  for (int64_t r = 0; r < B.rows; r++) {
    const double sum = sum8(p + r * B.n, B.n);
    const float inv = static_cast<float>(1.0 / sum);
    float* o = O + r * A.os.s;
    for (int64_t e = 0; e < A.d; e++) o[e] *= inv;
    lse[r] = static_cast<float>(mx[r] + std::log(sum));
  }
}

void backward_task(void* ctx, int task, int) {
  const AttentionArgs& A = *static_cast<const AttentionArgs*>(ctx);
  const int64_t bi = task / A.hkv, kvh = task % A.hkv, group = A.h / A.hkv;
  const float* K = A.k + bi * A.ks.b + kvh * A.ks.h;
  const float* V = A.v + bi * A.vs.b + kvh * A.vs.h;
  float* dK = A.dk + bi * A.ks.b + kvh * A.ks.h;
  float* dV = A.dv + bi * A.vs.b + kvh * A.vs.h;
  const size_t row_bytes = sizeof(float) * static_cast<size_t>(A.d);
  for (int64_t j = 0; j < A.sk; j++) {
    std::memset(dK + j * A.ks.s, 0, row_bytes);
    std::memset(dV + j * A.vs.s, 0, row_bytes);
  }
  for (int64_t hi = kvh * group; hi < (kvh + 1) * group; hi++) {
    for (int64_t i0 = 0; i0 < A.sq; i0 += kRows) {
      const Block B = block_at(A, i0);
      const float* Q = A.q + bi * A.qs.b + hi * A.qs.h + i0 * A.qs.s;
      const float* dO = A.dout + bi * A.gs.b + hi * A.gs.h + i0 * A.gs.s;
      float* dQ = A.dq + bi * A.qs.b + hi * A.qs.h + i0 * A.qs.s;
      const float* lse = A.lse + (bi * A.h + hi) * A.sq + i0;
      float* s = grow(tl_s, B.rows * B.n);
      float* p = grow(tl_p, B.rows * B.n);

      product(kNT, B.rows, B.n, A.d, Q, A.qs.s, K, A.ks.s, s, B.n, false);
      probabilities(A, B, s, p, lse, nullptr);
      product(kNT, B.rows, B.n, A.d, dO, A.gs.s, V, A.vs.s, s, B.n, false);  // dP over S
      for (int64_t r = 0; r < B.rows; r++) {
        const float* pr = p + r * B.n;
        float* ds = s + r * B.n;
        // D_i = rowsum(dO ⊙ O) = rowsum(P ⊙ dP) (O = P·V, dP = dO·Vᵀ): from rows already in cache, where the O
        // rows would be cold loads.
        const float di = static_cast<float>(dot8(pr, ds, B.n));
        for (int64_t j = 0; j < B.n; j++) ds[j] = pr[j] * (ds[j] - di) * A.scale;  // masked keys: P = 0
      }
      product(kTN, B.n, A.d, B.rows, p, B.n, dO, A.gs.s, dV, A.vs.s, true);
      product(kNN, B.rows, A.d, B.n, s, B.n, K, A.ks.s, dQ, A.qs.s, false);
      product(kTN, B.n, A.d, B.rows, s, B.n, Q, A.qs.s, dK, A.ks.s, true);
    }
  }
}

}  // namespace

void attention_forward(const AttentionArgs& a) {
  if (a.b <= 0 || a.h <= 0 || a.sq <= 0) return;
  ForwardJob J{&a, (a.sq + kRows - 1) / kRows};
  parallel_run(static_cast<int>(a.b * a.h * J.blocks), forward_task, &J);
}

void attention_backward(const AttentionArgs& a) {
  if (a.b <= 0 || a.hkv <= 0 || a.sk <= 0) return;
  parallel_run(static_cast<int>(a.b * a.hkv), backward_task, const_cast<AttentionArgs*>(&a));
}

void rope(float* out, HeadStrides os, const float* x, HeadStrides xs, const float* cos, const float* sin,
          int64_t b, int64_t h, int64_t s, int64_t d, bool inverse) {
  if (b <= 0 || h <= 0 || s <= 0 || d <= 0) return;
  struct Ctx {
    float* out; HeadStrides os; const float* x; HeadStrides xs; const float *cos, *sin;
    int64_t h, s, d, rows; bool inverse;
  } ctx{out, os, x, xs, cos, sin, h, s, d, b * s, inverse};
  // One task per thread over a contiguous range of token rows, so two threads share a cache line only where their
  // ranges meet (buffers are only 16-byte aligned). Rows are disjoint: the result does not depend on the thread count.
  const int64_t tasks = std::min<int64_t>(ctx.rows, num_threads());
  const auto task = [](void* p, int t, int nt) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const int64_t os[3] = {c.os.b, c.os.h, c.os.s}, xs[3] = {c.xs.b, c.xs.h, c.xs.s};
    elementwise().rope_rows(c.out, os, c.x, xs, c.cos, c.sin, c.h, c.s, c.d, c.inverse, c.rows * t / nt,
                            c.rows * (t + 1) / nt);
  };
  if (tasks <= 1 || s * d * b * h < (1 << 15)) task(&ctx, 0, 1);  // too little work for the pool hand-off
  else parallel_run(static_cast<int>(tasks), task, &ctx);
}

}  // namespace dora
