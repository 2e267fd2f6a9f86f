/**
 * Without the addon (a copy of the compiled package with no build/), dora-ts runs on the js backend after one
 * warning naming the cause; DORA_BACKEND=native makes that an error; DORA_BACKEND=js never touches the addon.
 */
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const pkg = mkdtempSync(join(tmpdir(), "dora-noaddon-"));
cpSync(resolve("dist"), join(pkg, "dist"), { recursive: true });
writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "dora-ts", type: "module" }));
symlinkSync(resolve("node_modules"), join(pkg, "node_modules"));
const script = `import("${join(pkg, "dist", "index.js")}").then((m) => { const t = m.tensor; const y = t.matmul(t.tensor([1, 2, 3, 4], [2, 2]), t.tensor([1, 0, 0, 1], [2, 2])); console.log(m.backend.getBackend().name, y.toArray().join(",")); })`;

function run(env: Record<string, string>) {
  const e: Record<string, string | undefined> = { ...process.env, ...env };
  if (!("DORA_BACKEND" in env)) delete e["DORA_BACKEND"];
  return spawnSync(process.execPath, ["-e", script], { encoding: "utf8", env: e });
}

describe("backend selection without the addon", () => {
  it("falls back to js with one warning naming the missing addon", () => {
    const r = run({});
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe("js 1,2,3,4");
    const warnings = r.stderr.split("\n").filter((l) => l.includes("native addon unavailable"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("dora_native.node");
  });
  it("DORA_BACKEND=native fails clearly", () => {
    const r = run({ DORA_BACKEND: "native" });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain("DORA_BACKEND=native but the native addon did not load");
  });
  it("DORA_BACKEND=js is silent", () => {
    const r = run({ DORA_BACKEND: "js" });
    expect(r.stdout.trim()).toBe("js 1,2,3,4");
    expect(r.stderr).not.toContain("native addon unavailable");
  });
});
