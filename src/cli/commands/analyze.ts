/** `dora analyze`: DoRA's ΔM/ΔD weight-decomposition analysis of fine-tuning runs (points, fits, Figure-2 scatter). */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "../main.js";
import { UsageError, getters } from "../args.js";
import { analysis } from "../../index.js";
import { requirePath } from "./common.js";

export const analyzeCmd: Command = {
  spec: {
    name: "analyze",
    summary: "ΔM/ΔD weight-decomposition analysis of runs' checkpoints (CSV, JSON, PNG/SVG scatter, slope and correlation)",
    usage: "dora analyze --model DIR --runs DIR[,DIR...] [--labels A,B,...] [--modules q_proj,v_proj] --output-dir DIR [--json]",
    flags: [
      { name: "model", type: "string", meta: "DIR", required: true, help: "the base model folder the runs started from" },
      { name: "runs", type: "list", meta: "DIR,...", required: true, help: "output folders of training runs with checkpoint-<step>/ (--save-steps)" },
      { name: "labels", type: "list", meta: "A,B,...", help: "one label per run (default: FT, LoRA or DoRA, from the checkpoints)" },
      { name: "modules", type: "list", meta: "a,b,...", help: "module types to measure (default: q_proj,v_proj; GPT-2 c_attn)" },
      { name: "output-dir", type: "string", meta: "DIR", required: true, help: "writes points.csv, points.json, summary.json, delta-md.svg/.png" },
      { name: "json", type: "boolean", help: "print the summary as one JSON object" },
    ],
    examples: ["npx dora analyze --model models/dora-tiny --runs out/ft,out/lora,out/dora --output-dir out/analysis"],
  },
  async run(p) {
    const g = getters(p);
    const base = requirePath("model", g.str("model"), "dir");
    const runs = g.list("runs")!;
    const labels = g.list("labels");
    if (labels && labels.length !== runs.length) throw new UsageError(`--labels has ${labels.length} entries for ${runs.length} --runs`);
    const modules = g.list("modules");
    const points = runs.flatMap((run, i) => {
      requirePath("runs", run, "dir");
      return analysis.analyzeRun(base, run, { ...(modules ? { modules } : {}), ...(labels ? { method: labels[i]! } : {}) });
    });
    const out = g.str("output-dir")!;
    mkdirSync(out, { recursive: true });
    const summary = analysis.summarize(points);
    writeFileSync(join(out, "points.csv"), analysis.pointsCsv(points));
    writeFileSync(join(out, "points.json"), `${JSON.stringify(points, null, 1)}\n`);
    writeFileSync(join(out, "summary.json"), `${JSON.stringify(summary, null, 2)}\n`);
    const { svg, png } = await analysis.renderChart(analysis.scatterSpec(points, `ΔM vs ΔD (${[...new Set(points.map((q) => q.module))].join(", ")})`));
    writeFileSync(join(out, "delta-md.svg"), svg);
    writeFileSync(join(out, "delta-md.png"), png);
    if (g.bool("json")) { process.stdout.write(`${JSON.stringify({ summary })}\n`); return; }
    process.stdout.write(`${"method".padEnd(10)}${"module".padEnd(10)}${"points".padStart(7)}${"slope".padStart(12)}${"pearson".padStart(10)}\n`);
    for (const s of summary) {
      process.stdout.write(`${s.method.padEnd(10)}${s.module.padEnd(10)}${String(s.points).padStart(7)}${s.slope.toPrecision(3).padStart(12)}${s.pearson.toFixed(3).padStart(10)}\n`);
    }
    process.stdout.write(`wrote ${out}/points.csv, points.json, summary.json, delta-md.svg, delta-md.png\n`);
  },
};
