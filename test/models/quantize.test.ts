/**
 * 4-bit loading and training memory tools on the tiny LLaMA: `quantize: "nf4"` at load equals a float model whose
 * projections hold Ŵ; a bitsandbytes-layout `*-bnb-4bit` folder (written here by hand, keys and JSON quant state
 * as bnb's QuantState.as_dict(packed=True)) loads to the same weights; saving and merging write Ŵ-based floats;
 * gradient checkpointing gives the same gradients as the plain graph (float and 4-bit bases).
 */
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SafetensorsFile } from "../../src/io/index.js";
import { type CausalLM, loadModelFromDir, saveModel } from "../../src/models/index.js";
import { Linear, Linear4bit } from "../../src/nn/index.js";
import { LoraConfig, getPeftModel } from "../../src/peft/index.js";
import { quantizeNf4 } from "../../src/quant/index.js";
import { indexTensor, noGrad } from "../../src/tensor/index.js";
import { expectClose } from "../helpers/close.js";
import { GOLDEN_DIR } from "../helpers/golden.js";

const LLAMA = join(GOLDEN_DIR, "tiny_llama");
const made: string[] = [];
const tmp = (): string => { const d = mkdtempSync(join(tmpdir(), "dora-quant-")); made.push(d); return d; };
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });
const ids = indexTensor([1, 5, 9, 3, 7, 2, 40, 11, 4, 6], [2, 5]);
const PROJ = /\.(q|k|v|o|gate|up|down)_proj$/;

/** The float model with every projection weight replaced by its NF4 round trip Ŵ. */
function dequantisedFloatModel(): CausalLM {
  const m = loadModelFromDir(LLAMA);
  for (const [path, mod] of m.namedModules()) {
    if (!(mod instanceof Linear) || !PROJ.test(path)) continue;
    const w = mod.weight;
    (w.data as Float32Array).set(quantizeNf4(w.f32(), [w.shape[0]!, w.shape[1]!]).dequantize());
  }
  return m;
}

/** A minimal safetensors writer that also takes U8 (the library writer is float/int only). */
function writeRaw(path: string, tensors: [string, string, number[], Uint8Array][]): void {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, dtype, shape, bytes] of tensors) { header[name] = { dtype, shape, data_offsets: [off, off + bytes.byteLength] }; off += bytes.byteLength; }
  let json = JSON.stringify(header);
  while ((8 + json.length) % 8 !== 0) json += " ";
  const len = Buffer.alloc(8); len.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([len, Buffer.from(json), ...tensors.map(([, , , b]) => Buffer.from(b.buffer, b.byteOffset, b.byteLength))]));
}

/** The tiny LLaMA as an HF bnb-4bit folder: projections NF4 with double quant, in bitsandbytes' key layout. */
function bnbFolder(): string {
  const dir = tmp(), src = SafetensorsFile.openSync(join(LLAMA, "model.safetensors"));
  const out: [string, string, number[], Uint8Array][] = [];
  const f32 = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  for (const k of src.keys()) {
    const info = src.info(k), w = src.readFloat32(k);
    if (!PROJ.test(k.replace(/\.weight$/, "")) || !k.endsWith(".weight")) { out.push([k, "F32", [...info.shape], f32(w)]); continue; }
    const q = quantizeNf4(w, [info.shape[0]!, info.shape[1]!]);
    const nest = q.nested!;
    const state = { quant_type: "nf4", blocksize: 64, dtype: "float32", shape: info.shape, nested_blocksize: 256, nested_dtype: "float32", nested_offset: nest.offset };
    out.push([k, "U8", [q.codes.length, 1], q.codes], [`${k}.absmax`, "U8", [nest.q.length], nest.q],
      [`${k}.quant_map`, "F32", [16], f32(q.quantMap)], [`${k}.nested_absmax`, "F32", [nest.absmax.length], f32(nest.absmax)],
      [`${k}.nested_quant_map`, "F32", [256], f32(nest.code)],
      [`${k}.quant_state.bitsandbytes__nf4`, "U8", [JSON.stringify(state).length], new TextEncoder().encode(JSON.stringify(state))]);
  }
  src.close();
  writeRaw(join(dir, "model.safetensors"), out);
  const cfg = JSON.parse(readFileSync(join(LLAMA, "config.json"), "utf8")) as Record<string, unknown>;
  cfg["quantization_config"] = { quant_method: "bitsandbytes", load_in_4bit: true, bnb_4bit_quant_type: "nf4", bnb_4bit_use_double_quant: true };
  writeFileSync(join(dir, "config.json"), JSON.stringify(cfg));
  return dir;
}

const logits = (m: CausalLM): Float32Array => noGrad(() => m.forward(ids).f32().slice());

describe("4-bit loading", () => {
  it("quantize: nf4 makes the projections Linear4bit (not embeddings, norms, lm_head) and equals the float model on Ŵ", () => {
    const q = loadModelFromDir(LLAMA, { quantize: "nf4" });
    expect(q.getSubmodule("model.layers.0.self_attn.q_proj")).toBeInstanceOf(Linear4bit);
    expect(q.getSubmodule("model.layers.1.mlp.down_proj")).toBeInstanceOf(Linear4bit);
    expect(q.getSubmodule("lm_head")).toBeInstanceOf(Linear);
    expectClose(logits(q), logits(dequantisedFloatModel()), "logits", { rtol: 1e-4, atol: 1e-5 });
  });

  it("reads a bitsandbytes *-bnb-4bit folder (U8 codes, nested absmax, JSON quant state) without leftover keys", () => {
    const warnings: string[] = [];
    const onWarn = (w: Error): void => { warnings.push(w.message); };
    process.on("warning", onWarn);
    const m = loadModelFromDir(bnbFolder());
    process.off("warning", onWarn);
    expect(warnings.filter((w) => /not used/.test(w))).toEqual([]);
    expect(m.getSubmodule("model.layers.0.mlp.up_proj")).toBeInstanceOf(Linear4bit);
    expectClose(logits(m), logits(loadModelFromDir(LLAMA, { quantize: "nf4" })), "logits", { rtol: 1e-6, atol: 1e-7 });
  });

  it("saveModel writes Ŵ for 4-bit layers; merging an adapter into a 4-bit base = merging into Ŵ", () => {
    const dir = tmp();
    saveModel(loadModelFromDir(LLAMA, { quantize: "nf4" }), dir);
    expectClose(logits(loadModelFromDir(dir)), logits(dequantisedFloatModel()), "saved", { rtol: 1e-5, atol: 1e-6 });
    const cfg = { r: 4, loraAlpha: 8, useDora: true, targetModules: "all-linear" as const, initLoraWeights: false as const };
    const pq = getPeftModel(loadModelFromDir(LLAMA, { quantize: "nf4" }), new LoraConfig(cfg), "default", { seed: 3 });
    const pf = getPeftModel(dequantisedFloatModel(), new LoraConfig(cfg), "default", { seed: 3 });
    const before = logits(pq.model);
    expectClose(before, logits(pf.model), "adapted", { rtol: 1e-4, atol: 1e-5 });
    const mq = pq.mergeAndUnload(), mf = pf.mergeAndUnload();
    expect(mq.getSubmodule("model.layers.0.self_attn.q_proj")).toBeInstanceOf(Linear);
    for (const [k, t] of mf.namedParameters()) expectClose(mq.getSubmodule(k.replace(/\.weight$|\.bias$/, "")).param(k.split(".").pop()!), t.f32(), k, { rtol: 1e-5, atol: 1e-6 });
    expectClose(logits(mq), before, "merged", { rtol: 1e-4, atol: 1e-5 });
  });
});

describe("gradient checkpointing", () => {
  for (const quantize of [undefined, "nf4"] as const) {
    it(`same loss and adapter gradients with and without (${quantize ?? "float"} base, DoRA all-linear, dropout 0.1)`, () => {
      const run = (ckpt: boolean): [number, Map<string, Float32Array>] => {
        const m = loadModelFromDir(LLAMA, quantize ? { quantize } : {});
        const pm = getPeftModel(m, new LoraConfig({ r: 4, loraAlpha: 8, useDora: true, targetModules: "all-linear", loraDropout: 0.1, initLoraWeights: false }), "default", { seed: 1 });
        pm.train();
        m.gradientCheckpointing = ckpt;
        const loss = m.loss(ids);
        loss.backward();
        return [loss.item(), new Map(pm.trainableParameters().map(([k, t]) => [k, t.grad!.f32().slice()]))];
      };
      const [l0, g0] = run(false), [l1, g1] = run(true);
      expect(l1).toBeCloseTo(l0, 6);
      expect(g1.size).toBe(g0.size);
      for (const [k, g] of g0) expectClose(g1.get(k)!, g, k, { rtol: 1e-4, atol: 1e-6 });
    });
  }
});
