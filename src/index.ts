/**
 * dora-ts public API. Everything a user (and the `dora` CLI) needs is exported here by name; namespaces group
 * the lower layers so `import { tensor } from "dora-ts"` reads like `torch`.
 */
export * as backend from "./backend/index.js";
export * as tensor from "./tensor/index.js";
export * as nn from "./nn/index.js";
export * as quant from "./quant/index.js";
export * as io from "./io/index.js";
export * as models from "./models/index.js";
export * as peft from "./peft/index.js";
export { LoraConfig, PeftModel, getPeftModel } from "./peft/index.js";
export { loadModel, saveModel, generate, type CausalLM } from "./models/index.js";
export { Tensor, Rng, noGrad } from "./tensor/index.js";
export { HfTokenizer, TokenStreamDecoder } from "./models/tokenizer.js";
export { AdamW, SGD, clipGradNorm, type NamedParam, type Optimizer } from "./train/optim.js";
export { lrMultiplier, SCHEDULER_TYPES, type SchedulerType } from "./train/schedule.js";
export { loadDataset, collate, packExamples, alpacaPrompt, IGNORE_INDEX, DataError, type Example, type Batch } from "./train/data.js";
export { Trainer, DEFAULT_TRAINING_ARGUMENTS, NonFiniteLossError, type TrainingArguments, type LogRecord } from "./train/trainer.js";
export { Progress } from "./train/progress.js";
export { evaluateMultipleChoice, loadMcItems, mcPrompt, scoreItem, type McItem, type McResult } from "./train/multiple-choice.js";
export { EMBEDDED, DEFAULT_RECIPE } from "./train/embedded.js";
export * as analysis from "./analysis/index.js";
