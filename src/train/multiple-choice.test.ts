import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "../tensor/index.js";
import { evaluateMultipleChoice, loadMcItems, mcPrompt, scoreItem, type McEncoder, type McModel } from "./multiple-choice.js";

// A character-level "tokenizer" (id = char code - 96, space = 27, pad 0) and a bigram "model" whose next-token
// log-probabilities are fixed: after any token, "a" has probability 1/2 and "b", "c" 1/4 each (the rest none
// apart from a tiny floor), so every option's log-likelihood is known in closed form.
const V = 32;
const tok: McEncoder = {
  encode: (text) => [...text].map((ch) => (ch === " " ? 27 : ch === "?" ? 28 : ch === ":" ? 29 : ch === "\n" ? 30 : ch.charCodeAt(0) - 96)),
  padTokenId: 0,
};
const P: Record<number, number> = { 1: 0.5, 2: 0.25, 3: 0.25 - 1e-6 * (V - 3), 27: 1e-6 };
const model: McModel = {
  forward(ids: Tensor): Tensor {
    const [b, t] = ids.shape as [number, number];
    const out = new Float32Array(b * t * V);
    for (let r = 0; r < b * t; r++) for (let j = 0; j < V; j++) out[r * V + j] = Math.log(P[j] ?? 1e-6);
    return new Tensor(out, [b, t, V]);
  },
};
const lnSpace = Math.log(1e-6);

describe("multiple choice scorer", () => {
  it("sums the option tokens' log-probabilities after the prompt, and divides by their count", () => {
    const s = scoreItem(model, tok, { question: "q", options: ["a", "bb", "cab"], answer: 0 });
    // " a" = space then a; " bb" = space, b, b; " cab"
    expect(s.sum[0]).toBeCloseTo(lnSpace + Math.log(0.5), 4);
    expect(s.sum[1]).toBeCloseTo(lnSpace + 2 * Math.log(0.25), 4);
    expect(s.mean[1]).toBeCloseTo((lnSpace + 2 * Math.log(0.25)) / 3, 4);
    expect(s.sum[2]).toBeCloseTo(lnSpace + Math.log(0.25 - 1e-6 * 29) + Math.log(0.5) + Math.log(0.25), 4);
  });
  it("summed and length-normalised scores can disagree, and accuracy counts each", () => {
    // sum: "a" (1 + 1 tokens) beats "aaaa"; per token: "aaaa" wins (the space's penalty is spread over 5 tokens)
    const items = [
      { question: "x", options: ["aaaa", "a"], answer: 1 },
      { question: "y", options: ["aaaa", "a"], answer: 0 },
      { question: "z", options: ["b", "a"], answer: 1 },
    ];
    const r = evaluateMultipleChoice(model, tok, items);
    expect(r.items.map((i) => i.predSum)).toEqual([1, 1, 1]);
    expect(r.items.map((i) => i.predNorm)).toEqual([0, 0, 1]);
    expect(r.accuracy).toBeCloseTo(2 / 3);
    expect(r.accuracyNorm).toBeCloseTo(2 / 3);
    expect(r.n).toBe(3);
  });
  it("reads items, renders the default prompt and names a bad record", () => {
    const dir = mkdtempSync(join(tmpdir(), "mc-"));
    const f = join(dir, "mc.jsonl");
    writeFileSync(f, `${JSON.stringify({ question: "Which?", options: ["a", "b"], answer: 1 })}\n`);
    const [item] = loadMcItems(f);
    expect(mcPrompt(item!)).toBe("Question: Which?\nAnswer:");
    writeFileSync(f, `${JSON.stringify({ question: "Which?", options: ["a", "b"], answer: 2 })}\n`);
    expect(() => loadMcItems(f)).toThrow(/mc\.jsonl:1: "answer" must be an index/);
  });
  it("pads options of different lengths without changing their scores", () => {
    const one = scoreItem(model, tok, { question: "q", options: ["b"], answer: 0 } as never);
    const two = scoreItem(model, tok, { question: "q", options: ["b", "aaaaaa"], answer: 0 });
    expect(two.sum[0]).toBeCloseTo(one.sum[0]!, 6);
  });
});
