#!/usr/bin/env node
// `npm test`: type-check, then the whole suite on the native backend (a missing addon fails, never skips),
// then again on the js reference backend; ends with one "N passed, N failed" line over both runs.
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";

const extra = process.argv.slice(2);
const out = ".test-results";
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { stdio: "inherit", env: { ...process.env, ...env } });
  return r.status ?? 1;
}

let status = run("npx", ["tsc", "-p", "tsconfig.json", "--noEmit"]);
if (status !== 0) { console.error("type check failed"); process.exit(status); }
// the CLI tests run bin/dora.js, which loads dist/: rebuild it so they test this tree
status = run("npx", ["tsc", "-p", "tsconfig.build.json"]);
if (status !== 0) { console.error("build failed"); process.exit(status); }

let passed = 0, failed = 0, skipped = 0;
for (const backend of ["native", "js"]) {
  console.log(`\n=== test suite on the ${backend} backend ===`);
  const file = `${out}/${backend}.json`;
  const code = run("npx", ["vitest", "run", "--reporter=default", "--reporter=json", `--outputFile.json=${file}`, ...extra], { DORA_BACKEND: backend });
  try {
    const r = JSON.parse(readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + (r.numTodoTests ?? 0);
  } catch {
    failed += 1; // no report: the run itself failed
  }
  if (code !== 0) status = code;
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(status !== 0 || failed > 0 ? 1 : 0);
