import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Rng, crossEntropy, dropout, embedding, matmul, randn, reshape, slice, type Tensor } from "../tensor/index.js";
import { DEFAULT_TRAINING_ARGUMENTS, NonFiniteLossError, Trainer, type TrainingArguments } from "./trainer.js";
import type { Batch, Example } from "./data.js";
import { Progress } from "./progress.js";

/** A toy bigram LM: logits = dropout(E[ids])·Wᵀ, so the loop, accumulation, dropout RNG and resume are all exercised. */
function toy(seed: number) {
  const rng = new Rng(seed);
  const E = randn([12, 6], rng, 0.5).requiresGrad_(), W = randn([12, 6], rng, 0.5).requiresGrad_();
  const drop = new Rng(seed + 1);
  let training = true;
  const loss = (b: Batch): Tensor => {
    const [B, S] = b.inputIds.shape as [number, number];
    const h = dropout(embedding(E, b.inputIds), 0.1, drop, training);
    const logits = matmul(h, W.T);
    const shifted = reshape(slice(logits, 1, 0, S - 1).contiguous(), [B * (S - 1), 12]);
    const labels = reshape(slice(b.labels, 1, 1, S).contiguous(), [B * (S - 1)]);
    return crossEntropy(shifted, labels);
  };
  return { params: [{ name: "E", tensor: E }, { name: "W", tensor: W }], loss, rngs: [drop], setTraining: (t: boolean) => { training = t; } };
}

const data: Example[] = [...Array(10).keys()].map((i) => {
  const ids = [...Array(5 + (i % 3)).keys()].map((j) => (i * 3 + j * 5) % 12);
  return { inputIds: ids, labels: ids.slice() };
});
const quiet = new Progress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream);

async function run(args: Partial<TrainingArguments>, outputDir: string, opts: { resume?: string; stopAfter?: number } = {}) {
  const m = toy(3);
  let steps = 0;
  const t = new Trainer({
    args: { ...DEFAULT_TRAINING_ARGUMENTS, learningRate: 0.05, batchSize: 3, maxSteps: 6, gradientAccumulationSteps: 2, ...args },
    params: m.params, trainData: data, evalData: data.slice(0, 4), padId: 0, loss: m.loss, setTraining: m.setTraining,
    saveArtifacts: () => {}, outputDir, rngs: m.rngs, progress: quiet,
    shouldStop: () => opts.stopAfter !== undefined && ++steps >= opts.stopAfter,
  });
  if (opts.resume) t.resume(opts.resume);
  const res = await t.train();
  return { res, params: m.params.map((p) => p.tensor.toArray()) };
}

describe("Trainer", () => {
  it("resuming from a checkpoint reproduces the uninterrupted run bit for bit", async () => {
    const full = await run({ warmupSteps: 2, lrSchedulerType: "cosine", maxGradNorm: 0.5 }, mkdtempSync(join(tmpdir(), "dora-tr-")));
    const out = mkdtempSync(join(tmpdir(), "dora-tr-"));
    const first = await run({ warmupSteps: 2, lrSchedulerType: "cosine", maxGradNorm: 0.5 }, out, { stopAfter: 3 });
    expect(first.res.stoppedEarly).toBe(true);
    expect(first.res.lastCheckpoint).toBe(join(out, "checkpoint-3"));
    const second = await run({ warmupSteps: 2, lrSchedulerType: "cosine", maxGradNorm: 0.5 }, out, { resume: join(out, "checkpoint-3") });
    expect(second.params).toEqual(full.params);
    expect(second.res.logs.map((l) => l.loss)).toEqual(full.res.logs.map((l) => l.loss));
    expect(full.res.logs).toHaveLength(6);
  });
  it("is deterministic for a seed and logs the pre-update loss", async () => {
    const a = await run({}, mkdtempSync(join(tmpdir(), "dora-tr-")));
    const b = await run({}, mkdtempSync(join(tmpdir(), "dora-tr-")));
    expect(a.res.logs.map((l) => l.loss)).toEqual(b.res.logs.map((l) => l.loss));
    expect(a.res.logs[5]!.loss).toBeLessThan(a.res.logs[0]!.loss);
  });
  it("writes metrics.jsonl and checkpoints every save-steps", async () => {
    const out = mkdtempSync(join(tmpdir(), "dora-tr-"));
    await run({ saveSteps: 2, evalSteps: 3 }, out);
    const lines = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(Object.keys(lines[0]!)).toEqual(expect.arrayContaining(["step", "loss", "learning_rate", "grad_norm", "tokens_per_second"]));
    expect(typeof lines[2]!.eval_loss).toBe("number");
    for (const s of [2, 4, 6]) expect(existsSync(join(out, `checkpoint-${s}`, "trainer_state.json"))).toBe(true);
  });
  it("stops on a non-finite loss", async () => {
    await expect(run({ learningRate: 1e30, maxGradNorm: 0 }, mkdtempSync(join(tmpdir(), "dora-tr-")))).rejects.toThrow(NonFiniteLossError);
  });
});
