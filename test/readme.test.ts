/** The README's library example, as written there, through the package's public entry. */
import { describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LoraConfig, getPeftModel, loadModel, tensor } from "../src/index.js";

describe("README library example", () => {
  it("runs and trains only the adapter", async () => {
    const model = await loadModel("examples/tiny-llama");
    const peft = getPeftModel(model, new LoraConfig({ r: 8, loraAlpha: 16, useDora: true, targetModules: "all-linear" }));
    expect(peft.printTrainableParameters(false)).toMatch(/^trainable params: [\d,]+ \|\| all params: [\d,]+ \|\| trainable%: [\d.]+$/);
    const ids = tensor.indexTensor([1, 40, 41, 42], [1, 4]);
    const loss = model.loss(ids);
    loss.backward();
    const withGrad = peft.namedParameters().filter(([, t]) => t.grad !== null).map(([n]) => n);
    expect(withGrad.length).toBe(peft.trainableParameters().length);
    expect(withGrad.every((n) => /lora_(A|B|magnitude_vector)/.test(n))).toBe(true);
    const out = mkdtempSync(join(tmpdir(), "readme-"));
    peft.savePretrained(out);
    expect(JSON.parse(readFileSync(join(out, "adapter_config.json"), "utf8")).use_dora).toBe(true);
    expect(readFileSync("README.md", "utf8")).toContain('const peft = getPeftModel(model, new LoraConfig({ r: 8, loraAlpha: 16, useDora: true, targetModules: "all-linear" }));');
  });
});
