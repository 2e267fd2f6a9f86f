/**
 * The safetensors header: dtypes and the validation that runs before anything in a file is trusted.
 *
 * Layout (huggingface/safetensors): u64 little-endian N, N bytes of UTF-8 JSON, then the data area.
 * The JSON object maps tensor name -> {dtype, shape, data_offsets: [begin, end]} (byte offsets relative to
 * the data area) plus an optional "__metadata__": {string: string}.
 *
 * Checks, as the Rust library's `Metadata::validate` and stricter where it would allocate or crash: N within
 * the file and <= 100 MB; UTF-8 JSON object; known dtype; shape of non-negative safe integers;
 * product(shape) × dtype size == end − begin; offsets inside the data area; entries sorted by offset tile
 * the data area exactly (no overlap, no gap, nothing left over). Parsed entries live in a Map, so names
 * like "__proto__" are plain keys. Every failure is a SafetensorsError naming the file and the tensor.
 */
import { SafetensorsError, messageOf } from "./errors.js";

/** Dtypes this reader understands, with their on-disk names. */
export type SafetensorsDtype = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

/** Bytes per element. */
export const DTYPE_SIZE: Readonly<Record<SafetensorsDtype, number>> = Object.freeze({
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
});

/** The Rust library's MAX_HEADER_SIZE: a larger header is refused before it is read. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorEntry {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  /** Byte range [begin, end) relative to the data area. */
  readonly begin: number;
  readonly end: number;
}

export interface ParsedHeader {
  readonly entries: ReadonlyMap<string, TensorEntry>;
  /** "__metadata__", a frozen null-prototype object ({} when absent). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Absolute file offset of the data area: 8 + N. */
  readonly dataStart: number;
}

export function isDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(DTYPE_SIZE, s);
}

/** Validates the 8-byte prefix; returns N. `fileSize` is the size of the whole file. */
export function headerLength(path: string, prefix: Uint8Array, fileSize: number): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    throw new SafetensorsError(`${path}: file is ${fileSize} bytes, too short for the 8-byte header length`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError(`${path}: header length ${n} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file, or corrupted)`);
  }
  if (8n + n > BigInt(fileSize)) {
    throw new SafetensorsError(`${path}: header length ${n} runs past the end of the file (${fileSize} bytes; truncated?)`);
  }
  return Number(n);
}

/** Parses and validates the JSON header (`json`: the N header bytes). */
export function parseHeader(path: string, json: Uint8Array, fileSize: number): ParsedHeader {
  const dataStart = 8 + json.byteLength;
  const dataLength = fileSize - dataStart;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(json);
  } catch (e) {
    throw new SafetensorsError(`${path}: header is not valid UTF-8`, { cause: e });
  }
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(`${path}: header is not valid JSON: ${messageOf(e)}`, { cause: e });
  }
  if (!isPlainObject(root)) {
    throw new SafetensorsError(`${path}: header must be a JSON object, got ${describe(root)}`);
  }
  const entries = new Map<string, TensorEntry>();
  const metadata = Object.create(null) as Record<string, string>;
  for (const [name, value] of Object.entries(root)) {
    if (name === "__metadata__") {
      readMetadata(path, value, metadata);
      continue;
    }
    entries.set(name, readEntry(path, name, value, dataLength));
  }
  checkTiling(path, entries, dataLength);
  return { entries, metadata: Object.freeze(metadata), dataStart };
}

function readMetadata(path: string, value: unknown, into: Record<string, string>): void {
  if (value === null) return; // the Rust library reads a null __metadata__ as none
  if (!isPlainObject(value)) throw new SafetensorsError(`${path}: "__metadata__" must be an object of strings, got ${describe(value)}`);
  for (const [k, v] of Object.entries(value)) {
    if (typeof v !== "string") {
      throw new SafetensorsError(`${path}: "__metadata__" value for "${k}" must be a string, got ${describe(v)}`);
    }
    into[k] = v; // null-prototype object: "__proto__" is an ordinary key here
  }
}

function readEntry(path: string, name: string, value: unknown, dataLength: number): TensorEntry {
  const where = `${path}: tensor ${JSON.stringify(name)}`;
  if (!isPlainObject(value)) throw new SafetensorsError(`${where}: entry must be an object, got ${describe(value)}`);
  const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (!isDtype(dtype)) {
    throw new SafetensorsError(`${where}: unknown dtype ${describe(dtype)} (supported: ${Object.keys(DTYPE_SIZE).join(", ")})`);
  }
  if (!Array.isArray(shape) || !shape.every(isIndex)) {
    throw new SafetensorsError(`${where}: shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  const [begin, end] = Array.isArray(offsets) && offsets.length === 2 ? (offsets as unknown[]) : [];
  if (!isIndex(begin) || !isIndex(end) || begin > end) {
    throw new SafetensorsError(`${where}: data_offsets must be [begin, end] with 0 <= begin <= end, got ${describe(offsets)}`);
  }
  // BigInt: a hostile shape may multiply past 2^53.
  const needed = shape.reduce((acc: bigint, d: number) => acc * BigInt(d), 1n) * BigInt(DTYPE_SIZE[dtype]);
  if (needed !== BigInt(end - begin)) {
    throw new SafetensorsError(
      `${where}: shape ${JSON.stringify(shape)} × ${dtype} needs ${needed} bytes, data_offsets give ${end - begin}`);
  }
  if (end > dataLength) {
    throw new SafetensorsError(`${where}: data_offsets [${begin},${end}] run past the data area (${dataLength} bytes; truncated file?)`);
  }
  return { dtype, shape: Object.freeze(shape.slice() as number[]), begin, end };
}

/** Sorted by offset, the entries must cover [0, dataLength) exactly once. */
function checkTiling(path: string, entries: ReadonlyMap<string, TensorEntry>, dataLength: number): void {
  const sorted = [...entries].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: [string, TensorEntry] | undefined;
  for (const item of sorted) {
    const [name, e] = item;
    if (e.begin < covered && previous !== undefined) {
      const [pn, pe] = previous;
      throw new SafetensorsError(`${path}: tensors ${JSON.stringify(pn)} [${pe.begin},${pe.end}] and ` +
        `${JSON.stringify(name)} [${e.begin},${e.end}] overlap in the data area`);
    }
    if (e.begin > covered) {
      throw new SafetensorsError(`${path}: gap in the data area: bytes [${covered},${e.begin}) belong to no tensor ` +
        `(before tensor ${JSON.stringify(name)})`);
    }
    covered = e.end;
    if (e.end > e.begin) previous = item; // an empty tensor never overlaps
  }
  if (covered !== dataLength) {
    throw new SafetensorsError(`${path}: data area is ${dataLength} bytes but the tensors cover only [0,${covered}); ` +
      `${dataLength - covered} trailing bytes belong to no tensor`);
  }
}

function isIndex(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  return typeof x === "object" && x !== null && !Array.isArray(x);
}

/** A short description of a JSON value for messages (never the whole of a big value). */
function describe(x: unknown): string {
  if (x === undefined) return "nothing";
  const s = JSON.stringify(x);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

/** Name order of the Rust library: by UTF-8 bytes (differs from UTF-16 order only past the BMP). */
export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

export const HOST_LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/**
 * Host order <-> little-endian (the file's order), in place, for elements of `size` bytes: a no-op on
 * little-endian hosts. The swap is its own inverse, so it serves reading and writing.
 */
export function swapToLittleEndian(bytes: Uint8Array, size: number): Uint8Array {
  if (HOST_LITTLE_ENDIAN || size === 1) return bytes;
  for (let i = 0; i < bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  return bytes;
}
