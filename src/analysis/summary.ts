/** Per-method fits of ΔM on ΔD (the paper's slope and correlation) and the points as CSV. */
import type { AnalysisPoint } from "./checkpoints.js";
import { linearFit } from "./decompose.js";

export interface MethodSummary { method: string; module: string; points: number; slope: number; pearson: number }

/** One row per method and module type, plus one per method over all its module types ("all"). */
export function summarize(points: readonly AnalysisPoint[]): MethodSummary[] {
  const out: MethodSummary[] = [];
  for (const method of new Set(points.map((p) => p.method))) {
    const own = points.filter((p) => p.method === method);
    const mods = [...new Set(own.map((p) => p.module))];
    for (const module of mods.length > 1 ? [...mods, "all"] : mods) {
      const sel = module === "all" ? own : own.filter((p) => p.module === module);
      const f = linearFit(sel.map((p) => p.dD), sel.map((p) => p.dM));
      out.push({ method, module, points: sel.length, slope: f.slope, pearson: f.pearson });
    }
  }
  return out;
}

export function pointsCsv(points: readonly AnalysisPoint[]): string {
  return ["method,module,layer,step,delta_m,delta_d", ...points.map((p) => `${p.method},${p.module},${p.layer},${p.step},${p.dM},${p.dD}`)].join("\n") + "\n";
}
