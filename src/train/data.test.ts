import { describe, expect, it } from "vitest";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HfTokenizer } from "../models/tokenizer.js";
import { alpacaPrompt, collate, epochOrder, loadDataset, packExamples, IGNORE_INDEX } from "./data.js";

const tok = HfTokenizer.fromDir("test/fixtures/tokenizer");
const dir = mkdtempSync(join(tmpdir(), "dora-data-"));
function file(name: string, lines: unknown[] | string): string {
  const p = join(dir, name);
  writeFileSync(p, typeof lines === "string" ? lines : lines.map((l) => JSON.stringify(l)).join("\n") + "\n");
  return p;
}

describe("dataset formats", () => {
  it("text: loss on every token, EOS appended", () => {
    const [ex] = loadDataset(file("t.jsonl", [{ text: "the cat sat" }]), tok);
    const ids = [...tok.encode("the cat sat"), tok.eosTokenId!];
    expect(ex!.inputIds).toEqual(ids);
    expect(ex!.labels).toEqual(ids);
  });
  it("prompt/completion: loss on the completion only, or on all with trainOnInputs", () => {
    const f = file("pc.jsonl", [{ prompt: "Q: hi", completion: " A: yes" }]);
    const p = tok.encode("Q: hi"), c = [...tok.encode(" A: yes", { addSpecialTokens: false }), tok.eosTokenId!];
    const [ex] = loadDataset(f, tok);
    expect(ex!.inputIds).toEqual([...p, ...c]);
    expect(ex!.labels).toEqual([...p.map(() => IGNORE_INDEX), ...c]);
    expect(loadDataset(f, tok, { trainOnInputs: true })[0]!.labels).toEqual([...p, ...c]);
  });
  it("alpaca uses the Stanford/NVlabs template", () => {
    const [ex] = loadDataset(file("a.json", JSON.stringify([{ instruction: "Add", input: "1 2", output: "3" }])), tok);
    const prompt = alpacaPrompt("Add", "1 2");
    expect(prompt).toContain("### Instruction:\nAdd\n\n### Input:\n1 2\n\n### Response:\n");
    const p = tok.encode(prompt);
    expect(ex!.labels.slice(0, p.length).every((l) => l === IGNORE_INDEX)).toBe(true);
    expect(tok.decode(ex!.labels.slice(p.length), { skipSpecialTokens: true })).toBe("3");
  });
  it("chat: loss only on assistant turns", () => {
    const [ex] = loadDataset(file("c.jsonl", [{ messages: [{ role: "user", content: "hello" }, { role: "assistant", content: "hi there" }] }]), tok);
    const trained = ex!.inputIds.filter((_, i) => ex!.labels[i] !== IGNORE_INDEX);
    expect(tok.decode(trained)).toContain("hi there");
    expect(tok.decode(trained)).not.toContain("hello");
    expect(tok.decode(ex!.inputIds)).toBe(tok.applyChatTemplate([{ role: "user", content: "hello" }, { role: "assistant", content: "hi there" }]));
  });
  it("pre-tokenized input_ids with labels, and cutoff", () => {
    const [ex] = loadDataset(file("i.jsonl", [{ input_ids: [5, 6, 7, 8], labels: [-100, 6, 7, 8] }]), null, { cutoffLen: 3 });
    expect(ex).toEqual({ inputIds: [5, 6, 7], labels: [-100, 6, 7] });
  });
  it("errors name the file and line", () => {
    const f = file("bad.jsonl", '{"text": "ok"}\n\n{"text": oops}\n');
    expect(() => loadDataset(f, tok)).toThrow(new RegExp(`bad.jsonl:3: invalid JSON`));
    expect(() => loadDataset(file("empty.jsonl", "\n"), tok)).toThrow(/empty/);
    expect(() => loadDataset(file("u.jsonl", [{ foo: 1 }]), tok)).toThrow(/u.jsonl:1: unknown record format/);
  });
});

describe("batching", () => {
  it("right-pads with the pad id and -100 labels", () => {
    const b = collate([{ inputIds: [1, 2, 3], labels: [1, 2, 3] }, { inputIds: [4], labels: [4] }], 0);
    expect(b.inputIds.toArray()).toEqual([1, 2, 3, 4, 0, 0]);
    expect(b.labels.toArray()).toEqual([1, 2, 3, 4, -100, -100]);
    expect(b.tokens).toBe(4);
  });
  it("packing cuts the concatenated stream", () => {
    const p = packExamples([{ inputIds: [1, 2, 3], labels: [1, 2, 3] }, { inputIds: [4, 5], labels: [-100, 5] }], 2);
    expect(p.map((e) => e.inputIds)).toEqual([[1, 2], [3, 4]]);
  });
  it("shuffling is seeded and a permutation", () => {
    const a = epochOrder(10, 0, 42, true);
    expect(epochOrder(10, 0, 42, true)).toEqual(a);
    expect([...a].sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
    expect(epochOrder(10, 1, 42, true)).not.toEqual(a);
    expect(epochOrder(4, 0, 42, false)).toEqual([0, 1, 2, 3]);
  });
});
