/** readJsonFile messages and writeFileAtomic's all-or-nothing replacement. */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { IoError, JsonFileError } from "./errors.js";
import { readJsonFile, writeFileAtomic } from "./json.js";

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "dora-json-")); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

describe("readJsonFile", () => {
  it("parses JSON, tolerating a UTF-8 BOM", () => {
    const p = join(dir, "a.json");
    writeFileSync(p, "\uFEFF{\"r\": 8, \"__proto__\": {\"x\": 1}}");
    const v = readJsonFile(p, "adapter config") as Record<string, unknown>;
    expect(v["r"]).toBe(8);
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype); // JSON.parse makes "__proto__" an own key
  });

  it("names the file, its role and where the JSON breaks", () => {
    const p = join(dir, "adapter_config.json");
    writeFileSync(p, "{\n  \"r\": 8\n  \"alpha\": 1\n}"); // missing comma
    expect(() => readJsonFile(p, "adapter config")).toThrow(JsonFileError);
    expect(() => readJsonFile(p, "adapter config")).toThrow(
      `${p}: adapter config is not valid JSON: Expected ',' or '}' after property value in JSON at position 13 (line 3, column 3)`);
    writeFileSync(p, "{\"alpha\": oops}"); // V8 quotes the neighbourhood instead of a position
    expect(() => readJsonFile(p, "adapter config")).toThrow(/adapter config is not valid JSON: Unexpected token 'o'/);
  });

  it("names the file when it is missing or not UTF-8", () => {
    const missing = join(dir, "config.json");
    expect(() => readJsonFile(missing, "model config")).toThrow(`${missing}: cannot read model config: ENOENT`);
    writeFileSync(missing, Buffer.from([0x7b, 0xff, 0x7d]));
    expect(() => readJsonFile(missing, "model config")).toThrow(`${missing}: model config is not valid UTF-8`);
  });
});

describe("writeFileAtomic", () => {
  it("writes strings, bytes and chunk sequences", () => {
    const p = join(dir, "f");
    writeFileAtomic(p, "héllo");
    expect(readFileSync(p, "utf8")).toBe("héllo");
    writeFileAtomic(p, Uint8Array.of(1, 2));
    expect([...readFileSync(p)]).toEqual([1, 2]);
    writeFileAtomic(p, [Uint8Array.of(3), new Uint8Array(0), Uint8Array.of(4, 5)]);
    expect([...readFileSync(p)]).toEqual([3, 4, 5]);
    expect(readdirSync(dir)).toEqual(["f"]);
  });

  it("keeps the old file and removes the temp file when writing fails midway", () => {
    const p = join(dir, "config.json");
    writeFileSync(p, "old");
    function* chunks(): Generator<Uint8Array> {
      yield Buffer.from("new, partial");
      throw new Error("disk on fire");
    }
    expect(() => writeFileAtomic(p, chunks())).toThrow(IoError);
    expect(() => writeFileAtomic(p, chunks())).toThrow(`${p}: write failed, existing file left unchanged: disk on fire`);
    expect(readFileSync(p, "utf8")).toBe("old");
    expect(readdirSync(dir)).toEqual(["config.json"]);
  });

  it("keeps a replaced file's mode", () => {
    const p = join(dir, "script");
    writeFileSync(p, "a");
    chmodSync(p, 0o640);
    writeFileAtomic(p, "b");
    expect(statSync(p).mode & 0o777).toBe(0o640);
  });

  it("fails with the path when the folder does not exist", () => {
    const p = join(dir, "no", "such", "file");
    expect(() => writeFileAtomic(p, "x")).toThrow(new RegExp(`^${p}: write failed.*ENOENT`));
  });
});
