/**
 * The profiler's tables: for a known tiny workload, which ops and modules appear with how many calls; and, on a
 * scripted clock (performance.now stubbed, so no timing depends on the machine), the times and their order.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { Rng, randn, sum } from "./index.js";
import {
  enterModule, exitModule, formatProfile, profileBackward, profileForward, profileReport, profileSpan, profileStep, setProfiling,
} from "./profile.js";
import { Linear, Module, instrumentModules } from "../nn/index.js";

afterEach(() => { setProfiling(false); vi.restoreAllMocks(); });

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

  it("sorts both tables by total (fwd + bwd) time, largest first", () => {
    let now = 0;
    vi.spyOn(performance, "now").mockImplementation(() => now);
    setProfiling(true);                          // mark = 0
    // Totals chosen so that no other order agrees with fwd + bwd descending: by fwd alone matmul would be last, by
    // bwd alone add (0, recorded first) would come before optimizer (0), and the recording order is add, matmul, sum.
    enterModule("a");
    now += 3; profileForward("add");             // add fwd 3, on a
    enterModule("a.b");
    now += 2; profileForward("matmul");          // matmul fwd 2, on a.b
    exitModule();
    now += 6; profileForward("sum");             // sum fwd 6, on a
    exitModule();
    profileBackward("matmul", "a.b", 8);         // matmul bwd 8, on a.b
    profileBackward("sum", undefined, 1);        // sum bwd 1, on (no module)
    profileSpan("optimizer", () => { now += 5; }); // optimizer fwd 5, on (optimizer)

    const r = profileReport();
    expect(r.ops.map((s) => [s.op, s.fwdMs, s.bwdMs])).toEqual([["matmul", 2, 8], ["sum", 6, 1], ["optimizer", 5, 0], ["add", 3, 0]]);
    expect(r.paths.map((s) => [s.path, s.fwdMs, s.bwdMs])).toEqual([["a.b", 2, 8], ["a", 9, 0], ["(optimizer)", 5, 0], ["(no module)", 0, 1]]);
    expect(r.totalMs).toBe(25);
    // the printed tables keep that order; the module table's cap keeps the largest rows
    expect(formatProfile(2)).toBe([
      "dora-ts profile (DORA_PROFILE): 0 step(s), total 25.0 ms",
      "",
      "| op | fwd ms | bwd ms | total ms | % | fwd calls | bwd calls |",
      "|---|---:|---:|---:|---:|---:|---:|",
      "| matmul | 2.0 | 8.0 | 10.0 | 40.0 | 1 | 1 |",
      "| sum | 6.0 | 1.0 | 7.0 | 28.0 | 1 | 1 |",
      "| optimizer | 5.0 | 0.0 | 5.0 | 20.0 | 1 | 0 |",
      "| add | 3.0 | 0.0 | 3.0 | 12.0 | 1 | 0 |",
      "",
      "| module | fwd ms | bwd ms | total ms | % |",
      "|---|---:|---:|---:|---:|",
      "| a.b | 2.0 | 8.0 | 10.0 | 40.0 |",
      "| a | 9.0 | 0.0 | 9.0 | 36.0 |",
      "| (2 more) | | | | |",
    ].join("\n"));
  });

  it("records nothing when off", () => {
    setProfiling(true);
    setProfiling(false);
    sum(randn([3], new Rng(1)).requiresGrad_()).backward();
    expect(profileReport().ops).toEqual([]);
  });
});
