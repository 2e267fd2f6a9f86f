/**
 * The project's one safetensors reader (and, re-exported, writer): Python's
 * `safetensors.safe_open(path, "pt")` / `safetensors.torch.save_file`.
 *
 * `SafetensorsFile` reads only the header when opened (validated by `safetensors-header.ts`), keeps the
 * file descriptor, and reads each tensor on request with positioned reads at its offset: a checkpoint is
 * never loaded whole. Reads return fresh, aligned arrays the caller owns. Data on disk is little-endian;
 * on a big-endian host it is byte-swapped after reading.
 */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { bf16ToF32, f16ToF32 } from "../tensor/half.js";
import { SafetensorsError, messageOf } from "./errors.js";
import {
  type SafetensorsDtype, type TensorEntry, compareNames, headerLength, parseHeader, swapToLittleEndian,
} from "./safetensors-header.js";

export { DTYPE_SIZE, MAX_HEADER_BYTES, type SafetensorsDtype } from "./safetensors-header.js";
export { type TensorToWrite, type WritableDtype, writeSafetensors } from "./safetensors-write.js";

export interface TensorInfo {
  readonly dtype: SafetensorsDtype;
  readonly shape: readonly number[];
  readonly byteLength: number;
}

/** A keyed, read-only view of tensors: one safetensors file, or a sharded checkpoint (`openModelWeights`). */
export interface TensorSource {
  /** The file (or index file) the tensors come from, as given. */
  readonly path: string;
  /** "__metadata__" of the file (of the first shard for a sharded checkpoint). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Tensor names, sorted (as `safe_open(...).keys()`). */
  keys(): string[];
  has(name: string): boolean;
  info(name: string): TensorInfo;
  /** The tensor's bytes as stored (little-endian). */
  readRaw(name: string): Uint8Array;
  /** F32, F16, BF16 (exact) or F64 (rounded to nearest) as float32. */
  readFloat32(name: string): Float32Array;
  /** I32, I64 (each value range-checked), I16, I8, U8 or BOOL as int32. */
  readInt32(name: string): Int32Array;
  /** Releases the file descriptor(s); later reads throw. Closing twice is harmless. */
  close(): void;
}

// Node caps one read at 2 GiB - 1; read big tensors in 1 GiB pieces.
const READ_CHUNK = 1 << 30;

export class SafetensorsFile implements TensorSource {
  private fd: number | undefined;
  private readonly sortedKeys: readonly string[];

  private constructor(
    readonly path: string,
    fd: number,
    private readonly entries: ReadonlyMap<string, TensorEntry>,
    readonly metadata: Readonly<Record<string, string>>,
    private readonly dataStart: number,
  ) {
    this.fd = fd;
    this.sortedKeys = [...entries.keys()].sort(compareNames);
  }

  /** Opens `path` and reads and validates its header only. Throws SafetensorsError. */
  static openSync(path: string): SafetensorsFile {
    let fd: number;
    try {
      fd = openSync(path, "r");
    } catch (e) {
      throw new SafetensorsError(`${path}: cannot open: ${messageOf(e)}`, { cause: e });
    }
    try {
      const size = fstatSync(fd).size;
      const prefix = new Uint8Array(Math.min(size, 8)); // headerLength rejects a file under 8 bytes
      readAt(path, fd, prefix, 0, "header length");
      const n = headerLength(path, prefix, size); // bounded by the file size and 100 MB before allocating
      const json = new Uint8Array(n);
      readAt(path, fd, json, 8, "header");
      const header = parseHeader(path, json, size);
      return new SafetensorsFile(path, fd, header.entries, header.metadata, header.dataStart);
    } catch (e) {
      closeSync(fd);
      throw e instanceof SafetensorsError ? e : new SafetensorsError(`${path}: ${messageOf(e)}`, { cause: e });
    }
  }

  /** Promise form of `openSync` (the header read itself is synchronous and small). */
  static async open(path: string): Promise<SafetensorsFile> {
    return SafetensorsFile.openSync(path);
  }

  keys(): string[] {
    return this.sortedKeys.slice();
  }

  has(name: string): boolean {
    return this.entries.has(name);
  }

  info(name: string): TensorInfo {
    const e = this.entry(name);
    return { dtype: e.dtype, shape: e.shape, byteLength: e.end - e.begin };
  }

  readRaw(name: string): Uint8Array {
    const e = this.entry(name);
    if (this.fd === undefined) throw new SafetensorsError(`${this.path}: tensor ${JSON.stringify(name)}: file is closed`);
    const out = new Uint8Array(e.end - e.begin); // size already checked against the file size
    readAt(this.path, this.fd, out, this.dataStart + e.begin, `tensor ${JSON.stringify(name)}`);
    return out;
  }

  readFloat32(name: string): Float32Array {
    const { dtype } = this.entry(name);
    const raw = this.readRaw(name); // little-endian; swapToLittleEndian turns it to host order (same swap)
    switch (dtype) {
      case "F32": return new Float32Array(swapToLittleEndian(raw, 4).buffer);
      case "F16": return f16ToF32(new Uint16Array(swapToLittleEndian(raw, 2).buffer));
      case "BF16": return bf16ToF32(new Uint16Array(swapToLittleEndian(raw, 2).buffer));
      case "F64": return new Float32Array(new Float64Array(swapToLittleEndian(raw, 8).buffer)); // rounds to nearest
      default:
        throw new SafetensorsError(`${this.path}: tensor ${JSON.stringify(name)} has dtype ${dtype}; ` +
          `readFloat32 reads F32, F16, BF16 or F64 (use readInt32 for integer tensors)`);
    }
  }

  readInt32(name: string): Int32Array {
    const { dtype } = this.entry(name);
    const raw = this.readRaw(name);
    switch (dtype) {
      case "I32": return new Int32Array(swapToLittleEndian(raw, 4).buffer);
      case "I16": return Int32Array.from(new Int16Array(swapToLittleEndian(raw, 2).buffer));
      case "I8": return Int32Array.from(new Int8Array(raw.buffer));
      case "U8": case "BOOL": return Int32Array.from(raw);
      case "I64": {
        const src = new BigInt64Array(swapToLittleEndian(raw, 8).buffer);
        const out = new Int32Array(src.length);
        for (let i = 0; i < src.length; i++) {
          const v = src[i]!;
          if (v < -2147483648n || v > 2147483647n) {
            throw new SafetensorsError(`${this.path}: tensor ${JSON.stringify(name)}: I64 value ${v} at index ${i} ` +
              `does not fit in int32`);
          }
          out[i] = Number(v);
        }
        return out;
      }
      default:
        throw new SafetensorsError(`${this.path}: tensor ${JSON.stringify(name)} has dtype ${dtype}; ` +
          `readInt32 reads I64, I32, I16, I8, U8 or BOOL (use readFloat32 for float tensors)`);
    }
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }

  private entry(name: string): TensorEntry {
    const e = this.entries.get(name);
    if (e === undefined) {
      throw new SafetensorsError(`${this.path}: no tensor named ${JSON.stringify(name)} (file has ${this.entries.size} tensors)`);
    }
    return e;
  }
}

/** Fills `into` from file offset `position`, failing clearly if the file ends first. */
function readAt(path: string, fd: number, into: Uint8Array, position: number, what: string): void {
  let done = 0;
  while (done < into.byteLength) {
    let n: number;
    try {
      n = readSync(fd, into, done, Math.min(READ_CHUNK, into.byteLength - done), position + done);
    } catch (e) {
      throw new SafetensorsError(`${path}: reading ${what} failed: ${messageOf(e)}`, { cause: e });
    }
    if (n === 0) {
      throw new SafetensorsError(`${path}: file ended while reading ${what} (${done} of ${into.byteLength} bytes at offset ${position}; truncated?)`);
    }
    done += n;
  }
}
