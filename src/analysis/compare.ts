/**
 * The paper in miniature (`dora compare`): FT, LoRA r, DoRA r and DoRA r/2 (the paper's DoRA†) on one base model
 * and one task (multiple choice, or held-out perplexity of a text style) with the same steps, batch and data order, over several seeds, each arm in its own
 * process (peak RSS). Writes results.json, a markdown report with the paper's numbers beside ours, an accuracy
 * chart and the ΔM/ΔD scatter of the first seed's checkpoints.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { analyzeRun, type AnalysisPoint } from "./checkpoints.js";
import { runArmInChild, type ArmOptions, type ArmResult, type Method } from "./experiment.js";
import { renderChart, scatterSpec, type VegaLiteSpec } from "./plot.js";
import { summarize, pointsCsv } from "./summary.js";

export interface CompareOptions {
  modelDir: string; trainFile: string;
  /** "mc": evalFile is multiple choice (accuracy); "lm": held-out text (perplexity). */
  task: "mc" | "lm";
  evalFile: string;
  /** Where results.json, RESULTS.md and the PNG/SVG charts go. */
  outputDir: string;
  /** Where the runs and checkpoints go (large; not meant for commits). */
  workDir: string;
  r: number; steps: number; batchSize: number; seeds: number[];
  adapterLearningRate: number; ftLearningRate: number;
  targetModules: string[] | "all-linear";
  /** Checkpoints per run for the ΔM/ΔD analysis. */
  checkpoints: number;
  /** Module types for the analysis. */
  modules: string[];
  /** Shown in the report: how it was run. */
  command: string;
  log?: (msg: string) => void;
}

/** The paper's numbers (LLaMA-7B, 8 commonsense tasks; Table 1 and §2). */
export const PAPER = {
  accuracy: { LoRA: 74.7, "DoRA†": 77.5, DoRA: 78.4 } as Record<string, number>,
  correlation: { FT: -0.62, DoRA: -0.31, LoRA: 0.83 } as Record<string, number>,
};

interface Arm { label: string; method: Method; r: number; lr: number }

const meanSd = (xs: number[]): { mean: number; sd: number } => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean: m, sd };
};

export async function runComparison(o: CompareOptions): Promise<{ results: ArmResult[]; points: AnalysisPoint[]; markdown: string }> {
  const log = o.log ?? ((m: string) => process.stderr.write(`${m}\n`));
  const half = Math.max(1, Math.floor(o.r / 2));
  const arms: Arm[] = [
    { label: "FT", method: "FT", r: 0, lr: o.ftLearningRate },
    { label: "LoRA", method: "LoRA", r: o.r, lr: o.adapterLearningRate },
    { label: "DoRA", method: "DoRA", r: o.r, lr: o.adapterLearningRate },
    { label: "DoRA†", method: "DoRA", r: half, lr: o.adapterLearningRate },
  ];
  mkdirSync(o.outputDir, { recursive: true });
  const results: ArmResult[] = [];
  let base: ArmResult["before"];
  for (const seed of o.seeds) {
    for (const arm of arms) {
      const opts: ArmOptions = {
        label: arm.label, method: arm.method, modelDir: o.modelDir, trainFile: o.trainFile, task: o.task, evalFile: o.evalFile,
        outputDir: join(o.workDir, `${arm.label.replace("†", "-half")}-seed${seed}`), r: arm.r, targetModules: o.targetModules,
        learningRate: arm.lr, maxSteps: o.steps, batchSize: o.batchSize, seed,
        saveSteps: seed === o.seeds[0] ? Math.max(1, Math.floor(o.steps / o.checkpoints)) : 0, scoreBefore: base === undefined, quiet: true,
      };
      log(`compare: ${arm.label} (r ${arm.r || "-"}) seed ${seed}: ${o.steps} steps…`);
      const res = await runArmInChild(opts);
      base ??= res.before;
      results.push(res);
      const sc = res.after;
      log(`  ${o.task === "mc" ? `accuracy ${(100 * sc.accuracy!).toFixed(1)}% (norm ${(100 * sc.accuracyNorm!).toFixed(1)}%)` : `perplexity ${sc.perplexity!.toFixed(2)}`}, ${res.trainSeconds.toFixed(0)} s, ` +
        `peak RSS ${((res.peakRssBytes ?? 0) / 2 ** 20).toFixed(0)} MiB`);
      writeFileSync(join(o.outputDir, "results.json"), `${JSON.stringify({ base, results }, null, 2)}\n`);
    }
  }
  // ΔM/ΔD on the first seed's checkpoints
  const points = arms.flatMap((a) => analyzeRun(o.modelDir, join(o.workDir, `${a.label.replace("†", "-half")}-seed${o.seeds[0]}`), { modules: o.modules, method: a.label }));
  const fits = summarize(points);
  writeFileSync(join(o.outputDir, "delta-md-points.csv"), pointsCsv(points));
  const fig = await renderChart(scatterSpec(points, `ΔM vs ΔD, ${o.modules.join(" + ")}, seed ${o.seeds[0]} (colour: layer, shape: step)`));
  writeFileSync(join(o.outputDir, "delta-md.svg"), fig.svg);
  writeFileSync(join(o.outputDir, "delta-md.png"), fig.png);
  const acc = await renderChart(scoreSpec(results, base, o.task));
  const chart = o.task === "mc" ? "accuracy" : "perplexity";
  writeFileSync(join(o.outputDir, `${chart}.svg`), acc.svg);
  writeFileSync(join(o.outputDir, `${chart}.png`), acc.png);
  const markdown = report(o, arms, results, fits, base);
  writeFileSync(join(o.outputDir, "RESULTS.md"), markdown);
  writeFileSync(join(o.outputDir, "results.json"), `${JSON.stringify({ options: o, base, results, fits }, null, 2)}\n`);
  return { results, points, markdown };
}

function scoreSpec(results: ArmResult[], base: ArmResult["before"], task: "mc" | "lm"): VegaLiteSpec {
  const value = (s: NonNullable<ArmResult["before"]>): number => (task === "mc" ? 100 * s.accuracy! : s.perplexity!);
  const rows = results.map((r) => ({ method: r.label, seed: r.seed, accuracy: value(r.after) }));
  const what = task === "mc" ? "Multiple-choice accuracy (%)" : "Held-out perplexity";
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: `${what} after fine-tuning (${new Set(results.map((r) => r.seed)).size} seeds; dots: seeds, bar: mean; dashed: base)`,
    width: 360, height: 240, data: { values: rows },
    layer: [
      { mark: { type: "bar", opacity: 0.6 }, encoding: { x: { field: "method", type: "nominal", sort: null, title: null, axis: { labelAngle: 0 } }, y: { aggregate: "mean", field: "accuracy", type: "quantitative", title: what, scale: { zero: task === "mc" } }, color: { field: "method", type: "nominal", legend: null, sort: null } } },
      { mark: { type: "point", filled: true, color: "black", size: 40 }, encoding: { x: { field: "method", type: "nominal", sort: null }, y: { field: "accuracy", type: "quantitative" } } },
      { mark: { type: "rule", color: "#888", strokeDash: [4, 3] }, encoding: { y: { datum: base ? value(base) : task === "mc" ? 25 : 0 } } },
    ],
  };
}

function report(o: CompareOptions, arms: Arm[], results: ArmResult[], fits: ReturnType<typeof summarize>, base: ArmResult["before"]): string {
  const pct = (x: number): string => (100 * x).toFixed(1);
  const mc = o.task === "mc";
  const rows = arms.map((a) => {
    const rs = results.filter((r) => r.label === a.label);
    const acc = meanSd(rs.map((r) => r.after.accuracy ?? NaN)), norm = meanSd(rs.map((r) => r.after.accuracyNorm ?? NaN));
    const ppl = meanSd(rs.map((r) => (mc ? r.after.answerPerplexity : r.after.perplexity) ?? NaN)), t = meanSd(rs.map((r) => r.trainSeconds));
    const rss = Math.max(...rs.map((r) => r.peakRssBytes ?? 0)) / 2 ** 20;
    const fit = fits.find((f) => f.method === a.label && f.module === (o.modules.length > 1 ? "all" : o.modules[0]));
    const p = rs[0]!;
    return `| ${a.label} | ${a.r || "–"} | ${p.trainableParams.toLocaleString("en-US")} (${pct(p.trainableParams / p.totalParams)}%) | ` +
      (mc ? `${pct(acc.mean)} ± ${pct(acc.sd)} | ${pct(norm.mean)} ± ${pct(norm.sd)} | ${ppl.mean.toFixed(1)} | ` : `${ppl.mean.toFixed(2)} ± ${ppl.sd.toFixed(2)} | `) +
      `${t.mean.toFixed(0)} | ${rss.toFixed(0)} | ` +
      `${fit ? fit.slope.toPrecision(2) : "–"} | ${fit ? fit.pearson.toFixed(2) : "–"} | ${PAPER.accuracy[a.label] ?? "–"} | ${PAPER.correlation[a.label] ?? "–"} |`;
  });
  const seeds = o.seeds.length;
  return [
    `# The paper in miniature: FT vs LoRA vs DoRA (${mc ? "multiple choice" : "held-out perplexity"})`,
    "",
    `Command: \`${o.command}\``,
    "",
    `Base model \`${o.modelDir}\`, trained on \`${o.trainFile}\` for ${o.steps} steps of batch ${o.batchSize} (same data order per seed),`,
    `scored on \`${o.evalFile}\` (${mc ? "multiple choice by option log-likelihood" : "held-out perplexity"}). Adapters on ${o.targetModules === "all-linear" ? "all linear layers" : o.targetModules.join(", ")},`,
    `alpha = 2·r, lr ${o.adapterLearningRate} (FT: ${o.ftLearningRate}), linear schedule with 10% warmup. ${seeds} seeds (${o.seeds.join(", ")}): mean ± sample sd.`,
    mc ? `Before fine-tuning the base model scores ${base ? `${pct(base.accuracy!)}% (length-normalised ${pct(base.accuracyNorm!)}%)` : "–"}; chance is 25%.`
      : `Before fine-tuning the base model's held-out perplexity is ${base?.perplexity?.toFixed(2) ?? "–"}.`,
    "",
    mc ? "| method | r | trainable params | accuracy % | acc. (len-norm) % | answer ppl | train s | peak RSS MiB | ΔM/ΔD slope | corr(ΔM, ΔD) | paper acc. % | paper corr. |"
      : "| method | r | trainable params | held-out ppl | train s | peak RSS MiB | ΔM/ΔD slope | corr(ΔM, ΔD) | paper acc. % | paper corr. |",
    mc ? "|---|---|---|---|---|---|---|---|---|---|---|---|" : "|---|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    "The paper's columns are LLaMA-7B on eight commonsense tasks (Table 1; DoRA† is DoRA at half LoRA's rank) and the",
    "ΔM/ΔD correlations of its §2 (FT −0.62, DoRA −0.31, LoRA +0.83). Ours: a 2.4 M-parameter model, one small task.",
    `ΔM/ΔD: ${o.modules.join(", ")} of every layer at ${o.checkpoints} checkpoints of seed ${o.seeds[0]}'s runs; slope and Pearson r over those points.`,
    "Train time and peak RSS are per process on a shared 2-core CPU; they move with the machine's load.",
    "",
    `![score](${mc ? "accuracy" : "perplexity"}.png)`,
    "",
    "![ΔM vs ΔD](delta-md.png)",
    "",
  ].join("\n");
}
