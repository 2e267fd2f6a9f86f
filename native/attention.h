// Fused causal grouped-query attention and rotary embedding with the semantics of Backend.attentionForward /
// attentionBackward / rope (src/backend/backend.ts; spec: src/backend/js/attention.ts). No validation here:
// the TS adapter checks every extent (and that written rows do not overlap) before calling.
#pragma once
#include <cstdint>

namespace dora {

// Element strides of the batch, head and sequence dims of a [B, H, S, D] operand; its D elements are contiguous.
struct HeadStrides {
  int64_t b, h, s;
};

// q [B, H, Sq, D], k/v [B, Hkv, Sk, D], out [B, H, Sq, D] (rows placed by their strides), lse [B, H, Sq] contiguous.
// Backward also reads dout (strides gs) and writes dq / dk / dv with the strides of q / k / v.
struct AttentionArgs {
  int64_t b, h, hkv, sq, sk, d;
  float scale;
  const float* q; HeadStrides qs;
  const float* k; HeadStrides ks;
  const float* v; HeadStrides vs;
  float* out; HeadStrides os;
  float* lse;
  const float* dout; HeadStrides gs;
  float *dq, *dk, *dv;
};

void attention_forward(const AttentionArgs& a);
void attention_backward(const AttentionArgs& a);

// out = x·cos + rotate_half(x)·sin per [D] row (inverse: the transposed map); cos/sin [S, D] contiguous.
void rope(float* out, HeadStrides os, const float* x, HeadStrides xs, const float* cos, const float* sin,
          int64_t b, int64_t h, int64_t s, int64_t d, bool inverse);

}  // namespace dora
