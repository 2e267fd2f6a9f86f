/**
 * LoraConfig: PEFT's `LoraConfig` (0.20) for LoRA and DoRA. This file is the only place that knows the
 * camelCase ↔ snake_case mapping, the defaults and which PEFT options dora-ts supports.
 *
 * - `new LoraConfig({...})` takes camelCase fields; missing ones get PEFT 0.20's defaults, an unknown one is a
 *   ConfigError naming it (and the nearest option).
 * - `LoraConfig.fromJSON(obj)` reads an adapter_config.json object (snake_case). Every field PEFT writes is
 *   recognised; a field PEFT does not have, or a supported-by-PEFT feature dora-ts does not implement set to a
 *   non-default value (e.g. `use_qalora: true`, `init_lora_weights: "pissa"`), is a ConfigError naming it.
 * - `toJSON()` gives exactly the field set PEFT's `save_pretrained` writes (all LoraConfig fields except
 *   runtime_config), keys sorted; `toJSONString()` adds PEFT's indent of 2.
 * - `doraDetachNorm` is dora-ts's own option (default true = PEFT/paper §4.3); it is not written to disk.
 */

export class ConfigError extends Error {
  override name = "ConfigError";
  /** For a bad value: the camelCase option and the message without it (fromJSON names the file's field instead). */
  field?: keyof LoraConfigInit;
  detail?: string;
}

export type InitLoraWeights = boolean | "gaussian";
export type TargetModules = string | readonly string[] | null;

export interface LoraConfigInit {
  r?: number;
  loraAlpha?: number;
  loraDropout?: number;
  /** Suffixes of dotted module paths, a regex string (full match), or "all-linear". Required for getPeftModel. */
  targetModules?: TargetModules;
  excludeModules?: TargetModules;
  useDora?: boolean;
  useRslora?: boolean;
  initLoraWeights?: InitLoraWeights;
  fanInFanOut?: boolean;
  bias?: "none";
  modulesToSave?: readonly string[] | null;
  layersToTransform?: number | readonly number[] | null;
  layersPattern?: string | readonly string[] | null;
  rankPattern?: Readonly<Record<string, number>>;
  alphaPattern?: Readonly<Record<string, number>>;
  taskType?: string | null;
  baseModelNameOrPath?: string | null;
  revision?: string | null;
  inferenceMode?: boolean;
  /** dora-ts only: detach the DoRA norm from autograd (PEFT and the paper, §4.3). false = full gradient. */
  doraDetachNorm?: boolean;
}

/** What PEFT 0.20 writes for `peft_version`; the part before "@" is the format version PEFT checks. */
export const PEFT_VERSION_TAG = "0.20.1.dev0@dora-ts";

/** camelCase field → PEFT JSON key, for the fields dora-ts implements. */
const SUPPORTED: ReadonlyArray<readonly [keyof LoraConfigInit, string]> = [
  ["r", "r"], ["loraAlpha", "lora_alpha"], ["loraDropout", "lora_dropout"], ["targetModules", "target_modules"],
  ["excludeModules", "exclude_modules"], ["useDora", "use_dora"], ["useRslora", "use_rslora"],
  ["initLoraWeights", "init_lora_weights"], ["fanInFanOut", "fan_in_fan_out"], ["bias", "bias"],
  ["modulesToSave", "modules_to_save"], ["layersToTransform", "layers_to_transform"], ["layersPattern", "layers_pattern"],
  ["rankPattern", "rank_pattern"], ["alphaPattern", "alpha_pattern"], ["taskType", "task_type"],
  ["baseModelNameOrPath", "base_model_name_or_path"], ["revision", "revision"], ["inferenceMode", "inference_mode"],
];

/**
 * PEFT fields dora-ts does not implement, with the value PEFT writes by default. Reading a file that has
 * the default is fine; any other value is an error (the adapter would not behave as PEFT's).
 */
const UNSUPPORTED_DEFAULTS: Readonly<Record<string, unknown>> = {
  alora_invocation_tokens: null, arrow_config: null, auto_mapping: null, corda_config: null, ensure_weight_tying: false,
  eva_config: null, kasa_config: null, layer_replication: null, loftq_config: {}, lora_bias: false, lora_ga_config: null,
  megatron_config: null, megatron_core: "megatron.core", monteclora_config: null, qalora_group_size: 16,
  target_parameters: null, trainable_token_indices: null, use_bdlora: null, use_qalora: false, velora_config: null,
};

/** Every option the constructor takes. */
const OPTIONS: readonly string[] = [...SUPPORTED.map(([k]) => k), "doraDetachNorm"];

/**
 * The option closest to a misspelt `key` (case and "_" ignored, so `lora_alpha` → `loraAlpha`), if within
 * edit distance 2; undefined otherwise.
 */
function nearestOption(key: string): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replaceAll("_", "");
  let best: string | undefined, bestD = 3;
  for (const o of OPTIONS) {
    const d = editDistance(norm(key), norm(o));
    if (d < bestD) { best = o; bestD = d; }
  }
  return best;
}

/** Levenshtein distance (insert, delete, substitute), one row at a time. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

/** PEFT TaskType (peft/utils/peft_types.py); PeftConfig rejects any other task_type. */
const TASK_TYPES = ["SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"];

export class LoraConfig {
  readonly r: number;
  readonly loraAlpha: number;
  readonly loraDropout: number;
  readonly targetModules: TargetModules;
  readonly excludeModules: TargetModules;
  readonly useDora: boolean;
  readonly useRslora: boolean;
  readonly initLoraWeights: InitLoraWeights;
  readonly fanInFanOut: boolean;
  readonly bias: "none";
  readonly modulesToSave: readonly string[] | null;
  readonly layersToTransform: number | readonly number[] | null;
  readonly layersPattern: string | readonly string[] | null;
  readonly rankPattern: Readonly<Record<string, number>>;
  readonly alphaPattern: Readonly<Record<string, number>>;
  readonly taskType: string | null;
  readonly baseModelNameOrPath: string | null;
  readonly revision: string | null;
  readonly inferenceMode: boolean;
  readonly doraDetachNorm: boolean;

  constructor(init: LoraConfigInit = {}) {
    // A misspelt option would otherwise silently take its default (TypeScript only catches it in object literals)
    for (const key of Object.keys(init)) {
      if (!OPTIONS.includes(key)) {
        const near = nearestOption(key);
        throw new ConfigError(`LoraConfig: unknown option ${JSON.stringify(key)}` + (near ? ` (did you mean ${JSON.stringify(near)}?)` : "") +
          `; the constructor takes camelCase options, LoraConfig.fromJSON reads adapter_config.json's snake_case fields`);
      }
    }
    // PEFT 0.20 defaults (peft/tuners/lora/config.py)
    this.r = init.r ?? 8;
    this.loraAlpha = init.loraAlpha ?? 8;
    this.loraDropout = init.loraDropout ?? 0;
    this.targetModules = init.targetModules ?? null;
    this.excludeModules = init.excludeModules ?? null;
    this.useDora = init.useDora ?? false;
    this.useRslora = init.useRslora ?? false;
    this.initLoraWeights = init.initLoraWeights ?? true;
    this.fanInFanOut = init.fanInFanOut ?? false;
    this.bias = init.bias ?? "none";
    this.modulesToSave = init.modulesToSave ?? null;
    this.layersToTransform = init.layersToTransform ?? null;
    this.layersPattern = init.layersPattern ?? null;
    this.rankPattern = init.rankPattern ?? {};
    this.alphaPattern = init.alphaPattern ?? {};
    this.taskType = init.taskType ?? null;
    this.baseModelNameOrPath = init.baseModelNameOrPath ?? null;
    this.revision = init.revision ?? null;
    this.inferenceMode = init.inferenceMode ?? false;
    this.doraDetachNorm = init.doraDetachNorm ?? true;
    this.validate();
  }

  /** A copy with some fields changed (e.g. `inferenceMode: true` when saving). */
  with(changes: LoraConfigInit): LoraConfig {
    const init: Record<string, unknown> = {};
    for (const [k] of SUPPORTED) init[k] = this[k];
    init["doraDetachNorm"] = this.doraDetachNorm;
    return new LoraConfig({ ...(init as LoraConfigInit), ...changes });
  }

  /** Scaling s for rank r and alpha: alpha/r, or alpha/√r with rsLoRA (PEFT `update_layer`). */
  scalingFor(r: number, alpha: number): number {
    return this.useRslora ? alpha / Math.sqrt(r) : alpha / r;
  }

  private validate(): void {
    const bad = (field: keyof LoraConfigInit, msg: string): never => {
      const e = new ConfigError(`LoraConfig.${field}: ${msg}`);
      e.field = field; e.detail = msg;
      throw e;
    };
    if (!Number.isInteger(this.r) || this.r <= 0) bad("r", `must be a positive integer, got ${String(this.r)}`);
    if (typeof this.loraAlpha !== "number" || !Number.isFinite(this.loraAlpha)) bad("loraAlpha", `must be a finite number, got ${String(this.loraAlpha)}`);
    if (!(this.loraDropout >= 0 && this.loraDropout < 1)) bad("loraDropout", `must be in [0, 1), got ${String(this.loraDropout)}`);
    if (this.bias !== "none") bad("bias", `only "none" is supported (PEFT also has "all" and "lora_only"), got ${JSON.stringify(this.bias)}`);
    if (this.initLoraWeights !== true && this.initLoraWeights !== false && this.initLoraWeights !== "gaussian") {
      bad("initLoraWeights", `supported: true (kaiming-uniform A, zero B), false, "gaussian"; got ${JSON.stringify(this.initLoraWeights)} ` +
        `(PEFT's pissa/olora/loftq/eva/corda initialisations are not implemented)`);
    }
    for (const [f, v] of [["targetModules", this.targetModules], ["excludeModules", this.excludeModules]] as const) {
      if (v !== null && typeof v !== "string" && !(Array.isArray(v) && v.every((s) => typeof s === "string"))) {
        bad(f, `must be a string (regex, or "all-linear"), a list of strings, or null; got ${JSON.stringify(v)}`);
      }
      if (typeof v === "string" && v !== "all-linear") {
        try { new RegExp(v); } catch (e) { bad(f, `${JSON.stringify(v)} is not a valid regular expression (${(e as Error).message})`); }
      }
    }
    if (this.excludeModules === "all-linear") bad("excludeModules", `"all-linear" is only meaningful for targetModules`);
    const ltt = this.layersToTransform;
    if (ltt !== null && !(Number.isInteger(ltt) || (Array.isArray(ltt) && ltt.every((i) => Number.isInteger(i))))) {
      bad("layersToTransform", `must be an integer, a list of integers or null; got ${JSON.stringify(ltt)}`);
    }
    if (this.layersPattern !== null && ltt === null) bad("layersPattern", "is only used together with layersToTransform");
    if (ltt !== null && typeof this.targetModules === "string" && this.targetModules !== "all-linear") {
      bad("layersToTransform", "cannot be combined with a regex targetModules (as in PEFT)");
    }
    for (const [f, pat] of [["rankPattern", this.rankPattern], ["alphaPattern", this.alphaPattern]] as const) {
      for (const [k, v] of Object.entries(pat)) {
        if (typeof v !== "number" || !Number.isFinite(v) || (f === "rankPattern" && (!Number.isInteger(v) || v <= 0))) {
          bad(f, `value for ${JSON.stringify(k)} must be a ${f === "rankPattern" ? "positive integer" : "finite number"}, got ${JSON.stringify(v)}`);
        }
      }
    }
    if (this.taskType !== null && !TASK_TYPES.includes(this.taskType)) {
      bad("taskType", `must be one of PEFT's task types ${TASK_TYPES.join(", ")} (or null); got ${JSON.stringify(this.taskType)}`);
    }
    if (this.modulesToSave !== null && !(Array.isArray(this.modulesToSave) && this.modulesToSave.every((s) => typeof s === "string"))) {
      bad("modulesToSave", `must be a list of module names or null, got ${JSON.stringify(this.modulesToSave)}`);
    }
  }

  /** PEFT's adapter_config.json object: every field PEFT writes, keys sorted. */
  toJSON(): Record<string, unknown> {
    const out: Record<string, unknown> = { ...UNSUPPORTED_DEFAULTS, peft_type: "LORA", peft_version: PEFT_VERSION_TAG };
    for (const [k, json] of SUPPORTED) {
      const v = this[k];
      out[json] = Array.isArray(v) ? [...v] : v;
    }
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(out).sort()) sorted[k] = out[k];
    return sorted;
  }

  /** The file text PEFT writes: sorted keys, indent 2 (json.dumps(..., indent=2, sort_keys=True)). */
  toJSONString(): string {
    return pythonJson(this.toJSON(), 0);
  }

  /** Reads an adapter_config.json object. `where` names the file in errors. */
  static fromJSON(obj: unknown, where = "adapter_config.json"): LoraConfig {
    if (typeof obj !== "object" || obj === null || Array.isArray(obj)) throw new ConfigError(`${where}: expected a JSON object`);
    const o = obj as Record<string, unknown>;
    if (o["peft_type"] !== undefined && o["peft_type"] !== "LORA") {
      throw new ConfigError(`${where}: peft_type ${JSON.stringify(o["peft_type"])} is not supported (dora-ts reads "LORA", which includes DoRA)`);
    }
    const init: Record<string, unknown> = {};
    const known = new Map(SUPPORTED.map(([k, j]) => [j, k]));
    for (const [key, value] of Object.entries(o)) {
      if (key === "peft_type" || key === "peft_version" || key === "runtime_config") continue;
      const camel = known.get(key);
      if (camel !== undefined) {
        init[camel] = key === "rank_pattern" || key === "alpha_pattern" ? (value ?? {}) : value;
        continue;
      }
      if (Object.prototype.hasOwnProperty.call(UNSUPPORTED_DEFAULTS, key)) {
        // megatron_core and qalora_group_size are inert unless megatron_config / use_qalora are set
        const inert = key === "megatron_core" || key === "qalora_group_size";
        if (!inert && !sameJson(value, UNSUPPORTED_DEFAULTS[key]) && !(isEmpty(value) && isEmpty(UNSUPPORTED_DEFAULTS[key]))) {
          throw new ConfigError(`${where}: ${key} = ${JSON.stringify(value)} is not supported by dora-ts ` +
            `(only PEFT's default ${JSON.stringify(UNSUPPORTED_DEFAULTS[key])} is)`);
        }
        continue;
      }
      throw new ConfigError(`${where}: unknown field ${JSON.stringify(key)} (not a PEFT 0.20 LoraConfig field)`);
    }
    try {
      return new LoraConfig(init as LoraConfigInit);
    } catch (e) {
      // name the field as the file spells it (task_type, not taskType)
      const json = e instanceof ConfigError ? SUPPORTED.find(([k]) => k === e.field)?.[1] : undefined;
      const msg = json !== undefined ? `${json}: ${(e as ConfigError).detail}` : (e as Error).message;
      throw new ConfigError(`${where}: ${msg}`, { cause: e });
    }
  }
}

function isEmpty(v: unknown): boolean {
  return v === null || v === false || (typeof v === "object" && v !== null && Object.keys(v).length === 0);
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * JSON text as Python's json.dumps(indent=2, sort_keys=True) writes it: floats keep a ".0" (lora_dropout
 * 0.0), empty objects are "{}", lists one item per line.
 */
function pythonJson(v: unknown, depth: number, floatKeys = FLOAT_FIELDS, key = ""): string {
  const pad = "  ".repeat(depth + 1), end = "  ".repeat(depth);
  if (v === null || v === undefined) return "null";
  if (typeof v === "number") return floatKeys.has(key) && Number.isInteger(v) ? `${v}.0` : JSON.stringify(v);
  if (typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) {
    if (v.length === 0) return "[]";
    return `[\n${v.map((x) => pad + pythonJson(x, depth + 1, floatKeys)).join(",\n")}\n${end}]`;
  }
  const keys = Object.keys(v).sort();
  if (keys.length === 0) return "{}";
  const rec = v as Record<string, unknown>;
  return `{\n${keys.map((k) => `${pad}${JSON.stringify(k)}: ${pythonJson(rec[k], depth + 1, floatKeys, k)}`).join(",\n")}\n${end}}`;
}

/** Fields PEFT types as float: Python writes 0.0, not 0. */
const FLOAT_FIELDS = new Set(["lora_dropout"]);
