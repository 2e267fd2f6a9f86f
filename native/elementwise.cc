// Portable build of the elementwise kernels and the choice of table (same ISA as the GEMM kernel).
#include <cstring>

#include "gemm.h"

#define DORA_EW_NS ew_portable
#define DORA_EW_TABLE kElementwisePortable
#include "elementwise_impl.h"

namespace dora {

const ElementwiseKernels& elementwise() {
#ifdef DORA_X86_KERNELS
  const char* isa = gemm_kernel().isa;
  if (std::strcmp(isa, "avx512") == 0) return kElementwiseAvx512;
  if (std::strcmp(isa, "avx2") == 0) return kElementwiseAvx2;
#endif
  return kElementwisePortable;
}

}  // namespace dora
