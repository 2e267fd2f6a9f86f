// Dropout mask draw: see random.h and src/backend/js/random.ts (the spec). Only IEEE multiplications and comparisons
// decide a gap (std::log gives a first guess, as Math.log does in the spec), so the result is bit-for-bit the spec's.
#include "random.h"

#include <cmath>
#include <vector>

namespace dora {
namespace {

inline uint32_t rotl(uint32_t x, int k) { return (x << k) | (x >> (32 - k)); }

inline uint32_t xoshiro_next(uint32_t* s) {
  const uint32_t r = rotl(s[1] * 5u, 7) * 9u;
  const uint32_t t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return r;
}

constexpr int64_t kTable = 4096;  // as TABLE in the spec

struct GapLaw {
  double powers[32];          // (1 − p)^(2^b)
  std::vector<double> table;  // Q(g) for g < kTable, up to the first value below 2^-32
  double lnq;

  explicit GapLaw(double p) : lnq(std::log1p(-p)) {
    powers[0] = 1.0 - p;
    for (int b = 1; b < 32; b++) powers[b] = powers[b - 1] * powers[b - 1];
    for (int64_t g = 0; g < kTable; g++) {
      const double q = by_bits(g);
      table.push_back(q);
      if (q < 0x1p-32) break;
    }
  }
  // Q(g) = ∏ (1 − p)^(2^b) over the set bits b of g, low bit first (the spec's order).
  double by_bits(int64_t g) const {
    double q = 1.0;
    for (int b = 0; g > 0; b++, g >>= 1)
      if (g & 1) q *= powers[b];
    return q;
  }
  double threshold(int64_t g) const {
    return g < static_cast<int64_t>(table.size()) ? table[static_cast<size_t>(g)] : by_bits(g);
  }
  // The largest g with Q(g) ≥ v, or limit + 1 when that is beyond limit.
  int64_t gap(double v, int64_t limit) const {
    const double guess = std::floor(std::log(v) / lnq);
    if (guess > static_cast<double>(limit + 2)) return limit + 1;
    int64_t g = guess >= 0 ? static_cast<int64_t>(guess) : 0;
    while (g > 0 && threshold(g) < v) g--;
    while (threshold(g + 1) >= v) g++;
    return g < limit + 1 ? g : limit + 1;
  }
};

}  // namespace

int64_t dropout_draw(int32_t* out, int64_t cap, int64_t count, int64_t last, int64_t n, double p, uint32_t* state) {
  const GapLaw law(p);
  int64_t i = last;
  while (count < cap) {
    const double v = 1.0 - static_cast<double>(xoshiro_next(state)) * 0x1p-32;  // exact: 32 significant bits
    i += 1 + law.gap(v, n);
    if (i >= n) break;
    out[count++] = static_cast<int32_t>(i);
  }
  return count;
}

}  // namespace dora
