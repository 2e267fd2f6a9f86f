/**
 * Flag parsing for the `dora` commands: each command declares its flags once (name, type, default, help), and
 * the same table drives parsing, validation and `--help`. Flags are kebab-case versions of PEFT's and HF
 * TrainingArguments' names. A usage problem is a UsageError (exit code 2), one line naming the flag.
 */
export type FlagType = "string" | "number" | "int" | "boolean" | "list";

export interface FlagSpec {
  name: string;
  type: FlagType;
  help: string;
  default?: string | number | boolean | string[];
  required?: boolean;
  /** Allowed values for string flags. */
  choices?: readonly string[];
  /** Shown in help instead of the type, e.g. DIR, FILE. */
  meta?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: FlagSpec[];
  /** Names of positional arguments (in order); extra positionals are an error. */
  positionals?: string[];
  examples?: string[];
}

export class UsageError extends Error {
  constructor(message: string) { super(message); this.name = "UsageError"; }
}

export type ParsedValue = string | number | boolean | string[] | undefined;

export interface Parsed {
  flags: Record<string, ParsedValue>;
  positionals: string[];
  /** Flags the user gave explicitly (as opposed to defaults). */
  given: Set<string>;
}

const COMMON: FlagSpec[] = [
  { name: "help", type: "boolean", help: "show this help" },
  { name: "debug", type: "boolean", help: "print stack traces on errors" },
];

export function allFlags(spec: CommandSpec): FlagSpec[] {
  return [...spec.flags, ...COMMON];
}

function convert(spec: FlagSpec, raw: string, cmd: string): ParsedValue {
  const bad = (what: string): never => { throw new UsageError(`dora ${cmd}: --${spec.name} expects ${what}, got "${raw}"`); };
  switch (spec.type) {
    case "string":
      if (spec.choices && !spec.choices.includes(raw)) bad(`one of ${spec.choices.join("|")}`);
      return raw;
    case "number": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v)) bad("a number");
      return v;
    }
    case "int": {
      const v = Number(raw);
      if (!/^-?\d+$/.test(raw.trim()) || !Number.isSafeInteger(v)) bad("an integer");
      return v;
    }
    case "list":
      return raw.split(",").map((s) => s.trim()).filter(Boolean);
    case "boolean":
      if (raw === "true") return true;
      if (raw === "false") return false;
      return bad("true or false");
  }
}

export function parseArgs(spec: CommandSpec, argv: readonly string[]): Parsed {
  const flags = allFlags(spec);
  const byName = new Map(flags.map((f) => [f.name, f]));
  const out: Record<string, ParsedValue> = {};
  const given = new Set<string>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith("--") || a === "--") {
      if (a === "--") { positionals.push(...argv.slice(i + 1)); break; }
      if (a.startsWith("-") && a.length > 1 && !/^-\d/.test(a)) {
        if (a === "-h") { out["help"] = true; given.add("help"); continue; }
        throw new UsageError(`dora ${spec.name}: unknown flag ${a} (see dora ${spec.name} --help)`);
      }
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = a.slice(2, eq < 0 ? undefined : eq);
    let f = byName.get(name);
    let negated = false;
    if (!f && name.startsWith("no-") && byName.get(name.slice(3))?.type === "boolean") { f = byName.get(name.slice(3)); negated = true; }
    if (!f) throw new UsageError(`dora ${spec.name}: unknown flag --${name} (see dora ${spec.name} --help)`);
    if (f.type === "boolean") {
      out[f.name] = eq >= 0 ? convert(f, a.slice(eq + 1), spec.name) : !negated;
    } else {
      const raw = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (raw === undefined) throw new UsageError(`dora ${spec.name}: --${f.name} needs a value`);
      out[f.name] = convert(f, raw, spec.name);
    }
    given.add(f.name);
  }
  if (out["help"]) return { flags: out, positionals, given };
  const wanted = spec.positionals ?? [];
  if (positionals.length > wanted.length) {
    throw new UsageError(`dora ${spec.name}: unexpected argument "${positionals[wanted.length]}"`);
  }
  for (const f of flags) {
    if (out[f.name] === undefined && f.default !== undefined) out[f.name] = f.default;
    if (f.required && out[f.name] === undefined) throw new UsageError(`dora ${spec.name}: missing required flag --${f.name}`);
  }
  return { flags: out, positionals, given };
}

export function formatHelp(spec: CommandSpec): string {
  const lines = [`dora ${spec.name}: ${spec.summary}`, "", `Usage: ${spec.usage}`, "", "Flags:"];
  const rows = allFlags(spec).map((f) => {
    const meta = f.type === "boolean" ? "" : ` ${f.meta ?? (f.choices ? f.choices.join("|") : f.type.toUpperCase())}`;
    const def = f.default !== undefined && f.type !== "boolean" ? ` (default: ${Array.isArray(f.default) ? f.default.join(",") : f.default})` : "";
    return [`  --${f.name}${meta}`, `${f.help}${f.required ? " (required)" : ""}${def}`] as const;
  });
  const w = Math.min(40, Math.max(...rows.map(([l]) => l.length)) + 2);
  for (const [l, r] of rows) lines.push(l.length >= w ? `${l}\n${" ".repeat(w)}${r}` : `${l.padEnd(w)}${r}`);
  lines.push("", "Boolean flags take --no-<flag> (or --<flag>=false) to turn them off.");
  if (spec.examples?.length) lines.push("", "Examples:", ...spec.examples.map((e) => `  ${e}`));
  return lines.join("\n");
}

/** Typed accessors over parsed flags (throwing on a programming error, not a user error). */
export function getters(p: Parsed) {
  return {
    str: (n: string): string | undefined => p.flags[n] as string | undefined,
    num: (n: string): number | undefined => p.flags[n] as number | undefined,
    bool: (n: string): boolean => p.flags[n] === true,
    list: (n: string): string[] | undefined => p.flags[n] as string[] | undefined,
    given: (n: string): boolean => p.given.has(n),
  };
}
