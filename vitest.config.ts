import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["src/**/*.test.ts", "test/**/*.test.ts"],
    testTimeout: 120_000,
    pool: "forks",
    // buffers a kernel must write in full come back NaN-filled (src/tensor/buffer.ts): an op that relied on zeros fails
    env: { DORA_POISON_UNINIT: "1" },
  },
});
