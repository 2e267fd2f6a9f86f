/** config.json parsing, load errors that name file/key/shapes, and save → load round trips. */
import { afterAll, describe, expect, it } from "vitest";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors, SafetensorsFile } from "../../src/io/index.js";
import {
  LlamaForCausalLM, ModelConfigError, loadModel, loadModelFromDir, parseModelConfig, randomModel, ropeInvFreq, saveModel,
} from "../../src/models/index.js";
import { indexTensor, noGrad } from "../../src/tensor/index.js";
import { expectClose } from "../helpers/close.js";
import { GOLDEN_DIR } from "../helpers/golden.js";

const LLAMA = join(GOLDEN_DIR, "tiny_llama"), GPT2 = join(GOLDEN_DIR, "tiny_gpt2");
const made: string[] = [];
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), "dora-models-")); made.push(d); return d; };
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });
const llamaRaw = (): Record<string, unknown> => JSON.parse(readFileSync(join(LLAMA, "config.json"), "utf8")) as Record<string, unknown>;
const ids = indexTensor([1, 5, 9, 3, 7, 2, 40, 11], [1, 8]);

describe("config", () => {
  it("reads the LLaMA fields", () => {
    const c = parseModelConfig(llamaRaw());
    expect(c).toMatchObject({ family: "llama", hiddenSize: 32, numHeads: 4, numKvHeads: 2, headDim: 8, normEps: 1e-6, ropeTheta: 1e4,
      tieWordEmbeddings: false, qkvBias: false, eosTokenIds: [2] });
  });

  it("gives Qwen2 q/k/v bias but no o_proj bias", () => {
    const c = parseModelConfig({ ...llamaRaw(), architectures: ["Qwen2ForCausalLM"] });
    expect([c.qkvBias, c.oBias]).toEqual([true, false]);
    const m = randomModel(c);
    expect(m.getSubmodule("model.layers.0.self_attn.k_proj").paramOrNull("bias")?.shape).toEqual([16]);
    expect(m.getSubmodule("model.layers.0.self_attn.o_proj").paramOrNull("bias")).toBeNull();
  });

  it("lists the supported architectures for an unknown one", () => {
    expect(() => parseModelConfig({ ...llamaRaw(), architectures: ["BertModel"] }, "x/config.json"))
      .toThrow(/x\/config.json: architecture "BertModel" is not supported; supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, GPT2LMHeadModel/);
  });

  it("rejects bad fields and unknown rope scaling", () => {
    expect(() => parseModelConfig({ ...llamaRaw(), num_key_value_heads: 3 })).toThrow(/not divisible by num_key_value_heads 3/);
    expect(() => parseModelConfig({ ...llamaRaw(), hidden_size: "32" })).toThrow(/"hidden_size" must be a number/);
    expect(() => parseModelConfig({ ...llamaRaw(), rope_scaling: { type: "yarn", factor: 4 } })).toThrow(/"yarn" is not supported/);
  });

  it("applies Llama-3.1 rope scaling by wavelength band", () => {
    const scaling = { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
    const c = parseModelConfig({ ...llamaRaw(), head_dim: 128, hidden_size: 512, rope_theta: 500000, rope_scaling: scaling });
    const plain = ropeInvFreq(128, 500000, null), scaled = ropeInvFreq(128, 500000, c.ropeScaling);
    for (let i = 0; i < 64; i++) {
      const wl = (2 * Math.PI) / plain[i]!;
      if (wl < 8192 / 4) expect(scaled[i]).toBe(plain[i]); // high frequency: unchanged
      else if (wl > 8192) expect(scaled[i]).toBeCloseTo(plain[i]! / 8, 12); // low frequency: divided by factor
      else expect(scaled[i]! < plain[i]! && scaled[i]! > plain[i]! / 8).toBe(true); // blended
    }
  });
});

describe("load errors", () => {
  it("names a missing folder, config.json and weights", async () => {
    await expect(loadModel(join(tmp(), "nope"))).rejects.toThrow(/not a hub id|model folder not found/);
    const d = tmp();
    expect(() => loadModelFromDir(d)).toThrow(/no config.json/);
    cpSync(join(LLAMA, "config.json"), join(d, "config.json"));
    expect(() => loadModelFromDir(d)).toThrow(/no model weights: expected model.safetensors or model.safetensors.index.json/);
  });

  it("names the file, key and shapes of a missing or misshapen tensor", () => {
    const src = SafetensorsFile.openSync(join(LLAMA, "model.safetensors"));
    const all = new Map(src.keys().map((k) => [k, { dtype: "F32" as const, shape: src.info(k).shape, data: src.readFloat32(k) }]));
    src.close();
    const d = tmp();
    cpSync(join(LLAMA, "config.json"), join(d, "config.json"));
    const missing = new Map(all);
    missing.delete("model.layers.1.mlp.up_proj.weight");
    writeSafetensors(join(d, "model.safetensors"), missing);
    expect(() => loadModelFromDir(d)).toThrow(/model.safetensors: missing tensor "model.layers.1.mlp.up_proj.weight" \(shape \[48, 32\]\)/);
    writeFileSync(join(d, "config.json"), JSON.stringify({ ...llamaRaw(), intermediate_size: 64 }));
    writeSafetensors(join(d, "model.safetensors"), all);
    expect(() => loadModelFromDir(d)).toThrow(/tensor "model.layers.0.mlp.gate_proj.weight" has shape \[48, 32\] but config.json .* implies \[64, 32\]/);
  });
});

describe("save and load", () => {
  for (const dir of [LLAMA, GPT2]) {
    it(`round-trips ${dir.split("/").pop()} in float32 exactly, tied head omitted`, () => {
      const a = loadModelFromDir(dir), d = tmp();
      saveModel(a, d);
      const b = loadModelFromDir(d);
      noGrad(() => expect(Array.from(b.forward(ids).f32())).toEqual(Array.from(a.forward(ids).f32())));
      const keys = SafetensorsFile.openSync(join(d, "model.safetensors")).keys();
      expect(keys.includes("lm_head.weight")).toBe(!a.config.tieWordEmbeddings);
      expect(keys).toEqual(SafetensorsFile.openSync(join(dir, "model.safetensors")).keys());
      expect(JSON.parse(readFileSync(join(d, "config.json"), "utf8"))).toMatchObject({ architectures: a.config.raw["architectures"] });
    });
  }

  it("keeps bfloat16 matrices 16-bit when asked, and computes the same logits as widened", () => {
    const d = tmp();
    saveModel(loadModelFromDir(LLAMA), d, { dtype: "bfloat16" });
    expect(SafetensorsFile.openSync(join(d, "model.safetensors")).info("lm_head.weight").dtype).toBe("BF16");
    const wide = loadModelFromDir(d), half = loadModelFromDir(d, { keepFrozenIn16Bit: true });
    const q = (m: typeof wide): string => m.getSubmodule("model.layers.0.self_attn.q_proj").param("weight").dtype;
    expect([q(wide), q(half)]).toEqual(["float32", "bfloat16"]);
    expect(half.getSubmodule("model.norm").param("weight").dtype).toBe("float32");
    // same values; widening a transposed 16-bit view may change the GEMM form and so the summation order
    noGrad(() => expectClose(half.forward(ids), wide.forward(ids).f32(), "bf16 storage logits", { rtol: 1e-5, atol: 1e-6 }));
    // saving a 16-bit model in its own dtype writes the bits unchanged
    const d2 = tmp();
    saveModel(half, d2, { dtype: "bfloat16" });
    expect(readFileSync(join(d2, "model.safetensors")).equals(readFileSync(join(d, "model.safetensors")))).toBe(true);
  });

  it("stores float32 matrices as bfloat16 with dtype, at bfloat16 accuracy", () => {
    const f = loadModelFromDir(LLAMA), h = loadModelFromDir(LLAMA, { dtype: "bfloat16" });
    expect(h.getSubmodule("model.layers.1.mlp.up_proj").param("weight").dtype).toBe("bfloat16");
    expect(h.getSubmodule("model.embed_tokens").param("weight").dtype).toBe("bfloat16");
    noGrad(() => expectClose(h.forward(ids), f.forward(ids).f32(), "bf16 logits", { rtol: 5e-2, atol: 5e-2 }));
  });

  it("reads GPT-2 checkpoints saved without the transformer. prefix and with attention-mask buffers", () => {
    const src = SafetensorsFile.openSync(join(GPT2, "model.safetensors"));
    const out = new Map(src.keys().map((k) => [k.replace(/^transformer\./, ""), { dtype: "F32" as const, shape: src.info(k).shape, data: src.readFloat32(k) }]));
    src.close();
    out.set("h.0.attn.bias", { dtype: "F32", shape: [1, 1, 4, 4], data: new Float32Array(16) }); // old HF checkpoints carry the causal mask
    const d = tmp();
    cpSync(join(GPT2, "config.json"), join(d, "config.json"));
    writeSafetensors(join(d, "model.safetensors"), out);
    const a = loadModelFromDir(GPT2), b = loadModelFromDir(d);
    noGrad(() => expect(Array.from(b.forward(ids).f32())).toEqual(Array.from(a.forward(ids).f32())));
  });

  it("refuses sequences longer than Mistral's sliding window instead of attending past it", () => {
    const m = randomModel(parseModelConfig({ ...llamaRaw(), architectures: ["MistralForCausalLM"], sliding_window: 4 }));
    expect(() => noGrad(() => m.forward(ids))).toThrow(/8 positions exceed sliding_window 4/);
    noGrad(() => expect(m.forward(indexTensor([1, 2, 3, 4], [1, 4])).shape).toEqual([1, 4, 48]));
  });

  it("builds a tied LLaMA whose head shares the embedding", () => {
    const m = randomModel(parseModelConfig({ ...llamaRaw(), tie_word_embeddings: true })) as LlamaForCausalLM;
    expect(m.getSubmodule("lm_head").param("weight")).toBe(m.getSubmodule("model.embed_tokens").param("weight"));
    expect(m.stateDict().has("lm_head.weight")).toBe(false);
  });
});
