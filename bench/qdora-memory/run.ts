/**
 * QDoRA memory bench (issue 7): a LLaMA of TinyLlama-1.1B's shape (hidden 2048, 22 layers, intermediate 5632,
 * 32 heads, 4 KV heads, vocab 32000) with random bf16 weights, written as an HF folder (one shard per layer plus
 * an index) in a temp dir; then, each in a fresh process (./child.ts) so peak RSS is its own:
 *   qdora: loadModel(quantize "nf4", double quant; embeddings/lm_head kept bf16), DoRA r 16 on all linear layers,
 *          gradient checkpointing, seq 256 × batch 1, AdamW, 3 steps;
 *   dora:  the same run on the float32 base (bf16 widened at load).
 * Prints one line per mode; --json: {"mode","params","bytes_per_param","peak_rss_mib","tokens_per_s", ...} where
 * bytes_per_param is the quantised linear weights as held in memory (bytes / their parameters; fp32: 4) and
 * bytes_per_param_all covers every base weight (16-bit embeddings and head, float32 norms included).
 *
 *   npm run bench:qdora -- [--json] [--only qdora|dora] [--layers 22] [--steps 3] [--seq 256] [--no-checkpointing]
 * Targets: bytes_per_param ≤ 0.53, qdora peak RSS ≤ 3 GiB. Needs ~2.2 GB of temp disk and ~6 GB of RAM for dora.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { writeSafetensors, type TensorToWrite } from "../../src/io/index.js";

const { values: opt } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    only: { type: "string" },
    layers: { type: "string", default: "22" },
    steps: { type: "string", default: "3" },
    seq: { type: "string", default: "256" },
    "no-checkpointing": { type: "boolean", default: false },
    dir: { type: "string" }, // reuse a folder written by an earlier run (kept, not deleted)
  },
});
const modes = opt.only ? [opt.only] : ["qdora", "dora"];
for (const m of modes) if (m !== "qdora" && m !== "dora") throw new Error(`--only ${m}: expected qdora or dora`);
const L = Number(opt.layers), H = 2048, I = 5632, V = 32000, NH = 32, NKV = 4, HD = H / NH;

/**
 * Random bf16 weights, uniform(−a, a) with a = 0.02·√3 (std 0.02): a pool of 2^20 values from an LCG, copied into
 * each tensor from random offsets (1.1 B independent draws in JS would take minutes; the bench only needs
 * weights that are random-looking at the scale of a 64-block).
 */
let seed = 12345;
const lcg = (): number => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0);
const POOL = (() => {
  const out = new Uint16Array(1 << 20), f = new Float32Array(1), u = new Uint32Array(f.buffer), a = 0.02 * Math.sqrt(3);
  for (let i = 0; i < out.length; i++) {
    f[0] = ((lcg() >>> 8) / 16777216 * 2 - 1) * a;
    out[i] = (u[0]! + 0x7fff + ((u[0]! >>> 16) & 1)) >>> 16; // round to nearest even
  }
  return out;
})();
function bf16Random(n: number): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i += 4096) {
    const off = lcg() % (POOL.length - 4096);
    out.set(POOL.subarray(off, off + Math.min(4096, n - i)), i);
  }
  return out;
}
const ones = (n: number): Uint16Array => new Uint16Array(n).fill(0x3f80); // 1.0 in bf16

function writeModel(dir: string): void {
  const config = {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: H, intermediate_size: I, num_hidden_layers: L,
    num_attention_heads: NH, num_key_value_heads: NKV, vocab_size: V, max_position_embeddings: 2048, rms_norm_eps: 1e-5,
    rope_theta: 10000, tie_word_embeddings: false, torch_dtype: "bfloat16", hidden_act: "silu", bos_token_id: 1, eos_token_id: 2,
  };
  writeFileSync(join(dir, "config.json"), JSON.stringify(config, null, 2));
  const weightMap: Record<string, string> = {};
  const shard = (file: string, tensors: Map<string, TensorToWrite>): void => {
    writeSafetensors(join(dir, file), tensors, { format: "pt" });
    for (const k of tensors.keys()) weightMap[k] = file;
  };
  const t = (shape: number[], data?: Uint16Array): TensorToWrite => ({ dtype: "BF16", shape, data: data ?? bf16Random(shape.reduce((x, y) => x * y, 1)) });
  shard("embed.safetensors", new Map([["model.embed_tokens.weight", t([V, H])]]));
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}`;
    shard(`layer-${i}.safetensors`, new Map([
      [`${p}.self_attn.q_proj.weight`, t([H, H])], [`${p}.self_attn.k_proj.weight`, t([NKV * HD, H])],
      [`${p}.self_attn.v_proj.weight`, t([NKV * HD, H])], [`${p}.self_attn.o_proj.weight`, t([H, H])],
      [`${p}.mlp.gate_proj.weight`, t([I, H])], [`${p}.mlp.up_proj.weight`, t([I, H])], [`${p}.mlp.down_proj.weight`, t([H, I])],
      [`${p}.input_layernorm.weight`, t([H], ones(H))], [`${p}.post_attention_layernorm.weight`, t([H], ones(H))],
    ]));
  }
  shard("head.safetensors", new Map([["model.norm.weight", t([H], ones(H))], ["lm_head.weight", t([V, H])]]));
  writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: {}, weight_map: weightMap }));
}

const here = dirname(fileURLToPath(import.meta.url));
const dir = opt.dir ?? mkdtempSync(join(tmpdir(), "dora-qdora-bench-"));
try {
  mkdirSync(dir, { recursive: true });
  const t0 = performance.now();
  if (!opt.dir || !existsSync(join(dir, "config.json"))) writeModel(dir);
  if (!opt.json) console.log(`wrote a ${L}-layer TinyLlama-shaped bf16 model to ${dir} in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  for (const mode of modes) {
    const args = ["--import", "tsx", join(here, "child.ts"), dir, mode, opt.steps!, opt.seq!, opt["no-checkpointing"] ? "0" : "1"];
    const r = spawnSync(process.execPath, args, { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`${mode} child failed with status ${r.status}: ${r.stdout}`);
    const line = r.stdout.trim().split("\n").pop()!;
    if (opt.json) console.log(line);
    else {
      const o = JSON.parse(line) as Record<string, number | string>;
      console.log(`${String(o["mode"]).padEnd(6)} params ${(Number(o["params"]) / 1e9).toFixed(3)}B  base ${Number(o["bytes_per_param"]).toFixed(4)} B/param ` +
        `(all base weights ${Number(o["bytes_per_param_all"]).toFixed(4)})  peak RSS ${Number(o["peak_rss_mib"]).toFixed(0)} MiB  ` +
        `${Number(o["tokens_per_s"]).toFixed(1)} tok/s  load ${Number(o["load_s"]).toFixed(1)} s  losses ${String(o["losses"])}`);
    }
  }
} finally {
  if (!opt.dir) rmSync(dir, { recursive: true, force: true });
}
