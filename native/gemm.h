// SGEMM with the semantics of Backend.gemm (src/backend/backend.ts): row-major, forms nn / nt / tn,
// leading dimensions, batch strides (0 broadcasts), accumulate flag. No validation here: the TS
// adapter checks every extent before calling.
#pragma once
#include <cstdint>

namespace dora {

enum GemmForm : int { kNN = 0, kNT = 1, kTN = 2 };

struct GemmArgs {
  int form;
  int64_t m, n, k;
  const float* a; int64_t lda, strideA;
  const float* b; int64_t ldb, strideB;
  float* c; int64_t ldc, strideC;
  int64_t batch;
  bool accumulate;
  // Optional diagonal scale of op(B) (DoRA's m/n folded into the frozen weight as it is packed, so no scaled copy
  // of an activation is made): op(B)(p, j) is read as op(B)(p, j)·bscale[p] (axis 0, along k) or ·bscale[j]
  // (axis 1, along n). nullptr: none.
  const float* bscale = nullptr;
  int bscale_axis = 0;
};

// Micro-kernel: C[MR×NR] (row stride ldc) = (beta ? C : 0) + Apanel·Bpanel over kc steps.
// Apanel: kc groups of MR floats (one column of the A sliver each); Bpanel: kc rows of NR floats.
using MicroKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta);
// Edge variant: same packed operands, writes only rows×cols (rows ≤ MR, cols ≤ NR) of C.
using EdgeKernel = void (*)(int64_t kc, const float* a, const float* b, float* c, int64_t ldc, int beta, int rows, int cols);
// Packing routines (see gemm.cc): A[i0:+mc, p0:+kc] into mr-row slivers, B[p0:+kc, j0:+nc] into nr-column
// slivers, zero-padding ragged edges. `a`/`b` point at the operand's storage; `form` says how to read it.
using PackFn = void (*)(int form, const float* src, int64_t ld, int64_t r0, int64_t p0, int64_t rows, int64_t kc, float* dst);
// B's packer also applies GemmArgs::bscale as it copies (a multiply on values already in registers, where a separate
// pass over the packed block cost ~1-2% of a base-size GEMM): `scale` is relative to the block, scale[p] for p < kc
// (axis 0) or scale[j] for j < nc (axis 1); nullptr: a plain copy.
using PackBFn = void (*)(int form, const float* src, int64_t ld, int64_t j0, int64_t p0, int64_t nc, int64_t kc, float* dst,
                         const float* scale, int axis);
// GEMV (one row of A, no packing): c[0:n] = (acc ? c : 0) + a·B, a contiguous (k floats), c contiguous (n floats).
// form kNT: B(p, j) = b[j·ldb + p] (dot products with B's rows); kNN: B(p, j) = b[p·ldb + j] (axpy over B's rows).
using GemvFn = void (*)(int form, int64_t n, int64_t k, const float* a, const float* b, int64_t ldb, float* c, bool acc);

struct GemmKernel {
  const char* isa;
  int mr, nr;          // register tile
  int64_t kc, mc, nc;  // cache blocking: A block mc×kc (L3), B block kc×nc (L2), A sliver mr×kc (L1)
  MicroKernel kernel;
  PackFn pack_a;       // nullptr: the generic packers in gemm.cc
  PackBFn pack_b;
  EdgeKernel edge;     // nullptr: edge tiles go through a temporary tile
  GemvFn gemv;         // small-m nn / nt path; nullptr: the portable loops in gemm.cc
};

// Tuned entry point: blocked, packed, threaded over the persistent pool.
void gemm(const GemmArgs& g);
// The same, all on the calling thread: for kernels that call GEMM from inside a pool task (parallel_run
// runs one job at a time, so gemm() must not be nested in one).
void gemm_single(const GemmArgs& g);
// Plain triple loop, float32 accumulation, single-threaded: the in-tree reference for tests.
void gemm_naive(const GemmArgs& g);

// ISA selection (dispatch.cc). isa: "avx512" | "avx2" | "portable"; returns false if unsupported here.
bool gemm_set_isa(const char* isa);
const GemmKernel& gemm_kernel();

// Kernels per ISA (only linked where built).
extern const GemmKernel kGemmPortable;
#ifdef DORA_X86_KERNELS
extern const GemmKernel kGemmAvx512;
extern const GemmKernel kGemmAvx2;
#endif

}  // namespace dora
