// GEMM against a frozen NF4 weight (bitsandbytes' layout, see src/quant/nf4.ts), with the semantics of
// Backend.gemmNf4 (src/backend/backend.ts):
//   nt: C (m×n) = A (m×k) · Ŵᵀ, W stored [n, k]      nn: C (m×n) = A (m×k) · Ŵ, W stored [k, n]
// Ŵ is dequantised inside the packing of the B operand, one kc×nc block at a time (never whole). The packed
// A, the micro-kernel and the edge kernel are the float GEMM's (gemm.h, chosen by dispatch.cc).
#pragma once
#include <cstdint>

namespace dora {

struct Nf4GemmArgs {
  int form;  // kNN or kNT (gemm.h)
  int64_t m, n, k;
  const float* a; int64_t lda;
  const uint8_t* codes;  // two codes per byte, even flat index in the high nibble
  const float* absmax;   // one scale per block of `block` flat elements
  const float* lut;      // 16 levels
  int64_t block;
  float* c; int64_t ldc;
  bool accumulate;
};

// Pack B(p0:+kc, j0:+nc) of the logical product (B = Ŵᵀ for nt, Ŵ for nn) into slivers of nr columns:
// sliver s, step p holds B(p0+p, j0+s·nr+col), zero-padded past nc. Returns false when it cannot handle the
// layout (the generic scalar packer then runs).
using Nf4PackB = bool (*)(const Nf4GemmArgs& g, int64_t j0, int64_t p0, int64_t nc, int64_t kc, float* dst);

// Tuned entry point: blocked, packed, threaded over the persistent pool (split along n).
void gemm_nf4(const Nf4GemmArgs& g);
// Plain triple loop, float32 accumulation, single-threaded: the in-tree reference for tests.
void gemm_nf4_naive(const Nf4GemmArgs& g);

#ifdef DORA_X86_KERNELS
// AVX-512 dequantising pack for nr = 32 (gemm_nf4_avx512.cc); needs 16-aligned runs of the flat index.
bool nf4_pack_b_avx512(const Nf4GemmArgs& g, int64_t j0, int64_t p0, int64_t nc, int64_t kc, float* dst);
#endif

}  // namespace dora
