/**
 * A model folder's weights as one keyed view, as transformers' `from_pretrained` finds them:
 * `model.safetensors`, else `model.safetensors.index.json` ({"metadata": {...}, "weight_map": {tensor
 * name: shard file name}}) with its shards beside it. Shards are opened (header only) up front, so a bad
 * shard fails at open, not in the middle of loading. The weight_map is authoritative: every listed tensor
 * must be in its shard, and tensors a shard holds but the map does not list are not shown.
 */
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { JsonFileError, SafetensorsError } from "./errors.js";
import { readJsonFile } from "./json.js";
import { SafetensorsFile, type TensorInfo, type TensorSource } from "./safetensors.js";
import { compareNames } from "./safetensors-header.js";

export const SINGLE_FILE = "model.safetensors";
export const INDEX_FILE = "model.safetensors.index.json";

/**
 * Opens the weights of a model folder (or one .safetensors file given directly). Prefers
 * `model.safetensors` over the index when both exist, as transformers does. Throws SafetensorsError.
 */
export function openModelWeights(dir: string): TensorSource {
  if (isFile(dir)) return SafetensorsFile.openSync(dir);
  const single = join(dir, SINGLE_FILE);
  if (isFile(single)) return SafetensorsFile.openSync(single);
  const index = join(dir, INDEX_FILE);
  if (isFile(index)) return ShardedSafetensors.openSync(index, dir);
  const hint = existsSync(join(dir, "pytorch_model.bin"))
    ? "; found pytorch_model.bin, a PyTorch pickle dora-ts does not read: convert it with safetensors' convert script"
    : "";
  throw new SafetensorsError(`${dir}: no model weights: expected ${SINGLE_FILE} or ${INDEX_FILE}${hint}`);
}

/** A sharded checkpoint: tensor names routed to their shard's SafetensorsFile. */
export class ShardedSafetensors implements TensorSource {
  private constructor(
    readonly path: string,
    private readonly route: ReadonlyMap<string, SafetensorsFile>,
    private readonly shards: readonly SafetensorsFile[],
    private readonly sortedKeys: readonly string[],
  ) {}

  get metadata(): Readonly<Record<string, string>> {
    return this.shards[0]?.metadata ?? Object.freeze(Object.create(null) as Record<string, string>);
  }

  /** Opens the index at `indexPath`; shard names resolve inside `dir`. */
  static openSync(indexPath: string, dir: string): ShardedSafetensors {
    let index: unknown;
    try {
      index = readJsonFile(indexPath, "safetensors index");
    } catch (e) {
      throw e instanceof JsonFileError ? new SafetensorsError(e.message, { cause: e }) : e;
    }
    const weightMap = typeof index === "object" && index !== null ? (index as Record<string, unknown>)["weight_map"] : undefined;
    if (typeof weightMap !== "object" || weightMap === null || Array.isArray(weightMap)) {
      throw new SafetensorsError(`${indexPath}: "weight_map" must be an object {tensor name: shard file}`);
    }
    const wanted = new Map<string, string>(); // tensor -> shard file name
    for (const [name, file] of Object.entries(weightMap)) {
      // Shards are siblings of the index: a path would let an index point anywhere on disk.
      if (typeof file !== "string" || file === "" || file === "." || file === ".." || /[/\\]/.test(file)) {
        throw new SafetensorsError(`${indexPath}: weight_map[${JSON.stringify(name)}] must be a file name in ${dir}, ` +
          `got ${JSON.stringify(file)}`);
      }
      wanted.set(name, file);
    }
    const files = new Map<string, SafetensorsFile>();
    try {
      for (const file of [...new Set(wanted.values())].sort(compareNames)) {
        files.set(file, SafetensorsFile.openSync(join(dir, file)));
      }
      const route = new Map<string, SafetensorsFile>();
      for (const [name, file] of wanted) {
        const shard = files.get(file)!;
        if (!shard.has(name)) {
          throw new SafetensorsError(`${indexPath}: tensor ${JSON.stringify(name)} is mapped to ${file}, which has no such tensor`);
        }
        route.set(name, shard);
      }
      return new ShardedSafetensors(indexPath, route, [...files.values()], [...route.keys()].sort(compareNames));
    } catch (e) {
      for (const f of files.values()) f.close();
      throw e;
    }
  }

  keys(): string[] {
    return this.sortedKeys.slice();
  }

  has(name: string): boolean {
    return this.route.has(name);
  }

  info(name: string): TensorInfo {
    return this.shard(name).info(name);
  }

  readRaw(name: string): Uint8Array {
    return this.shard(name).readRaw(name);
  }

  readFloat32(name: string): Float32Array {
    return this.shard(name).readFloat32(name);
  }

  readInt32(name: string): Int32Array {
    return this.shard(name).readInt32(name);
  }

  close(): void {
    for (const f of this.shards) f.close();
  }

  private shard(name: string): SafetensorsFile {
    const f = this.route.get(name);
    if (f === undefined) {
      throw new SafetensorsError(`${this.path}: no tensor named ${JSON.stringify(name)} in weight_map (${this.route.size} tensors)`);
    }
    return f;
  }
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}
