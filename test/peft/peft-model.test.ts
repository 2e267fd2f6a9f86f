/**
 * PeftModel against PEFT's behaviour, on stand-in module trees with the tiny models' paths and shapes (the
 * real model classes live in src/models; adapters find modules by path, so the tree is all that matters):
 * target matching, freezing, PEFT's trainable-parameter line, loading the adapters PEFT wrote, merged
 * weights, save → load round trip, adapter_config.json field set, multiple adapters, disable, errors.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Rng, Tensor, indexTensor, noGrad, randn } from "../../src/tensor/index.js";
import { Conv1D, Embedding, LayerNorm, Linear, Module, RMSNorm } from "../../src/nn/index.js";
import { SafetensorsFile } from "../../src/io/index.js";
import { ConfigError, LoraConfig, LoraEmbedding, LoraLayer, ModulesToSave, PeftModel, getPeftModel, type LoraConfigInit } from "../../src/peft/index.js";
import { loadModelFromDir, type CausalLM } from "../../src/models/index.js";
import { maxRelDiff } from "../helpers/arrays.js";
import { expectClose } from "../helpers/close.js";
import { GOLDEN_DIR, loadGolden } from "../helpers/golden.js";

const TOL = { rtol: 1e-4, atol: 1e-5 };
const tmp = mkdtempSync(join(tmpdir(), "dora-peft-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function loadWeights(root: Module, file: string): void {
  const f = SafetensorsFile.openSync(file);
  for (const k of f.keys()) {
    const i = k.lastIndexOf(".");
    const t = root.getSubmodule(k.slice(0, i)).param(k.slice(i + 1));
    expect(t.shape, k).toEqual(f.info(k).shape);
    (t.data as Float32Array).set(f.readFloat32(k));
  }
  f.close();
}

/** LlamaForCausalLM's module tree (vocab 48, hidden 32, 2 layers, kv 16, intermediate 48), weights from tiny_llama/. */
function tinyLlama(): Module {
  const root = new Module(), model = root.registerModule("model", new Module());
  model.registerModule("embed_tokens", new Embedding(48, 32));
  const layers = model.registerModule("layers", new Module());
  for (let i = 0; i < 2; i++) {
    const l = layers.registerModule(String(i), new Module());
    const at = l.registerModule("self_attn", new Module());
    for (const [n, o] of [["q_proj", 32], ["k_proj", 16], ["v_proj", 16], ["o_proj", 32]] as const) at.registerModule(n, new Linear(32, o, false));
    const mlp = l.registerModule("mlp", new Module());
    mlp.registerModule("gate_proj", new Linear(32, 48, false));
    mlp.registerModule("up_proj", new Linear(32, 48, false));
    mlp.registerModule("down_proj", new Linear(48, 32, false));
    l.registerModule("input_layernorm", new RMSNorm(32));
    l.registerModule("post_attention_layernorm", new RMSNorm(32));
  }
  model.registerModule("norm", new RMSNorm(32));
  root.registerModule("lm_head", new Linear(32, 48, false));
  loadWeights(root, join(GOLDEN_DIR, "tiny_llama", "model.safetensors"));
  return root;
}

/** GPT2LMHeadModel's module tree (n_embd 32, 2 layers, Conv1D [in, out]), weights from tiny_gpt2/. */
function tinyGpt2(): Module {
  const root = new Module(), tr = root.registerModule("transformer", new Module());
  tr.registerModule("wte", new Embedding(48, 32));
  tr.registerModule("wpe", new Embedding(64, 32));
  const h = tr.registerModule("h", new Module());
  for (let i = 0; i < 2; i++) {
    const b = h.registerModule(String(i), new Module());
    b.registerModule("ln_1", new LayerNorm(32));
    const at = b.registerModule("attn", new Module());
    at.registerModule("c_attn", new Conv1D(32, 96));
    at.registerModule("c_proj", new Conv1D(32, 32));
    b.registerModule("ln_2", new LayerNorm(32));
    const mlp = b.registerModule("mlp", new Module());
    mlp.registerModule("c_fc", new Conv1D(32, 128));
    mlp.registerModule("c_proj", new Conv1D(128, 32));
  }
  tr.registerModule("ln_f", new LayerNorm(32));
  loadWeights(root, join(GOLDEN_DIR, "tiny_gpt2", "model.safetensors"));
  return root;
}

function adapterPaths(pm: PeftModel): string[] {
  return pm.loraLayers().map(([p]) => p);
}

describe.each([["tiny_llama", tinyLlama], ["tiny_gpt2", tinyGpt2]] as const)("%s DoRA adapter written by PEFT", (name, make) => {
  const golden = loadGolden(name);
  const dir = join(GOLDEN_DIR, `${name}_dora_adapter`);

  it("loads with PEFT's keys, shapes and values, adapting exactly PEFT's modules", () => {
    const pm = PeftModel.fromPretrained(make(), dir);
    expect(adapterPaths(pm).sort()).toEqual([...(golden.config["adapted_modules"] as string[])].sort());
    const sd = pm.adapterStateDict();
    expect([...sd.keys()].sort()).toEqual([...(golden.config["adapter_keys"] as string[])].sort());
    for (const [k, t] of sd) expectClose(t, golden.get(k).f32(), k, { rtol: 0, atol: 0 });
    expect(pm.trainableParameters()).toEqual([]); // inference by default, as PEFT
  });

  it("magnitude init for the stored A, B and merged weights match PEFT", () => {
    const pm = PeftModel.fromPretrained(make(), dir);
    for (const [path, layer] of pm.loraLayers()) {
      const a = layer.adapters.get("default")!;
      const key = `base_model.model.${path}.lora_magnitude_vector`;
      const saved = Float32Array.from(a.magnitude!.f32());
      a.variant!.init(layer, a);
      expectClose(a.magnitude!, golden.get(`magnitude_init.${key}`).f32(), `magnitude_init ${path}`, TOL);
      (a.magnitude!.data as Float32Array).set(saved);
    }
    const model = noGrad(() => pm.mergeAndUnload());
    for (const path of golden.config["adapted_modules"] as string[]) {
      const w = model.getSubmodule(path);
      expect(w instanceof LoraLayer).toBe(false);
      expectClose(w.param("weight"), golden.get(`merged.${path}.weight`).f32(), `merged ${path}`, TOL);
    }
  });

  it("save → load round trip: same keys, shapes, values; adapter_config.json has PEFT's fields and values", () => {
    const pm = PeftModel.fromPretrained(make(), dir);
    const out = join(tmp, `${name}-rt`);
    pm.savePretrained(out);
    const ours = JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    const peft = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    expect(Object.keys(ours)).toEqual(Object.keys(peft));
    for (const k of Object.keys(peft)) if (k !== "peft_version") expect(ours[k], k).toEqual(peft[k]);
    expect(readFileSync(join(out, "adapter_config.json"), "utf8")).toContain(`"lora_dropout": 0.0,`);
    const a = SafetensorsFile.openSync(join(out, "adapter_model.safetensors"));
    const b = SafetensorsFile.openSync(join(dir, "adapter_model.safetensors"));
    expect(a.keys()).toEqual(b.keys());
    for (const k of b.keys()) {
      expect(a.info(k).shape).toEqual(b.info(k).shape);
      expect(Array.from(a.readFloat32(k))).toEqual(Array.from(b.readFloat32(k)));
    }
    a.close(); b.close();
    const back = PeftModel.fromPretrained(make(), out, { isTrainable: true });
    expect(back.trainableParameters().length).toBe(b.keys().length);
  });
});

describe("getPeftModel", () => {
  it("suffix matching: c_proj adapts attn.c_proj and mlp.c_proj; fan_in_fan_out layout; freezes the rest", () => {
    const pm = getPeftModel(tinyGpt2(), new LoraConfig({ r: 4, loraAlpha: 8, targetModules: ["c_attn", "c_proj"], useDora: true, fanInFanOut: true }));
    expect(adapterPaths(pm)).toEqual(["transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj",
      "transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj"]);
    const names = pm.trainableParameters().map(([n]) => n);
    expect(names).toContain("base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight");
    expect(names).toContain("base_model.model.transformer.h.0.attn.c_attn.lora_magnitude_vector.default.weight");
    expect(names.every((n) => /lora_(A|B|magnitude_vector)\.default\.weight$/.test(n))).toBe(true);
  });

  it("all-linear leaves out lm_head; exclude_modules, layers_to_transform and rank/alpha patterns as PEFT", () => {
    const all = getPeftModel(tinyLlama(), new LoraConfig({ targetModules: "all-linear" }));
    expect(adapterPaths(all).length).toBe(14);
    expect(adapterPaths(all)).not.toContain("lm_head");
    const some = getPeftModel(tinyLlama(), new LoraConfig({
      targetModules: ["q_proj", "v_proj", "down_proj"], excludeModules: ["v_proj"], layersToTransform: [1],
      rankPattern: { down_proj: 2 }, alphaPattern: { "layers\\.1\\.self_attn\\.q_proj": 32 },
    }));
    expect(adapterPaths(some)).toEqual(["model.layers.1.self_attn.q_proj", "model.layers.1.mlp.down_proj"]);
    const [[, q], [, d]] = some.loraLayers() as [[string, LoraLayer], [string, LoraLayer]];
    expect(q.adapters.get("default")!.scaling).toBe(32 / 8);
    expect(d.adapters.get("default")!.r).toBe(2);
    const rx = getPeftModel(tinyLlama(), new LoraConfig({ targetModules: ".*layers\\.0\\..*_proj" }));
    expect(adapterPaths(rx).length).toBe(7);
    expect(() => getPeftModel(tinyLlama(), new LoraConfig({ targetModules: ["nope"] }))).toThrow(/not found in the base model/);
    expect(() => getPeftModel(tinyLlama(), new LoraConfig({ targetModules: ["self_attn"] }))).toThrow(/"model.layers.0.self_attn" is a Module/);
  });

  it("prints trainable parameters as PEFT", () => {
    const pm = getPeftModel(tinyLlama(), new LoraConfig({ r: 4, targetModules: ["q_proj"], useDora: true }));
    // q_proj 32→32, r 4: A 128 + B 128 + m 32 per layer, 2 layers
    const base = 48 * 32 * 2 + 2 * (32 * 32 * 2 + 16 * 32 * 2 + 48 * 32 * 3 + 64) + 32;
    expect(pm.printTrainableParameters(false)).toBe(
      `trainable params: 576 || all params: ${(base + 576).toLocaleString("en-US")} || trainable%: ${(57600 / (base + 576)).toFixed(4)}`);
  });

  it("several adapters: add, switch, disable, delete; modules_to_save keys", () => {
    const pm = getPeftModel(tinyLlama(), new LoraConfig({ targetModules: ["q_proj"], useDora: true, initLoraWeights: false, modulesToSave: ["lm_head"] }));
    pm.addAdapter("other", new LoraConfig({ targetModules: ["q_proj"], initLoraWeights: false }));
    const q = pm.model.getSubmodule("model.layers.0.self_attn.q_proj") as LoraLayer;
    const x = randn([3, 32], new Rng(4));
    const y0 = noGrad(() => q.forward(x)).f32().slice();
    pm.setAdapter("other");
    const y1 = noGrad(() => q.forward(x)).f32().slice();
    const yb = pm.disableAdapter(() => noGrad(() => q.forward(x)).f32().slice());
    expectClose(yb, noGrad(() => (q.baseLayer as Linear).forward(x)).f32(), "disabled = base");
    expect(Math.abs(y0[0]! - y1[0]!)).toBeGreaterThan(1e-6);
    expect([...pm.adapterStateDict("default").keys()]).toContain("base_model.model.lm_head.weight");
    pm.deleteAdapter("other");
    expect(pm.activeAdapter).toBe("default");
    expectClose(noGrad(() => q.forward(x)), y0, "back to default");
    expect(pm.namedParameters().some(([n]) => n.includes(".other."))).toBe(false);
  });

  it("deleteAdapter removes that adapter's modules_to_save copy (parameters, saved keys); the other adapter still works", () => {
    const pm = getPeftModel(tinyLlama(), new LoraConfig({ targetModules: ["q_proj"], modulesToSave: ["lm_head"] }));
    pm.addAdapter("other", new LoraConfig({ targetModules: ["q_proj"], modulesToSave: ["lm_head"] }));
    const saver = pm.model.getSubmodule("lm_head") as ModulesToSave;
    const keep = saver.adapterTensors("default")!.get("weight")!;
    (keep.data as Float32Array).forEach((v, i, d) => (d[i] = v + 0.01 * Math.sin(i))); // "trained": differs from the original
    const lmHead = (): string[] => pm.namedParameters().map(([n]) => n).filter((n) => n.includes("lm_head"));
    expect(lmHead()).toContain("base_model.model.lm_head.modules_to_save.other.weight");
    pm.setAdapter("other");
    pm.deleteAdapter("other");
    expect(saver.adapterTensors("other")).toBeUndefined();
    expect(lmHead()).toEqual(["base_model.model.lm_head.original_module.weight", "base_model.model.lm_head.modules_to_save.default.weight"]);
    expect([...pm.stateDict().keys()].filter((k) => k.includes("other"))).toEqual([]);
    expect([pm.activeAdapter, saver.active]).toEqual(["default", "default"]);
    const out = join(tmp, "deleted");
    pm.savePretrained(out);
    expect(existsSync(join(out, "other"))).toBe(false);
    const f = SafetensorsFile.openSync(join(out, "adapter_model.safetensors"));
    expect(f.keys()).toEqual([...pm.adapterStateDict("default").keys()].sort());
    expect(Array.from(f.readFloat32("base_model.model.lm_head.weight"))).toEqual(Array.from(keep.f32()));
    f.close();
    const x = randn([3, 32], new Rng(6));
    const ref = new Linear(32, 48, false);
    ref.registerParameter("weight", keep);
    expect(Array.from(noGrad(() => saver.forward(x) as Tensor).f32())).toEqual(Array.from(noGrad(() => ref.forward(x)).f32()));
  });

  it("embedding adapter save → load: PEFT's keys lora_embedding_A [r, V] / lora_embedding_B [D, r] (+ DoRA's m [D]), values", () => {
    const prefix = "base_model.model.model.embed_tokens.";
    const ids = indexTensor([0, 7, 47, 7], [2, 2]);
    for (const useDora of [false, true]) {
      const config = new LoraConfig({ r: 4, targetModules: ["embed_tokens", "q_proj"], useDora, initLoraWeights: false });
      const pm = getPeftModel(tinyLlama(), config, "default", { seed: 2 });
      const layer = pm.model.getSubmodule("model.embed_tokens") as LoraLayer;
      expect(layer).toBeInstanceOf(LoraEmbedding);
      const a = layer.adapters.get("default")!;
      const want = new Map<string, [number[], Tensor]>([[`${prefix}lora_embedding_A`, [[4, 48], a.A]], [`${prefix}lora_embedding_B`, [[32, 4], a.B]]]);
      if (useDora) want.set(`${prefix}lora_magnitude_vector`, [[32], a.magnitude!]);
      const out = join(tmp, `embedding-dora-${useDora}`);
      pm.savePretrained(out);
      const f = SafetensorsFile.openSync(join(out, "adapter_model.safetensors"));
      expect(f.keys().filter((k) => k.startsWith(prefix)), `useDora ${useDora}`).toEqual([...want.keys()].sort());
      for (const [k, [shape, t]] of want) {
        expect(f.info(k).shape, k).toEqual(shape);
        expect(Array.from(f.readFloat32(k)), k).toEqual(Array.from(t.f32()));
      }
      f.close();
      const back = PeftModel.fromPretrained(tinyLlama(), out);
      const bl = back.model.getSubmodule("model.embed_tokens") as LoraLayer;
      const b = bl.adapters.get("default")!;
      for (const [k, t] of [["A", b.A], ["B", b.B], ["m", b.magnitude]] as const) {
        if (k === "m" && !useDora) { expect(t).toBeNull(); continue; }
        expect(Array.from(t!.f32()), `reloaded ${k}`).toEqual(Array.from((k === "m" ? a.magnitude! : a[k]).f32()));
      }
      expect(Array.from(noGrad(() => bl.forward(ids)).f32())).toEqual(Array.from(noGrad(() => layer.forward(ids)).f32()));
    }
  });

  it("loading errors name the key and the expected and found shapes", () => {
    const dir = join(tmp, "bad");
    cpSync(join(GOLDEN_DIR, "tiny_llama_dora_adapter"), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, r: 2 }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(/q_proj\.lora_A\.weight": expected shape \[2, 32\], found \[4, 32\]/);
    const file = join(dir, "adapter_model.safetensors");
    // the file's first key (they are sorted) once only q_proj is adapted
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, target_modules: ["q_proj"] }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(
      `${file}: key "base_model.model.model.layers.0.mlp.down_proj.lora_A.weight" (shape [4, 48]) matches no adapted module`);
    // lm_head adapted as well: its tensors are not in the file
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, target_modules: [...(cfg["target_modules"] as string[]), "lm_head"] }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(
      `${file}: missing key "base_model.model.lm_head.lora_A.weight" (expected shape [4, 32])`);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, use_qalora: true }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(/use_qalora = true is not supported/);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, lora_fancy: 1 }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(/unknown field "lora_fancy"/);
  });
});

describe("init_lora_weights: \"gaussian\"", () => {
  // PEFT reset_lora_parameters: nn.init.normal_(lora_A, std=1/r), nn.init.zeros_(lora_B)
  it.each([false, true])("A ~ N(0, (1/r)²) (mean, std, normal shape within 5 SE), B = 0; useDora %s: m = row norms of W", (useDora) => {
    const r = 8, sigma = 1 / r;
    const pm = getPeftModel(tinyLlama(), new LoraConfig({ r, targetModules: "all-linear", initLoraWeights: "gaussian", useDora }));
    const values: number[] = [];
    for (const [path, l] of pm.loraLayers()) {
      const a = l.adapters.get("default")!;
      values.push(...a.A.f32());
      expect(Array.from(a.B.f32()), `${path} B`).toEqual(new Array<number>(a.B.numel).fill(0));
      if (!useDora) { expect(a.magnitude).toBeNull(); continue; }
      const [out, inn] = l.weight.shape as [number, number], w = l.weight.f32();
      const norms = Array.from({ length: out }, (_, i) => Math.hypot(...w.subarray(i * inn, (i + 1) * inn)));
      expectClose(a.magnitude!, norms, `${path} m`, { rtol: 1e-6, atol: 0 });
    }
    const n = values.length; // 14 layers, A [8, 32] or [8, 48]: 3840 values
    expect(n).toBe(3840);
    const mean = values.reduce((acc, v) => acc + v, 0) / n;
    const std = Math.sqrt(values.reduce((acc, v) => acc + (v - mean) ** 2, 0) / (n - 1));
    // standard errors of N(0, σ²) samples: mean σ/√n, sample std σ/√(2(n−1)); 5 SE fails a correct init with
    // probability 6e-7 per check. The default kaiming-uniform A (std 1/√(3·fan_in), 0.099 pooled) is 18 SE off.
    expect(Math.abs(mean)).toBeLessThanOrEqual(5 * sigma / Math.sqrt(n));
    expect(Math.abs(std - sigma)).toBeLessThanOrEqual(5 * sigma / Math.sqrt(2 * (n - 1)));
    // normal, not just the right std: P(|a| < σ) = 0.6827 (a uniform with that std gives 0.577, 14 SE away)
    const p1 = 0.6826894921370859, inside = values.filter((v) => Math.abs(v) < sigma).length / n;
    expect(Math.abs(inside - p1)).toBeLessThanOrEqual(5 * Math.sqrt(p1 * (1 - p1) / n));
  });
});

describe("unload and loadAdapter", () => {
  const ids = indexTensor([1, 40, 41, 42, 7, 0], [1, 6]);
  const llama = (): CausalLM => loadModelFromDir(join(GOLDEN_DIR, "tiny_llama"));
  const logits = (m: CausalLM): Float32Array => noGrad(() => m.forward(ids)).f32().slice();

  it("unload() gives back the base model: its modules, names and weights, no adapter modules, its logits exactly", () => {
    const model = llama();
    const before = new Map(model.namedParameters().map(([n, t]) => [n, Array.from(t.f32())]));
    const want = logits(model);
    const pm = getPeftModel(model, new LoraConfig({ targetModules: "all-linear", useDora: true, initLoraWeights: false }));
    expect(maxRelDiff(logits(model), want)).toBeGreaterThan(1e-3); // the adapters act
    const back = pm.unload();
    expect(back).toBe(model);
    expect(back.namedModules().filter(([, m]) => m instanceof LoraLayer || m instanceof ModulesToSave)).toEqual([]);
    expect(back.namedParameters().map(([n]) => n)).toEqual([...before.keys()]);
    for (const [n, t] of back.namedParameters()) expect(Array.from(t.f32()), n).toEqual(before.get(n));
    expect(Array.from(logits(back))).toEqual(Array.from(want));
  });

  it("unload() keeps the active adapter's modules_to_save copy, as PEFT's unload_and_optionally_merge_module", () => {
    const model = llama();
    const pm = getPeftModel(model, new LoraConfig({ targetModules: ["q_proj"], modulesToSave: ["lm_head"] }));
    pm.addAdapter("other", new LoraConfig({ targetModules: ["q_proj"], modulesToSave: ["lm_head"] }));
    for (const [name, c] of [["default", 0.01], ["other", -0.02]] as const) {
      const w = pm.adapterStateDict(name).get("base_model.model.lm_head.weight")!;
      (w.data as Float32Array).forEach((v, i, d) => (d[i] = v + c * Math.sin(i)));
    }
    pm.setAdapter("other");
    const trained = Array.from(pm.adapterStateDict("other").get("base_model.model.lm_head.weight")!.f32());
    const want = logits(model); // B = 0: only the lm_head copy changes the output
    const back = pm.unload();
    expect(back.getSubmodule("lm_head")).toBeInstanceOf(Linear);
    expect(back.namedParameters().filter(([n]) => n.startsWith("lm_head")).map(([n]) => n)).toEqual(["lm_head.weight"]);
    expect(Array.from(back.getSubmodule("lm_head").param("weight").f32())).toEqual(trained);
    expect(Array.from(logits(back))).toEqual(Array.from(want));
  });

  it("loadAdapter(dir, name) loads a saved adapter beside the first; made active, it gives the first one's logits exactly", () => {
    const model = llama();
    const pm = getPeftModel(model, new LoraConfig({ targetModules: ["q_proj", "v_proj"], useDora: true, initLoraWeights: false, modulesToSave: ["lm_head"] }));
    const head = pm.adapterStateDict().get("base_model.model.lm_head.weight")!;
    (head.data as Float32Array).forEach((v, i, d) => (d[i] = v + 0.01 * Math.sin(i)));
    pm.eval();
    const want = logits(model);
    const dir = join(tmp, "load-adapter");
    pm.savePretrained(dir);
    pm.loadAdapter(dir, "second");
    expect([...pm.configs.keys()]).toEqual(["default", "second"]);
    expect([pm.activeAdapter, pm.configs.get("second")!.inferenceMode]).toEqual(["default", true]);
    const first = pm.adapterStateDict("default"), second = pm.adapterStateDict("second");
    expect([...second.keys()]).toEqual([...first.keys()]);
    for (const [k, t] of second) {
      expect(t, k).not.toBe(first.get(k));
      expect(t.requiresGrad, k).toBe(false); // frozen: inference mode unless isTrainable (PEFT's is_trainable=False)
      expect(Array.from(t.f32()), k).toEqual(Array.from(first.get(k)!.f32()));
    }
    // change the first adapter (as an optimizer step would), so equal logits below can only come from the second
    for (const [, t] of first) { (t.data as Float32Array).forEach((v, i, d) => (d[i] = v * 1.5)); t.version++; }
    expect(maxRelDiff(logits(model), want)).toBeGreaterThan(1e-3);
    pm.setAdapter("second");
    expect(Array.from(logits(model))).toEqual(Array.from(want));
  });
});

describe("training mode after loading", () => {
  // PEFT's load_adapter (and from_pretrained through it) calls eval() unless is_trainable: an adapter loaded for
  // inference must not drop out its inputs
  it("fromPretrained and loadAdapter put the model in eval mode unless isTrainable, which leaves the mode alone", () => {
    const dir = join(GOLDEN_DIR, "tiny_llama_dora_adapter");
    const modes = (pm: PeftModel): boolean[] => [...new Set(pm.namedModules().map(([, m]) => m.training))];
    expect(modes(PeftModel.fromPretrained(tinyLlama(), dir))).toEqual([false]);
    expect(modes(PeftModel.fromPretrained(tinyLlama(), dir, { isTrainable: true }))).toEqual([true]);
    const pm = getPeftModel(tinyLlama(), new LoraConfig({ targetModules: ["q_proj"] }));
    pm.loadAdapter(dir, "trainable", { isTrainable: true });
    expect(modes(pm)).toEqual([true]);
    pm.loadAdapter(dir, "frozen");
    expect(modes(pm)).toEqual([false]);
  });
});

describe("dropout", () => {
  function layerWith(p: number): LoraLayer {
    const pm = getPeftModel(tinyLlama(), new LoraConfig({ r: 4, targetModules: ["layers.0.self_attn.q_proj"], useDora: true, loraDropout: p, initLoraWeights: false }), "default", { seed: 3 });
    return pm.model.getSubmodule("model.layers.0.self_attn.q_proj") as LoraLayer;
  }

  /**
   * With dropout, y = base(x) + M·x̃ (PEFT's DoRA: base(x) + (m/n − 1)·W x̃ + (m/n)·s·BA x̃), x̃ = b⊙x/(1−p),
   * b_i ~ Bernoulli(1−p) i.i.d.; the p = 0 output is base(x) + M·x. So per output element j the deviation
   * d_j = y_j − y_p0,j = Σ_i M_ji·x_i·(b_i/(1−p) − 1) has mean 0 and variance σ_j² = p/(1−p)·Σ_i M_ji²·x_i².
   */
  it("dropout: E[y] is the p = 0 output within 6 standard errors per element; the spread is p's; eval ignores dropout", () => {
    const p = 0.3, N = 1000;
    const l = layerWith(p), ref = layerWith(0);
    const a = l.adapters.get("default")!, b = ref.adapters.get("default")!;
    for (const k of ["A", "B"] as const) (a[k].data as Float32Array).set(b[k].f32());
    (a.magnitude!.data as Float32Array).set(Float32Array.from(b.magnitude!.f32(), (v, i) => v * (1 + 0.1 * Math.sin(i))));
    (b.magnitude!.data as Float32Array).set(a.magnitude!.f32());
    const x = randn([2, 32], new Rng(8)), xs = x.f32();
    const want = noGrad(() => ref.forward(x)).f32().slice();
    const base = noGrad(() => (ref.baseLayer as Linear).forward(x)).f32();
    // M row by row from the layer itself: row i of ref(I) − base(I) is M e_i, so M_ji = (ref(I) − base(I))[i, j]
    const eye = new Tensor(Float32Array.from({ length: 32 * 32 }, (_, k) => (k % 33 === 0 ? 1 : 0)), [32, 32]);
    const jac = noGrad(() => ref.forward(eye)).f32(), wEye = noGrad(() => (ref.baseLayer as Linear).forward(eye)).f32();
    const sigma2 = Float64Array.from(want, (_, e) => {
      const row = Math.floor(e / 32), j = e % 32;
      let s = 0;
      for (let i = 0; i < 32; i++) s += (jac[i * 32 + j]! - wEye[i * 32 + j]!) ** 2 * xs[row * 32 + i]! ** 2;
      return (p / (1 - p)) * s;
    });

    const sum = new Float64Array(want.length), sumSq = new Float64Array(want.length);
    noGrad(() => {
      for (let n = 0; n < N; n++) {
        const y = l.forward(x).f32();
        for (let e = 0; e < y.length; e++) { const d = y[e]! - want[e]!; sum[e]! += d; sumSq[e]! += d * d; }
      }
    });
    // max over elements of |mean(d)| / SE(mean(d)), SE from the sample variance
    const worstZ = (mean: (e: number) => number, sd: (e: number) => number): number =>
      Math.max(...Array.from(want, (_, e) => Math.abs(mean(e)) / (sd(e) / Math.sqrt(N))));
    const mean = (e: number): number => sum[e]! / N;
    const sd = (e: number): number => Math.sqrt((sumSq[e]! - N * mean(e) ** 2) / (N - 1));
    // d is a bounded sum of 32 independent terms, so over N = 1000 draws mean/SE is close to N(0, 1) (CLT; t with
    // 999 dof): P(|Z| > 6) ≈ 2e-9 per element, < 2e-7 for all 64, so a correct layer passes for any seed (seeds
    // 0-11 of this setup, both backends: worst |Z| 1.4 to 3.7; without the 1/(1−p) below 26 to 55; ratio 0.98-1.02).
    expect(worstZ(mean, sd)).toBeLessThanOrEqual(6);
    // The check has power: the same masks without the 1/(1−p) factor give d' = M(b⊙x − x) = (1−p)·d − p·M x, with
    // M x = y_p0 − base(x): a bias of p·|(Mx)_j| against an SE of (1−p)·SE_j; that must fail the 6 SE bound.
    const meanNoRescale = (e: number): number => (1 - p) * mean(e) - p * (want[e]! - base[e]!);
    expect(worstZ(meanNoRescale, (e) => (1 - p) * sd(e))).toBeGreaterThan(6);
    // Dropout acts at rate p: pooled sample variance / Σσ² ≈ 1. b_i/(1−p) − 1 has the excess kurtosis of a Bernoulli,
    // (1 − 6p(1−p))/(p(1−p)) = −1.24 < 0, so each d_j's is ≤ 0 and SD(s²/σ²) ≤ √(2/(N−1)) = 0.045, for the pooled
    // ratio too (a weighted mean of the per-element ones). 6 SD: ±0.27, which p = 0.2 (ratio 0.58) or 0.4 (1.56) fails.
    let s2 = 0, sig2 = 0;
    for (let e = 0; e < want.length; e++) { s2 += sd(e) ** 2; sig2 += sigma2[e]!; }
    expect(Math.abs(s2 / sig2 - 1)).toBeLessThanOrEqual(6 * Math.sqrt(2 / (N - 1)));
    l.eval(); ref.eval();
    expect(Array.from(noGrad(() => l.forward(x)).f32()), "eval ignores dropout").toEqual(Array.from(noGrad(() => ref.forward(x)).f32()));
  });

  it("eval cache follows in-place updates of A, B and m (version bump) and train()", () => {
    const l = layerWith(0);
    const a = l.adapters.get("default")!;
    const x = randn([2, 32], new Rng(9));
    l.eval();
    const y0 = noGrad(() => l.forward(x)).f32().slice();
    (a.B.data as Float32Array)[0]! += 0.5; a.B.version++;
    l.train();
    const fresh = noGrad(() => l.forward(x)).f32().slice();
    l.eval();
    expectClose(noGrad(() => l.forward(x)), fresh, "eval after B update");
    expect(Math.abs(fresh[0]! - y0[0]!)).toBeGreaterThan(1e-6);
  });

  it("staying in eval mode, an in-place update of A, of B and of m with the optimizer's version bump reaches the next output exactly", () => {
    const l = layerWith(0), twin = layerWith(0); // same seed: the same A, B, m and W
    const a = l.adapters.get("default")!, t = twin.adapters.get("default")!;
    // contiguous x takes the fused kernel (cached n), a transposed view the generic graph (cached n and m/n)
    const inputs = [randn([2, 32], new Rng(9)), randn([32, 2], new Rng(10)).T];
    l.eval(); twin.eval();
    let prev = inputs.map((x) => noGrad(() => l.forward(x)).f32().slice()); // fills l's caches
    for (const [k, i, delta] of [["A", 3, 0.25], ["B", 5, 0.5], ["magnitude", 7, 0.3]] as const) {
      for (const ad of [a, t]) (ad[k]!.data as Float32Array)[i]! += delta;
      a[k]!.version++; // what AdamW/SGD.step do after writing a parameter in place (src/train/optim.ts)
      twin.invalidateCache(); // the reference: n and m/n computed afresh
      const got = inputs.map((x) => noGrad(() => l.forward(x)).f32().slice());
      inputs.forEach((x, j) => {
        expect(Array.from(got[j]!), `${k} update, input ${j}`).toEqual(Array.from(noGrad(() => twin.forward(x)).f32()));
        expect(maxRelDiff(got[j]!, prev[j]!), `${k} update changes the output, input ${j}`).toBeGreaterThan(1e-4);
      });
      prev = got;
    }
  });
});

describe("LoraConfig", () => {
  it("defaults are PEFT's and bad values fail with the field's name", () => {
    const c = new LoraConfig();
    expect([c.r, c.loraAlpha, c.loraDropout, c.useDora, c.initLoraWeights, c.bias]).toEqual([8, 8, 0, false, true, "none"]);
    expect(() => new LoraConfig({ r: 0 })).toThrow(/LoraConfig.r/);
    expect(() => new LoraConfig({ initLoraWeights: "pissa" as never })).toThrow(/initLoraWeights/);
    expect(() => new LoraConfig({ bias: "all" as never })).toThrow(/bias/);
    expect(c.with({ useRslora: true }).scalingFor(4, 8)).toBe(4);
  });
  it("an unknown constructor option is a ConfigError naming it and the nearest option", () => {
    const make = (init: Record<string, unknown>) => () => new LoraConfig(init as LoraConfigInit);
    expect(make({ r: 4, loraAlpa: 16 })).toThrow(ConfigError);
    expect(make({ r: 4, loraAlpa: 16 })).toThrow(/^LoraConfig: unknown option "loraAlpa" \(did you mean "loraAlpha"\?\)/);
    expect(make({ lora_dropout: 0.1 })).toThrow(/unknown option "lora_dropout" \(did you mean "loraDropout"\?\); the constructor takes camelCase/);
    expect(make({ quantize: true })).toThrow(/unknown option "quantize"; the constructor takes camelCase/); // nothing near it
    expect(new LoraConfig({ doraDetachNorm: false }).doraDetachNorm).toBe(false); // dora-ts's own option is known
  });

  it("a task_type PEFT does not have is an error naming the field and PEFT's task types", () => {
    const types = ["SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"];
    const accepted = `must be one of PEFT's task types ${types.join(", ")} (or null)`;
    expect(() => new LoraConfig({ taskType: "CAUSAL" })).toThrow(`LoraConfig.taskType: ${accepted}; got "CAUSAL"`);
    const cfg = JSON.parse(readFileSync(join(GOLDEN_DIR, "tiny_llama_dora_adapter", "adapter_config.json"), "utf8")) as Record<string, unknown>;
    expect(() => LoraConfig.fromJSON({ ...cfg, task_type: "causal_lm" }, "my/adapter_config.json"))
      .toThrow(`my/adapter_config.json: task_type: ${accepted}; got "causal_lm"`);
    for (const t of types) expect(LoraConfig.fromJSON({ ...cfg, task_type: t }).taskType).toBe(t);
    expect(LoraConfig.fromJSON({ ...cfg, task_type: null }).taskType).toBe(null);
  });

  it("reads PEFT's adapter_config.json and writes the same text (peft_version aside)", () => {
    const text = readFileSync(join(GOLDEN_DIR, "tiny_gpt2_dora_adapter", "adapter_config.json"), "utf8");
    const c = LoraConfig.fromJSON(JSON.parse(text));
    const strip = (s: string): string => s.replace(/"peft_version": "[^"]*"/, "").trim();
    expect(strip(c.toJSONString())).toBe(strip(text));
  });
});
