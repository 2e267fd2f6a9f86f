// AVX2+FMA build of the elementwise kernels (plain loops, vectorized by the compiler for this ISA).
#define DORA_EW_NS ew_avx2
#define DORA_EW_TABLE kElementwiseAvx2
#include "elementwise_impl.h"
