/** The profiler's tables for a known tiny workload: which ops and modules appear, with how many calls (not timings). */
import { afterEach, describe, expect, it } from "vitest";
import { Rng, randn, sum } from "./index.js";
import { formatProfile, profileReport, profileSpan, profileStep, setProfiling } from "./profile.js";
import { Linear, Module, instrumentModules } from "../nn/index.js";

afterEach(() => setProfiling(false));

describe("profiler", () => {
  it("counts forward and backward calls per op kind and attributes them to module paths", () => {
    setProfiling(true);
    const root = new Module();
    root.registerModule("lin", new Linear(4, 3, true, new Rng(1))).requiresGrad_(false);
    instrumentModules(root);
    for (let step = 0; step < 2; step++) {
      const x = randn([2, 4], new Rng(2)).requiresGrad_();
      const y = root.child<Linear>("lin").forward(x);   // permute (w.T), matmul, add (bias)
      sum(y).backward();                                  // sum; backward: sum, add, matmul
      profileSpan("optimizer", () => undefined);
      profileStep();
    }
    const r = profileReport();
    expect(r.steps).toBe(2);
    const calls = Object.fromEntries(r.ops.map((s) => [s.op, [s.fwdCalls, s.bwdCalls]]));
    expect(calls).toEqual({ permute: [2, 0], matmul: [2, 2], add: [2, 2], sum: [2, 2], optimizer: [2, 0] });
    expect(r.paths.map((p) => p.path).sort()).toEqual(["(no module)", "(optimizer)", "lin"]);
    const table = formatProfile();
    expect(table).toContain("2 step(s)");
    expect(table).toMatch(/\| matmul \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| 2 \| 2 \|/);
    expect(table).toMatch(/\| lin \| [\d.]+ \| [\d.]+ \|/);
  });

  it("records nothing when off", () => {
    setProfiling(true);
    setProfiling(false);
    sum(randn([3], new Rng(1)).requiresGrad_()).backward();
    expect(profileReport().ops).toEqual([]);
  });
});
