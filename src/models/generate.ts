/**
 * Text generation for one sequence, transformers' `model.generate` with its logits processors in HF's order:
 * repetition penalty, then (when sampling) temperature, top-k, top-p. Greedy unless `doSample`; sampling
 * draws from a seeded Rng, so a seed repeats a run. With the KV cache (default) the prompt is run once and
 * each new token costs one position; `useCache: false` recomputes the whole prefix (the reference).
 * Stops at max new tokens, an EOS id, or a stop string in the decoded text (which then ends with it, as HF).
 */
import { Rng, indexTensor, noGrad } from "../tensor/index.js";
import type { CausalLM } from "./model.js";
import { type HfTokenizer, TokenStreamDecoder } from "./tokenizer.js";

export interface GenerateOptions {
  /** Tokens to generate at most (default 20, as HF's GenerationConfig). */
  maxNewTokens?: number;
  /** Sample instead of taking the argmax (default false). */
  doSample?: boolean;
  /** Divides the logits before sampling (default 1; 0 means greedy). */
  temperature?: number;
  /** Keep only the k most likely tokens (0: off). */
  topK?: number;
  /** Keep the smallest set whose probability reaches p (1: off). */
  topP?: number;
  /** HF's CTRL penalty on tokens already in the sequence (1: off). */
  repetitionPenalty?: number;
  /** Seed of the sampling Rng (default 0); or pass `rng`. */
  seed?: number;
  rng?: Rng;
  /** Ids that end generation (default: the config's eos_token_id); the EOS token is kept in the output. */
  eosTokenId?: number | readonly number[];
  /** Strings that end generation once the decoded output contains them (needs `tokenizer`). */
  stopStrings?: readonly string[];
  /** Decodes streamed text and stop strings. */
  tokenizer?: HfTokenizer;
  /**
   * Called with each new id and the text it completes ("" while a character is pending, or without a
   * tokenizer); a last call with id -1 carries text still pending at the end (e.g. an unfinished character).
   */
  onToken?: (id: number, text: string) => void;
  /** Called with the raw next-token logits [V] of each step, before any processing (tests, scoring). */
  onLogits?: (step: number, logits: Float32Array) => void;
  /** Reuse keys and values of earlier positions (default true). */
  useCache?: boolean;
}

export interface GenerateResult {
  /** The new tokens (without the prompt). */
  tokens: number[];
  /** Decoded new tokens, when a tokenizer was given. */
  text?: string;
  finishReason: "eos" | "stop" | "length";
}

/** Generates a continuation of `prompt` (token ids, batch 1). */
export function generate(model: CausalLM, prompt: readonly number[], opts: GenerateOptions = {}): GenerateResult {
  if (prompt.length === 0) throw new Error("generate: the prompt must hold at least one token");
  const maxNew = opts.maxNewTokens ?? 20;
  const temperature = opts.temperature ?? 1;
  const sample = (opts.doSample ?? false) && temperature > 0;
  const rng = opts.rng ?? new Rng(opts.seed ?? 0);
  const eos = new Set(opts.eosTokenId === undefined ? model.config.eosTokenIds : typeof opts.eosTokenId === "number" ? [opts.eosTokenId] : opts.eosTokenId);
  const stops = opts.stopStrings ?? [];
  if (stops.length > 0 && !opts.tokenizer) throw new Error("generate: stopStrings need a tokenizer to decode the output");
  const longestStop = Math.max(0, ...stops.map((s) => s.length));
  const stream = opts.tokenizer ? new TokenStreamDecoder(opts.tokenizer) : null;
  const cache = opts.useCache === false ? null : model.newCache();

  const seq = prompt.slice();
  const out: number[] = [];
  let text = "", finish: GenerateResult["finishReason"] = "length";
  noGrad(() => {
    let next: readonly number[] = seq; // what the next forward must run
    for (let step = 0; step < maxNew; step++) {
      const ids = cache ? next : seq;
      const logits = model.forward(indexTensor(Int32Array.from(ids), [1, ids.length]), cache ? { cache } : {});
      const v = logits.shape[2]!;
      const row = logits.f32().slice((ids.length - 1) * v, ids.length * v); // [V] of the last position
      opts.onLogits?.(step, row);
      const id = pickToken(row, seq, { ...opts, temperature }, sample, rng);
      seq.push(id);
      out.push(id);
      next = [id];
      const piece = stream ? stream.push(id) : "";
      text += piece;
      opts.onToken?.(id, piece);
      if (eos.has(id)) { finish = "eos"; break; }
      if (longestStop > 0) {
        const tail = text.slice(-(longestStop + piece.length));
        if (stops.some((s) => tail.includes(s))) { finish = "stop"; break; }
      }
    }
  });
  if (stream) {
    const rest = stream.flush();
    if (rest !== "") { text += rest; opts.onToken?.(-1, rest); }
  }
  return opts.tokenizer ? { tokens: out, text, finishReason: finish } : { tokens: out, finishReason: finish };
}

/** Applies the processors to a copy of `logits` and picks the next id. */
export function pickToken(logits: Float32Array, seq: readonly number[], o: GenerateOptions, sample: boolean, rng: Rng): number {
  const x = Float32Array.from(logits);
  const pen = o.repetitionPenalty ?? 1;
  if (pen !== 1) {
    for (const id of new Set(seq)) { const l = x[id]!; x[id] = l < 0 ? l * pen : l / pen; }
  }
  if (!sample) return argmax(x);
  const t = o.temperature ?? 1;
  if (t !== 1) for (let i = 0; i < x.length; i++) x[i] = x[i]! / t;
  const k = o.topK ?? 0;
  if (k > 0 && k < x.length) {
    const kth = Float32Array.from(x).sort()[x.length - k]!; // keeps ties with the k-th, as HF
    for (let i = 0; i < x.length; i++) if (x[i]! < kth) x[i] = -Infinity;
  }
  const probs = softmax(x);
  const p = o.topP ?? 1;
  if (p < 1) {
    // HF TopPLogitsWarper: ascending order, drop tokens while the cumulative mass stays ≤ 1 − p; keep ≥ 1
    const order = Array.from(probs.keys()).sort((a, b) => probs[a]! - probs[b]! || a - b);
    let cum = 0;
    for (let j = 0; j < order.length - 1; j++) {
      cum += probs[order[j]!]!;
      if (cum <= 1 - p) probs[order[j]!] = 0; else break;
    }
    let s = 0;
    for (let i = 0; i < probs.length; i++) s += probs[i]!;
    for (let i = 0; i < probs.length; i++) probs[i] = probs[i]! / s;
  }
  let u = rng.uniform(), last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i]! > 0) { last = i; u -= probs[i]!; if (u < 0) return i; }
  }
  return last; // rounding left u ≥ 0: the last token with mass
}

function argmax(x: Float32Array): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i]! > x[best]!) best = i;
  return best;
}

function softmax(x: Float32Array): Float64Array {
  let m = -Infinity;
  for (const v of x) if (v > m) m = v;
  const p = new Float64Array(x.length);
  let s = 0;
  for (let i = 0; i < x.length; i++) { p[i] = Math.exp(x[i]! - m); s += p[i]!; }
  for (let i = 0; i < x.length; i++) p[i] = p[i]! / s;
  return p;
}
