// AVX2 build of the sparse kernels (plain fixed-width loops, vectorized by the compiler for this ISA).
#define DORA_SP_NS sp_avx2
#define DORA_SP_TABLE kSparseAvx2
#include "sparse_impl.h"
