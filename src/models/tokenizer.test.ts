// HfTokenizer, chat templates, streaming decode and the BPE trainer, against the fixture in
// test/fixtures/tokenizer (made by scripts/make-tokenizer.ts; see its README).
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { chatmlTokenizer, toHfTokenizerFiles, trainByteLevelBpe, CHATML_TEMPLATE } from "./bpe-trainer.js";
import { decodeStream, HfTokenizer, TokenizerError, TokenStreamDecoder } from "./tokenizer.js";

const FIXTURE = join(import.meta.dirname, "../../test/fixtures/tokenizer");
const tok = HfTokenizer.fromDir(FIXTURE);
const fixtureJson = JSON.parse(readFileSync(join(FIXTURE, "tokenizer.json"), "utf8")) as {
  model: { vocab: Record<string, number>; merges: string[] };
};

const SAMPLES = [
  "The old lighthouse stood at the end of the harbour.",
  "Hello, world! It's 3.14159 o'clock; they're here, we've gone, I'm fine, you'll see, he'd go.",
  "naïve café, résumé, façade, déjà vu, Ærøskøbing, Ελληνικά, 日本語のテキスト",
  "emoji: 🙂👍🏽 🇫🇷 👨‍👩‍👧 and ☀ ★ ♥",
  "  leading spaces, trailing spaces   ",
  "tabs\tand\t\tmore tabs\nnew\nlines\n\n\nand\r\nwindows lines\n",
  "     \n\t  \n",
  "x",
  "unknown-ish words: zyzzyva qwxj 0xDEADBEEF 1,000,000",
  "control \u0000 \u0007 bytes and \u00a0 nbsp and \ufeff bom",
];

/**
 * An independent GPT-2 BPE (OpenAI encoder.py's algorithm): byte map, regex split, and merging the
 * lowest-ranked bigram everywhere until none applies. Only reads the fixture's vocab and merges.
 */
function referenceEncode(text: string): number[] {
  const bs: number[] = [];
  for (let b = "!".charCodeAt(0); b <= "~".charCodeAt(0); b++) bs.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bs.push(b);
  for (let b = 0xae; b <= 0xff; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const byteToChar = new Map(bs.map((b, i) => [b, String.fromCharCode(cs[i]!)]));
  const ranks = new Map(fixtureJson.model.merges.map((m, i) => [m, i]));
  const pat = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;
  const ids: number[] = [];
  for (const piece of text.match(pat) ?? []) {
    let word = Array.from(Buffer.from(piece, "utf8"), (b) => byteToChar.get(b)!);
    for (;;) {
      let best: [string, string] | undefined;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < word.length; i++) {
        const r = ranks.get(`${word[i]} ${word[i + 1]}`);
        if (r !== undefined && r < bestRank) [best, bestRank] = [[word[i]!, word[i + 1]!], r];
      }
      if (!best) break;
      const next: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i + 1 < word.length && word[i] === best[0] && word[i + 1] === best[1]) {
          next.push(best[0] + best[1]);
          i++;
        } else next.push(word[i]!);
      }
      word = next;
    }
    for (const t of word) ids.push(fixtureJson.model.vocab[t]!);
  }
  return ids;
}

describe("HfTokenizer on the fixture", () => {
  it("reads special tokens and sizes", () => {
    expect(tok.vocabSize).toBe(512);
    expect([tok.bosTokenId, tok.eosTokenId, tok.padTokenId]).toEqual([1, 2, 3]);
    expect([tok.bosToken, tok.eosToken, tok.padToken]).toEqual(["<s>", "</s>", "<pad>"]);
    expect(tok.tokenToId("<|im_start|>")).toBe(4);
    expect(tok.tokenToId("<|im_end|>")).toBe(5);
    expect(tok.modelMaxLength).toBe(1024);
  });

  it.each(SAMPLES)("round-trips exactly: %j", (text) => {
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(tok.decode(ids)).toBe(text);
    const withBos = tok.encode(text);
    expect(withBos).toEqual([1, ...ids]);
    expect(tok.decode(withBos, { skipSpecialTokens: true })).toBe(text);
  });

  it("round-trips the empty string", () => {
    expect(tok.encode("", { addSpecialTokens: false })).toEqual([]);
    expect(tok.decode([])).toBe("");
  });

  it("matches an independent GPT-2 BPE over the fixture's merges", () => {
    for (const text of [...SAMPLES, readFileSync(join(FIXTURE, "corpus.txt"), "utf8")]) {
      expect(tok.encode(text, { addSpecialTokens: false }), JSON.stringify(text.slice(0, 40))).toEqual(
        referenceEncode(text),
      );
    }
  });

  it("encodes known strings to hand-checked tokens", () => {
    const tokens = (s: string) => tok.encode(s, { addSpecialTokens: false }).map((id) => tok.idToToken(id));
    // Merges 0-2 are "h e", "Ġ t", "Ġt he": the corpus' most frequent pairs.
    expect(tokens(" the")).toEqual(["Ġthe"]);
    expect(tokens("the the")).toEqual(["t", "he", "Ġthe"]);
    // 🙂 is F0 9F 99 82, never merged in an English corpus: four byte symbols.
    expect(tokens("🙂")).toEqual(["ð", "Ł", "Ļ", "Ĥ"]);
    expect(tok.encode(" the", { addSpecialTokens: false })).toEqual([fixtureJson.model.vocab["Ġthe"]]);
  });

  it("encodes special tokens to their ids and skips them on request", () => {
    const text = "<s><|im_start|>user\nhi<|im_end|></s><pad>";
    const ids = tok.encode(text, { addSpecialTokens: false });
    expect(ids[0]).toBe(1);
    expect(ids[1]).toBe(4);
    expect(ids.slice(-3)).toEqual([5, 2, 3]);
    expect(ids.slice(2, -3)).toEqual(tok.encode("user\nhi", { addSpecialTokens: false }));
    expect(tok.decode(ids)).toBe(text);
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe("user\nhi");
  });

  it("rejects ids outside the vocabulary", () => {
    expect(() => tok.decode([5, 512])).toThrow(/ids\[1\] = 512 is not a token id \(vocabulary has 512 ids\)/);
    expect(() => tok.decode([-1])).toThrow(TokenizerError);
    expect(() => tok.decode([1.5])).toThrow(TokenizerError);
  });
});

describe("chat template", () => {
  const messages = [
    { role: "user", content: "Where is the lighthouse?" },
    { role: "assistant", content: "At the end of the harbour." },
  ];

  it("renders a conversation exactly", () => {
    expect(tok.hasChatTemplate).toBe(true);
    expect(tok.applyChatTemplate(messages)).toBe(
      "<s><|im_start|>user\nWhere is the lighthouse?<|im_end|>\n" +
        "<|im_start|>assistant\nAt the end of the harbour.<|im_end|>\n",
    );
  });

  it("adds the generation prompt", () => {
    expect(tok.applyChatTemplate(messages.slice(0, 1), { addGenerationPrompt: true })).toBe(
      "<s><|im_start|>user\nWhere is the lighthouse?<|im_end|>\n<|im_start|>assistant\n",
    );
  });

  it("tokenizes the rendered text with one bos", () => {
    const ids = tok.encode(tok.applyChatTemplate(messages), { addSpecialTokens: false });
    expect(ids.filter((id) => id === 1)).toHaveLength(1);
    expect(ids.filter((id) => id === 4)).toHaveLength(2);
  });

  it("passes eos_token and extra variables to the template", () => {
    const dir = mkdtempSync(join(tmpdir(), "dora-tok-"));
    writeFileSync(join(dir, "tokenizer.json"), readFileSync(join(FIXTURE, "tokenizer.json")));
    writeFileSync(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({
        bos_token: { content: "<s>", __type: "AddedToken" }, // older AddedToken-dict form
        eos_token: "</s>",
        chat_template: [{ name: "default", template: "{{ bos_token }}[{{ who }}]{% for m in messages %}{{ m.content }}{{ eos_token }}{% endfor %}" }],
      }),
    );
    const t = HfTokenizer.fromDir(dir);
    expect(t.applyChatTemplate(messages, { extra: { who: "x" } })).toBe(
      "<s>[x]Where is the lighthouse?</s>At the end of the harbour.</s>",
    );
  });
});

describe("TokenStreamDecoder", () => {
  it("holds a multi-byte character until its last byte", () => {
    const dec = new TokenStreamDecoder(tok);
    const ids = tok.encode("a🙂", { addSpecialTokens: false });
    expect(ids).toHaveLength(5);
    expect(ids.map((id) => dec.push(id))).toEqual(["a", "", "", "", "🙂"]);
    expect(dec.flush()).toBe("");
  });

  it.each([...SAMPLES, "<s>hé<|im_end|>🙂</s>"])("concatenates to the full decode: %j", (text) => {
    for (const skipSpecialTokens of [false, true]) {
      const ids = tok.encode(text);
      const pieces = [...decodeStream(tok, ids, { skipSpecialTokens })];
      expect(pieces.join("")).toBe(tok.decode(ids, { skipSpecialTokens }));
      expect(pieces.every((p) => !p.includes("\uFFFD"))).toBe(true);
    }
  });

  it("flushes an incomplete tail as U+FFFD, like a full decode", () => {
    const ids = tok.encode("ok🙂", { addSpecialTokens: false }).slice(0, -1);
    const pieces = [...decodeStream(tok, ids)];
    expect(pieces.join("")).toBe(tok.decode(ids));
    expect(pieces.at(-1)).toBe("\uFFFD");
  });
});

describe("loading errors", () => {
  it("names a missing directory", () => {
    expect(() => HfTokenizer.fromDir("/nonexistent/dora-tok")).toThrow(/tokenizer directory not found: \/nonexistent\/dora-tok/);
  });

  it("names a missing tokenizer.json", () => {
    const dir = mkdtempSync(join(tmpdir(), "dora-tok-"));
    expect(() => HfTokenizer.fromDir(dir)).toThrow(new RegExp(`${join(dir, "tokenizer.json")} not found`));
  });

  it("names a bad tokenizer.json and tokenizer_config.json", () => {
    const dir = mkdtempSync(join(tmpdir(), "dora-tok-"));
    writeFileSync(join(dir, "tokenizer.json"), "{ not json");
    expect(() => HfTokenizer.fromDir(dir)).toThrow(/tokenizer\.json is not valid JSON/);
    writeFileSync(join(dir, "tokenizer.json"), JSON.stringify({ model: { type: "Nope" } }));
    expect(() => HfTokenizer.fromDir(dir)).toThrow(/tokenizer\.json: missing "decoder"/);
    writeFileSync(join(dir, "tokenizer.json"), readFileSync(join(FIXTURE, "tokenizer.json")));
    writeFileSync(join(dir, "tokenizer_config.json"), "[1, 2]");
    expect(() => HfTokenizer.fromDir(dir)).toThrow(/tokenizer_config\.json must hold a JSON object/);
    writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ eos_token: "<nope>" }));
    expect(() => HfTokenizer.fromDir(dir)).toThrow(/eos_token "<nope>" is not in/);
  });

  it("works without tokenizer_config.json but has no chat template", () => {
    const dir = mkdtempSync(join(tmpdir(), "dora-tok-"));
    writeFileSync(join(dir, "tokenizer.json"), readFileSync(join(FIXTURE, "tokenizer.json")));
    const t = HfTokenizer.fromDir(dir);
    // Special ids fall back to well-known added-token names.
    expect([t.bosTokenId, t.eosTokenId, t.padTokenId]).toEqual([1, 2, 3]);
    expect(t.decode(t.encode("a b"), { skipSpecialTokens: true })).toBe("a b");
    expect(() => t.applyChatTemplate([{ role: "user", content: "hi" }])).toThrow(/has no chat_template/);
  });
});

describe("trainByteLevelBpe", () => {
  it("reproduces the fixture from its corpus (scripts/make-tokenizer.ts --vocab-size 512)", () => {
    const corpus = readFileSync(join(FIXTURE, "corpus.txt"), "utf8");
    const { tokenizerJson, tokenizerConfig } = chatmlTokenizer(corpus, 512, 1024);
    expect(tokenizerJson).toEqual(fixtureJson);
    expect(tokenizerConfig).toEqual(JSON.parse(readFileSync(join(FIXTURE, "tokenizer_config.json"), "utf8")));
  });

  it("breaks frequency ties lexicographically", () => {
    // Pairs (b,a), (Ġ,a), (a,b) each occur once: "a" < "b" < "Ġ" picks (a,b).
    const model = trainByteLevelBpe("ba ab", { vocabSize: 257, minFrequency: 1 });
    expect(model.merges).toEqual([["a", "b"]]);
    expect(model.vocab.get("ab")).toBe(256);
  });

  it("stops below vocabSize when no pair is frequent enough", () => {
    const model = trainByteLevelBpe("abc", { vocabSize: 300 });
    expect(model.merges).toEqual([]);
    expect(model.vocab.size).toBe(256);
  });

  it("rejects a vocabSize smaller than the base alphabet", () => {
    expect(() => trainByteLevelBpe("x", { vocabSize: 100, specialTokens: ["<s>"] })).toThrow(/>= 257/);
  });
});
