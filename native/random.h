// The dropout mask draw (Backend.dropoutDraw). Its spec, and why the gap is defined by products rather than by a
// logarithm, is src/backend/js/random.ts; this is the same arithmetic, so both backends give the same positions.
#pragma once
#include <cstdint>

namespace dora {

// Appends dropped positions to out[count..cap), ascending, the first after `last` (−1 at the start), one xoshiro128**
// draw from state[0..4) (advanced in place) per gap. Returns the new count; stops when a position reaches n (that
// draw is spent) or when the output is full (no draw is made for the next position).
int64_t dropout_draw(int32_t* out, int64_t cap, int64_t count, int64_t last, int64_t n, double p, uint32_t* state);

}  // namespace dora
