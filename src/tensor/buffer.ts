/**
 * Output buffers for kernels that write every element, and their reuse.
 *
 * `uninitF32` skips the zero fill of `new Float32Array(n)` (calloc: a serial pass on the JS thread, ~0.07 ms per MB
 * on these machines, while the kernel itself runs on every core) for buffers of 64 KiB and up (Node's
 * `Buffer.allocUnsafeSlow`: its own ArrayBuffer, never a slice of a shared pool).
 *
 * Reuse: a training step allocates and drops hundreds of MB-sized buffers. Left to the garbage collector, every
 * 64 MB of them costs V8 an "external memory pressure" collection (~10% of a LoRA step here). `releaseF32` hands
 * a dead buffer back; the next `uninitF32` of the same length takes it. Only buffers this module made, since a
 * given mark (`allocationMark`), are accepted: autograd releases the gradients it made during one backward pass
 * once nothing holds them, and, when the caller asks for it, the forward activations of the graph once the pass is
 * over (autograd.ts). An activation's old views are detached then, so a stale reader fails instead of reading
 * another op's values. `dropPooledBefore` lets go of buffers a whole step did not take back (shapes that changed).
 *
 * With DORA_POISON_UNINIT=1 (the test runner sets it) every buffer handed out, new or reused, is filled with NaN,
 * so an op that relied on zeros, or a buffer released while still in use, fails its tests instead of passing on
 * stale memory.
 */
const POISON = typeof process !== "undefined" && process.env?.DORA_POISON_UNINIT === "1";
const MIN_ELEMS = 16384;
/**
 * At most this much sits in the pool; what does not fit is left to the garbage collector. A LLaMA-shaped model of
 * hidden 512 × 8 layers at 4 × 256 tokens hands back ~380 MB a step (activations and gradients).
 */
const POOL_MAX_BYTES = 1024 * 1024 * 1024;

type NodeBuffer = { allocUnsafeSlow(size: number): Uint8Array };
const NodeBuf = (globalThis as { Buffer?: NodeBuffer }).Buffer;

const pool = new Map<number, Float32Array[]>();
/** The clock when each pooled buffer came back (see dropPooledBefore). */
const pooledAt = new WeakMap<ArrayBufferLike, number>();
let pooledBytes = 0;
/** When each buffer of ours was last handed out (a counter, see allocationMark). */
const handedOut = new WeakMap<ArrayBufferLike, number>();
let clock = 0;

/** A float32 buffer of n elements whose contents are undefined: the caller must write all of them. */
export function uninitF32(n: number): Float32Array {
  if (n < MIN_ELEMS || NodeBuf === undefined) return POISON ? new Float32Array(n).fill(NaN) : new Float32Array(n);
  let buf = pool.get(n)?.pop();
  if (buf) pooledBytes -= n * 4;
  else {
    const b = NodeBuf.allocUnsafeSlow(n * 4);
    buf = new Float32Array(b.buffer, b.byteOffset, n);
  }
  handedOut.set(buf.buffer, ++clock);
  return POISON ? buf.fill(NaN) : buf;
}

/** A mark to pass to `releaseF32`: buffers handed out after it may be released against it. */
export function allocationMark(): number {
  return clock;
}

/**
 * Gives `a`'s buffer back for reuse when it is one of ours, whole, and handed out after `since`; returns whether it
 * was taken. The caller guarantees nothing reads or writes the buffer afterwards (through `a` or any view of it),
 * or, with `detach`, that whatever might is better off failing: every existing view of the buffer becomes empty.
 */
export function releaseF32(a: Float32Array, since: number, detach = false): boolean {
  const at = handedOut.get(a.buffer);
  if (at === undefined || at <= since || a.byteOffset !== 0 || a.byteLength !== a.buffer.byteLength) return false;
  if (pooledBytes + a.byteLength > POOL_MAX_BYTES) return false;
  handedOut.delete(a.buffer);
  // Transferring moves the memory to a new ArrayBuffer without a copy (~4 µs) and empties every old view.
  if (detach) a = new Float32Array(structuredClone(a.buffer as ArrayBuffer, { transfer: [a.buffer as ArrayBuffer] }));
  pooledAt.set(a.buffer, clock);
  let list = pool.get(a.length);
  if (!list) pool.set(a.length, (list = []));
  list.push(a);
  pooledBytes += a.byteLength;
  return true;
}

/**
 * Lets the garbage collector have the pooled buffers that came back at or before `mark` and were not taken since:
 * called at the end of a training step with the step's starting mark, it drops lengths the step no longer uses.
 */
export function dropPooledBefore(mark: number): void {
  for (const [n, list] of pool) {
    const keep = list.filter((a) => pooledAt.get(a.buffer)! > mark);
    pooledBytes -= (list.length - keep.length) * n * 4;
    if (keep.length === 0) pool.delete(n);
    else pool.set(n, keep);
  }
}

/** Bytes waiting in the pool (tests, benches). */
export function pooledBufferBytes(): number {
  return pooledBytes;
}
