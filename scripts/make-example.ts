/**
 * Makes the offline example of the README: a small instruction dataset (examples/data/*.jsonl, generated from
 * fixed word lists, seeded), a byte-level BPE tokenizer trained on it, and a tiny randomly initialised
 * LLaMA-shaped model (examples/tiny-llama/) that `dora train` fine-tunes in seconds on a CPU.
 *
 *   npx tsx scripts/make-example.ts        (deterministic: rerunning rewrites the same files)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { chatmlTokenizer } from "../src/models/bpe-trainer.js";
import { parseModelConfig, randomModel, saveModel } from "../src/models/index.js";
import { Rng } from "../src/tensor/index.js";

const COLORS: Record<string, string> = {
  banana: "yellow", lemon: "yellow", cherry: "red", tomato: "red", strawberry: "red", grape: "purple", plum: "purple",
  orange: "orange", carrot: "orange", lime: "green", pea: "green", cucumber: "green", blueberry: "blue", coconut: "brown",
};
const OPPOSITES: Record<string, string> = {
  hot: "cold", big: "small", fast: "slow", up: "down", day: "night", happy: "sad", early: "late", light: "dark",
  open: "closed", full: "empty", high: "low", old: "new", wet: "dry", loud: "quiet", near: "far", hard: "soft",
};
const NUMBERS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"];

function examples(rng: Rng, n: number): { prompt: string; completion: string }[] {
  const out: { prompt: string; completion: string }[] = [];
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  for (let i = 0; i < n; i++) {
    const kind = rng.int(3);
    if (kind === 0) {
      const f = pick(Object.keys(COLORS));
      out.push({ prompt: `Question: What color is a ${f}?\nAnswer:`, completion: ` A ${f} is ${COLORS[f]}.` });
    } else if (kind === 1) {
      const w = pick(Object.keys(OPPOSITES));
      out.push({ prompt: `Question: What is the opposite of ${w}?\nAnswer:`, completion: ` The opposite of ${w} is ${OPPOSITES[w]}.` });
    } else {
      const a = rng.int(6), b = rng.int(5);
      out.push({ prompt: `Question: What is ${NUMBERS[a]} plus ${NUMBERS[b]}?\nAnswer:`, completion: ` ${NUMBERS[a]} plus ${NUMBERS[b]} is ${NUMBERS[a + b]}.` });
    }
  }
  return out;
}

const rng = new Rng(2024);
const train = examples(rng, 400), valid = examples(rng, 60);
mkdirSync("examples/data", { recursive: true });
const jsonl = (rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join("\n") + "\n";
writeFileSync("examples/data/train.jsonl", jsonl(train));
writeFileSync("examples/data/valid.jsonl", jsonl(valid));

const corpus = [...train, ...valid].map((e) => e.prompt + e.completion).join("\n");
const { model: bpe, tokenizerJson, tokenizerConfig } = chatmlTokenizer(corpus, 512, 256);
const dir = "examples/tiny-llama";
const config = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: bpe.vocab.size, hidden_size: 64, intermediate_size: 176,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, max_position_embeddings: 256, rms_norm_eps: 1e-6,
  rope_theta: 10000, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2, pad_token_id: 3, hidden_act: "silu",
};
const model = randomModel(parseModelConfig(config, `${dir}/config.json`), 7);
saveModel(model, dir, { dtype: "float32" });
writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson) + "\n");
writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2) + "\n");
writeFileSync(join(dir, "README.md"), [
  "# tiny-llama (example)",
  "",
  "A LLaMA-shaped model (hidden 64, 2 layers, 4 heads, 2 KV heads, vocab 512) with random weights (N(0, 0.02²), seed 7)",
  "and a byte-level BPE tokenizer trained on `examples/data`. It exists so the README's fine-tune runs offline on a",
  "fresh clone. Regenerate with `npx tsx scripts/make-example.ts`.",
  "",
].join("\n"));
console.log(`wrote examples/data (${train.length} train, ${valid.length} valid) and ${dir} (${model.parameters().reduce((a, t) => a + t.numel, 0)} params)`);
