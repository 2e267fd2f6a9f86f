/** analyzeRun end to end on hand-made checkpoints whose ΔM and ΔD are known. */
import { describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseModelConfig, randomModel, saveModel } from "../models/index.js";
import { LoraConfig, getPeftModel } from "../peft/index.js";
import { analyzeRun } from "./checkpoints.js";

const CONFIG = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: 64, hidden_size: 32, intermediate_size: 48,
  num_hidden_layers: 2, num_attention_heads: 2, num_key_value_heads: 2, max_position_embeddings: 64, tie_word_embeddings: false,
};
const tiny = () => randomModel(parseModelConfig(CONFIG, "test config"), 3);

/** Mean row norm of a [out, in] weight. */
function meanRowNorm(w: Float32Array, outF: number, inF: number): number {
  let s = 0;
  for (let n = 0; n < outF; n++) { let q = 0; for (let k = 0; k < inF; k++) q += w[n * inF + k]! ** 2; s += Math.sqrt(q); }
  return s / outF;
}

describe("analyzeRun", () => {
  const root = mkdtempSync(join(tmpdir(), "analyze-"));
  const baseDir = join(root, "base");
  const base = tiny();
  saveModel(base, baseDir, { dtype: "float32" });
  const qNorm = (layer: number): number => meanRowNorm(base.namedParameters().find(([n]) => n === `model.layers.${layer}.self_attn.q_proj.weight`)![1].f32(), 32, 32);

  it("full fine-tuning checkpoint that doubles q_proj: ΔD = 0, ΔM = mean ‖W_n‖; untouched v_proj: 0, 0", () => {
    const m = tiny();
    for (const [name, t] of m.namedParameters()) if (name.endsWith("q_proj.weight")) (t.data as Float32Array).forEach((v, i, a) => { a[i] = 2 * v; });
    saveModel(m, join(root, "ft", "checkpoint-5"), { dtype: "float32" });
    const pts = analyzeRun(baseDir, join(root, "ft"));
    expect(pts.map((p) => `${p.method} ${p.module} ${p.layer} ${p.step}`).sort()).toEqual(["FT q_proj 0 5", "FT q_proj 1 5", "FT v_proj 0 5", "FT v_proj 1 5"]);
    for (const p of pts) {
      expect(p.dD).toBeCloseTo(0, 6);
      expect(p.dM).toBeCloseTo(p.module === "q_proj" ? qNorm(p.layer) : 0, 5);
    }
  });

  it("DoRA checkpoint with B = 0 and m doubled: the learned m gives ΔM = mean ‖W_n‖, the direction is unchanged", () => {
    const pm = getPeftModel(tiny(), new LoraConfig({ r: 4, loraAlpha: 8, useDora: true, targetModules: ["q_proj"] }), "default", { seed: 1 });
    for (const [, l] of pm.loraLayers()) {
      const a = l.adapters.get("default")!;
      (a.magnitude!.data as Float32Array).forEach((v, i, arr) => { arr[i] = 2 * v; });
      a.magnitude!.version++;
    }
    pm.savePretrained(join(root, "dora", "checkpoint-10"));
    const pts = analyzeRun(baseDir, join(root, "dora"), { modules: ["q_proj"] });
    expect(pts).toHaveLength(2);
    for (const p of pts) {
      expect(p.method).toBe("DoRA");
      expect(p.step).toBe(10);
      expect(p.dD).toBeCloseTo(0, 6);
      expect(p.dM).toBeCloseTo(qNorm(p.layer), 4);
    }
  });

  it("names a run without checkpoints", () => {
    expect(() => analyzeRun(baseDir, baseDir)).toThrow(/no checkpoint-<step> folders \(train with --save-steps N\)/);
  });
});
