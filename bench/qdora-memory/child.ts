/**
 * One mode of bench/qdora-memory in its own process: load, adapt (DoRA r 16, all linear), train `steps` steps of
 * seq × batch 1 with AdamW, print one JSON line. Peak RSS is this process's (getrusage maxrss).
 *   node --import tsx bench/qdora-memory/child.ts DIR qdora|dora STEPS SEQ CHECKPOINTING(0|1)
 */
import { loadModelFromDir } from "../../src/models/index.js";
import { Linear4bit } from "../../src/nn/index.js";
import { LoraConfig, getPeftModel } from "../../src/peft/index.js";
import { Rng, indexTensor } from "../../src/tensor/index.js";
import { AdamW } from "../../src/train/optim.js";

const [dir, mode, stepsS, seqS, ckpt] = process.argv.slice(2) as [string, "qdora" | "dora", string, string, string];
const steps = Number(stepsS), seq = Number(seqS);
const t0 = performance.now();
const model = mode === "qdora"
  ? loadModelFromDir(dir, { quantize: "nf4", doubleQuant: true, keepFrozenIn16Bit: true })
  : loadModelFromDir(dir, { dtype: "float32" });
const loadS = (performance.now() - t0) / 1e3;

// base weights as held: the 4-bit layers, and everything (16-bit embeddings/head, float32 norms) before adapters
let qBytes = 0, qParams = 0, allBytes = 0, allParams = 0;
for (const [, m] of model.namedModules()) if (m instanceof Linear4bit) { qBytes += m.qweight.bytes; qParams += m.qweight.numel; }
for (const [, t] of model.namedParameters()) { allParams += t.numel; allBytes += t.data.byteLength; }
allBytes += qBytes; allParams += qParams;
const linBytes = mode === "qdora" ? qBytes : 4 * (allParams - 2 * model.config.vocabSize * model.config.hiddenSize);
const linParams = mode === "qdora" ? qParams : allParams - 2 * model.config.vocabSize * model.config.hiddenSize;

const tInit = performance.now();
const pm = getPeftModel(model, new LoraConfig({ r: 16, loraAlpha: 32, useDora: true, targetModules: "all-linear", taskType: "CAUSAL_LM" }), "default", { seed: 0 });
pm.train();
const initS = (performance.now() - tInit) / 1e3;
model.gradientCheckpointing = ckpt === "1";
const params = pm.trainableParameters().map(([name, tensor]) => ({ name, tensor }));
const opt = new AdamW(params, { lr: 1e-4 });
const rng = new Rng(1);
const ids = indexTensor(Array.from({ length: seq }, () => rng.int(model.config.vocabSize)), [1, seq]);
const losses: number[] = [], stepS: number[] = [];
const t1 = performance.now();
for (let s = 0; s < steps; s++) {
  const ts = performance.now();
  const loss = model.loss(ids);
  losses.push(Number(loss.item().toFixed(4)));
  loss.backward();
  opt.step();
  opt.zeroGrad();
  stepS.push(Number(((performance.now() - ts) / 1e3).toFixed(2)));
}
const trainS = (performance.now() - t1) / 1e3;
console.log(JSON.stringify({
  mode, params: allParams, bytes_per_param: linBytes / linParams, peak_rss_mib: process.resourceUsage().maxRSS / 1024,
  tokens_per_s: (steps * seq) / trainS, bytes_per_param_all: allBytes / allParams, load_s: loadS, init_s: initS, step_s: stepS,
  trainable: params.reduce((a, p) => a + p.tensor.numel, 0), gradient_checkpointing: ckpt === "1", seq, steps, losses,
}));
