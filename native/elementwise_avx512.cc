// AVX-512 build of the elementwise kernels (plain loops, vectorized by the compiler for this ISA).
#define DORA_EW_NS ew_avx512
#define DORA_EW_TABLE kElementwiseAvx512
#include "elementwise_impl.h"
