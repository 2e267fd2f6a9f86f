/**
 * Charts without a browser: a vega-lite spec is compiled to vega, rendered headless to SVG by vega's View, and
 * rasterised to PNG by @resvg/resvg-js (its native binary ships in the npm package; fonts are the system's).
 * `scatterSpec` draws DoRA's Figure 2: x = ΔD, y = ΔM, colour = layer, shape = checkpoint step, one panel per method.
 */
import { Resvg } from "@resvg/resvg-js";
import * as vega from "vega";
import * as vegaLite from "vega-lite";
import type { AnalysisPoint } from "./checkpoints.js";
import { linearFit } from "./decompose.js";

export type VegaLiteSpec = Record<string, unknown>;

/** Renders a vega-lite spec to SVG text and PNG bytes (`scale` multiplies the PNG's resolution). */
export async function renderChart(spec: VegaLiteSpec, scale = 2): Promise<{ svg: string; png: Buffer }> {
  const compiled = vegaLite.compile(spec as unknown as vegaLite.TopLevelSpec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  const svg = await view.toSVG();
  view.finalize();
  const png = new Resvg(svg, { fitTo: { mode: "zoom", value: scale }, background: "white", font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" } })
    .render().asPng();
  return { svg, png };
}

/** Figure 2 of the DoRA paper for any number of methods: one panel each, independent axes. */
export function scatterSpec(points: readonly AnalysisPoint[], title: string): VegaLiteSpec {
  // panel header: the method with its fitted slope and Pearson r over all its points
  const label = new Map<string, string>();
  for (const m of new Set(points.map((p) => p.method))) {
    const own = points.filter((p) => p.method === m);
    const f = linearFit(own.map((p) => p.dD), own.map((p) => p.dM));
    label.set(m, `${m}: slope ${f.slope.toPrecision(2)}, r ${f.pearson.toFixed(2)}`);
  }
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: title, fontSize: 14 },
    data: { values: points.map((p) => ({ ...p, panel: label.get(p.method), layer: p.layer })) },
    facet: { column: { field: "panel", type: "nominal", title: null, header: { labelFontSize: 12 }, sort: [...label.values()] } },
    resolve: { scale: { x: "independent", y: "independent" } },
    spec: {
      width: 240, height: 220,
      layer: [
        {
          mark: { type: "point", filled: true, size: 60, opacity: 0.85 },
          encoding: {
            x: { field: "dD", type: "quantitative", title: "ΔD", scale: { zero: false }, axis: { format: ".2e", labelAngle: -30 } },
            y: { field: "dM", type: "quantitative", title: "ΔM", scale: { zero: false }, axis: { format: ".2e" } },
            color: { field: "layer", type: "ordinal", title: "layer", scale: { scheme: "viridis" } },
            shape: { field: "step", type: "nominal", title: "step", sort: "ascending" },
            tooltip: [{ field: "module" }, { field: "layer" }, { field: "step" }, { field: "dM" }, { field: "dD" }],
          },
        },
        {
          mark: { type: "line", color: "#c0392b", strokeDash: [4, 3], strokeWidth: 1.5 },
          transform: [{ regression: "dM", on: "dD" }],
          encoding: { x: { field: "dD", type: "quantitative" }, y: { field: "dM", type: "quantitative" } },
        },
      ],
    },
  };
}
