# Node-API addon for the native CPU backend (src/backend/native loads build/Release/dora_native.node).
# Built by `npm ci` (npm's default install step is `node-gyp rebuild` when binding.gyp is at the root).
# Base files are portable C++17; intrinsics live only in *_avx512.cc / *_avx2.cc, compiled on x64 with
# their own ISA flags and picked at run time by CPU feature checks (native/dispatch.cc).
# -fno-trapping-math (we never read FP exception flags) lets GCC turn the branch-free selects of the
# elementwise kernels (exp's range clamp, sigmoid's sign) into vector blends; without it AVX2 loops stay scalar.
{
  "targets": [
    {
      "target_name": "dora_native",
      "sources": [
        "native/addon.cc",
        "native/pool.cc",
        "native/dispatch.cc",
        "native/gemm.cc",
        "native/gemm_nf4.cc",
        "native/elementwise.cc",
        "native/columns.cc",
        "native/sparse.cc",
        "native/attention.cc",
        "native/random.cc"
      ],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++20", "-O2", "-O0"],
      "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math"],
      "cflags!": ["-O2", "-O0"],
      "cflags": ["-O3"],
      "xcode_settings": {
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "GCC_OPTIMIZATION_LEVEL": "3",
        "MACOSX_DEPLOYMENT_TARGET": "11.0"
      },
      "msvs_settings": { "VCCLCompilerTool": { "Optimization": 2 } },
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "defines": ["DORA_X86_KERNELS=1"],
          "dependencies": ["dora_avx512", "dora_avx2"]
        }]
      ]
    }
  ],
  "conditions": [
    ["target_arch=='x64' and OS!='win'", {
      "targets": [
        {
          "target_name": "dora_avx512",
          "type": "static_library",
          "sources": ["native/gemm_avx512.cc", "native/elementwise_avx512.cc", "native/gemm_nf4_avx512.cc", "native/sparse_avx512.cc"],
          "cflags_cc!": ["-std=gnu++17", "-std=gnu++20", "-O2", "-O0"],
          "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fPIC",
                        "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma",
                        "-Wno-maybe-uninitialized"],
          "xcode_settings": {
            "GCC_OPTIMIZATION_LEVEL": "3",
            "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512dq", "-mfma"]
          }
        },
        {
          "target_name": "dora_avx2",
          "type": "static_library",
          "sources": ["native/gemm_avx2.cc", "native/elementwise_avx2.cc", "native/sparse_avx2.cc"],
          "cflags_cc!": ["-std=gnu++17", "-std=gnu++20", "-O2", "-O0"],
          "cflags_cc": ["-std=c++17", "-O3", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-mavx2", "-mfma"],
          "xcode_settings": {
            "GCC_OPTIMIZATION_LEVEL": "3",
            "OTHER_CPLUSPLUSFLAGS": ["-std=c++17", "-mavx2", "-mfma"]
          }
        }
      ]
    }]
  ]
}
