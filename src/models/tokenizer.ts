/**
 * Hugging Face tokenizers for dora-ts: loads a model folder's `tokenizer.json` (+ optional
 * `tokenizer_config.json`) through `@huggingface/tokenizers` and adds what training and generation
 * need: special-token ids, chat templates and streaming decode.
 *
 * Contract:
 * - `encode` adds special tokens by default (the tokenizer.json post-processor decides which, e.g.
 *   Llama's leading `<s>`), like transformers; pass `addSpecialTokens: false` for text that already
 *   carries them, such as a rendered chat template.
 * - `decode` never applies `clean_up_tokenization_spaces` unless the config sets it to true, so a
 *   byte-level BPE round-trips any string exactly.
 * - Ids out of range are errors, not `<unk>`.
 *
 * Counterpart: transformers' `PreTrainedTokenizerFast` (`AutoTokenizer.from_pretrained(dir)`).
 * The slow-tokenizer layout (GPT-2's `vocab.json` + `merges.txt` without tokenizer.json) is not read.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { ChatTemplate, type ChatMessage, selectChatTemplate } from "./chat-template.js";

export type { ChatMessage } from "./chat-template.js";

export class TokenizerError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "TokenizerError";
  }
}

export interface EncodeOptions {
  /** Add the post-processor's special tokens (default true, as in transformers). */
  addSpecialTokens?: boolean;
}

export interface DecodeOptions {
  /** Drop special tokens (`<s>`, `</s>`, `<pad>`, added special tokens) from the text. */
  skipSpecialTokens?: boolean;
}

export interface ChatTemplateOptions {
  /** Open an assistant turn at the end, for generation (transformers' `add_generation_prompt`). */
  addGenerationPrompt?: boolean;
  /** Further template variables, e.g. `tools`. */
  extra?: Record<string, unknown>;
}

type Json = Record<string, unknown>;

function readJson(path: string, required: boolean): Json | undefined {
  if (!existsSync(path)) {
    if (!required) return undefined;
    throw new TokenizerError(
      `${path} not found: a Hugging Face tokenizer.json is required ` +
        `(vocab.json + merges.txt alone are not supported; save the tokenizer with a fast tokenizer)`,
    );
  }
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new TokenizerError(`${path}: cannot read: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new TokenizerError(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new TokenizerError(`${path} must hold a JSON object, found ${Array.isArray(value) ? "an array" : typeof value}`);
  }
  return value as Json;
}

/** Config special tokens are a string or (older files) an AddedToken dict `{content, ...}`. */
function tokenString(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (value !== null && typeof value === "object" && typeof (value as Json).content === "string") {
    return (value as Json).content as string;
  }
  return undefined;
}

// Used only when tokenizer_config.json does not name the token.
const FALLBACK_NAMES = {
  bos: ["<s>", "<|begin_of_text|>", "<|endoftext|>", "<bos>"],
  eos: ["</s>", "<|end_of_text|>", "<|endoftext|>", "<eos>"],
  pad: ["<pad>", "<|pad|>", "[PAD]"],
} as const;

export class HfTokenizer {
  readonly bosToken: string | undefined;
  readonly eosToken: string | undefined;
  readonly padToken: string | undefined;
  readonly bosTokenId: number | undefined;
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
  /** Number of ids: one more than the largest id in the vocabulary or added tokens (embedding rows). */
  readonly vocabSize: number;
  /** `model_max_length` from tokenizer_config.json, when present. */
  readonly modelMaxLength: number | undefined;
  private readonly inner: Tokenizer;
  private readonly chatTemplate: ChatTemplate | undefined;
  private readonly cleanUpSpaces: boolean;

  /**
   * @param tokenizerJson parsed tokenizer.json
   * @param tokenizerConfig parsed tokenizer_config.json ({} when absent)
   * @param source where they came from, for error messages
   */
  constructor(
    tokenizerJson: Json,
    tokenizerConfig: Json = {},
    private readonly source = "tokenizer.json",
  ) {
    const addedTokens = tokenizerJson.added_tokens ?? [];
    if (!Array.isArray(addedTokens)) throw new TokenizerError(`${source}: added_tokens must be a list`);
    for (const key of ["model", "decoder", "post_processor", "pre_tokenizer", "normalizer"]) {
      if (!(key in tokenizerJson)) {
        throw new TokenizerError(`${source}: missing "${key}" (null is allowed, absence is not)`);
      }
    }
    try {
      this.inner = new Tokenizer({ ...tokenizerJson, added_tokens: addedTokens }, tokenizerConfig);
    } catch (err) {
      throw new TokenizerError(`${source}: cannot build tokenizer: ${(err as Error).message}`, { cause: err });
    }

    const vocab = this.inner.get_vocab(true);
    let maxId = -1;
    for (const id of vocab.values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;

    const added = new Set((addedTokens as Json[]).map((t) => t.content));
    const resolve = (kind: "bos" | "eos" | "pad"): [string | undefined, number | undefined] => {
      const key = `${kind}_token`;
      const raw = tokenizerConfig[key];
      if (raw !== undefined && raw !== null) {
        const name = tokenString(raw);
        if (name === undefined) throw new TokenizerError(`tokenizer_config.json: ${key} must be a string, found ${JSON.stringify(raw)}`);
        const id = this.inner.token_to_id(name);
        if (id === undefined) {
          throw new TokenizerError(`tokenizer_config.json: ${key} ${JSON.stringify(name)} is not in ${source}'s vocabulary`);
        }
        return [name, id];
      }
      const name = FALLBACK_NAMES[kind].find((n) => added.has(n));
      return name === undefined ? [undefined, undefined] : [name, this.inner.token_to_id(name)];
    };
    [this.bosToken, this.bosTokenId] = resolve("bos");
    [this.eosToken, this.eosTokenId] = resolve("eos");
    [this.padToken, this.padTokenId] = resolve("pad");

    const mml = tokenizerConfig.model_max_length;
    // transformers writes 1e30-ish "VERY_LARGE_INTEGER" when unknown; treat that as absent.
    this.modelMaxLength = typeof mml === "number" && mml < 1e15 ? mml : undefined;
    this.cleanUpSpaces = tokenizerConfig.clean_up_tokenization_spaces === true;
    const template = selectChatTemplate(tokenizerConfig.chat_template);
    this.chatTemplate = template === undefined ? undefined : new ChatTemplate(template);
  }

  /** Loads `dir/tokenizer.json` and, if present, `dir/tokenizer_config.json`. */
  static fromDir(dir: string): HfTokenizer {
    if (!existsSync(dir) || !statSync(dir).isDirectory()) {
      throw new TokenizerError(`tokenizer directory not found: ${dir}`);
    }
    const tokenizerPath = join(dir, "tokenizer.json");
    const tokenizerJson = readJson(tokenizerPath, true)!;
    const tokenizerConfig = readJson(join(dir, "tokenizer_config.json"), false) ?? {};
    return new HfTokenizer(tokenizerJson, tokenizerConfig, tokenizerPath);
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.inner.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return "";
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize || this.inner.id_to_token(id) === undefined) {
        throw new TokenizerError(`decode: ids[${i}] = ${id} is not a token id (vocabulary has ${this.vocabSize} ids)`);
      }
    }
    return this.inner.decode([...ids], {
      skip_special_tokens: opts.skipSpecialTokens ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  tokenToId(token: string): number | undefined {
    return this.inner.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.inner.id_to_token(id);
  }

  get hasChatTemplate(): boolean {
    return this.chatTemplate !== undefined;
  }

  /**
   * Renders `messages` with the tokenizer's chat template (transformers' `apply_chat_template`
   * with `tokenize=False`). Encode the result with `addSpecialTokens: false`.
   */
  applyChatTemplate(messages: readonly ChatMessage[], opts: ChatTemplateOptions = {}): string {
    if (this.chatTemplate === undefined) {
      throw new TokenizerError(
        `${this.source}: the tokenizer has no chat_template (tokenizer_config.json has none); ` +
          `add one to tokenizer_config.json or format the conversation yourself`,
      );
    }
    return this.chatTemplate.render(messages, {
      bosToken: this.bosToken,
      eosToken: this.eosToken,
      addGenerationPrompt: opts.addGenerationPrompt ?? false,
      extra: opts.extra,
    });
  }
}

/**
 * Streaming decode for generation output: `push(id)` returns the text that id completes ("" while a
 * multi-byte character or a tokenizer-dependent space is still pending); `flush()` returns what is
 * left at the end. The pieces concatenate to `decode(allIds)`.
 *
 * Method (text-generation-inference's `decode_token`): decode the window since the last emitted
 * boundary, with the previous piece as left context so decoders that strip a leading space see
 * the same input as a full decode; emit the new suffix once it does not end in U+FFFD (an
 * incomplete UTF-8 sequence).
 */
export class TokenStreamDecoder {
  private ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;

  constructor(
    private readonly tokenizer: HfTokenizer,
    private readonly opts: DecodeOptions = {},
  ) {}

  push(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.opts);
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.opts);
    if (full.length <= prefix.length || full.endsWith("\uFFFD")) return "";
    const piece = full.slice(prefix.length);
    // Keep only the window the next step needs.
    this.ids = this.ids.slice(this.readOffset);
    this.prefixOffset = 0;
    this.readOffset = this.ids.length;
    return piece;
  }

  /** Returns pending text (possibly ending in U+FFFD if the ids stop mid-character) and resets. */
  flush(): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), this.opts);
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset), this.opts);
    this.ids = [];
    this.prefixOffset = 0;
    this.readOffset = 0;
    return full.slice(prefix.length);
  }
}

/** Yields the non-empty pieces of `ids` as a `TokenStreamDecoder` would, ending with the flush. */
export function* decodeStream(
  tokenizer: HfTokenizer,
  ids: Iterable<number>,
  opts: DecodeOptions = {},
): Generator<string> {
  const dec = new TokenStreamDecoder(tokenizer, opts);
  for (const id of ids) {
    const piece = dec.push(id);
    if (piece !== "") yield piece;
  }
  const rest = dec.flush();
  if (rest !== "") yield rest;
}
