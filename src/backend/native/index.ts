/**
 * The native backend: the Node-API addon (native/, loaded by ./addon.ts) for the kernels it implements,
 * the js backend (the spec) for the rest. GEMM runs natively with range checks in TS first; threading is
 * the addon's persistent pool (DORA_NUM_THREADS, or setNumThreads).
 */
import type { Backend } from "../backend.js";
import { jsBackend } from "../js/index.js";
import { loadAddon, nativeGemm } from "./addon.js";

/** Loads the addon and returns the native Backend; throws (with `cause`) when the addon cannot load. */
export function loadNativeBackend(): Backend {
  const addon = loadAddon();
  return {
    ...jsBackend,
    name: "native",
    gemm(form, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch, accumulate) {
      nativeGemm(addon, form, m, n, k, a, aOff, lda, strideA, b, bOff, ldb, strideB, c, cOff, ldc, strideC, batch, accumulate);
    },
  };
}

/** The addon's instruction set (chosen at load by CPU features, or DORA_ISA) and its pool size. */
export function nativeInfo(): { isa: "avx512" | "avx2" | "portable"; threads: number } {
  const addon = loadAddon();
  return { isa: addon.isa(), threads: addon.numThreads() };
}

/** Resizes the addon's thread pool (benches switch between 1 and 2 threads in one process). */
export function setNumThreads(n: number): void {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`setNumThreads: expected a positive integer, got ${n}`);
  loadAddon().setNumThreads(n);
}
