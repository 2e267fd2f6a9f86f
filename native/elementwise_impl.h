// Kernel bodies for elementwise.h, written as plain loops the compiler vectorizes for whatever ISA
// the including file is compiled for. Include once per ISA with DORA_EW_NS and DORA_EW_TABLE defined.
#include <cmath>
#include <cstdint>
#include <cstring>

#include "elementwise.h"

namespace dora {
namespace DORA_EW_NS {

inline double bits_to_double(int64_t b) {
  double f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

// e^z in float64, to ~1 ulp: z = n·ln2 + r (ln2 split in two parts so n·ln2_hi is exact), Taylor
// series of e^r to r^13/13! on |r| ≤ ln2/2 (truncation < 1e-17), times 2^n built from its bits.
// Beyond ±708 the result is 0 or inf (the true value is sub-float32 or past float32 range there, so no
// float32 output changes); NaN propagates. Written branch-free so the loops around it vectorize.
inline double exp_d(double z) {
  const double z0 = z == z ? z : 0.0;  // NaN: compute on 0 (no NaN into the integer cast), restore below
  const double lo = z0 < -708.0 ? -708.0 : z0;
  const double zc = lo > 708.0 ? 708.0 : lo;
  const double shift = 6755399441055744.0;  // 1.5·2^52: adding it rounds to an integer
  const double nd = (zc * 1.4426950408889634 + shift) - shift;
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
  const int64_t n = static_cast<int64_t>(nd);
  const double res = p * bits_to_double((n + 1023) << 52);
  const double big = z > 708.0 ? HUGE_VAL : res;
  const double out = z < -708.0 ? 0.0 : big;
  return z != z ? z : out;
}

constexpr double kGeluC = 0.7978845608028654;  // √(2/π)

void unary_forward(int op, float* __restrict out, const float* __restrict x, int64_t n) {
  if (op == kExp) {
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      out[i] = static_cast<float>(exp_d(xd));  // note: GCC 12 leaves this one loop scalar (control flow)
    }
  } else if (op == kSilu) {
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      out[i] = static_cast<float>(xd / (1.0 + exp_d(-xd)));
    }
  } else {
    // 0.5·x·(1 + tanh u) = x·σ(2u): no cancellation for negative x.
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      const double u = kGeluC * (xd + 0.044715 * xd * xd * xd);
      out[i] = static_cast<float>(xd / (1.0 + exp_d(-2.0 * u)));
    }
  }
}

void unary_backward(int op, float* dx, const float* dy, const float* x, const float* y, int64_t n) {
  if (op == kExp) {
    for (int64_t i = 0; i < n; i++) dx[i] = dy[i] * y[i];
  } else if (op == kSilu) {
    // s·(1 + x·(1 − s)), s = σ(x); 1 − s = σ(−x) = 1/(1 + 1/e) with e = e^{−x}: no cancellation, and
    // e = inf or 0 (|x| > ~88) gives the limits 0 and 1 instead of inf·0.
    for (int64_t i = 0; i < n; i++) {
      const double e = exp_d(-static_cast<double>(x[i]));
      const double s = 1.0 / (1.0 + e), sm = 1.0 / (1.0 + 1.0 / e);
      dx[i] = static_cast<float>(dy[i] * s * (1.0 + x[i] * sm));
    }
  } else {
    // d/dx 0.5x(1+t) = 0.5(1+t) + 0.5x(1−t²)·C(1+3·0.044715x²), with 0.5(1+t) = σ(2u), 1−t² = 4σ(2u)σ(−2u).
    for (int64_t i = 0; i < n; i++) {
      const double xd = x[i];
      const double u = kGeluC * (xd + 0.044715 * xd * xd * xd);
      const double e = exp_d(-2.0 * u);
      const double s = 1.0 / (1.0 + e), sm = 1.0 / (1.0 + 1.0 / e);
      const double d = s + 2.0 * xd * s * sm * kGeluC * (1.0 + 3.0 * 0.044715 * xd * xd);
      dx[i] = static_cast<float>(dy[i] * d);
    }
  }
}

void softmax_forward(float* out, const float* x, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* o = out + r * cols;
    float mx = -INFINITY;
    for (int64_t c = 0; c < cols; c++) mx = xr[c] > mx ? xr[c] : mx;
    for (int64_t c = 0; c < cols; c++) mx = xr[c] != xr[c] ? xr[c] : mx;  // NaN wins, as Math.max
    if (mx == -INFINITY) mx = 0.f;  // fully masked row (spec)
    const double m = mx;
    double s = 0.0;
    if (log) {
      for (int64_t c = 0; c < cols; c++) s += exp_d(xr[c] - m);
      const double lse = m + std::log(s);
      for (int64_t c = 0; c < cols; c++) o[c] = static_cast<float>(xr[c] - lse);
    } else {
      for (int64_t c = 0; c < cols; c++) {
        s += exp_d(xr[c] - m);
      }
      const double inv = 1.0 / s;
      for (int64_t c = 0; c < cols; c++) o[c] = static_cast<float>(exp_d(xr[c] - m) * inv);
    }
  }
}

void softmax_backward(float* dx, const float* dy, const float* y, int64_t rows, int64_t cols, bool log) {
  for (int64_t r = 0; r < rows; r++) {
    const int64_t o = r * cols;
    double s = 0.0;
    if (log) {
      for (int64_t c = 0; c < cols; c++) s += dy[o + c];
      for (int64_t c = 0; c < cols; c++) dx[o + c] = static_cast<float>(dy[o + c] - exp_d(y[o + c]) * s);
    } else {
      for (int64_t c = 0; c < cols; c++) s += static_cast<double>(dy[o + c]) * y[o + c];
      for (int64_t c = 0; c < cols; c++) dx[o + c] = static_cast<float>(y[o + c] * (dy[o + c] - s));
    }
  }
}

void rmsnorm_forward(float* y, float* rstd, const float* x, const float* w, int64_t rows, int64_t cols, double eps) {
  for (int64_t r = 0; r < rows; r++) {
    const float* xr = x + r * cols;
    float* yr = y + r * cols;
    double ss = 0.0;
    for (int64_t c = 0; c < cols; c++) ss += static_cast<double>(xr[c]) * xr[c];
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
    double dot = 0.0;
    if (w) for (int64_t c = 0; c < cols; c++) dot += static_cast<double>(dy[o + c]) * w[c] * x[o + c];
    else for (int64_t c = 0; c < cols; c++) dot += static_cast<double>(dy[o + c]) * x[o + c];
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

}  // namespace DORA_EW_NS

extern const ElementwiseKernels DORA_EW_TABLE = {
    DORA_EW_NS::unary_forward,   DORA_EW_NS::unary_backward,  DORA_EW_NS::softmax_forward, DORA_EW_NS::softmax_backward,
    DORA_EW_NS::rmsnorm_forward, DORA_EW_NS::rmsnorm_backward, DORA_EW_NS::adamw_step,
};

}  // namespace dora
