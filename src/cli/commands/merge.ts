/** `dora merge`: fold an adapter into the base weights and write a plain HF model folder. */
import { copyFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "../main.js";
import { UsageError, getters } from "../args.js";
import { PeftModel, saveModel } from "../../index.js";
import { openModel, requirePath, weightsDtype } from "./common.js";

const TOKENIZER_FILES = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

export const mergeCmd: Command = {
  spec: {
    name: "merge",
    summary: "merge an adapter into the base model and save a plain HF model folder",
    usage: "dora merge --model DIR|HUB_ID --adapter DIR --output-dir DIR [--dtype float32|float16|bfloat16]",
    flags: [
      { name: "model", type: "string", meta: "DIR|HUB_ID", required: true, help: "base model folder or hub id" },
      { name: "adapter", type: "string", meta: "DIR", required: true, help: "PEFT adapter folder" },
      { name: "output-dir", type: "string", meta: "DIR", required: true, help: "where to write config.json + model.safetensors" },
      { name: "dtype", type: "string", choices: ["float32", "float16", "bfloat16"], help: "weights dtype (default: the base's)" },
      { name: "quantize", type: "string", choices: ["nf4"], help: "the adapter was trained on a 4-bit base (--quantize nf4): merge into the dequantised NF4 weights" },
    ],
    examples: ["npx dora merge --model examples/tiny-llama --adapter out/tiny-dora --output-dir out/tiny-merged"],
  },
  async run(p) {
    const g = getters(p);
    const adapter = requirePath("adapter", g.str("adapter"), "dir");
    if (!existsSync(join(adapter, "adapter_config.json"))) throw new UsageError(`--adapter ${adapter}: no adapter_config.json in this folder`);
    const { model, dir } = await openModel("model", g.str("model"), g.str("quantize") === "nf4" ? { quantize: "nf4" } : {});
    const merged = PeftModel.fromPretrained(model, adapter).mergeAndUnload();
    const out = g.str("output-dir")!;
    const dtype = (g.str("dtype") as "float32" | "float16" | "bfloat16" | undefined) ?? weightsDtype(dir);
    saveModel(merged, out, { dtype });
    for (const f of TOKENIZER_FILES) if (existsSync(join(dir, f))) copyFileSync(join(dir, f), join(out, f));
    process.stderr.write(`merged ${adapter} into ${dir} → ${out} (${dtype})\n`);
  },
};
