/** Helpers the commands share: path checks that name the flag, and loading a model folder with its tokenizer. */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { UsageError } from "../args.js";
import { HfTokenizer, models } from "../../index.js";

/** A path given by --flag must exist (and be a folder / a file when asked). */
export function requirePath(flag: string, path: string | undefined, kind: "dir" | "file" | "any" = "any"): string {
  const label = /^[A-Z]+$/.test(flag) ? flag : `--${flag}`; // a positional (DIR) or a flag
  if (path === undefined) throw new UsageError(`missing required ${label}`);
  if (!existsSync(path)) throw new UsageError(`${label} ${path}: no such ${kind === "dir" ? "folder" : kind === "file" ? "file" : "path"}`);
  const isDir = statSync(path).isDirectory();
  if (kind === "dir" && !isDir) throw new UsageError(`${label} ${path}: expected a folder, found a file`);
  if (kind === "file" && isDir) throw new UsageError(`${label} ${path}: expected a file, found a folder`);
  return path;
}

/** The tokenizer of a model folder, or null when it has none (pre-tokenized data still works). */
export function tokenizerIfAny(dir: string): HfTokenizer | null {
  return existsSync(join(dir, "tokenizer.json")) ? HfTokenizer.fromDir(dir) : null;
}

export function formatCount(n: number): string {
  return n.toLocaleString("en-US");
}

/** --model: a local folder, or a hub id (downloaded once into the HF cache). */
export async function openModel(flag: string, value: string | undefined): Promise<{ model: models.CausalLM; dir: string }> {
  if (value === undefined) throw new UsageError(`missing required flag --${flag}`);
  if (!existsSync(value) && !models.looksLikeHubId(value)) throw new UsageError(`--${flag} ${value}: no such folder (and not a hub id)`);
  if (existsSync(value)) requirePath(flag, value, "dir");
  const dir = existsSync(value) ? value : await models.downloadModel(value);
  return { model: models.loadModelFromDir(dir), dir };
}
