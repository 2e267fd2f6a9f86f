/**
 * The CLI against the golden fixtures: `dora eval` gives the loss, `dora merge` the merged weights and
 * `dora train --adapter ... --max-steps 10` the AdamW trajectory and trained tensors PyTorch computed.
 */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SafetensorsFile } from "../../src/io/index.js";
import { GOLDEN_DIR, loadGolden } from "../helpers/golden.js";
import { expectClose } from "../helpers/close.js";
import { dora } from "./run-cli.js";

for (const name of ["tiny_llama", "tiny_gpt2"]) {
  describe(`dora CLI on ${name}`, () => {
    const g = loadGolden(name);
    const model = join(GOLDEN_DIR, name), adapter = join(GOLDEN_DIR, `${name}_dora_adapter`);
    const tmp = mkdtempSync(join(tmpdir(), `dora-cli-${name}-`));
    const ids = g.get("input_ids");
    const [rows, cols] = ids.shape as [number, number];
    const data = join(tmp, "batch.jsonl");
    const flat = ids.toArray();
    writeFileSync(data, [...Array(rows).keys()].map((r) => JSON.stringify({ input_ids: flat.slice(r * cols, (r + 1) * cols) })).join("\n") + "\n");

    it("eval --json prints the golden loss", () => {
      const r = dora("eval", "--model", model, "--adapter", adapter, "--data", data, "--json");
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { loss: number; perplexity: number; tokens: number };
      expect(Object.keys(out)).toEqual(["loss", "perplexity", "tokens"]);
      expectClose([out.loss], g.get("loss").toArray(), "loss");
      expect(out.tokens).toBe(rows * (cols - 1));
      expectClose([out.perplexity], [Math.exp(g.get("loss").item())], "perplexity");
    });

    it("merge writes the golden merged weights", () => {
      const out = join(tmp, "merged");
      const r = dora("merge", "--model", model, "--adapter", adapter, "--output-dir", out);
      expect(r.code).toBe(0);
      const f = SafetensorsFile.openSync(join(out, "model.safetensors"));
      const base = SafetensorsFile.openSync(join(model, "model.safetensors"));
      expect(f.keys()).toEqual(base.keys());
      const merged = [...g.tensors.keys()].filter((k) => k.startsWith("merged."));
      expect(merged.length).toBeGreaterThan(0);
      for (const k of merged) expectClose(f.readFloat32(k.slice("merged.".length)), g.get(k).toArray(), k);
      // merging again with the merged model and no adapter is plain loading: eval without adapter = golden loss
      const ev = dora("eval", "--model", out, "--data", data, "--json");
      expectClose([JSON.parse(ev.stdout).loss], g.get("loss").toArray(), "loss from merged");
      expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).architectures).toEqual(JSON.parse(readFileSync(join(model, "config.json"), "utf8")).architectures);
    });

    it("train reproduces the AdamW trajectory and trained tensors", () => {
      const out = join(tmp, "trained");
      const r = dora("train", "--model", model, "--data", data, "--output-dir", out, "--adapter", adapter, "--max-steps", "10",
        "--learning-rate", "1e-2", "--batch-size", "2", "--lr-scheduler-type", "constant", "--warmup-steps", "0", "--weight-decay", "0",
        "--max-grad-norm", "0", "--lora-dropout", "0", "--no-shuffle");
      expect(r.code, r.stderr).toBe(0);
      const losses = readFileSync(join(out, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => "loss" in l).map((l) => l.loss as number);
      expectClose(losses, g.get("adamw_losses").toArray(), "adamw_losses", { rtol: 1e-3, atol: 1e-4 });
      const f = SafetensorsFile.openSync(join(out, "adapter_model.safetensors"));
      const trained = [...g.tensors.keys()].filter((k) => k.startsWith("trained."));
      expect(f.keys().sort()).toEqual(trained.map((k) => k.slice("trained.".length)).sort());
      for (const k of trained) expectClose(f.readFloat32(k.slice("trained.".length)), g.get(k).toArray(), k, { rtol: 1e-3, atol: 1e-4 });
      const ev = dora("eval", "--model", model, "--adapter", out, "--data", data, "--json");
      expectClose([JSON.parse(ev.stdout).loss], g.get("adamw_loss_after").toArray(), "adamw_loss_after", { rtol: 1e-3, atol: 1e-4 });
    });
  });
}
