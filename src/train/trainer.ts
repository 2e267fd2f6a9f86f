/**
 * The training loop shared by the library and `dora train`: gradient accumulation, clipping, LR schedule,
 * periodic evaluation, metrics.jsonl, checkpoints that resume bit-for-bit, clean stop on SIGINT/SIGTERM,
 * and a hard stop on a non-finite loss. What is trained and how a loss is computed are injected, so the
 * same loop runs adapters and full fine-tuning.
 *
 * A logged step's loss is the mean loss of that step's micro-batches, computed before its update (HF's convention).
 */
import { appendFileSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile, readJsonFile, writeFileAtomic, writeSafetensors } from "../io/index.js";
import { Rng, allocationMark, noGrad, profileSpan, profileStep, type Tensor } from "../tensor/index.js";
import { instrumentModules, type Module } from "../nn/index.js";
import { collate, epochOrder, type Batch, type Example } from "./data.js";
import { AdamW, SGD, clipGradNorm, type NamedParam, type Optimizer } from "./optim.js";
import { lrMultiplier, type SchedulerType } from "./schedule.js";
import { Progress } from "./progress.js";

export interface TrainingArguments {
  learningRate: number;
  numTrainEpochs: number;
  /** Optimizer steps; overrides numTrainEpochs when > 0. */
  maxSteps: number;
  batchSize: number;
  gradientAccumulationSteps: number;
  lrSchedulerType: SchedulerType;
  warmupSteps: number;
  weightDecay: number;
  /** Clip the global gradient norm to this (0 = off). */
  maxGradNorm: number;
  seed: number;
  shuffle: boolean;
  loggingSteps: number;
  /** Evaluate every N steps (0 = only at the end when eval data is given). */
  evalSteps: number;
  /** Save a checkpoint every N steps (0 = only the final one). */
  saveSteps: number;
  optimizer: "adamw" | "sgd";
  momentum: number;
  adamBeta1: number;
  adamBeta2: number;
  adamEpsilon: number;
}

export const DEFAULT_TRAINING_ARGUMENTS: TrainingArguments = {
  learningRate: 2e-4, numTrainEpochs: 1, maxSteps: 0, batchSize: 4, gradientAccumulationSteps: 1,
  lrSchedulerType: "linear", warmupSteps: 0, weightDecay: 0, maxGradNorm: 1, seed: 42, shuffle: true,
  loggingSteps: 1, evalSteps: 0, saveSteps: 0, optimizer: "adamw", momentum: 0, adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8,
};

export interface LogRecord {
  step: number; epoch: number; loss: number; learning_rate: number; grad_norm: number; tokens_per_second: number;
  eval_loss?: number; eval_perplexity?: number;
}

export interface TrainerSetup {
  args: TrainingArguments;
  params: NamedParam[];
  trainData: Example[];
  evalData?: Example[];
  padId: number;
  /** Mean loss of a batch (graph attached). Its intermediate tensors are emptied by the backward pass: keep none. */
  loss: (batch: Batch) => Tensor;
  /** Switch the model between training and eval mode. */
  setTraining: (training: boolean) => void;
  /** Writes the user-facing result (adapter in PEFT format, or the model) into a folder. */
  saveArtifacts: (dir: string) => void;
  outputDir: string;
  /** The module tree, for the profiler's per-layer table (DORA_PROFILE=1); optional. */
  model?: Module;
  /** Generators whose state must survive a resume (dropout). */
  rngs?: Rng[];
  progress?: Progress;
  /** Stop after the step in progress (set by the signal handler; tests set it directly). */
  shouldStop?: () => boolean;
}

export interface TrainResult { steps: number; logs: LogRecord[]; stoppedEarly: boolean; lastCheckpoint: string | null }

export class NonFiniteLossError extends Error {
  constructor(step: number, loss: number, lastCheckpoint: string | null) {
    super(`training stopped: loss is ${loss} at step ${step}; ` +
      (lastCheckpoint ? `the last good checkpoint is ${lastCheckpoint}` : "no checkpoint was saved before it") +
      " (try a lower --learning-rate or --max-grad-norm 1)");
    this.name = "NonFiniteLossError";
  }
}

interface TrainerState { global_step: number; epoch: number; batch_in_epoch: number; rng_states: number[][]; log_history: LogRecord[] }

export class Trainer {
  readonly optimizer: Optimizer;
  private step = 0;
  private epoch = 0;
  private batchInEpoch = 0;
  private logs: LogRecord[] = [];
  private readonly progress: Progress;

  constructor(private readonly s: TrainerSetup) {
    const a = s.args;
    if (s.trainData.length === 0) throw new Error("train: the training dataset is empty");
    if (a.batchSize < 1 || a.gradientAccumulationSteps < 1) throw new Error("train: --batch-size and --gradient-accumulation-steps must be ≥ 1");
    if (s.params.length === 0) throw new Error("train: nothing to train (no parameter requires grad)");
    this.optimizer = a.optimizer === "sgd"
      ? new SGD(s.params, { lr: a.learningRate, momentum: a.momentum, weightDecay: a.weightDecay })
      : new AdamW(s.params, { lr: a.learningRate, betas: [a.adamBeta1, a.adamBeta2], eps: a.adamEpsilon, weightDecay: a.weightDecay });
    this.progress = s.progress ?? new Progress();
    if (s.model) instrumentModules(s.model); // no-op unless DORA_PROFILE is set
  }

  get batchesPerEpoch(): number { return Math.ceil(this.s.trainData.length / this.s.args.batchSize); }

  get totalSteps(): number {
    const a = this.s.args;
    if (a.maxSteps > 0) return a.maxSteps;
    return Math.max(1, Math.ceil((this.batchesPerEpoch * a.numTrainEpochs) / a.gradientAccumulationSteps));
  }

  private nextBatch(): Batch {
    const a = this.s.args;
    if (this.batchInEpoch >= this.batchesPerEpoch) { this.epoch++; this.batchInEpoch = 0; }
    const order = epochOrder(this.s.trainData.length, this.epoch, a.seed, a.shuffle);
    const idx = order.slice(this.batchInEpoch * a.batchSize, (this.batchInEpoch + 1) * a.batchSize);
    this.batchInEpoch++;
    return collate(idx.map((i) => this.s.trainData[i]!), this.s.padId);
  }

  /** Token-weighted mean loss over a dataset, without gradients, in eval mode. */
  evaluate(data: readonly Example[]): { loss: number; perplexity: number; tokens: number } {
    this.s.setTraining(false);
    let total = 0, count = 0;
    noGrad(() => {
      for (let i = 0; i < data.length; i += this.s.args.batchSize) {
        const batch = collate(data.slice(i, i + this.s.args.batchSize), this.s.padId);
        const n = countLabelTokens(batch);
        if (n === 0) continue;
        total += this.s.loss(batch).item() * n;
        count += n;
      }
    });
    this.s.setTraining(true);
    const loss = total / count;
    return { loss, perplexity: Math.exp(loss), tokens: count };
  }

  /** Runs to the end (or a stop request). Yields to the event loop between steps so signals (Ctrl-C) are heard. */
  async train(): Promise<TrainResult> {
    const a = this.s.args, total = this.totalSteps;
    let lastCheckpoint: string | null = null, stoppedEarly = false;
    mkdirSync(this.s.outputDir, { recursive: true });
    const metricsPath = join(this.s.outputDir, "metrics.jsonl");
    this.s.setTraining(true);
    while (this.step < total) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      const t0 = performance.now();
      let lossSum = 0, tokens = 0;
      for (let micro = 0; micro < a.gradientAccumulationSteps; micro++) {
        const batch = this.nextBatch();
        const mark = allocationMark();
        const loss = this.s.loss(batch);
        const lv = loss.item();
        if (!Number.isFinite(lv)) throw new NonFiniteLossError(this.step + 1, lv, lastCheckpoint);
        lossSum += lv;
        tokens += batch.tokens;
        const scaled = a.gradientAccumulationSteps === 1 ? loss : loss.mul(1 / a.gradientAccumulationSteps);
        scaled.backward(undefined, { releaseActivationsSince: mark }); // activations go back to the pool, not the GC
      }
      const gradNorm = profileSpan("clip_grad_norm", () => clipGradNorm(this.s.params, a.maxGradNorm));
      const lr = a.learningRate * lrMultiplier(a.lrSchedulerType, this.step, a.warmupSteps, total);
      this.optimizer.lr = lr;
      profileSpan("optimizer", () => { this.optimizer.step(); this.optimizer.zeroGrad(); });
      this.step++;
      profileStep();
      const seconds = (performance.now() - t0) / 1000;
      const rec: LogRecord = {
        step: this.step, epoch: this.epoch + this.batchInEpoch / this.batchesPerEpoch,
        loss: lossSum / a.gradientAccumulationSteps, learning_rate: lr, grad_norm: gradNorm, tokens_per_second: tokens / seconds,
      };
      if (this.s.evalData && a.evalSteps > 0 && this.step % a.evalSteps === 0) {
        const ev = this.evaluate(this.s.evalData);
        rec.eval_loss = ev.loss; rec.eval_perplexity = ev.perplexity;
      }
      const logNow = this.step % Math.max(1, a.loggingSteps) === 0 || this.step === total;
      if (logNow) {
        this.logs.push(rec);
        appendFileSync(metricsPath, `${JSON.stringify(rec)}\n`);
      }
      this.progress.update({ step: this.step, total, loss: rec.loss, lr, tokensPerSecond: rec.tokens_per_second }, logNow);
      const stop = this.s.shouldStop?.() ?? false;
      if ((a.saveSteps > 0 && this.step % a.saveSteps === 0) || stop) lastCheckpoint = this.saveCheckpoint();
      if (stop) { stoppedEarly = this.step < total; break; }
    }
    if (this.s.evalData && !(a.evalSteps > 0 && this.step % a.evalSteps === 0)) {
      const ev = this.evaluate(this.s.evalData);
      const last = this.logs[this.logs.length - 1];
      if (last) { last.eval_loss = ev.loss; last.eval_perplexity = ev.perplexity; appendFileSync(metricsPath, `${JSON.stringify({ step: this.step, eval_loss: ev.loss, eval_perplexity: ev.perplexity })}\n`); }
    }
    this.s.saveArtifacts(this.s.outputDir);
    return { steps: this.step, logs: this.logs, stoppedEarly, lastCheckpoint };
  }

  /** Write output-dir/checkpoint-<step>/ atomically (a temp folder renamed into place). */
  saveCheckpoint(): string {
    const final = join(this.s.outputDir, `checkpoint-${this.step}`);
    const tmp = `${final}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    this.s.saveArtifacts(tmp);
    const params: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const p of this.s.params) params[p.name] = { dtype: "F32", shape: [...p.tensor.shape], data: p.tensor.f32() };
    writeSafetensors(join(tmp, "trainable.safetensors"), params);
    const st = this.optimizer.state();
    const opt: Record<string, { dtype: "F32"; shape: number[]; data: Float32Array }> = {};
    for (const [kind, bufs] of Object.entries(st.buffers)) {
      bufs.forEach((b, i) => { opt[`${kind}.${this.s.params[i]!.name}`] = { dtype: "F32", shape: [b.length], data: b }; });
    }
    writeSafetensors(join(tmp, "optimizer.safetensors"), opt, { kind: st.kind, step: String(st.step) });
    const state: TrainerState = {
      global_step: this.step, epoch: this.epoch, batch_in_epoch: this.batchInEpoch,
      rng_states: (this.s.rngs ?? []).map((r) => r.getState()), log_history: this.logs,
    };
    writeFileAtomic(join(tmp, "trainer_state.json"), `${JSON.stringify(state, null, 2)}\n`);
    if (existsSync(final)) rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    return final;
  }

  /** Restore parameters, optimizer, RNGs and data position from a checkpoint folder. */
  resume(dir: string): void {
    const state = readJsonFile(join(dir, "trainer_state.json"), "trainer state") as TrainerState;
    const params = SafetensorsFile.openSync(join(dir, "trainable.safetensors"));
    try {
      for (const p of this.s.params) {
        if (!params.keys().includes(p.name)) throw new Error(`${dir}/trainable.safetensors: no tensor "${p.name}" (was the checkpoint made with the same adapter config?)`);
        const v = params.readFloat32(p.name);
        if (v.length !== p.tensor.numel) throw new Error(`${dir}/trainable.safetensors: "${p.name}" has ${v.length} values, expected ${p.tensor.numel}`);
        (p.tensor.data as Float32Array).set(v, p.tensor.offset);
        p.tensor.version++;
      }
    } finally { params.close(); }
    const opt = SafetensorsFile.openSync(join(dir, "optimizer.safetensors"));
    try {
      const kind = opt.metadata["kind"] ?? "adamw";
      const names = kind === "sgd" ? ["momentum_buffer"] : ["exp_avg", "exp_avg_sq"];
      const buffers: Record<string, Float32Array[]> = {};
      for (const n of names) buffers[n] = this.s.params.map((p) => opt.readFloat32(`${n}.${p.name}`));
      this.optimizer.loadState({ kind, step: Number(opt.metadata["step"] ?? state.global_step), buffers });
    } finally { opt.close(); }
    this.step = state.global_step;
    this.epoch = state.epoch;
    this.batchInEpoch = state.batch_in_epoch;
    this.logs = state.log_history;
    (this.s.rngs ?? []).forEach((r, i) => { const st = state.rng_states[i]; if (st) r.setState(st); });
  }
}

export function countLabelTokens(batch: Batch): number {
  // labels are shifted by one: position 0's label predicts nothing
  const l = batch.labels.i32(), [b, s] = batch.labels.shape as [number, number];
  let n = 0;
  for (let i = 0; i < b; i++) for (let j = 1; j < s; j++) if (l[i * s + j] !== -100) n++;
  return n;
}
