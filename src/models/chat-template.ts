/**
 * Chat templates: the Jinja string a Hugging Face `tokenizer_config.json` stores under
 * `chat_template`, rendered with `@huggingface/jinja` (the engine transformers.js uses).
 *
 * Contract: the template sees `messages`, `add_generation_prompt`, `bos_token`, `eos_token` (the
 * special-token strings, "" when the tokenizer has none) plus any `extra` variables, and
 * `raise_exception` from the engine. Rendering returns text; tokenize it without adding special
 * tokens again (the template already writes them), as transformers' `apply_chat_template` does.
 *
 * Counterpart: `PreTrainedTokenizerBase.apply_chat_template(..., tokenize=False)` in transformers.
 */
import { Template } from "@huggingface/jinja";

export interface ChatMessage {
  role: string;
  content: string;
}

export interface ChatTemplateVars {
  bosToken?: string | undefined;
  eosToken?: string | undefined;
  addGenerationPrompt?: boolean | undefined;
  /** Further template variables (e.g. `tools`), passed through under their own names. */
  extra?: Record<string, unknown> | undefined;
}

export class ChatTemplateError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ChatTemplateError";
  }
}

/**
 * `chat_template` in tokenizer_config.json is a string, or (older files) a list of
 * `{name, template}` of which "default" is used. Returns undefined when there is none.
 */
export function selectChatTemplate(raw: unknown, source = "tokenizer_config.json"): string | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw === "string") return raw;
  if (Array.isArray(raw)) {
    const named = raw as { name?: unknown; template?: unknown }[];
    const def = named.find((t) => t.name === "default");
    if (def && typeof def.template === "string") return def.template;
    throw new ChatTemplateError(
      `${source}: chat_template is a list without a "default" entry ` +
        `(found: ${named.map((t) => JSON.stringify(t.name)).join(", ")})`,
    );
  }
  throw new ChatTemplateError(`${source}: chat_template must be a string or a list, found ${typeof raw}`);
}

/** A parsed template, reusable across renders. */
export class ChatTemplate {
  private readonly template: Template;

  constructor(readonly source: string) {
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new ChatTemplateError(`chat_template does not parse: ${(err as Error).message}`, { cause: err });
    }
  }

  render(messages: readonly ChatMessage[], vars: ChatTemplateVars = {}): string {
    messages.forEach((m, i) => {
      if (typeof m.role !== "string" || typeof m.content !== "string") {
        throw new ChatTemplateError(`messages[${i}] needs string role and content, found ${JSON.stringify(m)}`);
      }
    });
    try {
      return this.template.render({
        ...vars.extra,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: vars.addGenerationPrompt ?? false,
        bos_token: vars.bosToken ?? "",
        eos_token: vars.eosToken ?? "",
      });
    } catch (err) {
      throw new ChatTemplateError(`chat_template failed to render: ${(err as Error).message}`, { cause: err });
    }
  }
}
