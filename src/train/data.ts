/**
 * Datasets for causal-LM fine-tuning: JSON Lines or a JSON array, in the formats people have, tokenized into
 * (input_ids, labels) with −100 on tokens that carry no loss. Batches pad on the right to the longest row
 * (a causal model never attends to later positions, so right padding needs no attention mask).
 *
 * Formats, detected per record:
 *   {"text"}                          loss on every token
 *   {"prompt", "completion"}          loss on the completion (and EOS) unless trainOnInputs
 *   {"instruction", "input"?, "output"}  Alpaca template (as NVlabs/DoRA's commonsense tuning), loss on output
 *   {"messages": [{role, content}]}   the tokenizer's chat template, loss on assistant turns
 *   {"input_ids": [...], "labels"?}   pre-tokenized, used as given
 */
import { readFileSync, existsSync } from "node:fs";
import { Rng, indexTensor, type Tensor } from "../tensor/index.js";
import type { HfTokenizer } from "../models/tokenizer.js";

export const IGNORE_INDEX = -100;

export interface Example { inputIds: number[]; labels: number[] }

export interface DataOptions { cutoffLen?: number; trainOnInputs?: boolean }

export class DataError extends Error {
  constructor(message: string) { super(message); this.name = "DataError"; }
}

const ALPACA_WITH_INPUT = "Below is an instruction that describes a task, paired with an input that provides further context. " +
  "Write a response that appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n";
const ALPACA_NO_INPUT = "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n" +
  "### Instruction:\n{instruction}\n\n### Response:\n";

/** The Alpaca prompt for an instruction record (without the answer). */
export function alpacaPrompt(instruction: string, input?: string): string {
  return input ? ALPACA_WITH_INPUT.replace("{instruction}", instruction).replace("{input}", input)
    : ALPACA_NO_INPUT.replace("{instruction}", instruction);
}

export interface SourcedRecord { record: Record<string, unknown>; where: string }

/** Parse a .jsonl (one object per line, blank lines skipped) or .json (array) file; `where` is file:line. */
export function readRecords(file: string): SourcedRecord[] {
  if (!existsSync(file)) throw new DataError(`${file}: no such file`);
  const text = readFileSync(file, "utf8");
  const records: SourcedRecord[] = [];
  const check = (v: unknown, where: string): Record<string, unknown> => {
    if (v === null || typeof v !== "object" || Array.isArray(v)) throw new DataError(`${where}: expected a JSON object`);
    return v as Record<string, unknown>;
  };
  if (text.trimStart().startsWith("[")) {
    let arr: unknown;
    try { arr = JSON.parse(text); } catch (e) { throw new DataError(`${file}: invalid JSON: ${(e as Error).message}`); }
    if (!Array.isArray(arr)) throw new DataError(`${file}: expected a JSON array of records`);
    arr.forEach((v, i) => records.push({ record: check(v, `${file}: element ${i}`), where: `${file}: element ${i}` }));
  } else {
    text.split(/\r?\n/).forEach((line, i) => {
      if (line.trim() === "") return;
      let v: unknown;
      try { v = JSON.parse(line); } catch (e) { throw new DataError(`${file}:${i + 1}: invalid JSON: ${(e as Error).message}`); }
      records.push({ record: check(v, `${file}:${i + 1}`), where: `${file}:${i + 1}` });
    });
  }
  if (records.length === 0) throw new DataError(`${file}: the dataset is empty (no records)`);
  return records;
}

function str(r: Record<string, unknown>, key: string, where: string): string {
  const v = r[key];
  if (typeof v !== "string") throw new DataError(`${where}: "${key}" must be a string`);
  return v;
}

function intList(v: unknown, key: string, where: string): number[] {
  if (!Array.isArray(v) || !v.every((x) => Number.isInteger(x))) throw new DataError(`${where}: "${key}" must be a list of integers`);
  return v as number[];
}

/** Tokenize one record. `where` names it in errors (file:line). */
export function tokenizeRecord(r: Record<string, unknown>, tok: HfTokenizer | null, opts: DataOptions, where: string): Example {
  let ex: Example;
  const need = (): HfTokenizer => {
    if (!tok) throw new DataError(`${where}: text records need a tokenizer (the model folder has no tokenizer.json); use {"input_ids": [...]}`);
    return tok;
  };
  const eos = (): number[] => (tok?.eosTokenId !== undefined ? [tok.eosTokenId] : []);
  if ("input_ids" in r) {
    const ids = intList(r["input_ids"], "input_ids", where);
    const labels = "labels" in r ? intList(r["labels"], "labels", where) : ids.slice();
    if (labels.length !== ids.length) throw new DataError(`${where}: "labels" has ${labels.length} entries, "input_ids" ${ids.length}`);
    ex = { inputIds: ids, labels };
  } else if ("messages" in r) {
    ex = chatExample(r["messages"], need(), opts, where);
  } else if ("text" in r) {
    const ids = [...need().encode(str(r, "text", where)), ...eos()];
    ex = { inputIds: ids, labels: ids.slice() };
  } else if ("prompt" in r && "completion" in r) {
    ex = promptCompletion(need(), str(r, "prompt", where), str(r, "completion", where), eos(), opts);
  } else if ("instruction" in r && "output" in r) {
    const input = "input" in r ? str(r, "input", where) : "";
    ex = promptCompletion(need(), alpacaPrompt(str(r, "instruction", where), input), str(r, "output", where), eos(), opts);
  } else {
    throw new DataError(`${where}: unknown record format (keys ${Object.keys(r).join(", ")}); expected "text", "prompt"+"completion", "instruction"+"output", "messages" or "input_ids"`);
  }
  if (opts.cutoffLen !== undefined && ex.inputIds.length > opts.cutoffLen) {
    ex = { inputIds: ex.inputIds.slice(0, opts.cutoffLen), labels: ex.labels.slice(0, opts.cutoffLen) };
  }
  return ex;
}

function promptCompletion(tok: HfTokenizer, prompt: string, completion: string, eos: number[], opts: DataOptions): Example {
  const p = tok.encode(prompt);
  const c = [...tok.encode(completion, { addSpecialTokens: false }), ...eos];
  return { inputIds: [...p, ...c], labels: [...(opts.trainOnInputs ? p : p.map(() => IGNORE_INDEX)), ...c] };
}

function chatExample(messages: unknown, tok: HfTokenizer, opts: DataOptions, where: string): Example {
  if (!Array.isArray(messages) || !messages.every((m) => m && typeof m.role === "string" && typeof m.content === "string")) {
    throw new DataError(`${where}: "messages" must be a list of {role, content} strings`);
  }
  const msgs = messages as { role: string; content: string }[];
  // Render growing prefixes so each assistant turn's text can be tokenized (and labelled) on its own.
  const inputIds: number[] = [], labels: number[] = [];
  let done = "";
  const push = (text: string, train: boolean): void => {
    const ids = tok.encode(text, { addSpecialTokens: false });
    inputIds.push(...ids);
    labels.push(...(train ? ids : ids.map(() => IGNORE_INDEX)));
  };
  msgs.forEach((m, i) => {
    if (m.role === "assistant") {
      const prompt = tok.applyChatTemplate(msgs.slice(0, i), { addGenerationPrompt: true });
      push(prompt.slice(done.length), opts.trainOnInputs ?? false);
      done = prompt;
    }
    const full = tok.applyChatTemplate(msgs.slice(0, i + 1));
    if (!full.startsWith(done)) throw new DataError(`${where}: the chat template does not render conversations incrementally`);
    push(full.slice(done.length), m.role === "assistant" || (opts.trainOnInputs ?? false));
    done = full;
  });
  return { inputIds, labels };
}

/** Load and tokenize a dataset file. */
export function loadDataset(file: string, tok: HfTokenizer | null, opts: DataOptions = {}): Example[] {
  return readRecords(file).map(({ record, where }) => {
    const ex = tokenizeRecord(record, tok, opts, where);
    if (ex.inputIds.length < 2) throw new DataError(`${where}: fewer than 2 tokens, nothing to predict`);
    return ex;
  });
}

/** Concatenate examples and cut the stream into blocks of `len` tokens (--packing). */
export function packExamples(examples: readonly Example[], len: number): Example[] {
  const ids = examples.flatMap((e) => e.inputIds), labels = examples.flatMap((e) => e.labels);
  const out: Example[] = [];
  for (let s = 0; s + 2 <= ids.length; s += len) out.push({ inputIds: ids.slice(s, s + len), labels: labels.slice(s, s + len) });
  return out;
}

export interface Batch { inputIds: Tensor; labels: Tensor; tokens: number }

/** Right-pad to the longest row: pad id for inputs, −100 for labels. */
export function collate(examples: readonly Example[], padId: number): Batch {
  const len = Math.max(...examples.map((e) => e.inputIds.length));
  const ids = new Int32Array(examples.length * len).fill(padId);
  const labels = new Int32Array(examples.length * len).fill(IGNORE_INDEX);
  let tokens = 0;
  examples.forEach((e, i) => {
    ids.set(e.inputIds, i * len);
    labels.set(e.labels, i * len);
    tokens += e.inputIds.length;
  });
  return { inputIds: indexTensor(ids, [examples.length, len]), labels: indexTensor(labels, [examples.length, len]), tokens };
}

/** The example order of one epoch: identity without shuffling, else a seeded Fisher–Yates shuffle. */
export function epochOrder(n: number, epoch: number, seed: number, shuffle: boolean): number[] {
  const order = [...Array(n).keys()];
  if (!shuffle) return order;
  const rng = new Rng(seed * 1000003 + epoch);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
