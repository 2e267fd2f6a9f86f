/**
 * The embedded default through the real `dora` bin: the shipped model loads and beats any random model on
 * held-out Brown text, `dora train` with no model/data runs end to end (on a reduced budget), and
 * `dora eval --task mc` / `dora analyze` work on what it wrote.
 */
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dora } from "./run-cli.js";

const MODEL = "models/dora-tiny";
const HELDOUT = "tasks/brown-heldout/test.jsonl";

describe("embedded default model and tasks", () => {
  it("the embedded model loads and its held-out perplexity is far below a random model's", () => {
    // A random N(0, 0.02²) model of this vocabulary (3072) scores perplexity ≈ 3000 here (loss ≈ 8.0); no random
    // weights get near 1000, and pretraining reached ≈ 400 on these files (models/dora-tiny/README.md).
    const r = dora("eval", "--model", MODEL, "--data", HELDOUT, "--json");
    expect(r.stderr).toBe("");
    const out = JSON.parse(r.stdout) as { loss: number; perplexity: number; tokens: number };
    expect(out.tokens).toBeGreaterThan(5000);
    expect(out.perplexity).toBeLessThan(1000);
  }, 120_000);

  it("`dora train` with no model or data fine-tunes the embedded model with DoRA and scores it before and after", () => {
    const out = join(mkdtempSync(join(tmpdir(), "dora-default-")), "run");
    const r = dora("train", "--max-steps", "2", "--save-steps", "1", "--output-dir", out);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/score before: multiple-choice accuracy [\d.]+% \(length-normalised [\d.]+%\) on 150 validation questions/);
    expect(r.stderr).toMatch(/score after : multiple-choice accuracy [\d.]+%/);
    const cfg = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")) as { use_dora: boolean; target_modules: unknown };
    expect(cfg.use_dora).toBe(true);
    expect(existsSync(join(out, "checkpoint-2", "adapter_model.safetensors"))).toBe(true);

    const mc = dora("eval", "--task", "mc", "--model", MODEL, "--adapter", out, "--data", "tasks/wordnet-mc/validation.jsonl", "--json");
    expect(mc.code, mc.stderr).toBe(0);
    const acc = JSON.parse(mc.stdout) as { accuracy: number; accuracy_norm: number; n: number };
    expect(acc.n).toBe(150);
    expect(acc.accuracy).toBeGreaterThanOrEqual(0);

    const an = dora("analyze", "--model", MODEL, "--runs", out, "--output-dir", join(out, "analysis"), "--json");
    expect(an.code, an.stderr).toBe(0);
    const summary = (JSON.parse(an.stdout) as { summary: { method: string; module: string; points: number }[] }).summary;
    expect(summary[0]!.method).toBe("DoRA");
    expect(summary.find((s) => s.module === "all")!.points).toBe(2 * 2 * 4); // 2 checkpoints × q,v × 4 layers
    expect(readFileSync(join(out, "analysis", "delta-md.png")).subarray(1, 4).toString()).toBe("PNG");
  }, 900_000);
});
