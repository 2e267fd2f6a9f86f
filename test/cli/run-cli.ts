/** Runs the real `dora` entry (bin/dora.js over dist/) in a child process. npm test builds dist first. */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";

export interface CliResult { code: number; stdout: string; stderr: string }

export function dora(...args: string[]): CliResult {
  const r = spawnSync(process.execPath, [resolve("bin/dora.js"), ...args], { encoding: "utf8", env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
