// Run-time ISA choice for the GEMM kernels: AVX-512 (F+BW+VL+DQ) > AVX2+FMA > portable.
// DORA_ISA=avx512|avx2|portable overrides the choice (an unsupported request falls back).
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "gemm.h"

namespace dora {
namespace {

bool cpu_has(const char* isa) {
  if (std::strcmp(isa, "portable") == 0) return true;
#if defined(DORA_X86_KERNELS) && (defined(__x86_64__) || defined(__i386__))
  __builtin_cpu_init();
  if (std::strcmp(isa, "avx512") == 0)
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma");
  if (std::strcmp(isa, "avx2") == 0) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return false;
}

const GemmKernel* kernel_for(const char* isa) {
  if (!cpu_has(isa)) return nullptr;
#ifdef DORA_X86_KERNELS
  if (std::strcmp(isa, "avx512") == 0) return &kGemmAvx512;
  if (std::strcmp(isa, "avx2") == 0) return &kGemmAvx2;
#endif
  if (std::strcmp(isa, "portable") == 0) return &kGemmPortable;
  return nullptr;
}

const GemmKernel* pick() {
  if (const char* want = std::getenv("DORA_ISA"))
    if (const GemmKernel* k = kernel_for(want)) return k;
  for (const char* isa : {"avx512", "avx2"})
    if (const GemmKernel* k = kernel_for(isa)) return k;
  return &kGemmPortable;
}

const GemmKernel* g_kernel = nullptr;

}  // namespace

const GemmKernel& gemm_kernel() {
  if (!g_kernel) g_kernel = pick();
  return *g_kernel;
}

bool gemm_set_isa(const char* isa) {
  const GemmKernel* k = kernel_for(isa);
  if (!k) return false;
  g_kernel = k;
  return true;
}

}  // namespace dora
