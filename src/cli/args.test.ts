import { describe, expect, it } from "vitest";
import { UsageError, formatHelp, parseArgs, type CommandSpec } from "./args.js";

const spec: CommandSpec = {
  name: "t", summary: "test", usage: "dora t",
  flags: [
    { name: "use-dora", type: "boolean", help: "x" },
    { name: "shuffle", type: "boolean", default: true, help: "x" },
    { name: "r", type: "int", default: 8, help: "x" },
    { name: "lr", type: "number", help: "x" },
    { name: "targets", type: "list", help: "x" },
    { name: "kind", type: "string", choices: ["a", "b"], help: "x" },
  ],
};

describe("parseArgs", () => {
  it("reads each flag type, defaults, --no-<flag> and --flag=value, and records what was given", () => {
    const p = parseArgs(spec, ["--no-shuffle", "--use-dora", "--r=4", "--lr", "1e-3", "--targets", "q_proj,v_proj", "--kind", "b"]);
    expect(p.flags).toMatchObject({ shuffle: false, "use-dora": true, r: 4, lr: 0.001, targets: ["q_proj", "v_proj"], kind: "b" });
    expect([...p.given].sort()).toEqual(["kind", "lr", "r", "shuffle", "targets", "use-dora"]);
    expect(parseArgs(spec, ["--use-dora=false"]).flags["use-dora"]).toBe(false);
    expect(parseArgs(spec, []).flags).toMatchObject({ shuffle: true, r: 8 });
  });
  it("rejects bad values and unknown flags with a UsageError naming the flag", () => {
    expect(() => parseArgs(spec, ["--r", "1.5"])).toThrow(/--r expects an integer, got "1.5"/);
    expect(() => parseArgs(spec, ["--kind", "c"])).toThrow(/--kind expects one of a\|b/);
    expect(() => parseArgs(spec, ["--lr"])).toThrow(/--lr needs a value/);
    expect(() => parseArgs(spec, ["--bogus"])).toThrow(UsageError);
    expect(() => parseArgs(spec, ["extra"])).toThrow(/unexpected argument "extra"/);
  });
  it("help lists every flag and the --no- form", () => {
    const h = formatHelp(spec);
    for (const f of spec.flags) expect(h).toContain(`--${f.name}`);
    expect(h).toContain("--no-<flag>");
  });
});
