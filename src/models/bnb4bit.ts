/**
 * 4-bit weights at load time (`loadModel(dir, { quantize: "nf4" })` and HF `*-bnb-4bit` folders).
 *
 * bitsandbytes' on-disk layout for one `Linear4bit` weight `<p>.weight` (bnb `QuantState.as_dict(packed=True)`,
 * functional.py; `Params4bit._save_to_state_dict` in nn/modules.py writes these keys beside the weight):
 *   <p>.weight                                  packed codes, uint8 (or another `quant_storage` dtype viewing the
 *                                               same bytes), two per byte, even flat index in the high nibble
 *   <p>.weight.absmax                           float32 scale per block; uint8 codes when double-quantised
 *   <p>.weight.quant_map                        float32 [16], the NF4 levels
 *   <p>.weight.nested_absmax                    float32 per 256 scales           (double quant only)
 *   <p>.weight.nested_quant_map                 float32 [256], the dynamic map   (double quant only)
 *   <p>.weight.quant_state.bitsandbytes__nf4    uint8 bytes of a JSON object (`pack_dict_to_tensor`):
 *       {"quant_type", "blocksize", "dtype", "shape", "nested_blocksize", "nested_dtype", "nested_offset"}
 * Scales dequantise as nested_quant_map[absmax]·nested_absmax[i / nested_blocksize] + nested_offset
 * (`QuantState.from_dict`, `dequantize_4bit`). FP4 checkpoints (`bitsandbytes__fp4`) are refused by name.
 */
import { SafetensorsError, type TensorSource } from "../io/index.js";
import { Nf4Weight } from "../quant/index.js";

const QS_NF4 = "quant_state.bitsandbytes__nf4", QS_FP4 = "quant_state.bitsandbytes__fp4";

/** Does the checkpoint hold `name` as a bitsandbytes 4-bit weight? */
export function isBnb4bit(src: TensorSource, name: string): boolean {
  return src.has(`${name}.${QS_NF4}`) || src.has(`${name}.${QS_FP4}`);
}

/** Reads the bnb 4-bit weight `name` (expected [out, in]); every key it reads is added to `used`. */
export function readBnb4bit(src: TensorSource, name: string, shape: readonly [number, number], used: Set<string>): Nf4Weight {
  const where = `${src.path}: 4-bit weight "${name}"`;
  if (src.has(`${name}.${QS_FP4}`)) throw new SafetensorsError(`${where} is bitsandbytes FP4; dora-ts reads NF4 only (bnb_4bit_quant_type="nf4")`);
  const key = (suffix: string): string => {
    const k = suffix === "" ? name : `${name}.${suffix}`;
    if (!src.has(k)) throw new SafetensorsError(`${where}: missing "${k}" (bitsandbytes writes it beside the packed weight)`);
    used.add(k);
    return k;
  };
  let qs: Record<string, unknown>;
  try {
    qs = JSON.parse(new TextDecoder().decode(src.readRaw(key(QS_NF4)))) as Record<string, unknown>;
  } catch (cause) {
    throw new SafetensorsError(`${where}: ${QS_NF4} is not the JSON bitsandbytes packs`, { cause });
  }
  const qshape = qs["shape"];
  if (!Array.isArray(qshape) || qshape.length !== 2 || qshape[0] !== shape[0] || qshape[1] !== shape[1]) {
    throw new SafetensorsError(`${where}: quant_state shape ${JSON.stringify(qshape)} but config.json implies [${shape.join(", ")}]`);
  }
  if (qs["quant_type"] !== "nf4") throw new SafetensorsError(`${where}: quant_type ${JSON.stringify(qs["quant_type"])}, expected "nf4"`);
  const blockSize = Number(qs["blocksize"]);
  const n = shape[0] * shape[1];
  const raw = src.readRaw(key(""));
  if (raw.byteLength !== Math.ceil(n / 2)) {
    throw new SafetensorsError(`${where}: ${raw.byteLength} bytes of packed codes, expected ${Math.ceil(n / 2)} for [${shape.join(", ")}]`);
  }
  const codes = new Uint8Array(raw); // own copy, whatever quant_storage dtype viewed these bytes
  const quantMap = src.readFloat32(key("quant_map"));
  const nested = src.has(`${name}.nested_absmax`);
  try {
    if (!nested) return new Nf4Weight({ shape, blockSize, codes, absmax: src.readFloat32(key("absmax")), nested: null, quantMap });
    return new Nf4Weight({
      shape, blockSize, codes, absmax: null, quantMap,
      nested: {
        q: new Uint8Array(src.readRaw(key("absmax"))),
        absmax: src.readFloat32(key("nested_absmax")),
        code: src.readFloat32(key("nested_quant_map")),
        blockSize: Number(qs["nested_blocksize"]),
        offset: Math.fround(Number(qs["nested_offset"])),
      },
    });
  } catch (cause) {
    if (cause instanceof SafetensorsError) throw cause;
    throw new SafetensorsError(`${where}: ${(cause as Error).message}`, { cause });
  }
}
