/**
 * The embedded default: the model and tasks that ship in the package (models/dora-tiny, tasks/), found relative
 * to this file so they resolve the same from src/ (tsx, tests) and dist/ (the published CLI), and the recipe
 * `dora train` uses when given no model and no data.
 */
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");

export const EMBEDDED = {
  /** LLaMA-shaped, 2.4 M parameters, pretrained on the Brown corpus by scripts/pretrain.ts. */
  model: join(ROOT, "models", "dora-tiny"),
  /** WordNet-gloss multiple choice (scripts/make-tasks.ts). */
  mc: { train: join(ROOT, "tasks", "wordnet-mc", "train.jsonl"), validation: join(ROOT, "tasks", "wordnet-mc", "validation.jsonl"), test: join(ROOT, "tasks", "wordnet-mc", "test.jsonl") },
  /** Brown genre R (humor), never pretrained on: a style task measured by held-out perplexity. */
  style: { train: join(ROOT, "tasks", "brown-humor", "train.jsonl"), validation: join(ROOT, "tasks", "brown-humor", "validation.jsonl"), test: join(ROOT, "tasks", "brown-humor", "test.jsonl") },
  /** Paragraphs of the Brown files held out of pretraining. */
  heldout: join(ROOT, "tasks", "brown-heldout", "test.jsonl"),
} as const;

/** What `dora train` with no --model/--data runs: DoRA on the multiple-choice task (explicit flags override). */
export const DEFAULT_RECIPE = { useDora: true, r: 8, targetModules: "all-linear", learningRate: 5e-3, maxSteps: 100, batchSize: 8, outputDir: "out/dora-default" } as const;
