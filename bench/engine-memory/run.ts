/**
 * Peak RSS of one 2048×2048 linear layer forward + backward on 2048 tokens (x and W both trainable), measured
 * in a fresh child process per case so peaks do not mix, against the bytes the tensors themselves need.
 *
 *   node --import tsx bench/engine-memory/run.ts [--json]
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

const N = 2048;
const cases = ["baseline", "forward", "forward+backward", "forward+backward (frozen W)"] as const;

if (process.argv[2] === "--child") {
  const { Rng, linear, randn, sum } = await import("../../src/tensor/index.js");
  const which = process.argv[3] as (typeof cases)[number];
  const rng = new Rng(0);
  const x = randn([N, N], rng).requiresGrad_();
  const w = randn([N, N], rng, 0.02);
  if (which !== "forward+backward (frozen W)") w.requiresGrad_();
  if (which !== "baseline") {
    const y = linear(x, w);
    if (which.startsWith("forward+backward")) sum(y).backward();
  }
  process.stdout.write(JSON.stringify({ case: which, peak_rss_mib: process.resourceUsage().maxRSS / 1024 }));
  process.exit(0);
}

const json = process.argv.includes("--json");
const self = fileURLToPath(import.meta.url);
const rows = cases.map((c) => {
  const r = spawnSync(process.execPath, ["--import", "tsx", self, "--child", c], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { case: string; peak_rss_mib: number };
});
const mib = (n: number): number => (n * 4) / 2 ** 20;
const expectBytes: Record<string, number> = {
  baseline: mib(2 * N * N), forward: mib(3 * N * N),
  // x, W, y, dy (sum's expanded grad is a view), dx, dW
  "forward+backward": mib(5 * N * N), "forward+backward (frozen W)": mib(4 * N * N),
};
if (json) for (const r of rows) console.log(JSON.stringify(r));
else {
  const base = rows[0]!.peak_rss_mib;
  console.log(`| case | peak RSS MiB | above baseline MiB | tensors alive at peak, MiB (16 MiB each) |`);
  console.log(`|---|---|---|---|`);
  for (const r of rows) console.log(`| ${r.case} | ${r.peak_rss_mib.toFixed(0)} | ${(r.peak_rss_mib - base).toFixed(0)} | ${expectBytes[r.case]!.toFixed(0)} |`);
}
