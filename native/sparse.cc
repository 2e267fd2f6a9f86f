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

}  // namespace dora
