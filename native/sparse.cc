// Portable build of the sparse kernels and the choice of table (same ISA as the GEMM kernel).
#include <cstring>

#include "gemm.h"

#define DORA_SP_NS sp_portable
#define DORA_SP_TABLE kSparsePortable
#include "sparse_impl.h"

namespace dora {

const SparseKernels& sparse() {
#ifdef DORA_X86_KERNELS
  const char* isa = gemm_kernel().isa;
  if (std::strcmp(isa, "avx512") == 0) return kSparseAvx512;
  if (std::strcmp(isa, "avx2") == 0) return kSparseAvx2;
#endif
  return kSparsePortable;
}

void sparse_transposed_gemm(double* out, const float* values, const int32_t* row_ptr, const int32_t* cols, int64_t rows,
                            int64_t k, const float* v, int64_t n) {
  for (int64_t q = 0; q < k * n; q++) out[q] = 0.0;
  for (int64_t t = 0; t < rows; t++) {
    const float* vt = v + t * n;
    for (int32_t e = row_ptr[t]; e < row_ptr[t + 1]; e++) {
      const int64_t j = cols[e];
      const double xv = values[e];
      double* o = out + j * n;
      for (int64_t i = 0; i < n; i++) o[i] += xv * static_cast<double>(vt[i]);  // exact product: FMA or not, same bits
    }
  }
}

void add_sparse(float* out, double alpha, const float* values, const int32_t* row_ptr, const int32_t* cols, int64_t rows,
                int64_t k) {
  for (int64_t t = 0; t < rows; t++) {
    float* o = out + t * k;
    for (int32_t e = row_ptr[t]; e < row_ptr[t + 1]; e++)
      o[cols[e]] = static_cast<float>(static_cast<double>(o[cols[e]]) + alpha * static_cast<double>(values[e]));
  }
}

void gather_sparse(float* values, const float* x, const int32_t* row_ptr, const int32_t* cols, int64_t rows, int64_t k) {
  for (int64_t t = 0; t < rows; t++) {
    const float* xt = x + t * k;
    for (int32_t e = row_ptr[t]; e < row_ptr[t + 1]; e++) values[e] = xt[cols[e]];
  }
}

void positions_to_csr(int32_t* pos, int64_t count, int64_t row_len, int64_t rows, int32_t* row_ptr) {
  int64_t t = 0, row_end = row_len;
  row_ptr[0] = 0;
  for (int64_t e = 0; e < count; e++) {
    const int64_t q = pos[e];
    while (q >= row_end) {
      row_ptr[++t] = static_cast<int32_t>(e);
      row_end += row_len;
    }
    pos[e] = static_cast<int32_t>(q - (row_end - row_len));
  }
  while (t < rows) row_ptr[++t] = static_cast<int32_t>(count);
}

}  // namespace dora
