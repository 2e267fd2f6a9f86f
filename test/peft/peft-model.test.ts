/**
 * PeftModel against PEFT's behaviour, on stand-in module trees with the tiny models' paths and shapes (the
 * real model classes live in src/models; adapters find modules by path, so the tree is all that matters):
 * target matching, freezing, PEFT's trainable-parameter line, loading the adapters PEFT wrote, merged
 * weights, save → load round trip, adapter_config.json field set, multiple adapters, disable, errors.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Rng, Tensor, noGrad, randn } from "../../src/tensor/index.js";
import { Conv1D, Embedding, LayerNorm, Linear, Module, RMSNorm } from "../../src/nn/index.js";
import { SafetensorsFile } from "../../src/io/index.js";
import { LoraConfig, LoraLayer, PeftModel, getPeftModel } from "../../src/peft/index.js";
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

  it("loading errors name the key and the expected and found shapes", () => {
    const dir = join(tmp, "bad");
    cpSync(join(GOLDEN_DIR, "tiny_llama_dora_adapter"), dir, { recursive: true });
    const cfg = JSON.parse(readFileSync(join(dir, "adapter_config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, r: 2 }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(/q_proj\.lora_A\.weight": expected shape \[2, 32\], found \[4, 32\]/);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, target_modules: ["q_proj"] }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(/matches no adapted module/);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, use_qalora: true }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(/use_qalora = true is not supported/);
    writeFileSync(join(dir, "adapter_config.json"), JSON.stringify({ ...cfg, lora_fancy: 1 }));
    expect(() => PeftModel.fromPretrained(tinyLlama(), dir)).toThrow(/unknown field "lora_fancy"/);
  });
});

describe("dropout", () => {
  function layerWith(p: number): LoraLayer {
    const pm = getPeftModel(tinyLlama(), new LoraConfig({ r: 4, targetModules: ["layers.0.self_attn.q_proj"], useDora: true, loraDropout: p, initLoraWeights: false }), "default", { seed: 3 });
    return pm.model.getSubmodule("model.layers.0.self_attn.q_proj") as LoraLayer;
  }

  it("E[y] under dropout equals the p = 0 output (fixed seed, 400 draws); eval ignores dropout", () => {
    const l = layerWith(0.3), ref = layerWith(0);
    const a = l.adapters.get("default")!, b = ref.adapters.get("default")!;
    for (const k of ["A", "B"] as const) (a[k].data as Float32Array).set(b[k].f32());
    (a.magnitude!.data as Float32Array).set(Float32Array.from(b.magnitude!.f32(), (v, i) => v * (1 + 0.1 * Math.sin(i))));
    (b.magnitude!.data as Float32Array).set(a.magnitude!.f32());
    const x = randn([2, 32], new Rng(8));
    const want = noGrad(() => ref.forward(x)).f32();
    const acc = new Float64Array(want.length), N = 400;
    noGrad(() => {
      for (let i = 0; i < N; i++) { const y = l.forward(x).f32(); for (let j = 0; j < acc.length; j++) acc[j]! += y[j]! / N; }
    });
    // the dropout correction has zero mean; its spread over 400 draws is well under 0.05 here
    expectClose(acc, want, "mean under dropout", { rtol: 0, atol: 0.05 });
    const one = noGrad(() => l.forward(x)).f32();
    expect(Math.max(...one.map((v, j) => Math.abs(v - want[j]!)))).toBeGreaterThan(1e-4); // dropout does act
    l.eval();
    expectClose(noGrad(() => l.forward(x)), want, "eval ignores dropout", { rtol: 1e-5, atol: 1e-6 });
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
  it("reads PEFT's adapter_config.json and writes the same text (peft_version aside)", () => {
    const text = readFileSync(join(GOLDEN_DIR, "tiny_gpt2_dora_adapter", "adapter_config.json"), "utf8");
    const c = LoraConfig.fromJSON(JSON.parse(text));
    const strip = (s: string): string => s.replace(/"peft_version": "[^"]*"/, "").trim();
    expect(strip(c.toJSONString())).toBe(strip(text));
  });
});
