/**
 * Models bench: LLaMA d512 × 8 layers × vocab 4096 (8 heads, intermediate 1376), random weights.
 * dora-ts and PyTorch 1.13 (bench/models/reference.py, same maths, eager attention) in one run:
 * - prefill tokens/s: forward of [prefillBatch, prefillLen] ids, no grad;
 * - generation tokens/s: greedy `generate` with the KV cache, newTokens from a promptLen prompt
 *   (prompt forward included; N tokens = 1 prompt forward + N−1 one-position steps, the same in both);
 * - load: a generated ~1 GB F32 model folder loaded by `loadModelFromDir` in a fresh process
 *   (bench/models/load-child.ts): wall time and peak RSS against the file size; then the same weights as
 *   BF16, loaded widened to float32 and with `keepFrozenIn16Bit`.
 * Medians of --runs after --warmup, in --rounds that alternate dora-ts and PyTorch (the machine may be shared:
 * per-round ratios show how much outside load moved the figures). Threads: the native pool's size for both.
 *
 *   node --import tsx bench/models/run.ts [--json] [--runs 5] [--rounds 3] [--load-gb 1] [--skip-load] [--skip-torch]
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir, cpus } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { getBackend } from "../../src/backend/index.js";
import { nativeInfo } from "../../src/backend/native/index.js";
import { writeSafetensors, type TensorToWrite } from "../../src/io/index.js";
import { generate, parseModelConfig, randomModel } from "../../src/models/index.js";
import { Rng, indexTensor, noGrad } from "../../src/tensor/index.js";

const { values: opt } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    runs: { type: "string", default: "5" },
    rounds: { type: "string", default: "3" },
    warmup: { type: "string", default: "1" },
    "prefill-batch": { type: "string", default: "1" },
    "prefill-len": { type: "string", default: "256" },
    "prompt-len": { type: "string", default: "16" },
    "new-tokens": { type: "string", default: "64" },
    "load-gb": { type: "string", default: "1" },
    "skip-load": { type: "boolean", default: false },
    "skip-torch": { type: "boolean", default: false },
    python: { type: "string", default: "/usr/bin/python3" },
  },
});
const here = dirname(fileURLToPath(import.meta.url));
const n = (k: keyof typeof opt): number => Number(opt[k]);
const shape = { hidden: 512, layers: 8, heads: 8, kv_heads: 8, inter: 1376, vocab: 4096 };
const backend = getBackend().name;
const threads = backend === "native" ? nativeInfo().threads : 1;

const config = parseModelConfig({
  architectures: ["LlamaForCausalLM"], hidden_size: shape.hidden, num_hidden_layers: shape.layers, num_attention_heads: shape.heads,
  num_key_value_heads: shape.kv_heads, intermediate_size: shape.inter, vocab_size: shape.vocab, max_position_embeddings: 4096,
  rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false, eos_token_id: 2,
}, "bench config");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}
function timed(fn: () => void): number {
  for (let i = 0; i < n("warmup"); i++) fn();
  const ts: number[] = [];
  for (let i = 0; i < n("runs"); i++) {
    const t = process.hrtime.bigint();
    fn();
    ts.push(Number(process.hrtime.bigint() - t) / 1e9);
  }
  return median(ts);
}

const results: Record<string, number | string>[] = [];
const report = (r: Record<string, number | string>): void => {
  results.push(r);
  if (opt.json) console.log(JSON.stringify(r));
};

// ---- dora-ts and PyTorch, alternating per round so load from other processes hits both alike
const model = randomModel(config, 0);
model.eval();
const rng = new Rng(1);
const B = n("prefill-batch"), S = n("prefill-len");
const ids = indexTensor(Array.from({ length: B * S }, () => rng.int(shape.vocab)), [B, S]);
const prompt = Array.from({ length: n("prompt-len") }, () => rng.int(shape.vocab));
interface TorchResult { prefill_tok_s: number; gen_tok_s: number; torch: string; threads: number }
const oursRounds: { prefill: number; gen: number }[] = [], torchRounds: TorchResult[] = [];
for (let round = 0; round < n("rounds"); round++) {
  const prefill = timed(() => noGrad(() => model.forward(ids)));
  const gen = timed(() => { generate(model, prompt, { maxNewTokens: n("new-tokens"), eosTokenId: [] }); });
  const o = { prefill: (B * S) / prefill, gen: n("new-tokens") / gen };
  oursRounds.push(o);
  report({ impl: "dora-ts", round, backend, threads, prefill_tok_s: o.prefill, gen_tok_s: o.gen });
  if (opt["skip-torch"]) continue;
  const cfg = { ...shape, prefill_batch: B, prefill_len: S, prompt_len: n("prompt-len"), new_tokens: n("new-tokens"),
    runs: n("runs"), warmup: n("warmup"), threads };
  const r = spawnSync(opt.python, [join(here, "reference.py"), JSON.stringify(cfg)], {
    env: { ...process.env, OPENBLAS_CORETYPE: "SkylakeX", OMP_NUM_THREADS: String(threads) }, encoding: "utf8",
  });
  if (r.status !== 0) throw new Error(`bench/models: reference.py failed (${r.status}): ${r.stderr || String(r.error)}`);
  const t = JSON.parse(r.stdout) as TorchResult;
  torchRounds.push(t);
  report({ impl: `pytorch ${t.torch}`, round, backend: "torch", threads: t.threads, prefill_tok_s: t.prefill_tok_s, gen_tok_s: t.gen_tok_s });
}
const ours = { prefill: median(oursRounds.map((r) => r.prefill)), gen: median(oursRounds.map((r) => r.gen)) };
const torch = torchRounds.length === 0 ? null : {
  torch: torchRounds[0]!.torch, prefill_tok_s: median(torchRounds.map((r) => r.prefill_tok_s)), gen_tok_s: median(torchRounds.map((r) => r.gen_tok_s)),
};
// per-round ratios: each pair ran back to back, under the same outside load
const ratios = torchRounds.map((t, i) => ({ prefill: oursRounds[i]!.prefill / t.prefill_tok_s, gen: oursRounds[i]!.gen / t.gen_tok_s }));

// ---- 1 GB load
let load: { seconds: number; peakRssMB: number; baseRssMB: number; fileMB: number } | null = null;
const bf16: { seconds: number; peakRssMB: number; baseRssMB: number; fileMB: number; keep: boolean }[] = [];
if (!opt["skip-load"]) {
  const dir = mkdtempSync(join(tmpdir(), "dora-bench-load-"));
  try {
    // LLaMA d1024 with as many layers as fit the requested size: ~12.8M params a layer, 2×32000×1024 embed + head
    const d = 1024, inter = 2816, vocab = 32000;
    const perLayer = 4 * d * d + 3 * d * inter + 2 * d, fixed = 2 * vocab * d + d;
    const layers = Math.max(1, Math.round((n("load-gb") * 1e9 / 4 - fixed) / perLayer));
    const raw = { architectures: ["LlamaForCausalLM"], hidden_size: d, num_hidden_layers: layers, num_attention_heads: 16, num_key_value_heads: 16,
      intermediate_size: inter, vocab_size: vocab, max_position_embeddings: 2048, rms_norm_eps: 1e-6, rope_theta: 10000, tie_word_embeddings: false };
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "config.json"), JSON.stringify(raw));
    const tensors = new Map<string, TensorToWrite>();
    const big = randomModel(parseModelConfig(raw), 3);
    for (const [k, t] of big.namedParameters()) tensors.set(k, { dtype: "F32", shape: t.shape, data: t.f32() });
    writeSafetensors(join(dir, "model.safetensors"), tensors);
    const fileMB = statSync(join(dir, "model.safetensors")).size / 1e6;
    const child = (args: string[]): { seconds: number; peakRssMB: number; baseRssMB: number } => {
      const r = spawnSync(process.execPath, ["--import", "tsx", join(here, "load-child.ts"), ...args], { encoding: "utf8", env: process.env });
      if (r.status !== 0) throw new Error(`bench/models: load-child failed (${r.status}): ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split("\n").pop()!) as { seconds: number; peakRssMB: number; baseRssMB: number };
    };
    load = { ...child([dir]), fileMB };
    report({ impl: "dora-ts load F32", backend, threads, file_mb: fileMB, seconds: load.seconds, peak_rss_mb: load.peakRssMB,
      base_rss_mb: load.baseRssMB, peak_over_file: load.peakRssMB / fileMB });
    // the same weights as BF16: widened to float32 on load, or kept 16-bit (keepFrozenIn16Bit)
    for (const t of tensors.values()) (t as { dtype: string }).dtype = "BF16";
    writeSafetensors(join(dir, "model.safetensors"), tensors);
    tensors.clear();
    const bfMB = statSync(join(dir, "model.safetensors")).size / 1e6;
    for (const keep of [false, true]) {
      const c = child(keep ? [dir, "--keep16"] : [dir]);
      const row = { seconds: c.seconds, peakRssMB: c.peakRssMB, baseRssMB: c.baseRssMB, fileMB: bfMB, keep };
      bf16.push(row);
      report({ impl: `dora-ts load BF16${keep ? " keepFrozenIn16Bit" : " widened"}`, backend, threads, file_mb: bfMB, seconds: c.seconds,
        peak_rss_mb: c.peakRssMB, base_rss_mb: c.baseRssMB, peak_over_file: c.peakRssMB / bfMB });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (!opt.json) {
  const f = (x: number): string => x.toFixed(1).padStart(9);
  console.log(`models bench: LLaMA d${shape.hidden} × ${shape.layers} layers × vocab ${shape.vocab}; prefill [${B}, ${S}], ` +
    `generate ${n("new-tokens")} from ${n("prompt-len")}; backend ${backend}, ${threads} thread(s), ${cpus().length} CPUs, Node ${process.version}`);
  console.log("                 prefill tok/s   gen tok/s");
  console.log(`dora-ts          ${f(ours.prefill)}      ${f(ours.gen)}`);
  if (torch) {
    console.log(`pytorch ${torch.torch.padEnd(8)} ${f(torch.prefill_tok_s)}      ${f(torch.gen_tok_s)}`);
    console.log(`ratio of medians ${f(ours.prefill / torch.prefill_tok_s)}×     ${f(ours.gen / torch.gen_tok_s)}×   (targets ≥1.0×, ≥1.5×)`);
    console.log(`per-round ratios ${ratios.map((r) => `${r.prefill.toFixed(2)}×/${r.gen.toFixed(2)}×`).join("  ")}`);
  }
  if (load) {
    console.log(`load ${load.fileMB.toFixed(0)} MB F32: ${load.seconds.toFixed(2)} s, peak RSS ${load.peakRssMB.toFixed(0)} MB ` +
      `(${(load.peakRssMB / load.fileMB).toFixed(2)}× the file; ${load.baseRssMB.toFixed(0)} MB before loading; target ≤1.2×)`);
  }
  for (const b of bf16) {
    console.log(`load ${b.fileMB.toFixed(0)} MB BF16 ${b.keep ? "kept 16-bit" : "widened   "}: ${b.seconds.toFixed(2)} s, peak RSS ${b.peakRssMB.toFixed(0)} MB ` +
      `(${(b.peakRssMB / b.fileMB).toFixed(2)}× the file)`);
  }
}
