/** `dora train` checkpoints: resuming equals the uninterrupted run; SIGINT saves and exits cleanly. */
import { describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { SafetensorsFile } from "../../src/io/index.js";
import { dora } from "./run-cli.js";

const common = ["--model", "examples/tiny-llama", "--data", "examples/data/train.jsonl", "--use-dora", "--r", "4",
  "--target-modules", "q_proj,v_proj,down_proj", "--learning-rate", "1e-2", "--batch-size", "4", "--lora-dropout", "0.1",
  "--lr-scheduler-type", "cosine", "--warmup-steps", "2", "--max-steps", "8"];

function adapterValues(dir: string): Map<string, number[]> {
  const f = SafetensorsFile.openSync(join(dir, "adapter_model.safetensors"));
  return new Map(f.keys().map((k) => [k, Array.from(f.readFloat32(k))]));
}

describe("dora train checkpoints", () => {
  it("--resume-from-checkpoint continues to the same adapter and losses as one uninterrupted run", () => {
    const full = mkdtempSync(join(tmpdir(), "ck-full-")), part = mkdtempSync(join(tmpdir(), "ck-part-"));
    expect(dora("train", ...common, "--output-dir", full).code).toBe(0);
    const first = dora("train", ...common, "--output-dir", part, "--save-steps", "4");
    expect(first.code).toBe(0);
    for (const f of ["adapter_config.json", "adapter_model.safetensors", "optimizer.safetensors", "trainer_state.json"]) {
      expect(existsSync(join(part, "checkpoint-4", f)), f).toBe(true);
    }
    const resumed = mkdtempSync(join(tmpdir(), "ck-res-"));
    const r = dora("train", ...common, "--output-dir", resumed, "--resume-from-checkpoint", join(part, "checkpoint-4"));
    expect(r.code, r.stderr).toBe(0);
    expect(adapterValues(resumed)).toEqual(adapterValues(full));
    const losses = (d: string): number[] => readFileSync(join(d, "metrics.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((l) => "loss" in l).map((l) => l.loss);
    expect(losses(resumed)).toEqual(losses(full).slice(4));
  });

  it("SIGINT finishes the step, saves a checkpoint and exits 0", async () => {
    const out = mkdtempSync(join(tmpdir(), "ck-int-"));
    const child = spawn(process.execPath, [resolve("bin/dora.js"), "train", ...common.slice(0, -1), "100000", "--output-dir", out], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      if (/train \d+\/100000/.test(err) && !child.killed) child.kill("SIGINT");
    });
    // never leave a 100000-step trainer behind if the signal is not honoured: kill it hard after 60 s
    const guard = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const code = await new Promise<number | null>((res) => child.on("exit", res));
    clearTimeout(guard);
    expect(code).toBe(0);
    expect(err).toMatch(/SIGINT: finishing this step/);
    const m = /stopped at step (\d+); checkpoint (\S+)/.exec(err);
    expect(m).not.toBeNull();
    expect(existsSync(join(m![2]!, "trainer_state.json"))).toBe(true);
    expect(existsSync(join(out, "adapter_model.safetensors"))).toBe(true);
  });
});
