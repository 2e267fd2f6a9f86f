/** Generation: KV-cache steps equal uncached recomputation, processors, seeds, EOS, stop strings, streaming. */
import { describe, expect, it } from "vitest";
import { join } from "node:path";
import { HfTokenizer, generate, loadModelFromDir, parseModelConfig, randomModel, type CausalLM } from "../../src/models/index.js";
import { pickToken } from "../../src/models/generate.js";
import { Rng, indexTensor, noGrad } from "../../src/tensor/index.js";
import { getBackend } from "../../src/backend/index.js";
import { expectClose } from "../helpers/close.js";
import { GOLDEN_DIR } from "../helpers/golden.js";

const exact = getBackend().name === "js";

const TOKENIZER_DIR = join(GOLDEN_DIR, "..", "tokenizer");
const prompt = [1, 7, 30, 12, 5];

function steps(model: CausalLM, useCache: boolean, extra: object = {}): { tokens: number[]; logits: Float32Array[] } {
  const logits: Float32Array[] = [];
  const r = generate(model, prompt, { maxNewTokens: 12, eosTokenId: [], useCache, onLogits: (_, l) => logits.push(l), ...extra });
  return { tokens: r.tokens, logits };
}

describe("KV cache", () => {
  for (const name of ["tiny_llama", "tiny_gpt2"]) {
    it(`${name}: every cached step gives exactly the logits of recomputing the prefix`, () => {
      const model = loadModelFromDir(join(GOLDEN_DIR, name));
      for (const extra of [{}, { doSample: true, temperature: 0.8, topK: 20, topP: 0.9, seed: 3 }]) {
        const cached = steps(model, true, extra), full = steps(model, false, extra);
        expect(cached.tokens).toEqual(full.tokens);
        expect(cached.logits.length).toBe(12);
        // js: bit for bit. The native GEMM sums a 1-row product in another order than a many-row one, so there
        // the cached step differs from recomputation by float32 rounding only.
        cached.logits.forEach((l, i) => exact
          ? expect(Array.from(l), `step ${i}`).toEqual(Array.from(full.logits[i]!))
          : expectClose(l, full.logits[i]!, `${name} step ${i}`, { rtol: 1e-5, atol: 1e-6 }));
      }
    });
  }

  it("feeds one position per step once the prompt is in", () => {
    const model = loadModelFromDir(join(GOLDEN_DIR, "tiny_llama"));
    const seen: number[] = [];
    const orig = model.forward.bind(model);
    model.forward = (ids, o) => { seen.push(ids.shape[1]!); return orig(ids, o); };
    generate(model, prompt, { maxNewTokens: 4, eosTokenId: [] });
    expect(seen).toEqual([5, 1, 1, 1]);
  });
});

describe("decoding", () => {
  const model = loadModelFromDir(join(GOLDEN_DIR, "tiny_llama"));

  it("greedy takes the argmax of the model's next-token logits", () => {
    const r = generate(model, prompt, { maxNewTokens: 3, eosTokenId: [] });
    const seq = prompt.slice();
    for (const id of r.tokens) {
      const l = noGrad(() => model.forward(indexTensor(seq, [1, seq.length])).f32().slice(-48));
      expect(id).toBe(l.indexOf(Math.max(...l)));
      seq.push(id);
    }
    expect(r.finishReason).toBe("length");
  });

  it("repeats a seeded sample, and top-k 1 is greedy", () => {
    const o = { maxNewTokens: 10, eosTokenId: [], doSample: true, temperature: 1.5 };
    expect(generate(model, prompt, { ...o, seed: 7 }).tokens).toEqual(generate(model, prompt, { ...o, seed: 7 }).tokens);
    const runs = new Set([1, 2, 3, 4].map((seed) => generate(model, prompt, { ...o, seed }).tokens.join()));
    expect(runs.size).toBeGreaterThan(1);
    expect(generate(model, prompt, { ...o, topK: 1 }).tokens).toEqual(generate(model, prompt, { maxNewTokens: 10, eosTokenId: [] }).tokens);
  });

  it("stops at EOS and keeps it", () => {
    const first = generate(model, prompt, { maxNewTokens: 5, eosTokenId: [] }).tokens;
    const r = generate(model, prompt, { maxNewTokens: 5, eosTokenId: first[1]! });
    expect(r).toEqual({ tokens: first.slice(0, first.indexOf(first[1]!) + 1), finishReason: "eos" });
  });

  it("applies the processors as HF does", () => {
    const rng = new Rng(0);
    // repetition penalty: positive logits divided, negative multiplied, on seen tokens only
    expect(pickToken(Float32Array.of(3, -1, 2.5), [0, 1], { repetitionPenalty: 2 }, false, rng)).toBe(2);
    expect(pickToken(Float32Array.of(3, -1, 2.5), [], { repetitionPenalty: 2 }, false, rng)).toBe(0);
    // top-p keeps the smallest head with mass ≥ p: here only the top token
    const l = Float32Array.of(0, 5, 1, 0.5);
    for (let i = 0; i < 20; i++) expect(pickToken(l, [], { topP: 0.5 }, true, rng)).toBe(1);
    // top-k 2 never draws outside the two largest
    for (let i = 0; i < 50; i++) expect([1, 2]).toContain(pickToken(Float32Array.of(0, 1, 1.2, -3), [], { topK: 2, temperature: 5 }, true, rng));
  });
});

describe("with a tokenizer", () => {
  const tok = HfTokenizer.fromDir(TOKENIZER_DIR);
  const base = JSON.parse(JSON.stringify(loadModelFromDir(join(GOLDEN_DIR, "tiny_llama")).config.raw)) as Record<string, unknown>;
  const model = randomModel(parseModelConfig({ ...base, vocab_size: tok.vocabSize }), 5);
  const p = tok.encode("The cat sat");
  const o = { maxNewTokens: 30, eosTokenId: [], doSample: true, temperature: 1, seed: 11, tokenizer: tok };

  it("streams pieces that join to the decoded output", () => {
    const pieces: string[] = [];
    const r = generate(model, p, { ...o, onToken: (_, t) => pieces.push(t) });
    expect(r.tokens.length).toBe(30);
    expect(pieces.join("")).toBe(tok.decode(r.tokens));
    expect(r.text).toBe(tok.decode(r.tokens));
  });

  it("stops once the output contains a stop string", () => {
    const full = generate(model, p, o).text!;
    const stop = full.slice(8, 10);
    const r = generate(model, p, { ...o, stopStrings: [stop] });
    expect(r.finishReason).toBe("stop");
    expect(r.text!.endsWith(stop) || r.text!.slice(0, -1).includes(stop)).toBe(true);
    expect(r.text!.indexOf(stop)).toBe(full.indexOf(stop));
    expect(r.tokens.length).toBeLessThan(30);
    expect(() => generate(model, p, { stopStrings: ["x"] })).toThrow(/need a tokenizer/);
  });
});
