/**
 * JSON files and the project's one atomic file writer.
 * - `readJsonFile` reads UTF-8 JSON (a leading BOM is tolerated) and returns `unknown`: the caller
 *   validates the shape (configs in `peft/config.ts`, indexes in `model-weights.ts`).
 * - `writeFileAtomic` writes a temp file in the target's folder, fsyncs it, renames it over the target and
 *   fsyncs the folder, so readers see the old file or the new one, never a torn one. On any error the temp
 *   file is removed and an existing target is left untouched. The safetensors writer uses it too.
 */
import { randomBytes } from "node:crypto";
import { closeSync, fchmodSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { IoError, JsonFileError, messageOf } from "./errors.js";

/**
 * Reads and parses a JSON file (like Python's `json.load(open(path))`). `what` names the file's role in
 * messages, e.g. "adapter config": `adapter_config.json: adapter config is not valid JSON: ... (line 3, column 5)`.
 */
export function readJsonFile(path: string, what: string): unknown {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new JsonFileError(`${path}: cannot read ${what}: ${messageOf(e)}`, { cause: e });
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes); // strips one leading BOM
  } catch (e) {
    throw new JsonFileError(`${path}: ${what} is not valid UTF-8`, { cause: e });
  }
  return parseJson(text, `${path}: ${what}`);
}

/** JSON.parse with a message naming `where` and, when V8 gives a position, its line and column. */
export function parseJson(text: string, where: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new JsonFileError(`${where} is not valid JSON: ${describeJsonError(text, e)}`, { cause: e });
  }
}

function describeJsonError(text: string, e: unknown): string {
  const msg = messageOf(e);
  const m = /at position (\d+)/.exec(msg);
  if (m === null || /line \d+/.test(msg)) return msg;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split("\n").length;
  const column = pos - before.lastIndexOf("\n");
  return `${msg} (line ${line}, column ${column})`;
}

/**
 * Atomically replaces `path` with `data` (a string is written as UTF-8; an iterable of chunks is written in
 * order, so large files need not be joined into one buffer). A new file gets the default mode, a replaced
 * one keeps its mode. Throws IoError naming the path; the old file, if any, is then intact.
 */
export function writeFileAtomic(path: string, data: string | Uint8Array | Iterable<Uint8Array>): void {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  let fd: number | undefined;
  try {
    fd = openSync(tmp, "wx");
    const mode = existingMode(path);
    if (mode !== undefined) fchmodSync(fd, mode);
    const chunks = typeof data === "string" ? [Buffer.from(data, "utf8")] : data instanceof Uint8Array ? [data] : data;
    for (const chunk of chunks) writeFully(fd, chunk);
    fsyncSync(fd);
    const done = fd;
    fd = undefined;
    closeSync(done);
    renameSync(tmp, path);
  } catch (e) {
    if (fd !== undefined) {
      try { closeSync(fd); } catch { /* already failing; the write error is the one to report */ }
    }
    try { unlinkSync(tmp); } catch { /* never created, or already renamed */ }
    throw new IoError(`${path}: write failed, existing file left unchanged: ${messageOf(e)}`, { cause: e });
  }
  syncDir(dir);
}

function existingMode(path: string): number | undefined {
  try {
    return statSync(path).mode & 0o7777;
  } catch {
    return undefined;
  }
}

/** writeSync may write less than asked; loop until the chunk is out. */
function writeFully(fd: number, chunk: Uint8Array): void {
  let off = 0;
  while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
}

/** Makes the rename durable. Best effort: some platforms and file systems cannot open or fsync a folder. */
function syncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // Not an error of the write: the data is already in place.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}
