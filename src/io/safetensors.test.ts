/**
 * safetensors: round trips for every dtype, the golden files (keys, shapes, values from the JSON
 * fixtures), a corrupted-file suite (each failure a SafetensorsError naming file and problem), writer
 * atomicity, and a sharded checkpoint that reads like the single file.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { f32ToBf16Scalar } from "../tensor/half.js";
import { SafetensorsError } from "./errors.js";
import { readJsonFile } from "./json.js";
import { openModelWeights } from "./model-weights.js";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "./safetensors.js";

const GOLDEN = join(import.meta.dirname, "../../test/fixtures/golden");

let dir: string;
beforeEach(() => { dir = mkdtempSync(join(tmpdir(), "dora-st-")); });
afterEach(() => { rmSync(dir, { recursive: true, force: true }); });

/** A raw file: u64 length (or `length` to lie), the header text as given, then `data`. */
function rawFile(name: string, header: unknown, data: Uint8Array = new Uint8Array(0), length?: bigint): string {
  const text = typeof header === "string" ? header : JSON.stringify(header);
  const h = Buffer.from(text, "utf8");
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(length ?? BigInt(h.length));
  const p = join(dir, name);
  writeFileSync(p, Buffer.concat([prefix, h, data]));
  return p;
}

function withSafetensors<T>(path: string, f: (file: SafetensorsFile) => T): T {
  const file = SafetensorsFile.openSync(path);
  try { return f(file); } finally { file.close(); }
}

function openError(path: string): SafetensorsError {
  try {
    SafetensorsFile.openSync(path).close();
  } catch (e) {
    expect(e).toBeInstanceOf(SafetensorsError);
    return e as SafetensorsError;
  }
  throw new Error(`${path} opened without error`);
}

describe("round trip", () => {
  it("writes and reads back every writable dtype, with metadata and sorted, aligned layout", () => {
    const f32 = Float32Array.from([1.5, -2, 3.25, 0, -0, 1e-30]);
    const halfSrc = Float32Array.from([1, 1 + 2 ** -11, 65504, -0.1, 70000, 2 ** -24]);
    const tensors: Record<string, TensorToWrite> = {
      "b.f32": { dtype: "F32", shape: [2, 3], data: f32 },
      "a.f16": { dtype: "F16", shape: [6], data: halfSrc },
      "c.bf16": { dtype: "BF16", shape: [3, 2], data: halfSrc },
      "bits.f16": { dtype: "F16", shape: [1], data: Uint16Array.of(0x3c01) },
      "i64": { dtype: "I64", shape: [3], data: BigInt64Array.of(-5n, 2n ** 40n, 7n) },
      "i64.from32": { dtype: "I64", shape: [2], data: Int32Array.of(-1, 2147483647) },
      "i32": { dtype: "I32", shape: [2, 1], data: Int32Array.of(-2147483648, 9) },
      "scalar": { dtype: "F32", shape: [], data: Float32Array.of(42) },
      "empty": { dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
    };
    const p = join(dir, "all.safetensors");
    writeSafetensors(p, tensors, { format: "pt", note: "hi" });
    withSafetensors(p, (f) => {
      expect(f.keys()).toEqual(["a.f16", "b.f32", "bits.f16", "c.bf16", "empty", "i32", "i64", "i64.from32", "scalar"]);
      expect({ ...f.metadata }).toEqual({ format: "pt", note: "hi" });
      expect(f.info("b.f32")).toEqual({ dtype: "F32", shape: [2, 3], byteLength: 24 });
      expect(f.info("scalar")).toEqual({ dtype: "F32", shape: [], byteLength: 4 });
      expect(f.readFloat32("b.f32")).toEqual(f32);
      expect(Object.is(f.readFloat32("b.f32")[4], -0)).toBe(true);
      expect(Array.from(f.readFloat32("a.f16"))).toEqual([1, 1, 65504, Math.fround(-0.0999755859375), Infinity, 2 ** -24]);
      expect(Array.from(f.readRaw("a.f16").slice(0, 2))).toEqual([0x00, 0x3c]); // little-endian 0x3c00
      expect(Array.from(f.readFloat32("c.bf16"))).toEqual(Array.from(halfSrc, (x) => {
        const b = f32ToBf16Scalar(x), u = new Uint32Array([b << 16]);
        return new Float32Array(u.buffer)[0];
      }));
      expect(Array.from(f.readFloat32("bits.f16"))).toEqual([1 + 2 ** -10]);
      expect(new BigInt64Array(f.readRaw("i64").buffer)).toEqual(BigInt64Array.of(-5n, 2n ** 40n, 7n));
      expect(Array.from(f.readInt32("i64.from32"))).toEqual([-1, 2147483647]);
      expect(Array.from(f.readInt32("i32"))).toEqual([-2147483648, 9]);
      expect(f.readFloat32("empty").length).toBe(0);
      expect(() => f.readInt32("i64")).toThrow(`${p}: tensor "i64": I64 value 1099511627776 at index 1 does not fit in int32`);
      expect(() => f.readFloat32("i32")).toThrow(/tensor "i32" has dtype I32; readFloat32 reads/);
      expect(() => f.readInt32("b.f32")).toThrow(/tensor "b.f32" has dtype F32; readInt32 reads/);
      expect(() => f.info("missing")).toThrow(`${p}: no tensor named "missing"`);
    });
    // Header: metadata first, then 8-byte-wide dtypes, 4, 2, each group by name; padded to 8; data tiles.
    const bytes = readFileSync(p);
    const n = Number(bytes.readBigUInt64LE(0));
    expect(n % 8).toBe(0);
    const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8")) as Record<string, { data_offsets?: number[] }>;
    expect(Object.keys(header)).toEqual([
      "__metadata__", "i64", "i64.from32", "b.f32", "empty", "i32", "scalar", "a.f16", "bits.f16", "c.bf16"]);
    for (const [name, e] of Object.entries(header)) {
      if (name === "__metadata__") continue;
      const dtype = (e as { dtype: string }).dtype;
      expect(e.data_offsets![0]! % (dtype === "I64" ? 8 : dtype === "F16" || dtype === "BF16" ? 2 : 4)).toBe(0);
    }
  });

  it("reads every readable dtype (F64, I16, I8, U8, BOOL written by hand)", () => {
    const f64 = new Float64Array([0.1, -1e300, 3]);
    const i16 = Int16Array.of(-32768, 5);
    const data = Buffer.concat([Buffer.from(f64.buffer), Buffer.from(i16.buffer), Buffer.from([0xff]), Buffer.from([200]), Buffer.from([1, 0])]);
    const p = rawFile("hand.safetensors", {
      f64: { dtype: "F64", shape: [3], data_offsets: [0, 24] },
      i16: { dtype: "I16", shape: [2], data_offsets: [24, 28] },
      i8: { dtype: "I8", shape: [1], data_offsets: [28, 29] },
      u8: { dtype: "U8", shape: [1], data_offsets: [29, 30] },
      mask: { dtype: "BOOL", shape: [2], data_offsets: [30, 32] },
    }, data);
    withSafetensors(p, (f) => {
      expect(Array.from(f.readFloat32("f64"))).toEqual([Math.fround(0.1), -Infinity, 3]);
      expect(Array.from(f.readInt32("i16"))).toEqual([-32768, 5]);
      expect(Array.from(f.readInt32("i8"))).toEqual([-1]);
      expect(Array.from(f.readInt32("u8"))).toEqual([200]);
      expect(Array.from(f.readInt32("mask"))).toEqual([1, 0]);
      expect(f.metadata).toEqual({});
    });
  });

  it("also writes from a Map, omits empty metadata, and opens asynchronously", async () => {
    const p = join(dir, "m.safetensors");
    writeSafetensors(p, new Map([["10", { dtype: "F32", shape: [1], data: Float32Array.of(1) }],
      ["9", { dtype: "F32", shape: [1], data: Float32Array.of(2) }]]), {});
    expect(readFileSync(p).subarray(8).toString("utf8")).toMatch(/^\{"10":.*"9":/); // name order, not integer-key order
    const f = await SafetensorsFile.open(p);
    expect(f.keys()).toEqual(["10", "9"]);
    expect(Array.from(f.readFloat32("9"))).toEqual([2]);
    f.close();
    f.close();
    expect(() => f.readRaw("9")).toThrow(`${p}: tensor "9": file is closed`);
  });

  it("keeps __proto__ and constructor as ordinary tensor and metadata names", () => {
    const p = join(dir, "proto.safetensors");
    const tensors = Object.create(null) as Record<string, TensorToWrite>;
    tensors["__proto__"] = { dtype: "F32", shape: [1], data: Float32Array.of(7) };
    tensors["constructor"] = { dtype: "F32", shape: [1], data: Float32Array.of(8) };
    const meta = Object.create(null) as Record<string, string>;
    meta["__proto__"] = "x";
    writeSafetensors(p, tensors, meta);
    withSafetensors(p, (f) => {
      expect(f.keys()).toEqual(["__proto__", "constructor"]);
      expect(Array.from(f.readFloat32("__proto__"))).toEqual([7]);
      expect(Object.keys(f.metadata)).toEqual(["__proto__"]);
      expect(Object.getPrototypeOf(f.metadata)).toBe(null);
      expect(() => f.info("toString")).toThrow(/no tensor named "toString"/);
    });
    expect(({} as Record<string, unknown>)["dtype"]).toBeUndefined(); // Object.prototype untouched
  });

  it("rejects bad write requests before touching the disk", () => {
    const p = join(dir, "bad.safetensors");
    const cases: [Record<string, TensorToWrite>, string][] = [
      [{ a: { dtype: "F32", shape: [2, 2], data: new Float32Array(3) } }, `${p}: tensor "a": shape [2,2] has 4 elements, data has 3`],
      [{ a: { dtype: "F32", shape: [1], data: new Uint16Array(1) } }, `${p}: tensor "a": dtype F32 cannot be written from a Uint16Array`],
      [{ a: { dtype: "U8" as "F32", shape: [1], data: new Float32Array(1) } }, `${p}: tensor "a": cannot write dtype U8`],
      [{ a: { dtype: "F32", shape: [-1], data: new Float32Array(1) } }, `${p}: tensor "a": shape must be an array of non-negative integers`],
      [{ __metadata__: { dtype: "F32", shape: [1], data: new Float32Array(1) } }, `"__metadata__" is reserved`],
    ];
    for (const [t, msg] of cases) {
      expect(() => writeSafetensors(p, t)).toThrow(SafetensorsError);
      expect(() => writeSafetensors(p, t)).toThrow(msg);
    }
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe("writer atomicity", () => {
  it("leaves the old file intact, and no temp file, when a write is refused or fails", () => {
    const p = join(dir, "model.safetensors");
    writeSafetensors(p, { w: { dtype: "F32", shape: [2], data: Float32Array.of(1, 2) } });
    const before = readFileSync(p);
    expect(() => writeSafetensors(p, { w: { dtype: "F32", shape: [3], data: Float32Array.of(1, 2) } })).toThrow(SafetensorsError);
    expect(readFileSync(p)).toEqual(before);
    expect(readdirSync(dir)).toEqual(["model.safetensors"]);
  });

  it("reports a failed rename (target is a non-empty folder) with the path, and removes the temp file", () => {
    const target = join(dir, "occupied.safetensors");
    mkdirSync(target);
    writeFileSync(join(target, "keep"), "keep");
    let err: unknown;
    try { writeSafetensors(target, { w: { dtype: "F32", shape: [1], data: Float32Array.of(1) } }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SafetensorsError);
    expect((err as Error).message.startsWith(`${target}: write failed, existing file left unchanged: `)).toBe(true);
    expect(readFileSync(join(target, "keep"), "utf8")).toBe("keep");
    expect(readdirSync(dir)).toEqual(["occupied.safetensors"]);
  });
});

describe("golden files", () => {
  interface GoldenTensor { shape: number[]; dtype: string; data: number[] }
  const golden = (name: string) => readJsonFile(join(GOLDEN, `${name}.json`), "golden case") as {
    tensors: Record<string, GoldenTensor>; config: { adapter_keys: string[] } };

  it("tiny_llama model: HF key names and shapes as GOLDEN.md says", () => {
    withSafetensors(join(GOLDEN, "tiny_llama/model.safetensors"), (f) => {
      expect({ ...f.metadata }).toEqual({ format: "pt" });
      const want: Record<string, number[]> = { "lm_head.weight": [48, 32], "model.embed_tokens.weight": [48, 32], "model.norm.weight": [32] };
      for (const l of [0, 1]) {
        const p = `model.layers.${l}`;
        Object.assign(want, {
          [`${p}.self_attn.q_proj.weight`]: [32, 32], [`${p}.self_attn.k_proj.weight`]: [16, 32],
          [`${p}.self_attn.v_proj.weight`]: [16, 32], [`${p}.self_attn.o_proj.weight`]: [32, 32],
          [`${p}.mlp.gate_proj.weight`]: [48, 32], [`${p}.mlp.up_proj.weight`]: [48, 32], [`${p}.mlp.down_proj.weight`]: [32, 48],
          [`${p}.input_layernorm.weight`]: [32], [`${p}.post_attention_layernorm.weight`]: [32],
        });
      }
      expect(f.keys()).toEqual(Object.keys(want).sort());
      for (const k of f.keys()) expect([k, f.info(k)]).toEqual([k, { dtype: "F32", shape: want[k], byteLength: 4 * want[k]!.reduce((a, b) => a * b, 1) }]);
      expect(f.readFloat32("model.layers.1.mlp.down_proj.weight").every(Number.isFinite)).toBe(true);
    });
  });

  it("tiny_gpt2 model: Conv1D weights [in,out], tied lm_head absent", () => {
    withSafetensors(join(GOLDEN, "tiny_gpt2/model.safetensors"), (f) => {
      expect(f.info("transformer.h.0.attn.c_attn.weight").shape).toEqual([32, 96]);
      expect(f.info("transformer.h.1.mlp.c_proj.weight").shape).toEqual([128, 32]);
      expect(f.info("transformer.wpe.weight").shape).toEqual([64, 32]);
      expect(f.has("lm_head.weight")).toBe(false);
      expect(f.keys()).toHaveLength(28);
    });
  });

  for (const [model, modules] of [
    ["tiny_llama", ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]
      .flatMap((m) => [0, 1].map((l) => `model.layers.${l}.${m}`))],
    ["tiny_gpt2", ["attn.c_attn", "attn.c_proj", "mlp.c_proj"].flatMap((m) => [0, 1].map((l) => `transformer.h.${l}.${m}`))],
  ] as const) {
    it(`${model} DoRA adapter: PEFT keys, and every value equals ${model}.json`, () => {
      const g = golden(model);
      withSafetensors(join(GOLDEN, `${model}_dora_adapter/adapter_model.safetensors`), (f) => {
        const want = modules.flatMap((m) => ["lora_A.weight", "lora_B.weight", "lora_magnitude_vector"].map((s) => `base_model.model.${m}.${s}`));
        expect(f.keys()).toEqual([...want].sort());
        expect(f.keys()).toEqual(g.config.adapter_keys);
        for (const k of f.keys()) {
          const t = g.tensors[k]!;
          expect([k, f.info(k).shape]).toEqual([k, t.shape]);
          const got = f.readFloat32(k);
          const exp = Float32Array.from(t.data); // shortest float32 decimals: exact after rounding
          const bad = got.findIndex((v, i) => v !== exp[i]);
          if (bad >= 0) throw new Error(`${k}: index ${bad}: ${got[bad]} != ${exp[bad]}`);
        }
        expect(f.info(want[0]!).shape[0]).toBe(4); // lora_A [r, in], r = 4
      });
    });
  }

  it("re-writing the golden adapter reproduces its tensors", () => {
    const src = join(GOLDEN, "tiny_llama_dora_adapter/adapter_model.safetensors");
    const p = join(dir, "adapter_model.safetensors");
    const tensors: Record<string, TensorToWrite> = {};
    withSafetensors(src, (f) => { for (const k of f.keys()) tensors[k] = { dtype: "F32", shape: [...f.info(k).shape], data: f.readFloat32(k) }; });
    writeSafetensors(p, tensors);
    // All F32, so the layout is name order, like the original; only the header's key order differs.
    const a = readFileSync(src), b = readFileSync(p);
    const dataOf = (buf: Buffer) => buf.subarray(8 + Number(buf.readBigUInt64LE(0)));
    expect(dataOf(b).equals(dataOf(a))).toBe(true);
  });
});

describe("corrupted files", () => {
  const f32 = (n: number) => new Uint8Array(4 * n);
  const cases: [string, () => string, RegExp][] = [
    ["empty file", () => { const p = join(dir, "c.safetensors"); writeFileSync(p, ""); return p; },
      /c\.safetensors: file is 0 bytes, too short for the 8-byte header length/],
    ["truncated length prefix", () => { const p = join(dir, "c.safetensors"); writeFileSync(p, Buffer.from([1, 2, 3])); return p; },
      /c\.safetensors: file is 3 bytes, too short/],
    ["truncated data", () => rawFile("c.safetensors", { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32(3)),
      /c\.safetensors: tensor "a": data_offsets \[0,16\] run past the data area \(12 bytes; truncated file\?\)/],
    ["truncated header", () => rawFile("c.safetensors", "{}", undefined, 64n),
      /c\.safetensors: header length 64 runs past the end of the file \(10 bytes; truncated\?\)/],
    ["huge header length", () => rawFile("c.safetensors", "{}", undefined, 2n ** 63n),
      /c\.safetensors: header length 9223372036854775808 exceeds the 100000000-byte limit/],
    ["header not JSON", () => rawFile("c.safetensors", "{not json}   "), /c\.safetensors: header is not valid JSON: /],
    ["header not UTF-8", () => { const p = rawFile("c.safetensors", "{}"); const b = readFileSync(p); b[8] = 0xff; writeFileSync(p, b); return p; },
      /c\.safetensors: header is not valid UTF-8/],
    ["header an array", () => rawFile("c.safetensors", "[1,2]"), /c\.safetensors: header must be a JSON object, got \[1,2\]/],
    ["unknown dtype", () => rawFile("c.safetensors", { a: { dtype: "F8_E4M3", shape: [4], data_offsets: [0, 4] } }, f32(1)),
      /c\.safetensors: tensor "a": unknown dtype "F8_E4M3" \(supported: F64, F32/],
    ["bad shape", () => rawFile("c.safetensors", { a: { dtype: "F32", shape: [2, -1], data_offsets: [0, 8] } }, f32(2)),
      /tensor "a": shape must be an array of non-negative integers, got \[2,-1\]/],
    ["bad data_offsets", () => rawFile("c.safetensors", { a: { dtype: "F32", shape: [1], data_offsets: [4, 0] } }, f32(1)),
      /tensor "a": data_offsets must be \[begin, end\] with 0 <= begin <= end, got \[4,0\]/],
    ["wrong byte count", () => rawFile("c.safetensors", { "a.weight": { dtype: "F32", shape: [3, 4], data_offsets: [0, 40] } }, f32(10)),
      /c\.safetensors: tensor "a\.weight": shape \[3,4\] × F32 needs 48 bytes, data_offsets give 40/],
    ["shape product overflowing 2^53", () => rawFile("c.safetensors", { a: { dtype: "F32", shape: [2 ** 40, 2 ** 40], data_offsets: [0, 4] } }, f32(1)),
      /tensor "a": shape \[1099511627776,1099511627776\] × F32 needs 4835703278458516698824704 bytes, data_offsets give 4/],
    ["overlapping offsets", () => rawFile("c.safetensors", {
      a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] },
      c: { dtype: "F32", shape: [1], data_offsets: [12, 16] } }, f32(4)),
      /c\.safetensors: tensors "a" \[0,8\] and "b" \[4,12\] overlap in the data area/],
    ["gap", () => rawFile("c.safetensors", {
      a: { dtype: "F32", shape: [1], data_offsets: [0, 4] }, b: { dtype: "F32", shape: [1], data_offsets: [8, 12] } }, f32(3)),
      /c\.safetensors: gap in the data area: bytes \[4,8\) belong to no tensor \(before tensor "b"\)/],
    ["trailing bytes", () => rawFile("c.safetensors", { a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, f32(2)),
      /c\.safetensors: data area is 8 bytes but the tensors cover only \[0,4\); 4 trailing bytes belong to no tensor/],
    ["offsets out of range", () => rawFile("c.safetensors", { a: { dtype: "F32", shape: [1000], data_offsets: [0, 4000] } }, f32(4)),
      /c\.safetensors: tensor "a": data_offsets \[0,4000\] run past the data area \(16 bytes/],
    ["__proto__ key with a bad entry", () => rawFile("c.safetensors", '{"__proto__":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}', f32(1)),
      /c\.safetensors: tensor "__proto__": shape \[2\] × F32 needs 8 bytes, data_offsets give 4/],
    ["__proto__ key that is not an entry", () => rawFile("c.safetensors", '{"__proto__":{"polluted":1}}'),
      /c\.safetensors: tensor "__proto__": unknown dtype nothing/],
    ["metadata not strings", () => rawFile("c.safetensors", { __metadata__: { total_size: 4 } }),
      /c\.safetensors: "__metadata__" value for "total_size" must be a string, got 4/],
    ["missing file", () => join(dir, "nope.safetensors"), /nope\.safetensors: cannot open: ENOENT/],
  ];
  for (const [what, make, message] of cases) {
    it(what, () => {
      const p = make();
      const e = openError(p);
      expect(e.message.startsWith(p)).toBe(true);
      expect(e.message).toMatch(message);
      expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    });
  }

  it("random corruption of a real file gives a SafetensorsError or a consistent file, never a crash", () => {
    const good = readFileSync(join(GOLDEN, "tiny_llama_dora_adapter/adapter_model.safetensors"));
    const n = Number(good.readBigUInt64LE(0));
    let seed = 7;
    const rand = (k: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % k; };
    const p = join(dir, "fuzz.safetensors");
    let rejected = 0;
    for (let trial = 0; trial < 400; trial++) {
      const b = Buffer.from(good);
      const kind = trial % 4;
      if (kind === 0) b[rand(8)] = rand(256); // length prefix
      else if (kind === 1) for (let j = 0; j < 3; j++) b[8 + rand(n)] = 32 + rand(95); // header text
      else if (kind === 2) b[8 + rand(n)] = "0123456789"[rand(10)]!.charCodeAt(0); // a digit: shapes and offsets
      writeFileSync(p, kind === 3 ? b.subarray(0, rand(b.length)) : b); // kind 3: truncation
      try {
        const f = SafetensorsFile.openSync(p);
        for (const k of f.keys()) f.readRaw(k);
        f.close();
      } catch (e) {
        if (!(e instanceof SafetensorsError) || !e.message.startsWith(p)) throw e;
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(200);
  });

  it("a valid __proto__ tensor in a hand-written header reads normally", () => {
    const p = rawFile("p.safetensors", '{"__proto__":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', new Uint8Array(Float32Array.of(3).buffer));
    withSafetensors(p, (f) => { expect(f.keys()).toEqual(["__proto__"]); expect(Array.from(f.readFloat32("__proto__"))).toEqual([3]); });
  });

  it("notices a file truncated after opening", () => {
    const p = rawFile("t.safetensors", { a: { dtype: "F32", shape: [4], data_offsets: [0, 16] } }, f32(4));
    const f = SafetensorsFile.openSync(p);
    writeFileSync(p, readFileSync(p).subarray(0, 20));
    expect(() => f.readRaw("a")).toThrow(/t\.safetensors: file ended while reading tensor "a"/);
    f.close();
  });
});

describe("sharded checkpoints", () => {
  it("openModelWeights reads a sharded copy of tiny_llama exactly like the single file", () => {
    const single = openModelWeights(join(GOLDEN, "tiny_llama"));
    const keys = single.keys();
    const shards = [keys.slice(0, 7), keys.slice(7, 15), keys.slice(15)];
    const weightMap: Record<string, string> = {};
    shards.forEach((names, i) => {
      const file = `model-0000${i + 1}-of-00003.safetensors`;
      const t: Record<string, TensorToWrite> = {};
      for (const k of names) { t[k] = { dtype: "F32", shape: [...single.info(k).shape], data: single.readFloat32(k) }; weightMap[k] = file; }
      writeSafetensors(join(dir, file), t);
    });
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 1 }, weight_map: weightMap }));
    const sharded = openModelWeights(dir);
    expect(sharded.path).toBe(join(dir, "model.safetensors.index.json"));
    expect(sharded.keys()).toEqual(keys);
    expect({ ...sharded.metadata }).toEqual({ format: "pt" });
    for (const k of keys) {
      expect(sharded.info(k)).toEqual(single.info(k));
      expect(sharded.readFloat32(k)).toEqual(single.readFloat32(k));
      expect(sharded.readRaw(k)).toEqual(single.readRaw(k));
    }
    expect(() => sharded.info("nope")).toThrow(/model\.safetensors\.index\.json: no tensor named "nope" in weight_map/);
    sharded.close();
    single.close();
  });

  it("explains a missing tensor, a bad shard name, a bad index and a folder without weights", () => {
    writeSafetensors(join(dir, "s1.safetensors"), { a: { dtype: "F32", shape: [1], data: Float32Array.of(1) } });
    const index = join(dir, "model.safetensors.index.json");
    writeFileSync(index, JSON.stringify({ weight_map: { a: "s1.safetensors", b: "s1.safetensors" } }));
    expect(() => openModelWeights(dir)).toThrow(`${index}: tensor "b" is mapped to s1.safetensors, which has no such tensor`);
    writeFileSync(index, JSON.stringify({ weight_map: { a: "../s1.safetensors" } }));
    expect(() => openModelWeights(dir)).toThrow(`${index}: weight_map["a"] must be a file name in ${dir}, got "../s1.safetensors"`);
    writeFileSync(index, JSON.stringify({ weight_map: { a: "s2.safetensors" } }));
    expect(() => openModelWeights(dir)).toThrow(/s2\.safetensors: cannot open: ENOENT/);
    writeFileSync(index, "{oops");
    expect(() => openModelWeights(dir)).toThrow(SafetensorsError);
    expect(() => openModelWeights(dir)).toThrow(`${index}: safetensors index is not valid JSON`);
    writeFileSync(index, "[]");
    expect(() => openModelWeights(dir)).toThrow(`${index}: "weight_map" must be an object`);
    const empty = mkdtempSync(join(dir, "empty-"));
    writeFileSync(join(empty, "pytorch_model.bin"), "");
    expect(() => openModelWeights(empty)).toThrow(`${empty}: no model weights: expected model.safetensors or model.safetensors.index.json; found pytorch_model.bin`);
  });

  it("prefers model.safetensors over an index, and accepts a file path", () => {
    writeSafetensors(join(dir, "model.safetensors"), { a: { dtype: "F32", shape: [1], data: Float32Array.of(1) } });
    writeFileSync(join(dir, "model.safetensors.index.json"), "broken");
    const w = openModelWeights(dir);
    expect(w.keys()).toEqual(["a"]);
    w.close();
    const f = openModelWeights(join(dir, "model.safetensors"));
    expect(f.path).toBe(join(dir, "model.safetensors"));
    f.close();
  });
});
