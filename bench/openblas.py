"""Which BLAS a Python reference really runs, checked before it is timed (imported by the bench/*/reference.py scripts).

Debian's numpy and python3-torch call sgemm through libblas.so.3, and apt points that at whichever provider is
installed: `apt-get install python3-torch` alone brings the netlib reference BLAS (~5 GFLOP/s sgemm here, ~20x
slower than OpenBLAS), even when OpenBLAS's libopenblas.so.0 is mapped too (through LAPACK). And OpenBLAS 0.3.21
without OPENBLAS_CORETYPE=SkylakeX mis-detects some of these CPUs (Prescott: ~32 GFLOP/s). Either way the comparison
would flatter dora-ts without a word, so a reference refuses to run on anything but OpenBLAS's SkylakeX kernel.
"""
import ctypes
import os
import sys

EXPECTED_CORE = "SkylakeX"
INSTALL = "apt-get install -y libopenblas0-pthread"


def _mapped_blas():
    """{path: OpenBLAS handle or None} for every BLAS library mapped into this process (/proc/self/maps)."""
    with open("/proc/self/maps") as f:
        paths = sorted({line.split()[-1] for line in f if "blas" in line and line.split()[-1].startswith("/")})
    libs = {}
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
        except OSError:
            continue
        libs[p] = lib if hasattr(lib, "openblas_get_corename") else None
    return libs


def openblas_info():
    """(core name, thread count) of the OpenBLAS this process has loaded, or ("none", -1)."""
    for lib in _mapped_blas().values():
        if lib is not None:
            lib.openblas_get_corename.restype = ctypes.c_char_p
            return lib.openblas_get_corename().decode(), lib.openblas_get_num_threads()
    return "none", -1


def require_openblas(who):
    """Exit with a message naming the fix unless sgemm runs on OpenBLAS's SkylakeX kernel. Call after the BLAS user
    (numpy, torch) is imported, so that its libraries are mapped."""
    libs = _mapped_blas()
    # a libblas.so.3 / libcblas.so.3 that is not OpenBLAS is where Debian's numpy and torch send their sgemm calls
    other = [p for p, lib in libs.items() if lib is None and os.path.basename(p).startswith(("libblas", "libcblas"))]
    if other or not any(libs.values()):
        found = ", ".join(other or libs) or "no BLAS library mapped"
        sys.exit(f"{who}: sgemm does not run on OpenBLAS here ({found}); install it ({INSTALL}) so that the reference "
                 "is not timed on the netlib BLAS")
    core, _ = openblas_info()
    if core != EXPECTED_CORE:
        sys.exit(f"{who}: OpenBLAS runs its {core} kernel, expected {EXPECTED_CORE} "
                 f"(OPENBLAS_CORETYPE is {os.environ.get('OPENBLAS_CORETYPE')!r}; set OPENBLAS_CORETYPE={EXPECTED_CORE})")
