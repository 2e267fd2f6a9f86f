import { describe, expect, it } from "vitest";
import { loadGolden } from "../helpers/golden.js";

describe("loadGolden", () => {
  it("reads float32 tensors exactly and int64 ids as int32", () => {
    const g = loadGolden("dora_embedding");
    expect(g.get("W").shape).toEqual([20, 12]);
    expect(g.get("ids").dtype).toBe("int32");
    expect(g.config["r"]).toBe(4);
    expect(() => g.get("nope")).toThrow(/no tensor "nope"/);
  });
});
