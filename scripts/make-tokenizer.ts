/**
 * Trains a small byte-level BPE tokenizer on a text file and writes HF-format
 * `tokenizer.json` + `tokenizer_config.json` (ChatML chat template). Thin wrapper over
 * `src/models/bpe-trainer.ts`.
 *
 *   npx tsx scripts/make-tokenizer.ts --out DIR --vocab-size N --corpus FILE [--model-max-length N]
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chatmlTokenizer } from "../src/models/bpe-trainer.js";

function main(): void {
  const { values } = parseArgs({
    options: {
      out: { type: "string" },
      "vocab-size": { type: "string" },
      corpus: { type: "string" },
      "model-max-length": { type: "string", default: "1024" },
    },
  });
  const { out, corpus } = values;
  const vocabSize = Number(values["vocab-size"]);
  const modelMaxLength = Number(values["model-max-length"]);
  if (out === undefined || corpus === undefined || !Number.isInteger(vocabSize)) {
    throw new Error("usage: make-tokenizer --out DIR --vocab-size N --corpus FILE [--model-max-length N]");
  }
  const text = readFileSync(corpus, "utf8");
  const { model, tokenizerJson, tokenizerConfig } = chatmlTokenizer(text, vocabSize, modelMaxLength);

  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, "tokenizer.json"), JSON.stringify(tokenizerJson, null, 1) + "\n");
  writeFileSync(join(out, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2) + "\n");
  console.log(`wrote ${out}: ${model.vocab.size} tokens, ${model.merges.length} merges`);
}

main();
