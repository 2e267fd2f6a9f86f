/**
 * `dora train`: LoRA / DoRA (or full) fine-tuning of a causal LM on a JSONL dataset, writing a PEFT-format
 * adapter, metrics.jsonl and checkpoints. Ctrl-C finishes the current step, saves a checkpoint and exits.
 * With neither --model nor --data it runs the embedded default: DoRA on models/dora-tiny and the WordNet
 * multiple-choice task, printing the multiple-choice accuracy before and after (explicit flags still apply).
 */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "../main.js";
import { UsageError, getters, type FlagSpec } from "../args.js";
import {
  DEFAULT_RECIPE, DEFAULT_TRAINING_ARGUMENTS, EMBEDDED, LoraConfig, PeftModel, Progress, Rng, SCHEDULER_TYPES, Trainer, evaluateMultipleChoice,
  getPeftModel, io, loadDataset, loadMcItems, packExamples, saveModel, type CausalLM, type Example, type TrainingArguments,
} from "../../index.js";
import { openModel, requirePath, tokenizerIfAny } from "./common.js";

const D = DEFAULT_TRAINING_ARGUMENTS;

/** PEFT's default targets per architecture family when --target-modules is not given. */
const DEFAULT_TARGETS: Record<string, string[]> = { llama: ["q_proj", "v_proj"], gpt2: ["c_attn"] };

export const TRAIN_FLAGS: FlagSpec[] = [
  { name: "model", type: "string", meta: "DIR|HUB_ID", help: "base model folder or hub id (with --data; neither: the embedded default)" },
  { name: "data", type: "string", meta: "FILE", help: "training data (JSONL or JSON array)" },
  { name: "output-dir", type: "string", meta: "DIR", help: `adapter, metrics.jsonl and checkpoints go here (required unless embedded default: ${DEFAULT_RECIPE.outputDir})` },
  { name: "adapter", type: "string", meta: "DIR", help: "start from this PEFT adapter (its config supplies r, alpha, targets, use_dora)" },
  { name: "use-dora", type: "boolean", help: "DoRA instead of plain LoRA" },
  { name: "r", type: "int", default: 8, help: "adapter rank" },
  { name: "lora-alpha", type: "number", help: "scaling numerator (default: 2·r)" },
  { name: "lora-dropout", type: "number", default: 0, help: "dropout on the adapter input" },
  { name: "target-modules", type: "list", meta: "a,b,...|all-linear", help: "module name suffixes to adapt (default: PEFT's per architecture)" },
  { name: "use-rslora", type: "boolean", help: "scale by alpha/√r (rsLoRA)" },
  { name: "full-finetune", type: "boolean", help: "train every weight instead of an adapter" },
  { name: "quantize", type: "string", choices: ["nf4"], help: "hold the base's decoder projections in 4-bit NF4 (QLoRA / QDoRA; bitsandbytes' layout, double-quantised)" },
  { name: "gradient-checkpointing", type: "boolean", help: "recompute each decoder layer in backward: activation memory of one layer, one more forward" },
  { name: "learning-rate", type: "number", default: D.learningRate, help: "peak learning rate" },
  { name: "num-train-epochs", type: "number", default: D.numTrainEpochs, help: "epochs (ignored when --max-steps is set)" },
  { name: "max-steps", type: "int", default: 0, help: "optimizer steps (0 = use epochs)" },
  { name: "batch-size", type: "int", default: D.batchSize, help: "examples per micro-batch" },
  { name: "gradient-accumulation-steps", type: "int", default: D.gradientAccumulationSteps, help: "micro-batches per optimizer step" },
  { name: "lr-scheduler-type", type: "string", choices: SCHEDULER_TYPES, default: D.lrSchedulerType, help: "learning-rate schedule (all with linear warmup)" },
  { name: "warmup-steps", type: "int", default: D.warmupSteps, help: "linear warmup steps" },
  { name: "weight-decay", type: "number", default: D.weightDecay, help: "AdamW decoupled weight decay" },
  { name: "max-grad-norm", type: "number", default: D.maxGradNorm, help: "clip the global gradient norm (0 = off)" },
  { name: "optim", type: "string", choices: ["adamw", "sgd"], default: "adamw", help: "optimizer" },
  { name: "momentum", type: "number", default: 0, help: "SGD momentum" },
  { name: "seed", type: "int", default: D.seed, help: "seed for init, dropout and shuffling" },
  { name: "cutoff-len", type: "int", default: 256, help: "truncate examples to N tokens" },
  { name: "packing", type: "boolean", help: "concatenate examples into blocks of --cutoff-len tokens" },
  { name: "train-on-inputs", type: "boolean", help: "also train on prompt tokens (prompt/completion, Alpaca, chat)" },
  { name: "eval-data", type: "string", meta: "FILE", help: "held-out data for evaluation" },
  { name: "eval-steps", type: "int", default: 0, help: "evaluate every N steps (0 = at the end)" },
  { name: "save-steps", type: "int", default: 0, help: "checkpoint every N steps (0 = only the final result)" },
  { name: "resume-from-checkpoint", type: "string", meta: "DIR", help: "continue from output-dir/checkpoint-N" },
  { name: "logging-steps", type: "int", default: D.loggingSteps, help: "log every N steps" },
  { name: "shuffle", type: "boolean", default: true, help: "shuffle the data each epoch (--no-shuffle keeps file order)" },
];

interface Prepared { net: CausalLM | PeftModel<CausalLM>; params: { name: string; tensor: import("../../index.js").Tensor }[]; rngs: Rng[]; save: (dir: string) => void; describe: string }

function prepareModel(model: CausalLM, p: ReturnType<typeof getters>): Prepared {
  if (p.bool("full-finetune")) {
    if (p.str("adapter")) throw new UsageError("--full-finetune and --adapter cannot be combined");
    model.requiresGrad_(true);
    const params = model.namedParameters().map(([name, tensor]) => ({ name, tensor }));
    return { net: model, params, rngs: [], save: (dir) => saveModel(model, dir, { dtype: "float32" }), describe: "full fine-tuning" };
  }
  let pm: PeftModel<CausalLM>;
  const adapter = p.str("adapter");
  if (adapter !== undefined) {
    requirePath("adapter", adapter, "dir");
    const cfg = LoraConfig.fromJSON(io.readJsonFile(join(adapter, "adapter_config.json"), "adapter config"), join(adapter, "adapter_config.json"));
    // flags that the adapter's config decides: a different explicit value is a conflict, not a silent override
    const checks: [string, unknown, unknown][] = [
      ["r", p.num("r"), cfg.r], ["lora-alpha", p.num("lora-alpha"), cfg.loraAlpha], ["lora-dropout", p.num("lora-dropout"), cfg.loraDropout],
      ["use-dora", p.bool("use-dora"), cfg.useDora], ["use-rslora", p.bool("use-rslora"), cfg.useRslora],
    ];
    for (const [flag, given, have] of checks) {
      if (p.given(flag) && given !== have) throw new UsageError(`--${flag} ${String(given)} conflicts with ${adapter}/adapter_config.json (${String(have)})`);
    }
    pm = PeftModel.fromPretrained(model, adapter, { isTrainable: true, seed: p.num("seed")! });
  } else {
    const r = p.num("r")!;
    const targets = p.list("target-modules") ?? DEFAULT_TARGETS[model.config.family] ?? ["q_proj", "v_proj"];
    const config = new LoraConfig({
      r, loraAlpha: p.num("lora-alpha") ?? 2 * r, loraDropout: p.num("lora-dropout")!, useDora: p.bool("use-dora"),
      useRslora: p.bool("use-rslora"), targetModules: targets.length === 1 && targets[0] === "all-linear" ? "all-linear" : targets,
      taskType: "CAUSAL_LM", baseModelNameOrPath: p.str("model") ?? null, fanInFanOut: model.config.family === "gpt2",
    });
    pm = getPeftModel(model, config, "default", { seed: p.num("seed")! });
  }
  const params = pm.trainableParameters().map(([name, tensor]) => ({ name, tensor }));
  const rngs = pm.loraLayers().flatMap(([, l]) => [...l.adapters.values()].map((a) => a.rng));
  return { net: pm, params, rngs, save: (dir) => pm.savePretrained(dir), describe: pm.printTrainableParameters(false) };
}

/** The embedded default's recipe for every flag the user did not give. */
function applyDefaultRecipe(parsed: Parameters<Command["run"]>[0]): void {
  const R = DEFAULT_RECIPE;
  const defaults: Record<string, string | number | boolean | string[]> = {
    model: EMBEDDED.model, data: EMBEDDED.mc.train, "eval-data": EMBEDDED.mc.validation, "output-dir": R.outputDir, "use-dora": R.useDora,
    r: R.r, "target-modules": [R.targetModules], "learning-rate": R.learningRate, "max-steps": R.maxSteps, "batch-size": R.batchSize,
  };
  for (const [k, v] of Object.entries(defaults)) if (!parsed.given.has(k)) parsed.flags[k] = v;
}

export const train: Command = {
  spec: {
    name: "train",
    summary: "fine-tune with LoRA, DoRA or fully; writes a PEFT adapter",
    usage: "dora train --model DIR|HUB_ID --data FILE --output-dir DIR [--use-dora] [--r N] [...]   (no --model/--data: the embedded default)",
    flags: TRAIN_FLAGS,
    examples: [
      "npx dora train        (DoRA on the embedded model and multiple-choice task; add --max-steps N to shorten)",
      "npx dora train --model examples/tiny-llama --data examples/data/train.jsonl --eval-data examples/data/valid.jsonl \\\n    --output-dir out/tiny-dora --use-dora --r 8 --target-modules all-linear --learning-rate 3e-3 --max-steps 80",
    ],
  },
  async run(parsed) {
    const embedded = !parsed.given.has("model") && !parsed.given.has("data");
    if (embedded) applyDefaultRecipe(parsed);
    for (const f of ["model", "data", "output-dir"]) if (parsed.flags[f] === undefined) throw new UsageError(`dora train: missing required flag --${f}`);
    const g = getters(parsed);
    const dataFile = requirePath("data", g.str("data"), "file");
    const evalFile = g.str("eval-data") !== undefined ? requirePath("eval-data", g.str("eval-data"), "file") : undefined;
    const resume = g.str("resume-from-checkpoint");
    if (resume !== undefined) requirePath("resume-from-checkpoint", resume, "dir");
    for (const f of ["batch-size", "gradient-accumulation-steps", "r", "cutoff-len"]) {
      if ((g.num(f) ?? 1) < 1) throw new UsageError(`--${f} must be ≥ 1, got ${g.num(f)}`);
    }
    const dropout = g.num("lora-dropout")!;
    if (dropout < 0 || dropout >= 1) throw new UsageError(`--lora-dropout must be in [0, 1), got ${dropout}`);
    if (g.str("quantize") !== undefined && g.bool("full-finetune")) throw new UsageError("--quantize and --full-finetune cannot be combined (4-bit weights are frozen)");
    const { model, dir } = await openModel("model", g.str("model"), g.str("quantize") === "nf4" ? { quantize: "nf4" } : {});
    model.gradientCheckpointing = g.bool("gradient-checkpointing");
    const tok = tokenizerIfAny(dir);
    const dataOpts = { cutoffLen: g.num("cutoff-len")!, trainOnInputs: g.bool("train-on-inputs") };
    let trainData: Example[] = loadDataset(dataFile, tok, dataOpts);
    if (g.bool("packing")) trainData = packExamples(trainData, g.num("cutoff-len")!);
    const evalData = evalFile ? loadDataset(evalFile, tok, dataOpts) : undefined;
    const prep = prepareModel(model, g);
    const outputDir = g.str("output-dir")!;
    if (!resume && existsSync(join(outputDir, "metrics.jsonl"))) rmSync(join(outputDir, "metrics.jsonl"));
    const args: TrainingArguments = {
      ...D, learningRate: g.num("learning-rate")!, numTrainEpochs: g.num("num-train-epochs")!, maxSteps: g.num("max-steps")!,
      batchSize: g.num("batch-size")!, gradientAccumulationSteps: g.num("gradient-accumulation-steps")!,
      lrSchedulerType: g.str("lr-scheduler-type") as TrainingArguments["lrSchedulerType"], warmupSteps: g.num("warmup-steps")!,
      weightDecay: g.num("weight-decay")!, maxGradNorm: g.num("max-grad-norm")!, seed: g.num("seed")!, shuffle: g.bool("shuffle"),
      loggingSteps: g.num("logging-steps")!, evalSteps: g.num("eval-steps")!, saveSteps: g.num("save-steps")!,
      optimizer: g.str("optim") as "adamw" | "sgd", momentum: g.num("momentum")!,
    };
    let stop = false;
    const onSignal = (sig: string): void => {
      if (stop) process.exit(130); // a second Ctrl-C: leave now
      stop = true;
      progress.line(`${sig}: finishing this step, saving a checkpoint, then stopping (again to quit at once)`);
    };
    const progress = new Progress();
    process.on("SIGINT", onSignal).on("SIGTERM", onSignal);
    try {
      const trainer = new Trainer({
        args, params: prep.params, trainData, ...(evalData ? { evalData } : {}), padId: tok?.padTokenId ?? tok?.eosTokenId ?? 0,
        loss: (b) => model.loss(b.inputIds, b.labels), setTraining: (t) => { prep.net.train(t); },
        saveArtifacts: prep.save, outputDir, rngs: prep.rngs, progress, shouldStop: () => stop, model,
      });
      if (resume) trainer.resume(resume);
      progress.line(`${prep.describe}; ${trainData.length} examples, ${trainer.totalSteps} steps`);
      const mc = embedded && tok ? loadMcItems(EMBEDDED.mc.validation) : null;
      const score = (when: string): void => {
        if (!mc || !tok) return;
        prep.net.train(false);
        const r = evaluateMultipleChoice(model, tok, mc);
        progress.line(`score ${when}: multiple-choice accuracy ${(100 * r.accuracy).toFixed(1)}% (length-normalised ${(100 * r.accuracyNorm).toFixed(1)}%) on ${r.n} validation questions; chance 25%`);
      };
      if (!resume) score("before");
      const before = evalData ? trainer.evaluate(evalData) : null;
      if (before) progress.line(`eval before: loss ${before.loss.toFixed(4)}  perplexity ${before.perplexity.toFixed(3)}`);
      const res = await trainer.train();
      const last = res.logs[res.logs.length - 1];
      if (last?.eval_loss !== undefined) progress.line(`eval after:  loss ${last.eval_loss.toFixed(4)}  perplexity ${last.eval_perplexity!.toFixed(3)}`);
      if (!res.stoppedEarly) score("after ");
      progress.line(res.stoppedEarly ? `stopped at step ${res.steps}; checkpoint ${res.lastCheckpoint}` : `done: ${res.steps} steps; wrote ${outputDir}`);
    } finally {
      process.off("SIGINT", onSignal).off("SIGTERM", onSignal);
    }
  },
};
