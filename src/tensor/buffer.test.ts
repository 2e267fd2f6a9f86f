import { afterEach, describe, expect, it, vi } from "vitest";
import { uninitF32 } from "./buffer.js";

describe("uninitF32", () => {
  afterEach(() => { vi.unstubAllEnvs(); vi.resetModules(); });

  it("is NaN-filled under the test suite (DORA_POISON_UNINIT=1), so an op relying on zeros fails", () => {
    expect(process.env.DORA_POISON_UNINIT).toBe("1");
    for (const n of [3, 20000]) {
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
