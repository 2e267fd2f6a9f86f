/** The CLI's contract: help, exit codes, one-line errors, and the README's fine-tune end to end (short budget). */
import { describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GOLDEN_DIR } from "../helpers/golden.js";
import { dora } from "./run-cli.js";

describe("dora CLI errors", () => {
  it("--help lists every command, and each command documents its flags", () => {
    const top = dora("--help");
    expect(top.code).toBe(0);
    for (const c of ["train", "eval", "merge", "generate", "inspect"]) expect(top.stdout).toContain(`  ${c}`);
    const h = dora("train", "--help");
    for (const f of ["--model", "--use-dora", "--lora-alpha", "--gradient-accumulation-steps", "--resume-from-checkpoint", "--shuffle"]) expect(h.stdout).toContain(f);
  });
  it("unknown flag: exit 2, one line naming it", () => {
    const r = dora("eval", "--modle", "x");
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("unknown flag --modle");
  });
  it("missing required flag: exit 2", () => {
    const r = dora("eval", "--model", join(GOLDEN_DIR, "tiny_llama"));
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("missing required flag --data");
  });
  it("a path that does not exist: exit 2 naming the flag", () => {
    const r = dora("merge", "--model", join(GOLDEN_DIR, "tiny_llama"), "--adapter", "/no/such/adapter", "--output-dir", "/tmp/x");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--adapter /no/such/adapter: no such folder");
  });
  it("a bad number: exit 2", () => {
    expect(dora("train", "--r", "eight", "--model", "m", "--data", "d", "--output-dir", "o").stderr).toContain("--r expects an integer");
  });
  it("an adapter whose base does not match the model: exit 1, one line naming key and shapes, no stack", () => {
    const r = dora("merge", "--model", join(GOLDEN_DIR, "tiny_gpt2"), "--adapter", join(GOLDEN_DIR, "tiny_llama_dora_adapter"), "--output-dir", mkdtempSync(join(tmpdir(), "x-")));
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain("    at ");
    expect(r.stderr).toMatch(/error: .*(q_proj|target|module|key)/);
    const dbg = dora("merge", "--debug", "--model", join(GOLDEN_DIR, "tiny_gpt2"), "--adapter", join(GOLDEN_DIR, "tiny_llama_dora_adapter"), "--output-dir", mkdtempSync(join(tmpdir(), "x-")));
    expect(dbg.stderr).toContain("    at ");
  });
  it("inspect describes model and adapter folders", () => {
    const m = JSON.parse(dora("inspect", join(GOLDEN_DIR, "tiny_llama"), "--json").stdout);
    expect(m).toMatchObject({ kind: "model", architecture: "LlamaForCausalLM", num_layers: 2, num_kv_heads: 2, params: 18592 });
    const a = JSON.parse(dora("inspect", join(GOLDEN_DIR, "tiny_gpt2_dora_adapter"), "--json").stdout);
    expect(a).toMatchObject({ kind: "adapter", method: "DoRA", r: 4, lora_alpha: 8, adapted_modules: 6 });
  });
});

describe("the README's fine-tune (reduced budget)", () => {
  it("trains DoRA on the example, improves the held-out loss, and the adapter loads for eval and generate", () => {
    const out = mkdtempSync(join(tmpdir(), "dora-readme-"));
    const r = dora("train", "--model", "examples/tiny-llama", "--data", "examples/data/train.jsonl", "--eval-data", "examples/data/valid.jsonl",
      "--output-dir", out, "--use-dora", "--r", "8", "--target-modules", "all-linear", "--learning-rate", "2e-2", "--max-steps", "20", "--batch-size", "8");
    expect(r.code, r.stderr).toBe(0);
    const before = Number(/eval before: loss ([\d.]+)/.exec(r.stderr)![1]), after = Number(/eval after: +loss ([\d.]+)/.exec(r.stderr)![1]);
    expect(after).toBeLessThan(before - 0.3);
    const cfg = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8"));
    expect(cfg).toMatchObject({ peft_type: "LORA", use_dora: true, r: 8, lora_alpha: 16, task_type: "CAUSAL_LM" });
    expect(existsSync(join(out, "adapter_model.safetensors"))).toBe(true);
    const ev = JSON.parse(dora("eval", "--model", "examples/tiny-llama", "--adapter", out, "--data", "examples/data/valid.jsonl", "--json").stdout);
    expect(ev.loss).toBeCloseTo(after, 3);
    const gen = dora("generate", "--model", "examples/tiny-llama", "--adapter", out, "--prompt", "Question: What color is a lemon?\nAnswer:", "--max-new-tokens", "6");
    expect(gen.code).toBe(0);
    expect(gen.stdout.trim().length).toBeGreaterThan(0);
  });
});
