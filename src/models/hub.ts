/**
 * Hugging Face Hub downloads into HF's cache layout, so dora-ts and huggingface_hub share one cache:
 * `${HF_HUB_CACHE ?? HF_HOME/hub}/models--org--name/refs/<revision>` holds the commit and
 * `snapshots/<commit>/<file>` the files (written as plain files; huggingface_hub's blobs/ symlinks are not
 * made). Files come from `${HF_ENDPOINT}/<id>/resolve/<revision>/<file>` with `HF_TOKEN` as bearer token.
 *
 * A snapshot that already holds config.json and complete weights is used without touching the network
 * (downloaded once; no update check). Offline (`HF_HUB_OFFLINE=1` or `offline: true`) with no such snapshot,
 * or an unreachable endpoint, is an error naming the id and the cache folder.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { INDEX_FILE, SINGLE_FILE } from "../io/index.js";

export class HubError extends Error {
  override name = "HubError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export interface HubOptions {
  /** Branch, tag or commit (default "main"). */
  revision?: string;
  /** Overrides HF_HUB_CACHE / HF_HOME. */
  cacheDir?: string;
  /** Overrides HF_ENDPOINT (default https://huggingface.co). */
  endpoint?: string;
  /** Overrides HF_TOKEN. */
  token?: string;
  /** Never use the network (also HF_HUB_OFFLINE=1). */
  offline?: boolean;
  /** Where progress goes (default process.stderr; a bar on a TTY, plain lines otherwise); false for silence. */
  progress?: NodeJS.WritableStream | false;
}

/** Files fetched besides the weights when the repo has them. */
const OPTIONAL_FILES = ["generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"];

/** `org/name` or `name`, and not an existing path. */
export function looksLikeHubId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*(\/[\w.-]+)?$/.test(s) && !s.includes("..") && !existsSync(s);
}

export function hubCacheDir(opts: HubOptions = {}): string {
  if (opts.cacheDir) return opts.cacheDir;
  const env = process.env;
  if (env["HF_HUB_CACHE"]) return env["HF_HUB_CACHE"];
  return join(env["HF_HOME"] ?? join(env["XDG_CACHE_HOME"] ?? join(homedir(), ".cache"), "huggingface"), "hub");
}

export function repoCacheDir(repoId: string, opts: HubOptions = {}): string {
  return join(hubCacheDir(opts), `models--${repoId.replace(/\//g, "--")}`);
}

/** The shard names an index lists, or null when the index is unreadable. */
function shardNames(indexPath: string): string[] | null {
  try {
    const idx = JSON.parse(readFileSync(indexPath, "utf8")) as { weight_map?: Record<string, string> };
    return [...new Set(Object.values(idx.weight_map ?? {}))];
  } catch {
    return null;
  }
}

/** The cached snapshot for `revision` if it has config.json and complete weights. */
function cachedSnapshot(repoDir: string, revision: string): string | null {
  const ref = join(repoDir, "refs", revision);
  const commit = existsSync(ref) ? readFileSync(ref, "utf8").trim() : revision;
  const snap = join(repoDir, "snapshots", commit);
  if (!existsSync(join(snap, "config.json"))) return null;
  if (existsSync(join(snap, SINGLE_FILE))) return snap;
  const shards = existsSync(join(snap, INDEX_FILE)) ? shardNames(join(snap, INDEX_FILE)) : null;
  return shards && shards.every((s) => /^[\w.-]+$/.test(s) && existsSync(join(snap, s))) ? snap : null;
}

/**
 * Makes sure `repoId`'s config, weights and tokenizer files are in the cache and returns the snapshot folder
 * (huggingface_hub's `snapshot_download`, limited to the files a causal LM needs).
 */
export async function downloadModel(repoId: string, opts: HubOptions = {}): Promise<string> {
  const revision = opts.revision ?? "main";
  const repoDir = repoCacheDir(repoId, opts);
  const cached = cachedSnapshot(repoDir, revision);
  if (cached) return cached;
  const offline = opts.offline ?? ["1", "true", "yes"].includes((process.env["HF_HUB_OFFLINE"] ?? "").toLowerCase());
  if (offline) {
    throw new HubError(`${repoId}: not in the cache (${repoDir}) and offline mode is on (HF_HUB_OFFLINE); ` +
      `download it once online, or pass a local model folder`);
  }
  const endpoint = (opts.endpoint ?? process.env["HF_ENDPOINT"] ?? "https://huggingface.co").replace(/\/+$/, "");
  const token = opts.token ?? process.env["HF_TOKEN"];
  const progress = opts.progress === false ? null : (opts.progress ?? process.stderr);
  const get = async (file: string): Promise<Response> => {
    const url = `${endpoint}/${repoId}/resolve/${encodeURIComponent(revision)}/${file}`;
    try {
      return await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {}, redirect: "follow" });
    } catch (e) {
      throw new HubError(`${repoId}: cannot reach ${endpoint} to download ${file} (${(e as Error).message}) and ` +
        `no cached copy in ${repoDir}; check the network or HF_ENDPOINT, or set HF_HUB_OFFLINE=1 with a filled cache`, { cause: e });
    }
  };
  const fail = (file: string, res: Response): never => {
    const why = res.status === 401 || res.status === 403
      ? "access denied: the repo is gated or private; set HF_TOKEN to a token with access"
      : res.status === 404 ? "not found (check the repo id and revision)" : `HTTP ${res.status} ${res.statusText}`;
    throw new HubError(`${repoId}: downloading ${file} from ${endpoint}: ${why}`);
  };

  const config = await get("config.json");
  if (!config.ok) fail("config.json", config);
  const commit = config.headers.get("x-repo-commit") ?? revision;
  if (!/^[\w.-]+$/.test(commit)) throw new HubError(`${repoId}: server sent a bad commit id ${JSON.stringify(commit)}`);
  const snap = join(repoDir, "snapshots", commit);
  mkdirSync(snap, { recursive: true });
  await save(config, join(snap, "config.json"), "config.json", progress);

  const single = await get(SINGLE_FILE);
  if (single.ok) {
    await save(single, join(snap, SINGLE_FILE), SINGLE_FILE, progress);
  } else {
    await single.body?.cancel();
    const index = await get(INDEX_FILE);
    if (!index.ok) {
      if (index.status === 404) throw new HubError(`${repoId}: the repo has neither ${SINGLE_FILE} nor ${INDEX_FILE} (dora-ts reads safetensors only)`);
      fail(INDEX_FILE, index);
    }
    await save(index, join(snap, INDEX_FILE), INDEX_FILE, progress);
    const shards = shardNames(join(snap, INDEX_FILE));
    if (!shards) throw new HubError(`${repoId}: ${INDEX_FILE} is not a valid safetensors index`);
    for (const shard of shards) {
      if (!/^[\w.-]+$/.test(shard)) throw new HubError(`${repoId}: ${INDEX_FILE} names a bad shard file ${JSON.stringify(shard)}`);
      const res = await get(shard);
      if (!res.ok) fail(shard, res);
      await save(res, join(snap, shard), shard, progress);
    }
  }
  for (const file of OPTIONAL_FILES) {
    const res = await get(file);
    if (res.ok) await save(res, join(snap, file), file, progress);
    else if (res.status === 404) await res.body?.cancel();
    else fail(file, res);
  }
  // The ref is written last: a snapshot is only found through it once complete.
  mkdirSync(join(repoDir, "refs"), { recursive: true });
  if (commit !== revision) writeFileSimple(join(repoDir, "refs", revision), commit);
  return snap;
}

function writeFileSimple(path: string, text: string): void {
  const fd = openSync(path, "w");
  try { writeSync(fd, text); } finally { closeSync(fd); }
}

/** Streams a response body to `path` through `path.incomplete`, reporting progress. */
async function save(res: Response, path: string, name: string, out: NodeJS.WritableStream | null): Promise<void> {
  // content-length counts encoded bytes; fetch hands us decoded ones
  const total = res.headers.get("content-encoding") ? NaN : Number(res.headers.get("content-length") ?? NaN);
  const tty = out !== null && (out as { isTTY?: boolean }).isTTY === true;
  const tmp = `${path}.incomplete`;
  const fd = openSync(tmp, "w");
  let done = 0, lastDraw = 0;
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  const draw = (final: boolean): void => {
    if (!out || !tty) return;
    const frac = Number.isFinite(total) && total > 0 ? done / total : 0;
    const bar = "#".repeat(Math.round(frac * 30)).padEnd(30, " ");
    out.write(`\r${name} [${bar}] ${(frac * 100).toFixed(0).padStart(3)}% ${mb(done)}/${Number.isFinite(total) ? mb(total) : "?"} MB${final ? "\n" : ""}`);
  };
  if (out && !tty) out.write(`downloading ${name}${Number.isFinite(total) ? ` (${mb(total)} MB)` : ""}\n`);
  try {
    if (res.body) {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        let off = 0;
        while (off < chunk.byteLength) off += writeSync(fd, chunk, off, chunk.byteLength - off);
        done += chunk.byteLength;
        if (Date.now() - lastDraw > 100) { draw(false); lastDraw = Date.now(); }
      }
    }
    closeSync(fd);
  } catch (e) {
    closeSync(fd);
    try { unlinkSync(tmp); } catch { /* already gone */ }
    throw new HubError(`downloading ${name}: ${(e as Error).message}`, { cause: e });
  }
  if (Number.isFinite(total) && done !== total) {
    unlinkSync(tmp);
    throw new HubError(`downloading ${name}: got ${done} of ${total} bytes (connection cut?)`);
  }
  renameSync(tmp, path);
  draw(true);
  if (out && !tty) out.write(`downloaded ${name} (${mb(done)} MB)\n`);
}
