import { describe, expect, it } from "vitest";
import { Linear, Module, RMSNorm } from "./index.js";
import { Rng, randn } from "../tensor/index.js";
import { expectClose } from "../../test/helpers/close.js";

class Block extends Module {
  constructor() {
    super();
    this.registerModule("q_proj", new Linear(4, 3, false, new Rng(1)));
    this.registerModule("norm", new RMSNorm(4));
  }
}

describe("Module", () => {
  it("names parameters by dotted path and lists tied tensors once", () => {
    const root = new Module();
    const b = root.registerModule("layers", new Module()).registerModule("0", new Block());
    root.registerParameter("tied", b.child<Linear>("q_proj").weight);
    expect(root.namedParameters().map(([n]) => n)).toEqual(["tied", "layers.0.norm.weight"]);
    expect(root.namedModules().map(([n]) => n)).toEqual(["", "layers", "layers.0", "layers.0.q_proj", "layers.0.norm"]);
  });
  it("replaces a submodule by path and propagates train/eval", () => {
    const root = new Module();
    root.registerModule("blk", new Block());
    const other = new Linear(4, 3, false, new Rng(2));
    root.setSubmodule("blk.q_proj", other);
    expect(root.getSubmodule("blk.q_proj")).toBe(other);
    root.eval();
    expect(other.training).toBe(false);
    expect(() => root.getSubmodule("blk.k_proj")).toThrow(/"blk.k_proj" not found/);
  });
  it("Linear computes x·Wᵀ + b", () => {
    const l = new Linear(3, 2, true, new Rng(5));
    const x = randn([1, 3], new Rng(6));
    const w = l.weight.toArray(), b = l.bias!.toArray(), xv = x.toArray();
    const ref = [0, 1].map((o) => b[o]! + xv.reduce((s, v, i) => s + v * w[o * 3 + i]!, 0));
    expectClose(l.forward(x), ref, "linear");
  });
  it("kaiming-uniform init stays within 1/sqrt(fan_in)", () => {
    const l = new Linear(64, 32, false, new Rng(7));
    const bound = 1 / 8;
    const vals = l.weight.toArray();
    expect(Math.max(...vals.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(Math.max(...vals.map(Math.abs))).toBeGreaterThan(bound * 0.95);
  });
});
