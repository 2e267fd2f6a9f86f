"""OpenBLAS sgemm reference for bench/gemm/run.ts (run with /usr/bin/python3: Debian numpy + OpenBLAS).

Usage: reference.py M K N FORM RUNS WARMUP  ->  one JSON line {"gflops": median, "corename": ..., "threads": ...}
FORM: NN (a @ b), NT (a @ b.T), TN (a.T @ b), operands as transposed views, no copies.
The caller sets OPENBLAS_CORETYPE=SkylakeX (Debian's 0.3.21 mis-detects this CPU) and OPENBLAS_NUM_THREADS.
"""
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from openblas import openblas_info, require_openblas  # noqa: E402  (bench/openblas.py)


def main():
    require_openblas("bench/gemm reference.py")
    m, k, n = (int(x) for x in sys.argv[1:4])
    form, runs, warmup = sys.argv[4], int(sys.argv[5]), int(sys.argv[6])
    rng = np.random.default_rng(0)
    a_shape = (k, m) if form == "TN" else (m, k)
    b_shape = (n, k) if form == "NT" else (k, n)
    a = rng.standard_normal(a_shape, dtype=np.float32)
    b = rng.standard_normal(b_shape, dtype=np.float32)
    c = np.empty((m, n), dtype=np.float32)
    lhs = a.T if form == "TN" else a
    rhs = b.T if form == "NT" else b
    for _ in range(warmup):
        np.matmul(lhs, rhs, out=c)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        np.matmul(lhs, rhs, out=c)
        times.append(time.perf_counter() - t)
    times.sort()
    corename, threads = openblas_info()
    print(json.dumps({"gflops": 2.0 * m * n * k / times[len(times) // 2] / 1e9, "corename": corename, "threads": threads}))


if __name__ == "__main__":
    main()
