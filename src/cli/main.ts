/**
 * `dora`: the command-line client of the public API (it imports nothing but ../index.js).
 * Exit codes: 0 success, 1 runtime error, 2 usage error; errors print one line unless --debug.
 */
import { UsageError, formatHelp, parseArgs, type CommandSpec, type Parsed } from "./args.js";
import { COMMANDS } from "./commands/index.js";

export interface Command {
  spec: CommandSpec;
  run(p: Parsed): Promise<void> | void;
}

function topHelp(): string {
  const w = Math.max(...COMMANDS.map((c) => c.spec.name.length)) + 2;
  return [
    "dora: DoRA and LoRA fine-tuning for Hugging Face models, in TypeScript",
    "",
    "Usage: dora <command> [flags]   (dora <command> --help for its flags)",
    "",
    "Commands:",
    ...COMMANDS.map((c) => `  ${c.spec.name.padEnd(w)}${c.spec.summary}`),
  ].join("\n");
}

export async function main(argv: readonly string[]): Promise<number> {
  const debug = argv.includes("--debug");
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${topHelp()}\n`);
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    process.stdout.write("dora-ts 0.1.0\n");
    return 0;
  }
  const cmd = COMMANDS.find((c) => c.spec.name === name);
  try {
    if (!cmd) throw new UsageError(`dora: unknown command "${name}" (commands: ${COMMANDS.map((c) => c.spec.name).join(", ")})`);
    const parsed = parseArgs(cmd.spec, rest);
    if (parsed.flags["help"]) {
      process.stdout.write(`${formatHelp(cmd.spec)}\n`);
      return 0;
    }
    await cmd.run(parsed);
    return 0;
  } catch (err) {
    const e = err as Error;
    if (debug) process.stderr.write(`${e.stack ?? e.message}\n`);
    else process.stderr.write(`error: ${e.message.split("\n")[0]}\n`);
    return e instanceof UsageError ? 2 : 1;
  }
}
