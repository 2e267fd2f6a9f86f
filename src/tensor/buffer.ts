/**
 * Output buffers for kernels that write every element. `new Float32Array(n)` zero-fills its memory (calloc): a
 * serial pass on the JS thread, ~0.07 ms per MB on these machines, while the kernel itself runs on every core.
 * `uninitF32` skips it for buffers of 64 KiB and up (Node's `Buffer.allocUnsafeSlow`: its own ArrayBuffer, never a
 * slice of a shared pool). With DORA_POISON_UNINIT=1 (the test runner sets it) the buffer is filled with NaN
 * instead, so an op that relied on zeros fails its tests rather than reading stale memory in production.
 */
const POISON = typeof process !== "undefined" && process.env?.DORA_POISON_UNINIT === "1";
const MIN_ELEMS = 16384;

type NodeBuffer = { allocUnsafeSlow(size: number): Uint8Array };
const NodeBuf = (globalThis as { Buffer?: NodeBuffer }).Buffer;

/** A float32 buffer of n elements whose contents are undefined: the caller must write all of them. */
export function uninitF32(n: number): Float32Array {
  if (POISON) return new Float32Array(n).fill(NaN);
  if (n < MIN_ELEMS || NodeBuf === undefined) return new Float32Array(n);
  const b = NodeBuf.allocUnsafeSlow(n * 4);
  return new Float32Array(b.buffer, b.byteOffset, n);
}
