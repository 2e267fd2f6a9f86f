/** The tensor layer's public surface: Tensor, creation, autograd controls, RNG and every op. */
export { Tensor, tensor, indexTensor, zeros, ones, full, scalar, arange, type DType, type Storage } from "./tensor.js";
export { noGrad, isGradEnabled, record } from "./autograd.js";
export { uninitF32, allocationMark } from "./buffer.js";
export { Rng, randn, randUniform, kaimingUniform, dropoutPositions } from "./random.js";
export { add, sub, mul, div, pow, neg, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, silu, gelu, abs, maximum, minimum } from "./ops/elementwise.js";
export { sum, mean, max, norm, sumTo } from "./ops/reduce.js";
export { reshape, flatten, permute, transpose, slice, expand, unsqueeze, squeeze, contiguous, cat, split } from "./ops/view.js";
export { matmul, linear } from "./ops/matmul.js";
export {
  softmax, logSoftmax, crossEntropy, rmsNorm, layerNorm, rope, scaledDotProductAttention, embedding, dropout, where, maskedFill, conv2d,
  siluMul,
} from "./ops/nn.js";
export { f32ToF16, f16ToF32, f32ToBf16, bf16ToF32 } from "./half.js";
export {
  setProfiling, resetProfile, profileStep, profileSpan, profileReport, formatProfile, printProfile, type ProfileReport,
} from "./profile.js";
export { checkpoint, type CheckpointOptions } from "./checkpoint.js";
