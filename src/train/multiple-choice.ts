/**
 * Multiple-choice evaluation by log-likelihood (lm-evaluation-harness's cloze scoring): each option is scored
 * as the continuation " <option>" after the item's prompt, by the sum of its tokens' log-probabilities and by
 * that sum divided by its token count (length-normalised). The prediction is the arg-max (first on ties);
 * accuracy is reported for both scores.
 *
 * Items: {"question", "options": [...], "answer": i} with an optional "prompt" (default
 * "Question: <question>\nAnswer:"), the records of tasks/wordnet-mc (scripts/make-tasks.ts).
 */
import { noGrad, indexTensor, type Tensor } from "../tensor/index.js";
import { DataError, readRecords } from "./data.js";

export interface McItem { question: string; options: string[]; answer: number; prompt?: string }

/** What the scorer needs of a tokenizer (HfTokenizer satisfies it). */
export interface McEncoder {
  encode(text: string, opts?: { addSpecialTokens?: boolean }): number[];
  readonly padTokenId?: number | undefined;
}
/** What it needs of a model: logits [B, T, V] for ids [B, T] (CausalLM satisfies it; an adapter applies in place). */
export interface McModel { forward(inputIds: Tensor): Tensor }

export interface McResult {
  /** Accuracy by summed log-likelihood. */
  accuracy: number;
  /** Accuracy by log-likelihood per option token. */
  accuracyNorm: number;
  n: number;
  /** exp(−mean log-likelihood per token of the correct options): the answers' perplexity. */
  answerPerplexity: number;
  /** Per item: the options' summed and per-token log-likelihoods, the two predictions. */
  items: { sum: number[]; mean: number[]; predSum: number; predNorm: number; answer: number }[];
}

/** The prompt an item is scored after. */
export function mcPrompt(item: McItem): string {
  return item.prompt ?? `Question: ${item.question}\nAnswer:`;
}

/** Reads a multiple-choice JSONL/JSON file; a malformed record is a DataError naming file:line. */
export function loadMcItems(file: string): McItem[] {
  return readRecords(file).map(({ record: r, where }) => {
    const options = r["options"], answer = r["answer"];
    if (typeof r["question"] !== "string") throw new DataError(`${where}: "question" must be a string`);
    if (!Array.isArray(options) || options.length < 2 || !options.every((o) => typeof o === "string")) {
      throw new DataError(`${where}: "options" must be a list of at least 2 strings`);
    }
    if (!Number.isInteger(answer) || (answer as number) < 0 || (answer as number) >= options.length) {
      throw new DataError(`${where}: "answer" must be an index into "options" (0..${options.length - 1}), got ${JSON.stringify(answer)}`);
    }
    const item: McItem = { question: r["question"] as string, options: options as string[], answer: answer as number };
    if (typeof r["prompt"] === "string") item.prompt = r["prompt"];
    return item;
  });
}

const argmax = (xs: readonly number[]): number => xs.reduce((best, x, i) => (x > xs[best]! ? i : best), 0);

/** Log-likelihoods of each option of one item: one forward pass over the options, right-padded. */
export function scoreItem(model: McModel, tok: McEncoder, item: McItem): { sum: number[]; mean: number[]; tokens: number[] } {
  const prompt = tok.encode(mcPrompt(item));
  const conts = item.options.map((o) => tok.encode(` ${o}`, { addSpecialTokens: false }));
  const len = prompt.length + Math.max(...conts.map((c) => c.length));
  const ids = new Int32Array(conts.length * len).fill(tok.padTokenId ?? 0);
  conts.forEach((c, i) => { ids.set(prompt, i * len); ids.set(c, i * len + prompt.length); });
  const logits = noGrad(() => model.forward(indexTensor(ids, [conts.length, len])));
  const v = logits.shape[2]!;
  const l = logits.f32();
  const sum: number[] = [], mean: number[] = [];
  conts.forEach((c, i) => {
    let s = 0;
    for (let k = 0; k < c.length; k++) {
      // the token at position p = prompt.length + k is predicted by the logits at p - 1
      const row = (i * len + prompt.length + k - 1) * v;
      let max = -Infinity;
      for (let j = 0; j < v; j++) max = Math.max(max, l[row + j]!);
      let z = 0;
      for (let j = 0; j < v; j++) z += Math.exp(l[row + j]! - max);
      s += l[row + c[k]!]! - max - Math.log(z);
    }
    sum.push(s);
    mean.push(c.length > 0 ? s / c.length : -Infinity);
  });
  return { sum, mean, tokens: conts.map((c) => c.length) };
}

/** Scores every item; `onItem(done, total)` reports progress. */
export function evaluateMultipleChoice(model: McModel, tok: McEncoder, items: readonly McItem[], onItem?: (done: number, total: number) => void): McResult {
  if (items.length === 0) throw new DataError("multiple choice: no items to evaluate");
  let hit = 0, hitNorm = 0, nll = 0, ntok = 0;
  const out: McResult["items"] = [];
  items.forEach((item, i) => {
    const { sum, mean, tokens } = scoreItem(model, tok, item);
    nll -= sum[item.answer]!; ntok += tokens[item.answer]!;
    const predSum = argmax(sum), predNorm = argmax(mean);
    if (predSum === item.answer) hit++;
    if (predNorm === item.answer) hitNorm++;
    out.push({ sum, mean, predSum, predNorm, answer: item.answer });
    onItem?.(i + 1, items.length);
  });
  return { accuracy: hit / items.length, accuracyNorm: hitNorm / items.length, n: items.length, answerPerplexity: Math.exp(nll / ntok), items: out };
}
