/** `dora generate`: stream a completion of a prompt (or of a chat turn with --chat). */
import type { Command } from "../main.js";
import { UsageError, getters } from "../args.js";
import { models } from "../../index.js";
import { loadAdapterFlag, openModel, tokenizerIfAny } from "./common.js";

export const generateCmd: Command = {
  spec: {
    name: "generate",
    summary: "generate text from a prompt, streaming tokens as they come",
    usage: "dora generate --model DIR|HUB_ID [--adapter DIR] --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-p P] [--top-k K] [--seed N] [--chat]",
    flags: [
      { name: "model", type: "string", meta: "DIR|HUB_ID", required: true, help: "base model folder or hub id" },
      { name: "adapter", type: "string", meta: "DIR", help: "PEFT adapter folder to apply" },
      { name: "prompt", type: "string", meta: "TEXT", required: true, help: "the prompt (the user message with --chat)" },
      { name: "max-new-tokens", type: "int", default: 64, help: "tokens to generate at most" },
      { name: "temperature", type: "number", default: 0, help: "sampling temperature; 0 = greedy" },
      { name: "top-p", type: "number", default: 1, help: "nucleus sampling mass (1 = off)" },
      { name: "top-k", type: "int", default: 0, help: "sample among the k most likely (0 = off)" },
      { name: "repetition-penalty", type: "number", default: 1, help: "HF's repetition penalty (1 = off)" },
      { name: "seed", type: "int", default: 0, help: "sampling seed" },
      { name: "chat", type: "boolean", help: "wrap the prompt in the tokenizer's chat template" },
      { name: "stop", type: "list", meta: "S1,S2", help: "stop strings" },
    ],
    examples: ['npx dora generate --model examples/tiny-llama --prompt "Once upon a time" --max-new-tokens 40'],
  },
  async run(p) {
    const g = getters(p);
    const { model, dir } = await openModel("model", g.str("model"));
    loadAdapterFlag(model, g.str("adapter")).eval();
    const tok = tokenizerIfAny(dir);
    if (!tok) throw new UsageError(`--model ${dir}: no tokenizer.json, cannot encode a text prompt`);
    const prompt = g.str("prompt")!;
    const text = g.bool("chat") ? tok.applyChatTemplate([{ role: "user", content: prompt }], { addGenerationPrompt: true }) : prompt;
    const ids = tok.encode(text, { addSpecialTokens: !g.bool("chat") });
    const temperature = g.num("temperature")!;
    const eos = [tok.eosTokenId, ...(g.bool("chat") ? [tok.tokenToId("<|im_end|>"), tok.tokenToId("<|eot_id|>")] : [])].filter((x): x is number => x !== undefined);
    models.generate(model, ids, {
      maxNewTokens: g.num("max-new-tokens")!, doSample: temperature > 0, temperature: temperature > 0 ? temperature : 1,
      topP: g.num("top-p")!, topK: g.num("top-k")!, repetitionPenalty: g.num("repetition-penalty")!, seed: g.num("seed")!,
      tokenizer: tok, ...(eos.length ? { eosTokenId: eos } : {}), ...(g.list("stop") ? { stopStrings: g.list("stop")! } : {}),
      onToken: (_id, piece) => { if (piece) process.stdout.write(piece); },
    });
    process.stdout.write("\n");
  },
};
