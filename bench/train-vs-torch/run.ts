/**
 * Training throughput, dora-ts vs PyTorch, on the same LLaMA, init, data and step (issue 6):
 * hidden 512 × 8 layers, 8 heads, intermediate 1376, vocab 4096 untied, seq 256 × batch 4, fp32, AdamW(lr 1e-4),
 * modes full / LoRA / DoRA (r 16, alpha 32, q,k,v,o,gate,up,down), threads 1 and 2. Weights, token ids and the
 * adapters' A (B = 0, PEFT's init) are generated here with a seed and written as safetensors that reference.py reads.
 * Every (impl, mode, threads) run is its own process (peak RSS is its own); impls alternate A B A B per config;
 * tokens/s from the median step time of all measured steps (after 2 warm-ups per process). The table is followed by
 * the ratios between our own configurations (DoRA ÷ LoRA, 2 threads ÷ 1) measured step by step in one process
 * (`childPaired`), where the neighbours' load on this shared machine cancels out of each ratio (skip: --skip-paired).
 * Both sides print their first loss; when those differ the work compared is not the same, and the bench fails (exit 1).
 * PyTorch side: `npm run bench:setup` (bench/setup.sh).
 *
 *   npm run bench:train -- [--json] [--only dora-ts|torch] [--quick] [--steps 5] [--rounds 2] [--threads 1,2] [--modes full,lora,dora] [--skip-paired]
 *     [--dropout 0]   (lora_dropout of both sides; the default 0 is issue 6's configuration)
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Rng, Tensor, allocationMark, randUniform } from "../../src/tensor/index.js";
import { getBackend } from "../../src/backend/index.js";
import { setNumThreads } from "../../src/backend/native/index.js";
import { parseModelConfig } from "../../src/models/config.js";
import { loadModelFromDir, randomModel, saveModel } from "../../src/models/auto.js";
import { writeSafetensors, SafetensorsFile, type TensorToWrite } from "../../src/io/index.js";
import { LoraConfig, getPeftModel, LoraLayer } from "../../src/peft/index.js";
import { AdamW } from "../../src/train/optim.js";
import { instrumentModules, type Module } from "../../src/nn/index.js";
import { profileSpan, profileStep, resetProfile } from "../../src/tensor/index.js";

const { values: args } = parseArgs({ options: {
  json: { type: "boolean", default: false }, only: { type: "string" }, quick: { type: "boolean", default: false },
  steps: { type: "string" }, warmup: { type: "string", default: "2" }, rounds: { type: "string" },
  threads: { type: "string", default: "1,2" }, modes: { type: "string", default: "full,lora,dora" },
  child: { type: "string" }, dir: { type: "string" }, mode: { type: "string", default: "dora" },
  "skip-paired": { type: "boolean", default: false }, dropout: { type: "string", default: "0" },
} });

type Mode = "full" | "lora" | "dora";
type Impl = "dora-ts" | "torch";
const TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];
const R = 16, ALPHA = 32;
const SIZE = args.quick
  ? { hidden: 128, layers: 2, heads: 4, inter: 352, vocab: 512, seq: 64, batch: 2 }
  : { hidden: 512, layers: 8, heads: 8, inter: 1376, vocab: 4096, seq: 256, batch: 4 };
const STEPS = Number(args.steps ?? (args.quick ? 3 : 5)), WARMUP = Number(args.warmup);
const ROUNDS = Number(args.rounds ?? (args.quick ? 1 : 2));
/** lora_dropout on both sides. At init B = 0 (and DoRA's m/n = 1), so the first loss does not depend on the masks. */
const DROPOUT = Number(args.dropout);
if (!(DROPOUT >= 0 && DROPOUT < 1)) throw new Error(`--dropout: expected a probability in [0, 1), got ${args.dropout}`);
const here = dirname(fileURLToPath(import.meta.url));

function hfConfig(): Record<string, unknown> {
  return {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: SIZE.hidden, num_hidden_layers: SIZE.layers,
    num_attention_heads: SIZE.heads, num_key_value_heads: SIZE.heads, intermediate_size: SIZE.inter, vocab_size: SIZE.vocab,
    rms_norm_eps: 1e-6, rope_theta: 10000, max_position_embeddings: Math.max(512, SIZE.seq), tie_word_embeddings: false,
    hidden_act: "silu", torch_dtype: "float32",
  };
}

/** config.json + model.safetensors (seed 0), and inputs.safetensors: token ids and each target's lora_A. */
function prepare(dir: string): void {
  if (existsSync(join(dir, "inputs.safetensors"))) return;
  mkdirSync(dir, { recursive: true });
  const model = randomModel(parseModelConfig(hfConfig()), 0);
  saveModel(model, dir);
  const rng = new Rng(1);
  const ids = new Int32Array(SIZE.batch * SIZE.seq);
  for (let i = 0; i < ids.length; i++) ids[i] = rng.nextU32() % SIZE.vocab;
  const tensors = new Map<string, TensorToWrite>([["input_ids", { dtype: "I32", shape: [SIZE.batch, SIZE.seq], data: ids }]]);
  for (const [path, m] of model.namedModules()) {
    if (!TARGETS.includes(path.split(".").pop()!)) continue;
    const inF = m.param("weight").shape[1]!, bound = 1 / Math.sqrt(inF); // PEFT's kaiming_uniform(a=√5) bound
    tensors.set(`${path}.lora_A`, { dtype: "F32", shape: [R, inF], data: randUniform([R, inF], rng, -bound, bound).f32() });
  }
  writeSafetensors(join(dir, "inputs.safetensors"), tensors);
}

/** A dora-ts model of `mode` on the bench's weights and adapters, with its AdamW, and one timed training step. */
function ourStep(dir: string, mode: Mode, ids: Tensor, inputs: SafetensorsFile): { model: Module; step: () => { ms: number; loss: number } } {
  const model = loadModelFromDir(dir);
  model.train();
  if (mode === "full") model.requiresGrad_(true);
  else {
    const peft = getPeftModel(model, new LoraConfig({ r: R, loraAlpha: ALPHA, loraDropout: DROPOUT, targetModules: TARGETS, useDora: mode === "dora" }));
    for (const [path, layer] of peft.loraLayers()) {
      const a = (layer as LoraLayer).adapters.get("default")!;
      (a.A.data as Float32Array).set(inputs.readFloat32(`${path}.lora_A`));
      a.A.version++;
    }
    peft.train();
  }
  const params = model.namedParameters().filter(([, t]) => t.requiresGrad).map(([name, tensor]) => ({ name, tensor }));
  const opt = new AdamW(params, { lr: 1e-4 });
  return {
    model: model as unknown as Module,
    step: () => {
      const t0 = performance.now();
      const mark = allocationMark();
      const loss = model.loss(ids);
      const lv = loss.item();
      loss.backward(undefined, { releaseActivationsSince: mark });
      profileSpan("optimizer", () => { opt.step(); opt.zeroGrad(); });
      profileStep();
      return { ms: performance.now() - t0, loss: lv };
    },
  };
}

function benchInputs(dir: string): { ids: Tensor; inputs: SafetensorsFile } {
  const inputs = SafetensorsFile.openSync(join(dir, "inputs.safetensors"));
  return { ids: new Tensor(inputs.readInt32("input_ids"), [SIZE.batch, SIZE.seq]), inputs };
}

/** One dora-ts run in this process: prints {"impl","mode","threads","step_s","tokens","peak_rss_mib","loss0"}. */
function childOurs(dir: string, mode: Mode, threads: number): void {
  const { ids, inputs } = benchInputs(dir);
  const { model, step } = ourStep(dir, mode, ids, inputs);
  instrumentModules(model);
  const times: number[] = [];
  let loss0 = NaN;
  for (let i = 0; i < WARMUP + STEPS; i++) {
    const { ms, loss } = step();
    if (i === 0) loss0 = loss;
    if (i === WARMUP - 1) resetProfile(); // DORA_PROFILE tables cover the measured steps only
    if (i >= WARMUP) times.push(ms / 1000);
  }
  console.log(JSON.stringify({ impl: "dora-ts", mode, threads, step_s: times, tokens: SIZE.batch * SIZE.seq,
    peak_rss_mib: process.resourceUsage().maxRSS / 1024, loss0, backend: getBackend().name }));
}

/**
 * The ratios between our own configurations (DoRA ÷ LoRA, 2 threads ÷ 1) measured in one process: every mode's
 * model is built once, then each round runs one step of every (mode, threads) configuration back to back (the order
 * reversed every other round), so a slow stretch of the shared machine lands on both sides of a ratio instead of on
 * whichever process ran through it. Prints {"paired": {"<mode>@<threads>": [step ms per round], ...}}.
 */
function childPaired(dir: string, modes: Mode[], threadList: number[]): void {
  if (getBackend().name !== "native") throw new Error("bench:train paired run: needs the native backend (it switches thread counts); use --skip-paired");
  const { ids, inputs } = benchInputs(dir);
  const steps = new Map(modes.map((m) => [m, ourStep(dir, m, ids, inputs).step]));
  const configs = threadList.flatMap((t) => modes.map((m) => ({ m, t, key: `${m}@${t}` })));
  const times: Record<string, number[]> = Object.fromEntries(configs.map((c) => [c.key, []]));
  for (let round = 0; round < WARMUP + STEPS; round++) {
    for (const c of round % 2 ? configs.slice().reverse() : configs) {
      setNumThreads(c.t);
      const { ms } = steps.get(c.m)!();
      if (round >= WARMUP) times[c.key]!.push(ms);
    }
  }
  console.log(JSON.stringify({ paired: times }));
}

/** How reference.py fails when `npm run bench:setup` has not run: no torch/numpy, or sgemm not on OpenBLAS (bench/openblas.py). */
const TORCH_NOT_SET_UP = /No module named '(torch|numpy)'|does not run on OpenBLAS/;

interface RunOut { impl: Impl; mode: Mode; threads: number; step_s: number[]; tokens: number; peak_rss_mib: number; loss0: number }

function spawnRun(impl: Impl, dir: string, mode: Mode, threads: number): RunOut | null {
  const t = String(threads);
  const env = { ...process.env, DORA_NUM_THREADS: t, OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, OPENBLAS_CORETYPE: "SkylakeX" };
  const common = ["--dir", dir, "--mode", mode, "--threads", t, "--steps", String(STEPS), "--warmup", String(WARMUP), "--dropout", String(DROPOUT)];
  const r = impl === "torch"
    ? spawnSync("/usr/bin/python3", [join(here, "reference.py"), ...common], { encoding: "utf8", env, maxBuffer: 1 << 22 })
    : spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), ...(args.quick ? ["--quick"] : []), "--child", "1", ...common],
      { encoding: "utf8", env, maxBuffer: 1 << 22 });
  if (r.stderr && /DORA_PROFILE|profile/.test(r.stderr)) process.stderr.write(r.stderr);
  const line = (r.stdout ?? "").trim().split("\n").pop() ?? "";
  try { return JSON.parse(line) as RunOut; } catch {
    const stderr = r.stderr ?? "";
    if (impl === "torch" && ((r.error as NodeJS.ErrnoException | undefined)?.code === "ENOENT" || TORCH_NOT_SET_UP.test(stderr))) {
      // every torch run would fail the same way: stop here with the fix instead of a table without torch
      const why = r.error ? "no /usr/bin/python3" : stderr.trim().split("\n").pop();
      console.error(`bench:train: PyTorch is not set up (${why}); run \`npm run bench:setup\` (Debian's python3-torch, ` +
        "python3-numpy, libopenblas0-pthread), or pass --only dora-ts");
      process.exit(1);
    }
    console.error(`${impl} ${mode} ${threads}t failed (exit ${r.status}): ${stderr.slice(-800)}`);
    return null;
  }
}

/**
 * How far apart (relative) the first losses of one mode may be. Both sides compute it from the same fp32 weights, ids
 * and adapters (B = 0), so only summation order (and thread count) differs, worth ~1e-6; a different init, data or
 * model moves the loss by far more than 1e-3.
 */
const LOSS0_RTOL = 1e-3;

/** Modes whose runs disagree on the first loss, as error messages naming every run's loss0 (NaN disagrees too). */
function lossMismatches(rows: { impl: Impl; mode: Mode; threads: number; loss0: number }[], modes: Mode[]): string[] {
  const out: string[] = [];
  for (const mode of modes) {
    const rs = rows.filter((r) => r.mode === mode), l = rs.map((r) => r.loss0);
    if (rs.length > 1 && !(Math.max(...l) - Math.min(...l) <= LOSS0_RTOL * Math.abs(l[0]!))) {
      out.push(`bench:train: ${mode}: the initial losses differ by more than ${LOSS0_RTOL} relative ` +
        `(${rs.map((r) => `${r.impl} ${r.threads}t ${r.loss0.toFixed(5)}`).join(", ")}): the two sides do not run the same work`);
    }
  }
  return out;
}

/**
 * Best-of-6 GFLOP/s of a square GEMM on the active backend at `threads` (the MFU denominator). The first call is cold
 * (page faults on c, the thread pool's start), so the minimum is in effect the best of the 5 warm ones.
 */
function gemmPeak(threads: number): number {
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", `
    import { getBackend } from "${join(here, "../../src/backend/index.ts")}";
    const n = 1024, a = new Float32Array(n*n).fill(1), b = new Float32Array(n*n).fill(1), c = new Float32Array(n*n);
    let best = Infinity;
    for (let i = 0; i < 6; i++) { const t0 = performance.now(); getBackend().gemm("nn", n, n, n, a, 0, n, 0, b, 0, n, 0, c, 0, n, 0, 1, false); best = Math.min(best, performance.now() - t0); }
    console.log(2 * n ** 3 / (best / 1000) / 1e9);`], { encoding: "utf8", env: { ...process.env, DORA_NUM_THREADS: String(threads) } });
  const gflops = Number((r.stdout ?? "").trim());
  if (!(gflops > 0 && Number.isFinite(gflops))) {
    throw new Error(`bench:train: the GEMM-peak child (${threads} threads) failed (exit ${r.status}): ${(r.stderr ?? "").slice(-400)}`);
  }
  return gflops;
}

/** Model FLOPs per step: GEMMs (dW skipped for frozen weights) + attention, 2 per multiply-add. */
function stepFlops(mode: Mode): number {
  const { hidden: d, layers: L, inter: f, vocab: V, seq: S, batch: B } = SIZE, T = B * S;
  const linear = L * (4 * d * d + 3 * d * f) + d * V;                     // weights in GEMMs (embedding is a gather)
  const passes = mode === "full" ? 3 : 2;                                    // fwd, dx, (dW)
  const lowRank = mode === "full" ? 0 : 3 * L * R * (4 * (d + d) + 2 * (d + f) + (f + d)); // A/B fwd, dx, dA/dB
  const attn = 3 * 2 * 2 * B * L * S * S * d;                               // QKᵀ and PV, fwd + 2 bwd
  return 2 * T * (passes * linear + lowRank) + attn;
}

function median(xs: number[]): number {
  const s = xs.slice().sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** The paired child's table: per round, DoRA ÷ LoRA at each thread count and each mode's 1-thread ÷ n-thread step. */
function pairedTable(dir: string, modes: Mode[], threadList: number[]): void {
  const t = String(Math.max(...threadList));
  const r = spawnSync(process.execPath, ["--import", "tsx", fileURLToPath(import.meta.url), ...(args.quick ? ["--quick"] : []),
    "--child", "paired", "--dir", dir, "--modes", modes.join(","), "--threads", threadList.join(","), "--steps", String(STEPS * ROUNDS),
    "--warmup", String(WARMUP), "--dropout", String(DROPOUT)], { encoding: "utf8", env: { ...process.env, DORA_NUM_THREADS: t }, maxBuffer: 1 << 22 });
  let times: Record<string, number[]>;
  try { times = (JSON.parse((r.stdout ?? "").trim().split("\n").pop() ?? "") as { paired: Record<string, number[]> }).paired; } catch {
    console.error(`paired run failed (exit ${r.status}): ${(r.stderr ?? "").slice(-800)}`);
    return;
  }
  const rows: [string, number[]][] = [];
  const ratios = (a: string, b: string) => times[a]!.map((x, i) => x / times[b]![i]!);
  for (const th of threadList) if (times[`dora@${th}`] && times[`lora@${th}`]) rows.push([`DoRA ÷ LoRA step, ${th} thread(s)`, ratios(`dora@${th}`, `lora@${th}`)]);
  const t1 = Math.min(...threadList);
  for (const m of modes) for (const th of threadList) if (th !== t1) rows.push([`${m}: ${th} threads ÷ ${t1} (speed-up)`, ratios(`${m}@${t1}`, `${m}@${th}`)]);
  console.log(`\npaired in one process (each round one step of every configuration back to back; ${STEPS * ROUNDS} rounds after ${WARMUP} warm-ups):`);
  console.log("| measure | median | min – max |");
  console.log("|---|---:|---:|");
  for (const [name, xs] of rows) console.log(`| ${name} | ${median(xs).toFixed(3)} | ${Math.min(...xs).toFixed(2)} – ${Math.max(...xs).toFixed(2)} |`);
  console.log(`median step ms: ${Object.entries(times).map(([k, v]) => `${k} ${median(v).toFixed(0)}`).join(", ")}`);
}

if (args.child === "paired") {
  childPaired(args.dir!, args.modes.split(",") as Mode[], args.threads.split(",").map(Number));
} else if (args.child) {
  childOurs(args.dir!, args.mode as Mode, Number(args.threads));
} else {
  const dir = join(tmpdir(), `dora-ts-train-vs-torch-${args.quick ? "quick" : "full"}`);
  prepare(dir);
  const impls: Impl[] = args.only ? [args.only as Impl] : ["dora-ts", "torch"];
  if (!impls.every((i) => i === "dora-ts" || i === "torch")) throw new Error(`--only: expected dora-ts or torch, got ${args.only}`);
  const modes = args.modes.split(",") as Mode[], threadList = args.threads.split(",").map(Number);
  for (const m of modes) if (!["full", "lora", "dora"].includes(m)) throw new Error(`--modes: expected a list of full, lora, dora; got ${JSON.stringify(m)}`);
  for (const t of threadList) if (!(Number.isInteger(t) && t >= 1)) throw new Error(`--threads: expected a list of positive integers, got ${args.threads}`);
  const rows: { impl: Impl; mode: Mode; threads: number; tps: number; rss: number; loss0: number }[] = [];
  let failedRuns = 0; // each reported on stderr as it fails; the bench goes on, then exits 1
  for (const mode of modes) for (const threads of threadList) {
    const runs = new Map<Impl, RunOut[]>(impls.map((i) => [i, []]));
    for (let round = 0; round < ROUNDS; round++) for (const impl of impls) {
      const out = spawnRun(impl, dir, mode, threads);
      if (out) runs.get(impl)!.push(out); else failedRuns++;
    }
    for (const impl of impls) {
      const rs = runs.get(impl)!;
      if (rs.length === 0) continue;
      const row = { impl, mode, threads, tps: rs[0]!.tokens / median(rs.flatMap((r) => r.step_s)),
        rss: Math.max(...rs.map((r) => r.peak_rss_mib)), loss0: rs[0]!.loss0 };
      rows.push(row);
      const line = JSON.stringify({ impl, mode, threads, tokens_per_s: +row.tps.toFixed(1), peak_rss_mib: +row.rss.toFixed(0), loss0: row.loss0 });
      if (args.json) console.log(line); else console.error(line); // progress on stderr; the table follows on stdout
    }
  }
  if (!args.json) {
    const peak = new Map(threadList.map((t) => [t, gemmPeak(t)]));
    const { hidden, layers, heads, inter, vocab, seq, batch } = SIZE;
    console.log(`\ntrain-vs-torch: LLaMA d${hidden} × ${layers} layers, ${heads} heads, inter ${inter}, vocab ${vocab}, seq ${seq} × batch ${batch}, ` +
      `fp32, AdamW; r ${R} on ${TARGETS.join(",")}${DROPOUT > 0 ? `, lora_dropout ${DROPOUT}` : ""}; median of ${STEPS}×${ROUNDS} steps after ${WARMUP} warm-ups per process`);
    console.log(`GEMM peak (dora-ts native, 1024³): ${threadList.map((t) => `${t}t ${peak.get(t)!.toFixed(0)} GFLOP/s`).join(", ")}`);
    console.log("| impl | mode | threads | tokens/s | × torch best | peak RSS MiB | MFU | loss0 |");
    console.log("|---|---|---|---:|---:|---:|---:|---:|");
    for (const r of rows) {
      const best = Math.max(...rows.filter((q) => q.impl === "torch" && q.mode === r.mode).map((q) => q.tps));
      const mfu = (stepFlops(r.mode) * r.tps) / (batch * seq) / (peak.get(r.threads)! * 1e9);
      console.log(`| ${r.impl} | ${r.mode} | ${r.threads} | ${r.tps.toFixed(0)} | ${Number.isFinite(best) ? (r.tps / best).toFixed(2) : "n/a"} | ` +
        `${r.rss.toFixed(0)} | ${(100 * mfu).toFixed(0)}% | ${r.loss0.toFixed(5)} |`);
    }
  }
  if (failedRuns > 0) {
    console.error(`bench:train: ${failedRuns} run(s) failed (above): the table lacks them`);
    process.exitCode = 1;
  }
  const mismatches = lossMismatches(rows, modes);
  if (mismatches.length > 0) {
    for (const m of mismatches) console.error(m);
    process.exitCode = 1; // the timings above compare different work: fail, and skip the paired run
  } else if (!args.json) {
    const compared = modes.filter((m) => new Set(rows.filter((r) => r.mode === m).map((r) => r.impl)).size > 1);
    if (compared.length > 0) console.log(`initial losses agree within ${LOSS0_RTOL} relative (dora-ts vs torch): ${compared.join(", ")}`);
    if (impls.includes("dora-ts") && !args["skip-paired"] && (modes.length > 1 || threadList.length > 1)) pairedTable(dir, modes, threadList);
  }
}
