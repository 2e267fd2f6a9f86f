/**
 * Loads the model folder argv[2] once (argv[3] "--keep16": keepFrozenIn16Bit) and prints
 * {"seconds","peakRssMB","baseRssMB"}. Peak is VmHWM of /proc/self/status, which starts fresh at exec;
 * ru_maxrss would carry the parent's high-water mark over fork.
 */
import { readFileSync } from "node:fs";
import { loadModelFromDir } from "../../src/models/index.js";

function hwmMB(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? (Number(m[1]) * 1024) / 1e6 : (process.resourceUsage().maxRSS * 1024) / 1e6;
}

const dir = process.argv[2];
if (!dir) throw new Error("usage: load-child.ts MODEL_DIR [--keep16]");
const baseRssMB = process.memoryUsage().rss / 1e6;
const t = process.hrtime.bigint();
const model = loadModelFromDir(dir, process.argv[3] === "--keep16" ? { keepFrozenIn16Bit: true } : {});
const seconds = Number(process.hrtime.bigint() - t) / 1e9;
console.log(JSON.stringify({ seconds, peakRssMB: hwmMB(), baseRssMB, params: model.parameters().length }));
