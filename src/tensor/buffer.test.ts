import { afterEach, describe, expect, it, vi } from "vitest";
import { allocationMark, pooledBufferBytes, releaseF32, uninitF32 } from "./buffer.js";

const N = 20000; // above the 64 KiB threshold

describe("uninitF32", () => {
  afterEach(() => { vi.unstubAllEnvs(); vi.resetModules(); });

  it("is NaN-filled under the test suite (DORA_POISON_UNINIT=1), so an op relying on zeros fails", () => {
    expect(process.env.DORA_POISON_UNINIT).toBe("1");
    for (const n of [3, N]) {
      const b = uninitF32(n);
      expect(b.length).toBe(n);
      expect(b.every(Number.isNaN)).toBe(true);
    }
  });

  it("without the poison: small buffers are zeroed, large ones own an ArrayBuffer of exactly n floats", async () => {
    vi.stubEnv("DORA_POISON_UNINIT", "");
    vi.resetModules();
    const { uninitF32: fresh } = await import("./buffer.js");
    const small = fresh(100);
    expect(Array.from(small)).toEqual(new Array(100).fill(0));
    const big = fresh(1 << 16);
    expect(big).toBeInstanceOf(Float32Array);
    expect([big.length, big.byteOffset, big.buffer.byteLength]).toEqual([1 << 16, 0, 4 << 16]);
    big.fill(2); // writable, and not shared with another allocation
    expect(fresh(1 << 16).buffer).not.toBe(big.buffer);
  });
});

describe("releaseF32", () => {
  it("takes a whole buffer of ours handed out after the mark, once; the next uninitF32 of that length reuses it, poisoned again", () => {
    const mark = allocationMark();
    const a = uninitF32(N);
    a.fill(7);
    const before = pooledBufferBytes();
    expect(releaseF32(a, mark)).toBe(true);
    expect(pooledBufferBytes()).toBe(before + 4 * N);
    expect(releaseF32(a, mark)).toBe(false); // twice would hand one buffer to two owners
    const b = uninitF32(N);
    expect(b.buffer).toBe(a.buffer);
    expect(pooledBufferBytes()).toBe(before);
    expect(b.every(Number.isNaN)).toBe(true);
  });

  it("refuses buffers handed out before the mark, views, small buffers and buffers it did not make", () => {
    const old = uninitF32(N);
    const mark = allocationMark();
    expect(releaseF32(old, mark)).toBe(false);
    const mine = uninitF32(N + 8);
    expect(releaseF32(mine.subarray(8), mark)).toBe(false);
    expect(releaseF32(uninitF32(10), mark)).toBe(false);
    expect(releaseF32(new Float32Array(N), mark)).toBe(false);
  });
});
