/**
 * `dora eval`: mean next-token cross-entropy, perplexity and token count of a dataset under a model (+ adapter);
 * with --task mc, multiple-choice accuracy by the options' summed and length-normalised log-likelihood.
 */
import type { Command } from "../main.js";
import { getters } from "../args.js";
import { collate, evaluateMultipleChoice, loadDataset, loadMcItems, noGrad, models } from "../../index.js";
import { loadAdapterFlag, openModel, requirePath, tokenizerIfAny } from "./common.js";

export const evalCmd: Command = {
  spec: {
    name: "eval",
    summary: "loss and perplexity of a dataset (HF label shift, -100 ignored)",
    usage: "dora eval --model DIR|HUB_ID [--adapter DIR] --data FILE [--task lm|mc] [--batch-size N] [--cutoff-len N] [--json]",
    flags: [
      { name: "model", type: "string", meta: "DIR|HUB_ID", required: true, help: "base model folder or hub id" },
      { name: "adapter", type: "string", meta: "DIR", help: "PEFT adapter folder to apply" },
      { name: "data", type: "string", meta: "FILE", required: true, help: "JSONL/JSON dataset" },
      { name: "batch-size", type: "int", default: 8, help: "rows per forward pass" },
      { name: "cutoff-len", type: "int", help: "truncate each example to N tokens" },
      { name: "train-on-inputs", type: "boolean", help: "count prompt tokens too (prompt/completion, Alpaca, chat)" },
      { name: "task", type: "string", choices: ["lm", "mc"], default: "lm", help: 'lm: loss/perplexity; mc: multiple choice ({"question","options","answer"})' },
      { name: "json", type: "boolean", help: 'print exactly one JSON object: {"loss", "perplexity", "tokens"} (mc: {"accuracy", "accuracy_norm", "n"})' },
    ],
    examples: ["npx dora eval --model examples/tiny-llama --data examples/data/valid.jsonl --json",
      "npx dora eval --task mc --model models/dora-tiny --data tasks/wordnet-mc/test.jsonl"],
  },
  async run(p) {
    const g = getters(p);
    const data = requirePath("data", g.str("data"), "file");
    const { model, dir } = await openModel("model", g.str("model"));
    const net = loadAdapterFlag(model, g.str("adapter"));
    const tok = tokenizerIfAny(dir);
    if (g.str("task") === "mc") {
      if (!tok) throw new Error(`${dir}: no tokenizer.json; --task mc needs one`);
      net.eval();
      const r = evaluateMultipleChoice(model, tok, loadMcItems(data));
      if (g.bool("json")) process.stdout.write(`${JSON.stringify({ accuracy: r.accuracy, accuracy_norm: r.accuracyNorm, n: r.n })}\n`);
      else process.stdout.write(`accuracy ${(100 * r.accuracy).toFixed(2)}%  length-normalised ${(100 * r.accuracyNorm).toFixed(2)}%  items ${r.n}\n`);
      return;
    }
    const cutoff = g.num("cutoff-len");
    const examples = loadDataset(data, tok, { ...(cutoff !== undefined ? { cutoffLen: cutoff } : {}), trainOnInputs: g.bool("train-on-inputs") });
    const bs = g.num("batch-size")!;
    let total = 0, count = 0;
    net.eval();
    noGrad(() => {
      for (let i = 0; i < examples.length; i += bs) {
        const batch = collate(examples.slice(i, i + bs), tok?.padTokenId ?? tok?.eosTokenId ?? 0);
        const labels = batch.labels.i32(), [b, s] = batch.labels.shape as [number, number];
        let n = 0;
        for (let r = 0; r < b; r++) for (let c = 1; c < s; c++) if (labels[r * s + c] !== -100) n++;
        if (n === 0) continue;
        total += models.shiftedLoss(model.forward(batch.inputIds), batch.labels).item() * n;
        count += n;
      }
    });
    if (count === 0) throw new Error(`${data}: no label tokens to evaluate`);
    const loss = total / count;
    const out = { loss, perplexity: Math.exp(loss), tokens: count };
    if (g.bool("json")) process.stdout.write(`${JSON.stringify(out)}\n`);
    else process.stdout.write(`loss ${loss.toFixed(6)}  perplexity ${out.perplexity.toFixed(4)}  tokens ${count}\n`);
  },
};
