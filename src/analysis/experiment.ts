/**
 * One arm of the paper-in-miniature experiment: fine-tune a base model folder with FT, LoRA or DoRA on a
 * dataset with the Trainer, checkpointing every `saveSteps` (for the ΔM/ΔD analysis), and score it before and
 * after: multiple-choice accuracy (task "mc") or held-out perplexity (task "lm"). `runArmInChild` runs it in a fresh process so each arm's peak
 * RSS is its own.
 */
import { fork } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import * as models from "../models/index.js";
import { LoraConfig, getPeftModel } from "../peft/index.js";
import { DEFAULT_TRAINING_ARGUMENTS, Trainer } from "../train/trainer.js";
import { loadDataset } from "../train/data.js";
import { Progress } from "../train/progress.js";
import { evaluateMultipleChoice, loadMcItems, type McResult } from "../train/multiple-choice.js";

export type Method = "FT" | "LoRA" | "DoRA";

export interface ArmOptions {
  label: string;
  method: Method;
  modelDir: string;
  trainFile: string;
  /** "mc": evalFile holds multiple-choice items; "lm": evalFile is held-out text scored by perplexity. */
  task: "mc" | "lm";
  evalFile: string;
  outputDir: string;
  r: number;
  /** Default 2·r. */
  loraAlpha?: number;
  targetModules: string[] | "all-linear";
  learningRate: number;
  maxSteps: number;
  batchSize: number;
  seed: number;
  /** Checkpoint every N steps (0 = none). */
  saveSteps: number;
  /** Score the MC set before training too. */
  scoreBefore?: boolean;
  /** Print progress lines. */
  quiet?: boolean;
}

export interface ArmResult {
  label: string; method: Method; seed: number; r: number;
  trainableParams: number; totalParams: number; trainSeconds: number; steps: number; finalLoss: number;
  before?: ArmScore;
  after: ArmScore;
  /** Peak resident memory of the process (bytes), when run in a child. */
  peakRssBytes?: number;
}

/** mc: accuracy, length-normalised accuracy, the correct answers' perplexity; lm: held-out perplexity. */
export interface ArmScore { accuracy?: number; accuracyNorm?: number; answerPerplexity?: number; perplexity?: number }

const brief = (r: McResult): ArmScore => ({ accuracy: r.accuracy, accuracyNorm: r.accuracyNorm, answerPerplexity: r.answerPerplexity });

export async function runArm(o: ArmOptions): Promise<ArmResult> {
  const dir = o.modelDir;
  const model = models.loadModelFromDir(dir);
  const tok = models.HfTokenizer.fromDir(dir);
  const trainData = loadDataset(o.trainFile, tok, { cutoffLen: 256 });
  const mc = o.task === "mc" ? loadMcItems(o.evalFile) : null;
  const heldout = o.task === "lm" ? loadDataset(o.evalFile, tok, { cutoffLen: 256 }) : null;
  const totalParams = model.parameters().reduce((a, t) => a + t.numel, 0);
  let params: { name: string; tensor: import("../tensor/index.js").Tensor }[];
  let save: (d: string) => void;
  let net: { train(t: boolean): unknown };
  if (o.method === "FT") {
    model.requiresGrad_(true);
    params = model.namedParameters().map(([name, tensor]) => ({ name, tensor }));
    save = (d) => models.saveModel(model, d, { dtype: "float32" });
    net = model;
  } else {
    const pm = getPeftModel(model, new LoraConfig({
      r: o.r, loraAlpha: o.loraAlpha ?? 2 * o.r, useDora: o.method === "DoRA", targetModules: o.targetModules, taskType: "CAUSAL_LM",
    }), "default", { seed: o.seed });
    params = pm.trainableParameters().map(([name, tensor]) => ({ name, tensor }));
    save = (d) => pm.savePretrained(d);
    net = pm;
  }
  const trainable = params.reduce((a, p) => a + p.tensor.numel, 0);
  if (existsSync(o.outputDir)) rmSync(o.outputDir, { recursive: true, force: true });
  const progress = new Progress(process.stderr, o.label);
  const trainer = new Trainer({
    args: { ...DEFAULT_TRAINING_ARGUMENTS, learningRate: o.learningRate, maxSteps: o.maxSteps, batchSize: o.batchSize, seed: o.seed,
      lrSchedulerType: "linear", warmupSteps: Math.round(o.maxSteps / 10), saveSteps: o.saveSteps, loggingSteps: Math.max(1, Math.round(o.maxSteps / 5)) },
    params, trainData, padId: tok.padTokenId ?? 0, loss: (b) => model.loss(b.inputIds, b.labels), setTraining: (t) => { net.train(t); },
    saveArtifacts: save, outputDir: o.outputDir, progress: o.quiet ? new Progress({ isTTY: false, write: () => true } as unknown as NodeJS.WriteStream) : progress,
  });
  const score = (): ArmScore => {
    net.train(false);
    return mc ? brief(evaluateMultipleChoice(model, tok, mc)) : { perplexity: trainer.evaluate(heldout!).perplexity };
  };
  const before = o.scoreBefore ? score() : undefined;
  const t0 = performance.now();
  const res = await trainer.train();
  const trainSeconds = (performance.now() - t0) / 1000;
  const after = score();
  const losses = res.logs.map((l) => l.loss);
  return {
    label: o.label, method: o.method, seed: o.seed, r: o.r, trainableParams: trainable, totalParams, trainSeconds, steps: res.steps,
    finalLoss: losses[losses.length - 1] ?? NaN, ...(before ? { before } : {}), after,
  };
}

/** Runs `runArm` in a forked process (same loader flags: tsx under tests and scripts) and adds its peak RSS. */
export function runArmInChild(o: ArmOptions): Promise<ArmResult> {
  const js = fileURLToPath(new URL("./arm-worker.js", import.meta.url));
  const file = existsSync(js) ? js : js.replace(/\.js$/, ".ts");
  const execArgv = file.endsWith(".ts") && !process.execArgv.some((a) => a.includes("tsx")) ? ["--import", "tsx"] : process.execArgv;
  return new Promise((resolve, reject) => {
    const child = fork(file, [JSON.stringify(o)], { execArgv, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    let result: ArmResult | undefined;
    child.on("message", (m) => { result = m as ArmResult; });
    child.on("error", reject);
    child.on("exit", (code) => (result && code === 0 ? resolve(result) : reject(new Error(`compare: arm ${o.label} (seed ${o.seed}) exited with code ${code}`))));
  });
}
