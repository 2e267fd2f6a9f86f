// Sparse × dense (sparse_gemm, and its column-dot form sparse_gemm_dot) and sampled dense × dense (sampled_gemm)
// products over a CSR pattern, with the semantics of Backend.sparseGemm / sparseGemmDot / sampledGemm (src/backend/backend.ts; js spec src/backend/js/sparse.ts): the
// dropout corrections of the fused LoRA/DoRA ops. No validation here: the TS adapter checks every extent, that
// rowPtr is non-decreasing inside cols and that each row's columns ascend strictly inside [0, k).
//
// Both kernels read W through bounded panels: a block of NB output columns (i) × up to KB inputs (j) of op(W),
// packed j-major ("transposed" for a Linear weight, where op(W)[j, :] is a column of W), so the entries of a
// token touch contiguous NB-float rows of an L2-resident panel. A drop list of density p costs ~p of a GEMM's
// FLOPs plus one pass over W for the packing; nothing of W's size is allocated (one panel per task).
#pragma once
#include <cstdint>

namespace dora {

struct SparseArgs {
  int form;                // kNN / kNT (gemm.h): W stored [k, n] / [n, k]
  int64_t rows, n, k;
  const int32_t* row_ptr;  // rows + 1 entries
  const int32_t* cols;     // indexed by row_ptr
  const float* x;          // sampled_gemm: a [rows, n]
  const float* scale;      // per-i factor of op(W) or nullptr
  const float* g;          // sparse_gemm_dot: g [rows, n] (nullptr otherwise)
  const float* w;          // W (offset applied)
  float* c;                // sparse_gemm: C [rows, n]; sampled_gemm: out, one float per entry (or nullptr when only
                           // the dot is wanted); sparse_gemm_dot: out [n]
  float* dot;              // sampled_gemm: the fused column dot's output [n] (written), or nullptr
  const float* vals;       // sparse_gemm(_dot), and sampled_gemm with dot: S's values, indexed like cols
  float alpha;             // sparse_gemm only
  bool accumulate;
};

struct SparseKernels {
  void (*sparse_gemm)(const SparseArgs& a);
  void (*sampled_gemm)(const SparseArgs& a);
  void (*sparse_gemm_dot)(const SparseArgs& a);
};

const SparseKernels& sparse();

// Backend.sparseTransposedGemm: out [k, n] (float64, written) = Sᵀ·v over the CSR pattern, S's values indexed like
// cols, v [rows, n]; summed over rows, then entries, in order (the js spec's order: the same bits). One thread:
// entries of different rows land on the same output rows, and the work is ~p·k·n per row (a few µs per token).
void sparse_transposed_gemm(double* out, const float* values, const int32_t* row_ptr, const int32_t* cols, int64_t rows,
                            int64_t k, const float* v, int64_t n);

// Backend.addSparse: out[t·k + cols[e]] += alpha·values[e] over the CSR pattern, in float64 rounded once (the js
// spec's arithmetic: the same bits). Serial: ~1 ns an entry, a dropout layer's ~26K-210K entries.
void add_sparse(float* out, double alpha, const float* values, const int32_t* row_ptr, const int32_t* cols, int64_t rows,
                int64_t k);

// Backend.gatherSparse: values[e] = x[t·k + cols[e]] over the CSR pattern (addSparse's reverse). Serial: x is
// streamed row by row, memory-bound.
void gather_sparse(float* values, const float* x, const int32_t* row_ptr, const int32_t* cols, int64_t rows, int64_t k);

// Backend.positionsToCsr after the addon has checked that the positions ascend strictly inside [0, rows·row_len).
void positions_to_csr(int32_t* pos, int64_t count, int64_t row_len, int64_t rows, int32_t* row_ptr);

extern const SparseKernels kSparsePortable;
#ifdef DORA_X86_KERNELS
extern const SparseKernels kSparseAvx512;
extern const SparseKernels kSparseAvx2;
#endif

}  // namespace dora
