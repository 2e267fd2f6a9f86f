/** The pure-TypeScript backend: every kernel as plain loops. It is the specification the native one must match. */
import type { Backend } from "../backend.js";
import { gemm, gemmScaled } from "./gemm.js";
import { gemmNf4 } from "./gemm-nf4.js";
import { binary, copyStrided, siluMulBackward, siluMulForward, unaryBackward, unaryForward } from "./elementwise.js";
import { maxRows, sumCols, sumRows } from "./reduce.js";
import { crossEntropyBackward, crossEntropyForward, softmaxBackward, softmaxForward } from "./softmax.js";
import { layerNormBackward, layerNormForward, rmsNormBackward, rmsNormForward } from "./norm.js";
import { attentionBackward, attentionForward, rope } from "./attention.js";
import { columnDot, columnScale, doraNormTerms, lowRankProducts } from "./columns.js";
import { addSparse, gatherSparse, positionsToCsr, sampledGemm, sparseGemm, sparseGemmDot, sparseTransposedGemm } from "./sparse.js";
import { dropoutDraw } from "./random.js";
import { adamwStep, col2im, embeddingBackward, embeddingForward, im2col } from "./misc.js";

export const jsBackend: Backend = {
  name: "js",
  gemm, gemmScaled, gemmNf4, unaryForward, unaryBackward, siluMulForward, siluMulBackward, binary, copyStrided, sumRows, maxRows, sumCols,
  softmaxForward, softmaxBackward, crossEntropyForward, crossEntropyBackward,
  rmsNormForward, rmsNormBackward, layerNormForward, layerNormBackward,
  rope, attentionForward, attentionBackward, embeddingForward, embeddingBackward, im2col, col2im, adamwStep,
  columnScale, columnDot, doraNormTerms, lowRankProducts, sparseGemm, sparseGemmDot, sampledGemm, sparseTransposedGemm, addSparse, gatherSparse, positionsToCsr, dropoutDraw,
};
