/**
 * The layering rule, checked on every import in src/: backend ← tensor ← nn ← peft, models ← train ← cli,
 * with io and quant (quantised frozen weights) beside tensor. peft and models never import each other; the CLI uses only the public API.
 */
import { describe, expect, it } from "vitest";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative, resolve, dirname } from "node:path";

const SRC = resolve("src");
const allowed: Record<string, string[]> = {
  backend: ["backend"],
  tensor: ["tensor", "backend"],
  io: ["io", "tensor"],
  quant: ["quant", "tensor", "backend"],
  nn: ["nn", "tensor", "quant"],
  peft: ["peft", "nn", "tensor", "io", "backend", "quant"],
  models: ["models", "nn", "tensor", "io", "backend", "quant"],
  train: ["train", "models", "peft", "nn", "tensor", "io", "backend", "quant"],
  analysis: ["analysis", "train", "peft", "models", "nn", "tensor", "io", "backend"],
  cli: ["cli"],
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith(".ts") && !p.endsWith(".test.ts") ? [p] : [];
  });
}

describe("architecture", () => {
  it("imports point down the layers", () => {
    const bad: string[] = [];
    for (const file of files(SRC)) {
      const layer = relative(SRC, file).split("/")[0]!;
      if (layer.endsWith(".ts")) continue; // src/index.ts is the public surface
      const src = readFileSync(file, "utf8");
      for (const m of src.matchAll(/(?:from|import)\s*\(?\s*"(\.[^"]+)"/g)) {
        const target = relative(SRC, resolve(dirname(file), m[1]!));
        const tLayer = target.split("/")[0]!;
        if (layer === "cli" && (target === "index.js" || tLayer === "cli")) continue;
        if (!(allowed[layer] ?? []).includes(tLayer)) bad.push(`${relative(SRC, file)} imports ${m[1]}`);
      }
    }
    expect(bad).toEqual([]);
  });
});
