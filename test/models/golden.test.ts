/**
 * The tiny LLaMA and GPT-2 against PyTorch (test/fixtures/golden, GOLDEN.md). The fixtures' `logits` include
 * a DoRA adapter; `logits_from_merged` is the plain model forward with the `merged.*` weights, so loading the
 * base folder and swapping those weights in checks the model alone, at the fixtures' tolerance.
 */
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { loadModelFromDir } from "../../src/models/index.js";
import { noGrad } from "../../src/tensor/index.js";
import { expectClose } from "../helpers/close.js";
import { GOLDEN_DIR, loadGolden } from "../helpers/golden.js";

for (const name of ["tiny_llama", "tiny_gpt2"]) {
  describe(name, () => {
    it("logits and loss of the merged weights match PyTorch", () => {
      const g = loadGolden(name);
      const model = loadModelFromDir(join(GOLDEN_DIR, name));
      const params = model.stateDict();
      let swapped = 0;
      for (const [key, t] of g.tensors) {
        if (!key.startsWith("merged.")) continue;
        const hfKey = key.slice("merged.".length);
        const p = params.get(hfKey);
        expect(p, hfKey).toBeDefined();
        expect(p!.shape).toEqual(t.shape);
        (p!.data as Float32Array).set(t.f32());
        swapped++;
      }
      expect(swapped).toBeGreaterThan(0);
      const ids = g.get("input_ids");
      noGrad(() => {
        const logits = model.forward(ids);
        expect(logits.shape).toEqual([2, 8, 48]);
        expectClose(logits, g.get("logits_from_merged").f32(), `${name} logits_from_merged`);
        expectClose(model.loss(ids), g.get("loss").f32(), `${name} loss`);
      });
    });

    it("has HF's module names", () => {
      const model = loadModelFromDir(join(GOLDEN_DIR, name));
      const paths = new Set(model.namedModules().map(([p]) => p));
      const expected = name === "tiny_llama"
        ? ["model.embed_tokens", "model.layers.1.self_attn.q_proj", "model.layers.0.mlp.down_proj", "model.layers.0.input_layernorm",
          "model.layers.0.post_attention_layernorm", "model.norm", "lm_head"]
        : ["transformer.wte", "transformer.wpe", "transformer.h.1.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc",
          "transformer.h.0.mlp.c_proj", "transformer.h.0.ln_1", "transformer.h.0.ln_2", "transformer.ln_f", "lm_head"];
      for (const p of expected) expect(paths.has(p), p).toBe(true);
    });
  });
}

describe("backward", () => {
  for (const name of ["tiny_llama", "tiny_gpt2"]) {
    it(`${name}: loss.backward reaches every parameter (tied head included)`, () => {
      const model = loadModelFromDir(join(GOLDEN_DIR, name));
      model.train().requiresGrad_(true);
      const ids = loadGolden(name).get("input_ids");
      model.loss(ids).backward();
      for (const [key, p] of model.namedParameters()) {
        expect(p.grad?.shape, key).toEqual(p.shape);
        expect(p.grad!.f32().some((v) => v !== 0), `${key} has a nonzero gradient`).toBe(true);
      }
    });
  }
});
