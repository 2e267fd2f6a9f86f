/**
 * Hub downloads against a 127.0.0.1 server that answers `/<org>/<name>/resolve/<rev>/<file>` from a fixture
 * folder like huggingface.co does (X-Repo-Commit header, 404 for absent files). Nothing leaves the machine.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createServer, type Server } from "node:http";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { HubError, loadModel, loadModelFromDir } from "../../src/models/index.js";
import { indexTensor, noGrad } from "../../src/tensor/index.js";
import { GOLDEN_DIR } from "../helpers/golden.js";

const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const TOKENIZER_DIR = join(GOLDEN_DIR, "..", "tokenizer");
let server: Server;
let endpoint = "";
const requests: { url: string; auth: string | undefined }[] = [];
const root = mkdtempSync(join(tmpdir(), "dora-hub-"));

beforeAll(async () => {
  server = createServer((req, res) => {
    requests.push({ url: req.url ?? "", auth: req.headers.authorization });
    const m = /^\/([\w.-]+)\/([\w.-]+)\/resolve\/([\w.-]+)\/([\w.-]+)$/.exec(req.url ?? "");
    if (req.url?.startsWith("/private/") && req.headers.authorization !== "Bearer secret") { res.writeHead(401).end(); return; }
    const folders: Record<string, string> = { "tiny/llama": join(GOLDEN_DIR, "tiny_llama"), "private/llama": join(GOLDEN_DIR, "tiny_llama") };
    const dir = m ? folders[`${m[1]}/${m[2]}`] : undefined;
    const file = m && dir ? [join(dir, m[4]!), join(TOKENIZER_DIR, m[4]!)].find((p) => existsSync(p) && /^(tokenizer|config|model)/.test(m[4]!)) : undefined;
    if (!file) { res.writeHead(404).end("Entry not found"); return; }
    const body = readFileSync(file);
    res.writeHead(200, { "content-length": body.length, "x-repo-commit": COMMIT, etag: `"${body.length}"` }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  endpoint = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(root, { recursive: true, force: true });
});

const ids = indexTensor([1, 5, 9, 3], [1, 4]);

describe("hub", () => {
  it("downloads once into HF's cache layout, then loads from the cache offline", async () => {
    const home = join(root, "hf1");
    const progress = new PassThrough();
    let log = "";
    progress.on("data", (c: Buffer) => (log += c.toString()));
    const m = await loadModel("tiny/llama", { hub: { endpoint, cacheDir: join(home, "hub"), progress } });
    const repo = join(home, "hub", "models--tiny--llama");
    expect(readFileSync(join(repo, "refs", "main"), "utf8")).toBe(COMMIT);
    const snap = join(repo, "snapshots", COMMIT);
    expect(readdirSync(snap).sort()).toEqual(["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"]);
    expect(statSync(join(snap, "model.safetensors")).size).toBe(statSync(join(GOLDEN_DIR, "tiny_llama", "model.safetensors")).size);
    expect(log).toMatch(/downloading model.safetensors \(\d+\.\d MB\)\ndownloaded model.safetensors/); // not a TTY: plain lines
    const local = loadModelFromDir(join(GOLDEN_DIR, "tiny_llama"));
    noGrad(() => expect(Array.from(m.forward(ids).f32())).toEqual(Array.from(local.forward(ids).f32())));

    const before = requests.length;
    await loadModel("tiny/llama", { hub: { endpoint, cacheDir: join(home, "hub"), offline: true, progress: false } });
    await loadModel("tiny/llama", { hub: { endpoint, cacheDir: join(home, "hub"), progress: false } });
    expect(requests.length).toBe(before); // cached: no request at all
  });

  it("draws a progress bar on a TTY", async () => {
    const tty = Object.assign(new PassThrough(), { isTTY: true });
    let log = "";
    tty.on("data", (c: Buffer) => (log += c.toString()));
    await loadModel("tiny/llama", { hub: { endpoint, cacheDir: join(root, "hf5"), progress: tty } });
    expect(log).toMatch(/\rmodel\.safetensors \[#{30}\] 100% \d+\.\d\/\d+\.\d MB\n/);
    expect(log).not.toMatch(/^downloading/m);
  });

  it("honours HF_HOME, HF_ENDPOINT and HF_TOKEN", async () => {
    const env = { HF_HOME: process.env["HF_HOME"], HF_ENDPOINT: process.env["HF_ENDPOINT"], HF_TOKEN: process.env["HF_TOKEN"] };
    process.env["HF_HOME"] = join(root, "hf2");
    process.env["HF_ENDPOINT"] = endpoint;
    try {
      delete process.env["HF_TOKEN"];
      await expect(loadModel("private/llama", { hub: { progress: false } })).rejects.toThrow(/access denied: the repo is gated or private; set HF_TOKEN/);
      process.env["HF_TOKEN"] = "secret";
      await loadModel("private/llama", { hub: { progress: false } });
      expect(existsSync(join(root, "hf2", "hub", "models--private--llama", "snapshots", COMMIT, "model.safetensors"))).toBe(true);
      expect(requests.filter((r) => r.url.startsWith("/private/")).at(-1)?.auth).toBe("Bearer secret");
    } finally {
      for (const [k, v] of Object.entries(env)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    }
  });

  it("fails clearly offline without a cache, for an unknown repo, and with no server", async () => {
    const cacheDir = join(root, "hf3");
    await expect(loadModel("tiny/llama", { hub: { endpoint, cacheDir, offline: true } }))
      .rejects.toThrow(/tiny\/llama: not in the cache .*models--tiny--llama.* offline mode is on/);
    await expect(loadModel("nobody/nothing", { hub: { endpoint, cacheDir, progress: false } }))
      .rejects.toThrow(/nobody\/nothing: downloading config.json from .*: not found/);
    await expect(loadModel("tiny/llama", { hub: { endpoint: "http://127.0.0.1:1", cacheDir, progress: false } }))
      .rejects.toThrow(HubError);
  });

  it("fetches a sharded checkpoint through its index", async () => {
    // a second fixture repo: the tiny llama split in two shards
    const { SafetensorsFile, writeSafetensors } = await import("../../src/io/index.js");
    const shardDir = join(root, "sharded");
    (await import("node:fs")).mkdirSync(shardDir);
    const src = SafetensorsFile.openSync(join(GOLDEN_DIR, "tiny_llama", "model.safetensors"));
    const keys = src.keys(), half = Math.ceil(keys.length / 2), map: Record<string, string> = {};
    for (const [i, part] of [keys.slice(0, half), keys.slice(half)].entries()) {
      const name = `model-0000${i + 1}-of-00002.safetensors`;
      writeSafetensors(join(shardDir, name), new Map(part.map((k) => [k, { dtype: "F32" as const, shape: src.info(k).shape, data: src.readFloat32(k) }])));
      for (const k of part) map[k] = name;
    }
    src.close();
    writeFileSync(join(shardDir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: map }));
    writeFileSync(join(shardDir, "config.json"), readFileSync(join(GOLDEN_DIR, "tiny_llama", "config.json")));
    const shardServer = createServer((req, res) => {
      const f = /\/resolve\/main\/([\w.-]+)$/.exec(req.url ?? "")?.[1];
      const p = f ? join(shardDir, f) : "";
      if (!f || !existsSync(p)) { res.writeHead(404).end(); return; }
      res.writeHead(200).end(readFileSync(p)); // no commit header: the snapshot is named after the revision
    });
    await new Promise<void>((r) => shardServer.listen(0, "127.0.0.1", r));
    const port = (shardServer.address() as { port: number }).port;
    try {
      const m = await loadModel("org/sharded", { hub: { endpoint: `http://127.0.0.1:${port}`, cacheDir: join(root, "hf4"), progress: false } });
      const local = loadModelFromDir(join(GOLDEN_DIR, "tiny_llama"));
      noGrad(() => expect(Array.from(m.forward(ids).f32())).toEqual(Array.from(local.forward(ids).f32())));
      expect(readdirSync(join(root, "hf4", "models--org--sharded", "snapshots", "main")).filter((f) => f.endsWith(".safetensors")).length).toBe(2);
    } finally {
      await new Promise((r) => shardServer.close(r));
    }
  });
});
