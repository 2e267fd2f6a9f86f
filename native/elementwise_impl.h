// Kernel bodies for elementwise.h, written as plain loops the compiler vectorizes for whatever ISA
// the including file is compiled for. Include once per ISA with DORA_EW_NS and DORA_EW_TABLE defined.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "elementwise.h"
#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

namespace dora {
namespace DORA_EW_NS {

inline double bits_to_double(uint64_t b) {
  double f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

inline uint64_t double_to_bits(double f) {
  uint64_t b;
  std::memcpy(&b, &f, sizeof b);
  return b;
}

// e^z in float64, to ~1 ulp: z = n·ln2 + r (ln2 split in two parts so n·ln2_hi is exact), Taylor
// series of e^r to r^13/13! on |r| ≤ ln2/2 (truncation < 1e-17), times 2^n built from its bits.
// Beyond ±708 the result is 0 or inf (the true value is sub-float32 or past float32 range there, so no
// float32 output changes); NaN propagates through the arithmetic. Branch-free and without a
// float→int conversion (AVX2 has no vector double→int64 one), so every loop around it vectorizes:
// adding 1.5·2^52 rounds z·log2(e) to the integer n and leaves n in the low mantissa bits of kd,
// from which the exponent field of 2^n is one integer add and shift.
inline double exp_d(double z) {
  const double zc = z > 708.0 ? 708.0 : (z < -708.0 ? -708.0 : z);
  const double shift = 6755399441055744.0;  // 1.5·2^52
  const double kd = zc * 1.4426950408889634 + shift;
  const double nd = kd - shift;
  const double r = (zc - nd * 6.93147180369123816490e-01) - nd * 1.90821492927058770002e-10;
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = p * r + 1.0 / 479001600.0;
  p = p * r + 1.0 / 39916800.0;
  p = p * r + 1.0 / 3628800.0;
  p = p * r + 1.0 / 362880.0;
  p = p * r + 1.0 / 40320.0;
  p = p * r + 1.0 / 5040.0;
  p = p * r + 1.0 / 720.0;
  p = p * r + 1.0 / 120.0;
  p = p * r + 1.0 / 24.0;
  p = p * r + 1.0 / 6.0;
  p = p * r + 0.5;
  p = p * r + 1.0;
  p = p * r + 1.0;
  // the low 12 bits of kd's bit pattern are n mod 4096 (|n| ≤ 1022): (bits + 1023) << 52 is 2^n
  const double res = p * bits_to_double((double_to_bits(kd) + 1023) << 52);
  const double big = z > 708.0 ? HUGE_VAL : res;
  return z < -708.0 ? 0.0 : big;
}

// σ(z) and σ(−z) with one division and no inf: e = e^{−|z|} ≤ 1, σ(|z|) = 1/(1 + e), σ(−|z|) = e·σ(|z|).
// NaN in, NaN out (both).
inline void sigmoid_pair(double z, double* s, double* sm) {
  const double az = z < 0.0 ? -z : z;
  const double e = exp_d(-az);
  const double p = 1.0 / (1.0 + e), q = e * p;
  *s = z < 0.0 ? q : p;
  *sm = z < 0.0 ? p : q;
}

// Sums f(i) for i < n in float64. Independent partial sums (kLanes of them, combined at the end) let the
// compiler vectorize the loop, which a single in-order accumulator forbids without -ffast-math; the
// result differs from the in-order sum by float64 rounding only.
constexpr int kLanes = 16;
template <typename F>
inline double sum_lanes(int64_t n, F f) {
  double acc[kLanes] = {0};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; j++) acc[j] += f(i + j);
  double s = 0.0;
  for (; i < n; i++) s += f(i);
  for (int j = 0; j < kLanes; j++) s += acc[j];
  return s;
}

// max of x[0..n) as Math.max: NaN wins (-inf for n = 0). Computed as an integer max over an
// order-preserving key of the float bits (sign-magnitude to two's-complement order: flip the low 31 bits
// of negatives), because integer max reductions vectorize and float ones do not without
// -ffinite-math-only; a second integer max over |bits| spots NaN (above inf's 0x7f800000).
inline float row_max(const float* x, int64_t n) {
  int32_t kmax = INT32_MIN, amax = 0;
  for (int64_t i = 0; i < n; i++) {
    int32_t b;
    std::memcpy(&b, x + i, sizeof b);
    const int32_t k = b ^ ((b >> 31) & 0x7fffffff), a = b & 0x7fffffff;
    kmax = k > kmax ? k : kmax;
    amax = a > amax ? a : amax;
  }
  if (amax > 0x7f800000) return NAN;
  if (n == 0) return -INFINITY;
  const int32_t b = kmax ^ ((kmax >> 31) & 0x7fffffff);
  float m;
  std::memcpy(&m, &b, sizeof m);
  return m;
}

constexpr double kGeluC = 0.7978845608028654;  // √(2/π)

void unary_forward(int op, float* __restrict out, const float* __restrict x, int64_t n) {
  if (op == kExp) {
    for (int64_t i = 0; i < n; i++) out[i] = static_cast<float>(exp_d(x[i]));
  } else if (op == kSilu) {
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      double s, sm;
      sigmoid_pair(xd, &s, &sm);
      out[i] = static_cast<float>(xd * s);
    }
  } else {
    // 0.5·x·(1 + tanh u) = x·σ(2u): no cancellation for negative x.
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      const double u = kGeluC * (xd + 0.044715 * xd * xd * xd);
      double s, sm;
      sigmoid_pair(2.0 * u, &s, &sm);
      out[i] = static_cast<float>(xd * s);
    }
  }
}

void unary_backward(int op, float* dx, const float* dy, const float* x, const float* y, int64_t n) {
  if (op == kExp) {
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * y[i];
  } else if (op == kSilu) {
    // s·(1 + x·(1 − s)), s = σ(x), 1 − s = σ(−x) from sigmoid_pair: no cancellation, no inf·0.
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      double s, sm;
      sigmoid_pair(xd, &s, &sm);
      dx[i] = static_cast<float>(dy[i] * s * (1.0 + xd * sm));
    }
  } else {
    // d/dx 0.5x(1+t) = 0.5(1+t) + 0.5x(1−t²)·C(1+3·0.044715x²), with 0.5(1+t) = σ(2u), 1−t² = 4σ(2u)σ(−2u).
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      const double u = kGeluC * (xd + 0.044715 * xd * xd * xd);
      double s, sm;
      sigmoid_pair(2.0 * u, &s, &sm);
      const double d = s + 2.0 * xd * s * sm * kGeluC * (1.0 + 3.0 * 0.044715 * xd * xd);
      dx[i] = static_cast<float>(dy[i] * d);
    }
  }
}

void binary_flat(int op, float* out, const float* a, const float* b, int64_t n) {
  if (op == kAdd) for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
  else if (op == kSub) for (int64_t i = 0; i < n; i++) out[i] = a[i] - b[i];
  else if (op == kMul) for (int64_t i = 0; i < n; i++) out[i] = a[i] * b[i];
  else for (int64_t i = 0; i < n; i++) out[i] = a[i] / b[i];
}

void silu_mul_forward(float* __restrict out, const float* __restrict g, const float* __restrict u, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    const double gd = g[i];
    double s, sm;
    sigmoid_pair(gd, &s, &sm);
    out[i] = static_cast<float>(gd * s * u[i]);
  }
}

void silu_mul_backward(float* __restrict dg, float* __restrict du, const float* __restrict dy, const float* __restrict g,
                       const float* __restrict u, int64_t n) {
  // du = dy·silu(g); dg = dy·u·silu'(g), silu'(g) = s·(1 + g·σ(−g)).
  for (int64_t i = 0; i < n; i++) {
    const double gd = g[i], d = dy[i];
    double s, sm;
    sigmoid_pair(gd, &s, &sm);
    du[i] = static_cast<float>(d * gd * s);
    dg[i] = static_cast<float>(d * u[i] * s * (1.0 + gd * sm));
  }
}

void softmax_forward(float* out, const float* x, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    float mx = row_max(xr, cols);
    if (mx == -INFINITY) mx = 0.f;  // fully masked row (spec)
    const double m = mx;
    const double s = sum_lanes(cols, [&](int64_t c) { return exp_d(xr[c] - m); });
    if (log) {
      const double lse = m + std::log(s);
      for (int64_t c = 0; c < cols; c++) o[c] = static_cast<float>(xr[c] - lse);
    } else {
      const double inv = 1.0 / s;
      for (int64_t c = 0; c < cols; c++) o[c] = static_cast<float>(exp_d(xr[c] - m) * inv);
    }
  }
}

int64_t cross_entropy_forward(float* loss, float* lse, const float* logits, const int32_t* targets, int64_t rows,
                              int64_t cols, int64_t ignore) {
  // As the spec: no masked-row rule (an all −inf row gives NaN), lse kept for every row.
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * cols;
    const double m = row_max(xr, cols);
    const double l = m + std::log(sum_lanes(cols, [&](int64_t c) { return exp_d(xr[c] - m); }));
    lse[r] = static_cast<float>(l);
    const int64_t t = targets[r];
    if (t == ignore) { loss[r] = 0.f; continue; }
    loss[r] = static_cast<float>(l - xr[t]);
    counted++;
  }
  return counted;
}

void cross_entropy_backward(float* __restrict dlogits, const float* __restrict logits, const float* lse,
                            const int32_t* targets, int64_t rows, int64_t cols, int64_t ignore, const float* scale_rows,
                            double scale) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = logits + r * cols;
    float* d = dlogits + r * cols;
    const int64_t t = targets[r];
    if (t == ignore) { std::memset(d, 0, sizeof(float) * cols); continue; }
    const double g = scale_rows ? scale_rows[r] : scale, l = lse[r];
    for (int64_t c = 0; c < cols; c++) d[c] = static_cast<float>(g * exp_d(xr[c] - l));
    d[t] = static_cast<float>(d[t] - g);
  }
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const int64_t o = r * cols;
    double s = 0.0;
    if (log) {
      s = sum_lanes(cols, [&](int64_t c) { return static_cast<double>(dy[o + c]); });
      for (int64_t c = 0; c < cols; c++) dx[o + c] = static_cast<float>(dy[o + c] - exp_d(y[o + c]) * s);
    } else {
      s = sum_lanes(cols, [&](int64_t c) { return static_cast<double>(dy[o + c]) * y[o + c]; });
      for (int64_t c = 0; c < cols; c++) dx[o + c] = static_cast<float>(y[o + c] * (dy[o + c] - s));
    }
  }
}

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t cols, double eps) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    const double ss = sum_lanes(cols, [&](int64_t c) { return static_cast<double>(xr[c]) * xr[c]; });
    const double rs = 1.0 / std::sqrt(ss / static_cast<double>(cols) + eps);
    rstd[r] = static_cast<float>(rs);
    if (w) for (int64_t c = 0; c < cols; c++) yr[c] = static_cast<float>(xr[c] * rs * w[c]);
    else for (int64_t c = 0; c < cols; c++) yr[c] = static_cast<float>(xr[c] * rs);
  }
}

void rmsnorm_backward(float* dx, float* dw, const float* dy, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t cols) {
  // y = w·x·r, r = (mean x² + eps)^-½  ⇒  dx = r·(w⊙dy) − x·r³·mean(w⊙dy⊙x); dw += dy⊙x·r.
  for (int64_t r = 0; r < rows; r++) {
    const int64_t o = r * cols;
    const double rs = rstd[r];
    const double dot = w ? sum_lanes(cols, [&](int64_t c) { return static_cast<double>(dy[o + c]) * w[c] * x[o + c]; })
                         : sum_lanes(cols, [&](int64_t c) { return static_cast<double>(dy[o + c]) * x[o + c]; });
    const double k = dot / static_cast<double>(cols) * rs * rs * rs;
    if (w) for (int64_t c = 0; c < cols; c++) dx[o + c] = static_cast<float>(static_cast<double>(dy[o + c]) * w[c] * rs - x[o + c] * k);
    else for (int64_t c = 0; c < cols; c++) dx[o + c] = static_cast<float>(dy[o + c] * rs - x[o + c] * k);
    if (dw) for (int64_t c = 0; c < cols; c++) dw[c] = static_cast<float>(dw[c] + static_cast<double>(dy[o + c]) * x[o + c] * rs);
  }
}

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, double lr, double beta1, double beta2,
                double eps, double weight_decay, double step) {
  // torch.optim.AdamW: p·(1 − lr·wd) − (lr/bc1)·m/(sqrt(v)/sqrt(bc2) + eps), as the js spec writes it.
  const double bc1 = 1.0 - std::pow(beta1, step), bc2 = 1.0 - std::pow(beta2, step);
  const double step_size = lr / bc1, bc2_sqrt = std::sqrt(bc2), decay = 1.0 - lr * weight_decay;
  for (int64_t i = 0; i < n; i++) {
    const double gi = g[i];
    const double mi = beta1 * m[i] + (1.0 - beta1) * gi;
    const double vi = beta2 * v[i] + (1.0 - beta2) * gi * gi;
    m[i] = static_cast<float>(mi);
    v[i] = static_cast<float>(vi);
    p[i] = static_cast<float>(p[i] * decay - step_size * mi / (std::sqrt(vi) / bc2_sqrt + eps));
  }
}

// Rows [r0, r1) of out = (scale + offset) ⊙ x (+ bias) per column, float64 arithmetic (columns.h column_scale).
void column_scale_rows(float* out, const float* x, const float* scale, double offset, const float* bias, int64_t r0,
                       int64_t r1, int64_t cols) {
  for (int64_t r = r0; r < r1; r++) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    if (bias) {
      for (int64_t i = 0; i < cols; i++)
        o[i] = static_cast<float>((static_cast<double>(scale[i]) + offset) * xr[i] + bias[i]);
    } else {
      for (int64_t i = 0; i < cols; i++) o[i] = static_cast<float>((static_cast<double>(scale[i]) + offset) * xr[i]);
    }
  }
}

// acc[i] += Σ_{r0 ≤ r < r1} g[r, i]·(z[r, i] − bias[i]) in float64 (columns.h column_dot sums chunks of rows with it).
void column_dot_rows(double* acc, const float* g, const float* z, const float* bias, int64_t r0, int64_t r1,
                     int64_t cols) {
  for (int64_t r = r0; r < r1; r++) {
    const float* gr = g + r * cols;
    const float* zr = z + r * cols;
    if (bias) {
      for (int64_t i = 0; i < cols; i++) acc[i] += static_cast<double>(gr[i]) * (static_cast<double>(zr[i]) - bias[i]);
    } else {
      for (int64_t i = 0; i < cols; i++) acc[i] += static_cast<double>(gr[i]) * zr[i];
    }
  }
}

#ifdef __AVX512F__
// NB rows t.. of low_rank_products_rows, ranks in the 16 lanes: for each column i, g[t+x, i] is broadcast once and
// used for both products asked for, v[t+x] += g[t+x, i]·B(i, ·) (V) and gut[i] += g[t+x, i]·u[t+x, ·] (GU): the
// micro-kernel form (no lane sums, no masks), B's and gut's rows streamed once per NB rows.
template <int NB, bool GU, bool V>
inline void low_rank_rows_x(const float* g, const float* u, int64_t r, const float* bq, int64_t n, int64_t t,
                            float* v, float* gut) {
  const __mmask16 rm = static_cast<__mmask16>(r >= 16 ? 0xFFFF : (1u << r) - 1);
  __m512 ur[NB], vacc[NB];
  const float* gx[NB];
  for (int x = 0; x < NB; x++) {
    ur[x] = GU ? _mm512_maskz_loadu_ps(rm, u + (t + x) * r) : _mm512_setzero_ps();
    vacc[x] = _mm512_setzero_ps();
    gx[x] = g + (t + x) * n;
  }
  for (int64_t i = 0; i < n; i++) {
    const __m512 br = V ? _mm512_load_ps(bq + i * 16) : _mm512_setzero_ps();
    __m512 a0 = GU ? _mm512_load_ps(gut + i * 16) : _mm512_setzero_ps(), a1 = _mm512_setzero_ps();  // two chains
    for (int x = 0; x < NB; x++) {
      const __m512 gb = _mm512_set1_ps(gx[x][i]);
      if (V) vacc[x] = _mm512_fmadd_ps(gb, br, vacc[x]);
      if (GU && x % 2 == 0) a0 = _mm512_fmadd_ps(gb, ur[x], a0);
      if (GU && x % 2 == 1) a1 = _mm512_fmadd_ps(gb, ur[x], a1);
    }
    if (GU) _mm512_store_ps(gut + i * 16, _mm512_add_ps(a0, a1));
  }
  if (V)
    for (int x = 0; x < NB; x++) _mm512_mask_storeu_ps(v + (t + x) * r, rm, vacc[x]);
}

// dacc[i] += Σ_{x<nb} g[t+x, i]·(z[t+x, i] − bias[i]) in float64, rows in order: column_dot_rows' sums, with each
// 8-column slice of dacc loaded once for the block's rows instead of once per row.
inline void column_dot_block(double* dacc, const float* g, const float* z, const float* bias, int64_t t, int nb, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m512d a = _mm512_loadu_pd(dacc + i);
    const __m512d bi = bias ? _mm512_cvtps_pd(_mm256_loadu_ps(bias + i)) : _mm512_setzero_pd();
    for (int x = 0; x < nb; x++) {
      const __m512d gv = _mm512_cvtps_pd(_mm256_loadu_ps(g + (t + x) * n + i));
      const __m512d zv = _mm512_cvtps_pd(_mm256_loadu_ps(z + (t + x) * n + i));
      a = _mm512_fmadd_pd(gv, _mm512_sub_pd(zv, bi), a);
    }
    _mm512_storeu_pd(dacc + i, a);
  }
  for (; i < n; i++)
    for (int x = 0; x < nb; x++)
      dacc[i] += static_cast<double>(g[(t + x) * n + i]) * (static_cast<double>(z[(t + x) * n + i]) - (bias ? bias[i] : 0.0));
}

template <int NB>
inline void low_rank_rows_any(const float* g, const float* u, int64_t r, const float* bq, int64_t n, int64_t t,
                              float* v, float* gut) {
  if (gut && v) low_rank_rows_x<NB, true, true>(g, u, r, bq, n, t, v, gut);
  else if (gut) low_rank_rows_x<NB, true, false>(g, u, r, bq, n, t, v, gut);
  else if (v) low_rank_rows_x<NB, false, true>(g, u, r, bq, n, t, v, gut);
}
#endif

// Rows [t0, t1) of columns.h low_rank_products, g read once (a block of rows at a time, which stays in cache for the
// column dot), each output only when its pointer is set: gut[i·16 + k] = Σ_t g[t,i]·u[t,k] (written, [n][16], ranks
// ≥ r zero), v[t, k] = Σ_i g[t,i]·bq[i·16 + k] (bq: B times its scale, [n][16] zero-padded), dacc[i] =
// Σ_t g[t,i]·(z[t,i] − bias[i]) in float64 (written).
void low_rank_products_rows(const float* g, const float* u, int64_t r, const float* bq, int64_t n, int64_t t0,
                            int64_t t1, float* v, float* gut, double* dacc, const float* z, const float* bias) {
  constexpr int TB = 8;
  if (gut)
    for (int64_t i = 0; i < n * 16; i++) gut[i] = 0.f;
  if (dacc)
    for (int64_t i = 0; i < n; i++) dacc[i] = 0.0;
  for (int64_t tb = t0; tb < t1; tb += TB) {
    const int nb = static_cast<int>(t1 - tb < TB ? t1 - tb : TB);
#ifdef __AVX512F__
    if (nb == TB) low_rank_rows_any<TB>(g, u, r, bq, n, tb, v, gut);
    else
      for (int x = 0; x < nb; x++) low_rank_rows_any<1>(g, u, r, bq, n, tb + x, v, gut);
    if (dacc) column_dot_block(dacc, g, z, bias, tb, nb, n);
#else
    for (int x = 0; x < nb && (v || gut); x++) {
      const float* gr = g + (tb + x) * n;
      float vs[16] = {};
      for (int64_t i = 0; i < n; i++) {
        const float gi = gr[i];
        if (v)
          for (int k = 0; k < 16; k++) vs[k] += gi * bq[i * 16 + k];
        if (gut)
          for (int64_t k = 0; k < r; k++) gut[i * 16 + k] += gi * u[(tb + x) * r + k];
      }
      if (v)
        for (int64_t k = 0; k < r; k++) v[(tb + x) * r + k] = vs[k];
    }
    if (dacc) column_dot_rows(dacc, g, z, bias, tb, tb + nb, n);
#endif
  }
}

// columns.h dora_norm_terms, first step: at = Aᵀ [cols, rp] (rp: r rounded up to 16, zero-padded) and aat = A·Aᵀ
// [r, r] in float64 (exact products summed over p in order, as the js spec sums them).
void dora_norm_prepare(float* at, double* aat, const float* a, int64_t r, int64_t rp, int64_t cols) {
  for (int64_t p = 0; p < cols; p++) {
    float* ap = at + p * rp;
    for (int64_t k = 0; k < r; k++) ap[k] = a[k * cols + p];
    for (int64_t k = r; k < rp; k++) ap[k] = 0.f;
  }
  for (int64_t k = 0; k < r * r; k++) aat[k] = 0.0;
  for (int64_t p = 0; p < cols; p++) {
    const float* ap = at + p * rp;
    for (int64_t k = 0; k < r; k++) {
      const double ak = ap[k];
      double* row = aat + k * r;
      for (int64_t l = 0; l < r; l++) row[l] += ak * ap[l];
    }
  }
}

// Rows [i0, i1) of columns.h dora_norm_terms: W(i, p) = w[i·si + p·sp]; at, aat from dora_norm_prepare. As a GEMM
// micro-kernel with the ranks as its 16 lanes: each W element is broadcast against a row of Aᵀ, RW rows of W at a
// time, so W is read once and nothing is reduced across lanes. The dots W_i·A_k accumulate in float32 (as the GEMM
// this replaces did), the rest in float64. A ragged last block reuses the last row and drops its results.
void dora_norm_terms_rows(double* out, const float* w, int64_t si, int64_t sp, const float* at, int64_t rp,
                          const float* b, const double* aat, double s, int64_t i0, int64_t i1, int64_t cols, int64_t r) {
  constexpr int L = 16, RW = 12;
  for (int64_t i = i0; i < i1; i += RW) {
    const float* wr[RW];
    for (int x = 0; x < RW; x++) wr[x] = w + (i + x < i1 ? i + x : i1 - 1) * si;
    double cross[RW] = {};
    for (int64_t k0 = 0; k0 < r; k0 += L) {
      float acc[RW][L];
#ifdef __AVX512F__
      // the loop of the #else branch, with the RW accumulators held in registers (the compiler spills them)
      __m512 va[RW];
      for (int x = 0; x < RW; x++) va[x] = _mm512_setzero_ps();
      for (int64_t p = 0; p < cols; p++) {
        const __m512 ap = _mm512_loadu_ps(at + p * rp + k0);
        for (int x = 0; x < RW; x++) va[x] = _mm512_fmadd_ps(_mm512_set1_ps(wr[x][p * sp]), ap, va[x]);
      }
      for (int x = 0; x < RW; x++) _mm512_storeu_ps(acc[x], va[x]);
#else
      for (int x = 0; x < RW; x++)
        for (int l = 0; l < L; l++) acc[x][l] = 0.f;
      for (int64_t p = 0; p < cols; p++) {
        const float* ap = at + p * rp + k0;
        for (int x = 0; x < RW; x++) {
          const float wv = wr[x][p * sp];
          for (int l = 0; l < L; l++) acc[x][l] += wv * ap[l];
        }
      }
#endif
      for (int x = 0; x < RW && i + x < i1; x++)
        for (int64_t l = 0; l < L && k0 + l < r; l++) cross[x] += static_cast<double>(b[(i + x) * r + k0 + l]) * acc[x][l];
    }
    for (int x = 0; x < RW && i + x < i1; x++) {
      // quad = b·(A·Aᵀ)·b with t = (A·Aᵀ)·b built as axpys over aat's rows (aat is symmetric): the k loop vectorises
      // where the dot-product form was a chain of dependent adds (~0.6 ms of a 2048-row call at r = 16); the sums
      // run over l in the js spec's order, so t is the same to the bit
      const float* br = b + (i + x) * r;
      double quad = 0.0;
      for (int64_t k0 = 0; k0 < r; k0 += 64) {
        const int64_t kn = r - k0 < 64 ? r - k0 : 64;
        double t[64];
        for (int64_t k = 0; k < kn; k++) t[k] = 0.0;
        for (int64_t l = 0; l < r; l++) {
          const double bl = br[l];
          const double* row = aat + l * r + k0;
          for (int64_t k = 0; k < kn; k++) t[k] += row[k] * bl;
        }
        for (int64_t k = 0; k < kn; k++) quad += static_cast<double>(br[k0 + k]) * t[k];
      }
      out[i + x] = 2.0 * s * cross[x] + s * s * quad;
    }
  }
}

// attention.h rope on token rows [r0, r1), every head of a row in turn: a [B, S, H, D] buffer (q or k projected,
// viewed as heads) is then read and written front to back. Walking one head down all positions instead strode
// through it by H·D floats and ran 2-5× slower in a training step. Per pair (i, j = i + D/2) the matrix
// [[c_i, −s_i], [s_j, c_j]]; `inverse` applies its transpose. float64 arithmetic like the spec; compiled per ISA so
// the pair loop runs in full-width vectors (the portable build, two doubles a vector, took 0.44 ms for q at
// 1024 tokens × 512 on one thread).
void rope_rows(float* out, const int64_t* os, const float* x, const int64_t* xs, const float* cos, const float* sin,
               int64_t h, int64_t s, int64_t d, bool inverse, int64_t r0, int64_t r1) {
  const int64_t half = d / 2;
  const double sign = inverse ? -1.0 : 1.0;  // the transpose flips the sign of both sine terms
  for (int64_t r = r0; r < r1; r++) {
    const int64_t bi = r / s, t = r % s;
    const float *c1 = cos + t * d, *c2 = c1 + half, *s1 = sin + t * d + (inverse ? half : 0),
                *s2 = sin + t * d + (inverse ? 0 : half);
    for (int64_t hi = 0; hi < h; hi++) {
      const float* xr = x + bi * xs[0] + hi * xs[1] + t * xs[2];
      float* o = out + bi * os[0] + hi * os[1] + t * os[2];
      // out may be x itself: each block of pairs reads both of its halves before writing them. The vector blocks
      // do the scalar loop's float64 products and sums, unfused, so every ISA gives the same bits.
      int64_t i = 0;
#if defined(__AVX512F__)
      for (; i < half; i += 8) {
        const __mmask8 m = half - i >= 8 ? static_cast<__mmask8>(0xff) : static_cast<__mmask8>((1u << (half - i)) - 1);
        const auto ld = [m](const float* p) { return _mm512_cvtps_pd(_mm256_maskz_loadu_ps(m, p)); };
        const __m512d x1 = ld(xr + i), x2 = ld(xr + i + half), sg = _mm512_set1_pd(sign);
        const __m512d a = _mm512_sub_pd(_mm512_mul_pd(x1, ld(c1 + i)), _mm512_mul_pd(sg, _mm512_mul_pd(x2, ld(s1 + i))));
        const __m512d b = _mm512_add_pd(_mm512_mul_pd(x2, ld(c2 + i)), _mm512_mul_pd(sg, _mm512_mul_pd(x1, ld(s2 + i))));
        _mm256_mask_storeu_ps(o + i, m, _mm512_cvtpd_ps(a));
        _mm256_mask_storeu_ps(o + i + half, m, _mm512_cvtpd_ps(b));
      }
#elif defined(__AVX2__)
      for (; i + 4 <= half; i += 4) {
        const auto ld = [](const float* p) { return _mm256_cvtps_pd(_mm_loadu_ps(p)); };
        const __m256d x1 = ld(xr + i), x2 = ld(xr + i + half), sg = _mm256_set1_pd(sign);
        const __m256d a = _mm256_sub_pd(_mm256_mul_pd(x1, ld(c1 + i)), _mm256_mul_pd(sg, _mm256_mul_pd(x2, ld(s1 + i))));
        const __m256d b = _mm256_add_pd(_mm256_mul_pd(x2, ld(c2 + i)), _mm256_mul_pd(sg, _mm256_mul_pd(x1, ld(s2 + i))));
        _mm_storeu_ps(o + i, _mm256_cvtpd_ps(a));
        _mm_storeu_ps(o + i + half, _mm256_cvtpd_ps(b));
      }
#endif
      for (; i < half; i++) {
        const double x1 = xr[i], x2 = xr[i + half];
        const double a = x1 * static_cast<double>(c1[i]) - sign * (x2 * static_cast<double>(s1[i]));
        const double b = x2 * static_cast<double>(c2[i]) + sign * (x1 * static_cast<double>(s2[i]));
        o[i] = static_cast<float>(a);
        o[i + half] = static_cast<float>(b);
      }
    }
  }
}

}  // namespace DORA_EW_NS

extern const ElementwiseKernels DORA_EW_TABLE = {
    DORA_EW_NS::unary_forward,   DORA_EW_NS::unary_backward,  DORA_EW_NS::softmax_forward, DORA_EW_NS::softmax_backward,
    DORA_EW_NS::rmsnorm_forward, DORA_EW_NS::rmsnorm_backward, DORA_EW_NS::adamw_step,      DORA_EW_NS::binary_flat,
    DORA_EW_NS::silu_mul_forward, DORA_EW_NS::silu_mul_backward, DORA_EW_NS::cross_entropy_forward,
    DORA_EW_NS::cross_entropy_backward, DORA_EW_NS::column_scale_rows, DORA_EW_NS::column_dot_rows,
    DORA_EW_NS::low_rank_products_rows, DORA_EW_NS::dora_norm_prepare, DORA_EW_NS::dora_norm_terms_rows, DORA_EW_NS::rope_rows,
};

}  // namespace dora
