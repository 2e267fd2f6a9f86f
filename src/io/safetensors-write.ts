/**
 * safetensors writer (Python `safetensors.torch.save_file`), atomic through `writeFileAtomic`.
 *
 * Layout as the Rust library writes it: header JSON with "__metadata__" first, then the tensors ordered
 * by dtype size (largest first) and then by name. With the header padded by spaces to a multiple of 8,
 * every tensor then starts at a multiple of its element size (for a single dtype this is plain name
 * order, as in PEFT's adapter_model.safetensors). Data is little-endian, tensors back to back.
 * Everything is validated before the temp file is created.
 */
import { f32ToBf16, f32ToF16 } from "../tensor/half.js";
import { SafetensorsError, messageOf } from "./errors.js";
import { writeFileAtomic } from "./json.js";
import { DTYPE_SIZE, HOST_LITTLE_ENDIAN, compareNames, swapToLittleEndian } from "./safetensors-header.js";

export type WritableDtype = "F32" | "F16" | "BF16" | "I64" | "I32";

/**
 * One tensor to write. `data` is row-major with product(shape) elements:
 * F32 ← Float32Array; F16/BF16 ← Uint16Array (raw half bits) or Float32Array (rounded to nearest even);
 * I64 ← BigInt64Array or Int32Array (widened); I32 ← Int32Array.
 */
export interface TensorToWrite {
  readonly dtype: WritableDtype;
  readonly shape: readonly number[];
  readonly data: Float32Array | Uint16Array | BigInt64Array | Int32Array;
}

/**
 * Writes `tensors` to `path` atomically (temp file in the same folder, fsync, rename): on any error the
 * old file, if any, is left intact. `metadata` is written as "__metadata__" (default {"format": "pt"},
 * what `safetensors.torch.save_file` users and PEFT write; pass {} to omit it). Throws SafetensorsError.
 */
export function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, TensorToWrite>> | ReadonlyMap<string, TensorToWrite>,
  metadata: Readonly<Record<string, string>> = { format: "pt" },
): void {
  const named = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const prepared = named.map(([name, t]) => prepare(path, name, t));
  prepared.sort((a, b) => DTYPE_SIZE[b.dtype] - DTYPE_SIZE[a.dtype] || compareNames(a.name, b.name));

  const parts: string[] = [];
  const metaKeys = Object.keys(metadata).sort(compareNames);
  if (metaKeys.length > 0) {
    const meta = metaKeys.map((k) => {
      const v = metadata[k];
      if (typeof v !== "string") throw new SafetensorsError(`${path}: metadata value for "${k}" must be a string`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${meta.join(",")}}`);
  }
  let offset = 0;
  for (const t of prepared) {
    // Written by hand, not JSON.stringify of an object: keys keep our order even when they look like
    // integers, and a tensor named "__proto__" stays a key.
    const entry = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.byteLength] };
    parts.push(`${JSON.stringify(t.name)}:${JSON.stringify(entry)}`);
    offset += t.bytes.byteLength;
  }
  const header = `{${parts.join(",")}}`;
  const headerBytes = Buffer.from(header + " ".repeat((8 - (Buffer.byteLength(header) % 8)) % 8), "utf8");
  const prefix = new Uint8Array(8);
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.byteLength), true);

  try {
    writeFileAtomic(path, [prefix, headerBytes, ...prepared.map((t) => t.bytes)]);
  } catch (e) {
    throw new SafetensorsError(messageOf(e), { cause: e });
  }
}

interface Prepared {
  readonly name: string;
  readonly dtype: WritableDtype;
  readonly shape: readonly number[];
  readonly bytes: Uint8Array; // little-endian
}

function prepare(path: string, name: string, t: TensorToWrite): Prepared {
  const where = `${path}: tensor ${JSON.stringify(name)}`;
  if (name === "__metadata__") throw new SafetensorsError(`${where}: "__metadata__" is reserved for the metadata`);
  const { dtype, shape, data } = t;
  if (!Object.prototype.hasOwnProperty.call(DTYPE_SIZE, dtype) || !["F32", "F16", "BF16", "I64", "I32"].includes(dtype)) {
    throw new SafetensorsError(`${where}: cannot write dtype ${String(dtype)} (writable: F32, F16, BF16, I64, I32)`);
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(`${where}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const count = shape.reduce((a, d) => a * d, 1);
  if (!Number.isSafeInteger(count) || count !== data.length) {
    throw new SafetensorsError(`${where}: shape ${JSON.stringify(shape)} has ${count} elements, data has ${data.length}`);
  }
  const wrong = (): never => {
    throw new SafetensorsError(`${where}: dtype ${dtype} cannot be written from a ${data.constructor.name} ` +
      `(F32: Float32Array; F16/BF16: Uint16Array bits or Float32Array; I64: BigInt64Array or Int32Array; I32: Int32Array)`);
  };
  let out: Float32Array | Uint16Array | BigInt64Array | Int32Array;
  switch (dtype) {
    case "F32": out = data instanceof Float32Array ? data : wrong(); break;
    case "F16": out = data instanceof Uint16Array ? data : data instanceof Float32Array ? f32ToF16(data) : wrong(); break;
    case "BF16": out = data instanceof Uint16Array ? data : data instanceof Float32Array ? f32ToBf16(data) : wrong(); break;
    case "I64": out = data instanceof BigInt64Array ? data : data instanceof Int32Array ? BigInt64Array.from(data, (v) => BigInt(v)) : wrong(); break;
    case "I32": out = data instanceof Int32Array ? data : wrong(); break;
  }
  let bytes = new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  if (!HOST_LITTLE_ENDIAN) bytes = swapToLittleEndian(bytes.slice(), DTYPE_SIZE[dtype]); // swap a copy, not the caller's
  return { name, dtype, shape, bytes };
}
