/**
 * Training with `backward({ releaseActivationsSince })` (what the Trainer does) changes no value: a DoRA-adapted
 * LLaMA (float and 4-bit NF4 base) and GPT-2, with dropout and with gradient checkpointing, trained three AdamW
 * steps with the graph's activations handed back to the pool after each backward, end bitwise equal to the same
 * training without.
 * Sizes are above the pool's threshold, and the test runner poisons every reused buffer, so an activation released
 * while still read would show up as NaN or a different value.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Rng, Tensor, allocationMark, randUniform } from "../../src/tensor/index.js";
import { loadModelFromDir, parseModelConfig, randomModel, saveModel } from "../../src/models/index.js";
import { LoraConfig, getPeftModel } from "../../src/peft/index.js";
import { pooledBufferBytes } from "../../src/tensor/buffer.js";
import { AdamW } from "../../src/train/optim.js";
import { GOLDEN_DIR } from "../helpers/golden.js";

const VOCAB = 256, B = 2, S = 64;

type Family = "tiny_llama" | "tiny_gpt2" | "tiny_llama_nf4";
const nf4Dir = mkdtempSync(join(tmpdir(), "release-nf4-"));
afterAll(() => rmSync(nf4Dir, { recursive: true, force: true }));

function train(family: Family, release: boolean, checkpointing: boolean) {
  const base = family === "tiny_gpt2" ? "tiny_gpt2" : "tiny_llama";
  const raw = JSON.parse(JSON.stringify(loadModelFromDir(join(GOLDEN_DIR, base)).config.raw)) as Record<string, unknown>;
  const sizes = base === "tiny_llama"
    ? { hidden_size: 128, intermediate_size: 192, head_dim: 32, max_position_embeddings: S }
    : { n_embd: 128, n_positions: S };
  let model = randomModel(parseModelConfig({ ...raw, ...sizes, vocab_size: VOCAB }), 7);
  if (family === "tiny_llama_nf4") { // QDoRA: the decoder projections held in 4-bit
    saveModel(model, nf4Dir);
    model = loadModelFromDir(nf4Dir, { quantize: "nf4" });
  }
  model.gradientCheckpointing = checkpointing;
  const targets = base === "tiny_llama" ? ["q_proj", "v_proj", "down_proj"] : ["c_attn", "c_proj"];
  const peft = getPeftModel(model, new LoraConfig({ r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: targets, useDora: true, initLoraWeights: "gaussian" }));
  peft.train();
  const params = model.namedParameters().filter(([, t]) => t.requiresGrad).map(([name, tensor]) => ({ name, tensor }));
  const opt = new AdamW(params, { lr: 1e-2 });
  const ids = new Tensor(Int32Array.from(randUniform([B * S], new Rng(3), 0, VOCAB).toArray(), Math.floor), [B, S]);
  const losses: number[] = [];
  let pooled = 0;
  for (let step = 0; step < 3; step++) {
    const mark = allocationMark();
    const loss = model.loss(ids);
    losses.push(loss.item());
    if (release) loss.backward(undefined, { releaseActivationsSince: mark });
    else loss.backward();
    pooled = pooledBufferBytes();
    opt.step();
    opt.zeroGrad();
  }
  return { losses, pooled, params: params.map((p) => [p.name, p.tensor.toArray()] as const) };
}

describe.each([["tiny_llama"], ["tiny_gpt2"], ["tiny_llama_nf4"]] as const)("%s, DoRA, dropout 0.1", (family) => {
  it.each([[false], [true]])("releasing activations changes no loss and no parameter (gradient checkpointing %s)", (ckpt) => {
    const plain = train(family, false, ckpt), released = train(family, true, ckpt);
    expect(released.losses).toEqual(plain.losses);
    expect(plain.losses.every(Number.isFinite)).toBe(true);  // toEqual holds NaN equal to NaN
    expect(plain.losses[2]).not.toEqual(plain.losses[0]); // the steps trained something
    // activations did go back to the pool (with checkpointing, both runs pool the recomputed layers' activations)
    expect(released.pooled).toBeGreaterThan(plain.pooled + (ckpt ? 0 : 4 * B * S * 128 * 4));
    expect(released.params.map(([n]) => n)).toEqual(plain.params.map(([n]) => n));
    for (let i = 0; i < plain.params.length; i++) expect(released.params[i]![1]).toEqual(plain.params[i]![1]);
  });

  it("checkpointed training (whose recomputed layers always release their activations) equals training without", () => {
    const full = train(family, true, false), ckpt = train(family, true, true);
    expect(ckpt.losses).toEqual(full.losses);
    expect(full.losses.every(Number.isFinite)).toBe(true);
    for (let i = 0; i < full.params.length; i++) expect(ckpt.params[i]![1]).toEqual(full.params[i]![1]);
  });
});
