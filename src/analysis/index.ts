/** The analysis layer: DoRA's weight-decomposition analysis (ΔM/ΔD) of fine-tuning runs, charts, the comparison experiment. */
export { decompositionDelta, linearFit, type DecomposeOptions, type DecompositionDelta } from "./decompose.js";
export { analyzeRun, checkpointMethod, listCheckpoints, type AnalysisPoint, type AnalyzeOptions } from "./checkpoints.js";
export { renderChart, scatterSpec, type VegaLiteSpec } from "./plot.js";
export { summarize, pointsCsv, type MethodSummary } from "./summary.js";
export { runArm, runArmInChild, type ArmOptions, type ArmResult, type Method } from "./experiment.js";
export { runComparison, PAPER, type CompareOptions } from "./compare.js";
