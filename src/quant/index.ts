/** Quantised frozen weights: NF4 (bitsandbytes' layout) and the autograd ops that use them without dequantising. */
export { NF4_LEVELS, NF4_BLOCK_SIZE, NESTED_BLOCK_SIZE, Nf4Weight, quantizeNf4, doubleQuantize, dynamicMap,
  type NestedScales, type Nf4Parts, type QuantizeOptions } from "./nf4.js";
export { linearNf4, nf4TimesT, dequantizeNf4 } from "./matmul.js";
