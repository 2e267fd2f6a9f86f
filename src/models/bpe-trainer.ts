/**
 * Byte-level BPE training, GPT-2 style, writing Hugging Face `tokenizer.json` /
 * `tokenizer_config.json` objects. Used by `scripts/make-tokenizer.ts` (test fixtures) and meant
 * for a later `dora pretrain` that needs a tokenizer for a fresh corpus.
 *
 * Contract:
 * - Text is split with GPT-2's pre-tokenizer regex (the one HF's `ByteLevel` pre-tokenizer uses),
 *   each piece's UTF-8 bytes are mapped to printable characters with GPT-2's `bytes_to_unicode`,
 *   so all 256 bytes are in the base vocabulary and any string round-trips exactly.
 * - Merges are learned greedily: at each step the most frequent adjacent pair (counted over
 *   pre-tokenized words, weighted by word frequency) is merged. Ties go to the lexicographically
 *   smallest pair (compare left symbol, then right, by UTF-16 code units), so training is
 *   deterministic for a given corpus.
 * - Ids: special tokens first (in the order given), then the 256 byte symbols in byte order, then
 *   one id per merge in merge order. `vocabSize` counts all of these (like HF's `BpeTrainer`).
 *
 * Counterpart: `tokenizers.trainers.BpeTrainer` with `pre_tokenizers.ByteLevel` (HF tokenizers).
 */

/** GPT-2's split pattern (OpenAI `encoder.py`), as used by HF's ByteLevel pre-tokenizer. */
export const GPT2_SPLIT_PATTERN =
  /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/**
 * GPT-2's `bytes_to_unicode`: printable bytes map to themselves, the other 68 to U+0100 upwards,
 * so every byte has a visible, non-whitespace character. Index = byte value.
 */
export function bytesToUnicode(): string[] {
  const printable = (b: number): boolean =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out: string[] = [];
  let n = 0;
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(printable(b) ? b : 256 + n++));
  return out;
}

/** Splits text as the ByteLevel pre-tokenizer does and maps each piece to byte-level symbols. */
export function byteLevelPieces(text: string, byteMap: readonly string[] = bytesToUnicode()): string[] {
  const enc = new TextEncoder();
  const pieces = text.match(GPT2_SPLIT_PATTERN) ?? [];
  return pieces.map((p) => Array.from(enc.encode(p), (b) => byteMap[b]!).join(""));
}

export interface BpeTrainOptions {
  /** Total vocabulary size including special tokens and the 256 byte symbols. */
  vocabSize: number;
  /** Added as special tokens with ids 0..k-1, in this order. */
  specialTokens?: readonly string[];
  /** Pairs seen fewer times than this are never merged (training may stop below vocabSize). */
  minFrequency?: number;
}

export interface BpeModel {
  /** token -> id, including special tokens. */
  vocab: Map<string, number>;
  /** Merges in rank order, each [left, right]. */
  merges: [string, string][];
  specialTokens: string[];
}

const pairKey = (a: string, b: string): string => `${a}\u0000${b}`;

/** Learns a byte-level BPE model from `corpus`. Deterministic: same corpus and options, same model. */
export function trainByteLevelBpe(corpus: string, opts: BpeTrainOptions): BpeModel {
  const specialTokens = [...(opts.specialTokens ?? [])];
  const minFrequency = opts.minFrequency ?? 2;
  const base = specialTokens.length + 256;
  if (!Number.isInteger(opts.vocabSize) || opts.vocabSize < base) {
    throw new RangeError(
      `trainByteLevelBpe: vocabSize ${opts.vocabSize} must be an integer >= ${base} ` +
        `(${specialTokens.length} special tokens + 256 bytes)`,
    );
  }
  const byteMap = bytesToUnicode();
  const vocab = new Map<string, number>();
  for (const t of specialTokens) {
    if (vocab.has(t)) throw new Error(`trainByteLevelBpe: duplicate special token ${JSON.stringify(t)}`);
    vocab.set(t, vocab.size);
  }
  for (const s of byteMap) vocab.set(s, vocab.size);

  // Unique words with counts; sorted so every later iteration order is fixed.
  const wordCounts = new Map<string, number>();
  for (const w of byteLevelPieces(corpus, byteMap)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const entries = [...wordCounts.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const words: string[][] = entries.map(([w]) => Array.from(w));
  const freqs: number[] = entries.map(([, c]) => c);

  // Pair statistics, kept up to date incrementally: count and the words containing the pair.
  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const pairParts = new Map<string, [string, string]>();
  const addPairs = (wi: number, sign: 1 | -1): void => {
    const w = words[wi]!;
    for (let i = 0; i + 1 < w.length; i++) {
      const a = w[i]!;
      const b = w[i + 1]!;
      const k = pairKey(a, b);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freqs[wi]!);
      if (sign > 0) {
        pairParts.set(k, [a, b]);
        let set = pairWords.get(k);
        if (!set) pairWords.set(k, (set = new Set()));
        set.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addPairs(wi, 1);

  const merges: [string, string][] = [];
  while (vocab.size < opts.vocabSize) {
    let best: [string, string] | undefined;
    let bestCount = 0;
    for (const [k, c] of pairCount) {
      if (c <= 0) continue;
      const p = pairParts.get(k)!;
      if (
        c > bestCount ||
        (c === bestCount && best !== undefined && (p[0] < best[0] || (p[0] === best[0] && p[1] < best[1])))
      ) {
        best = p;
        bestCount = c;
      }
    }
    if (best === undefined || bestCount < minFrequency) break;
    const [a, b] = best;
    const merged = a + b;
    const k = pairKey(a, b);
    const affected = [...(pairWords.get(k) ?? [])].sort((x, y) => x - y);
    for (const wi of affected) {
      const w = words[wi]!;
      addPairs(wi, -1);
      // Merge left to right, non-overlapping (as GPT-2's `bpe` applies a merge).
      const out: string[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          out.push(merged);
          i++;
        } else out.push(w[i]!);
      }
      words[wi] = out;
      addPairs(wi, 1);
    }
    pairCount.delete(k);
    pairWords.delete(k);
    merges.push([a, b]);
    // A merge can produce a symbol already present (e.g. two merge paths to the same string).
    if (!vocab.has(merged)) vocab.set(merged, vocab.size);
  }
  return { vocab, merges, specialTokens };
}

export interface HfTokenizerFilesOptions {
  bosToken?: string;
  eosToken?: string;
  padToken?: string;
  unkToken?: string;
  /** Jinja chat template stored in tokenizer_config.json. */
  chatTemplate?: string;
  modelMaxLength?: number;
  /** When true (default), the post-processor prepends bosToken (like Llama's `<s> $A`). */
  addBosToken?: boolean;
}

/** Builds HF `tokenizer.json` and `tokenizer_config.json` objects for a trained byte-level BPE. */
export function toHfTokenizerFiles(
  model: BpeModel,
  opts: HfTokenizerFilesOptions = {},
): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const special = new Set(model.specialTokens);
  for (const t of [opts.bosToken, opts.eosToken, opts.padToken, opts.unkToken]) {
    if (t !== undefined && !special.has(t)) {
      throw new Error(`toHfTokenizerFiles: ${JSON.stringify(t)} is not among the special tokens`);
    }
  }
  const idOf = (t: string): number => model.vocab.get(t)!;
  const addedTokens = model.specialTokens.map((content) => ({
    id: idOf(content),
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  const bos = opts.bosToken;
  const postProcessor =
    bos !== undefined && (opts.addBosToken ?? true)
      ? {
          type: "TemplateProcessing",
          single: [{ SpecialToken: { id: bos, type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
          pair: [
            { SpecialToken: { id: bos, type_id: 0 } },
            { Sequence: { id: "A", type_id: 0 } },
            { SpecialToken: { id: bos, type_id: 1 } },
            { Sequence: { id: "B", type_id: 1 } },
          ],
          special_tokens: { [bos]: { id: bos, ids: [idOf(bos)], tokens: [bos] } },
        }
      : null;
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: postProcessor,
    decoder: byteLevel,
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null, // every byte is in the vocabulary, so nothing is ever unknown
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab: Object.fromEntries(model.vocab),
      // Legacy "left right" strings: byte-level symbols never contain a space, and every HF
      // tokenizers version reads this form.
      merges: model.merges.map(([a, b]) => `${a} ${b}`),
    },
  };
  const tokenizerConfig: Record<string, unknown> = {
    tokenizer_class: "PreTrainedTokenizerFast",
    clean_up_tokenization_spaces: false,
    model_max_length: opts.modelMaxLength ?? 1024,
  };
  if (opts.bosToken !== undefined) tokenizerConfig.bos_token = opts.bosToken;
  if (opts.eosToken !== undefined) tokenizerConfig.eos_token = opts.eosToken;
  if (opts.padToken !== undefined) tokenizerConfig.pad_token = opts.padToken;
  if (opts.unkToken !== undefined) tokenizerConfig.unk_token = opts.unkToken;
  const named = new Set([opts.bosToken, opts.eosToken, opts.padToken, opts.unkToken]);
  const extra = model.specialTokens.filter((t) => !named.has(t));
  if (extra.length > 0) tokenizerConfig.additional_special_tokens = extra;
  if (opts.chatTemplate !== undefined) tokenizerConfig.chat_template = opts.chatTemplate;
  return { tokenizerJson, tokenizerConfig };
}

/**
 * ChatML turns (`<|im_start|>role\n...<|im_end|>\n`) after a leading bos_token; the generation
 * prompt opens an assistant turn. Needs `<|im_start|>` and `<|im_end|>` as special tokens.
 */
export const CHATML_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}" +
  "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}" +
  "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/** The special tokens of the project's ChatML tokenizers (ids 0–5 in this order). */
export const CHATML_SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<|im_start|>", "<|im_end|>"] as const;

/**
 * The project's tokenizer recipe (the test fixture, examples/ and `scripts/make-tokenizer.ts`): a byte-level BPE
 * trained on `corpus` with the ChatML special tokens, `<s>` prepended, and the ChatML chat template.
 */
export function chatmlTokenizer(corpus: string, vocabSize: number, modelMaxLength: number): {
  model: BpeModel; tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown>;
} {
  const model = trainByteLevelBpe(corpus, { vocabSize, specialTokens: [...CHATML_SPECIAL_TOKENS] });
  const files = toHfTokenizerFiles(model, {
    unkToken: "<unk>", bosToken: "<s>", eosToken: "</s>", padToken: "<pad>", chatTemplate: CHATML_TEMPLATE, modelMaxLength,
  });
  return { model, ...files };
}
