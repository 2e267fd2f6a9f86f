/** `dora compare`: the paper in miniature, FT vs LoRA vs DoRA vs DoRA† (r/2) on the embedded model and task. */
import type { Command } from "../main.js";
import { UsageError, getters } from "../args.js";
import { EMBEDDED, analysis } from "../../index.js";
import { requirePath } from "./common.js";

export const compareCmd: Command = {
  spec: {
    name: "compare",
    summary: "FT vs LoRA vs DoRA vs DoRA r/2, same budget, several seeds: accuracy, params, time, RSS, ΔM/ΔD (markdown + PNG)",
    usage: "dora compare [--task mc|style] [--model DIR] [--data FILE] [--eval-data FILE] [--r N] [--max-steps N] [--seeds 0,1,2] --output-dir DIR",
    flags: [
      { name: "model", type: "string", meta: "DIR", help: "base model folder (default: the embedded models/dora-tiny)" },
      { name: "task", type: "string", choices: ["mc", "style"], default: "mc", help: "mc: WordNet multiple choice (accuracy); style: Brown humor (held-out perplexity)" },
      { name: "data", type: "string", meta: "FILE", help: "training data (default: the task's embedded train split)" },
      { name: "eval-data", type: "string", meta: "FILE", help: "scored after training: MC items (mc) or held-out text (style); default: the task's test split" },
      { name: "output-dir", type: "string", meta: "DIR", required: true, help: "RESULTS.md, results.json, accuracy.png, delta-md.png" },
      { name: "work-dir", type: "string", meta: "DIR", default: "out/compare-runs", help: "runs and checkpoints (large)" },
      { name: "r", type: "int", default: 8, help: "LoRA and DoRA rank (DoRA† uses r/2)" },
      { name: "target-modules", type: "list", meta: "a,b,...|all-linear", default: ["all-linear"], help: "adapted modules" },
      { name: "max-steps", type: "int", default: 100, help: "optimizer steps per run" },
      { name: "batch-size", type: "int", default: 8, help: "examples per step" },
      { name: "seeds", type: "list", meta: "N,N,...", default: ["0", "1", "2"], help: "seeds (each runs every method)" },
      { name: "learning-rate", type: "number", default: 5e-3, help: "LoRA/DoRA learning rate" },
      { name: "ft-learning-rate", type: "number", default: 5e-4, help: "full fine-tuning learning rate" },
      { name: "checkpoints", type: "int", default: 4, help: "checkpoints per run for ΔM/ΔD" },
      { name: "modules", type: "list", meta: "a,b,...", default: ["q_proj", "v_proj"], help: "module types for ΔM/ΔD" },
    ],
    examples: ["npx dora compare --output-dir docs/paper --max-steps 100 --seeds 0,1,2"],
  },
  async run(p) {
    const g = getters(p);
    const seeds = g.list("seeds")!.map((s) => {
      if (!/^\d+$/.test(s)) throw new UsageError(`--seeds expects integers, got "${s}"`);
      return Number(s);
    });
    const targets = g.list("target-modules")!;
    const mc = g.str("task") === "mc";
    const split = mc ? EMBEDDED.mc : EMBEDDED.style;
    const { markdown } = await analysis.runComparison({
      modelDir: requirePath("model", g.str("model") ?? EMBEDDED.model, "dir"), trainFile: requirePath("data", g.str("data") ?? split.train, "file"),
      task: mc ? "mc" : "lm", evalFile: requirePath("eval-data", g.str("eval-data") ?? split.test, "file"), outputDir: g.str("output-dir")!, workDir: g.str("work-dir")!,
      r: g.num("r")!, steps: g.num("max-steps")!, batchSize: g.num("batch-size")!, seeds,
      adapterLearningRate: g.num("learning-rate")!, ftLearningRate: g.num("ft-learning-rate")!,
      targetModules: targets.length === 1 && targets[0] === "all-linear" ? "all-linear" : targets,
      checkpoints: g.num("checkpoints")!, modules: g.list("modules")!,
      command: `dora compare ${process.argv.slice(3).join(" ")}`.trim(),
    });
    process.stdout.write(markdown);
  },
};
