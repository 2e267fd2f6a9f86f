/**
 * Error classes of the io layer. Every message starts with the file path and names the problem (and the
 * tensor or key when there is one); the underlying Node error, if any, is kept as `cause`.
 */

/** A file could not be read or written (missing file, permissions, failed atomic write). */
export class IoError extends Error {
  override name = "IoError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A JSON file is unreadable or not valid JSON (see `readJsonFile`). */
export class JsonFileError extends IoError {
  override name = "JsonFileError";
}

/** A safetensors file (or sharded checkpoint) is malformed, or a read or write request is invalid. */
export class SafetensorsError extends IoError {
  override name = "SafetensorsError";
}

/** The message of any thrown value, for wrapping it in one of ours. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
