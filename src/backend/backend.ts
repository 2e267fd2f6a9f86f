/**
 * The kernel contract every backend implements (the `js` one is the living spec, `native` the fast one).
 *
 * Rules:
 * - Kernels take plain typed arrays, element offsets, sizes and leading dimensions; they know nothing of
 *   Tensor or autograd. All float data is float32, row-major.
 * - Outputs come first, inputs next, sizes last. Output buffers never alias inputs unless a kernel says so.
 * - `*Backward` kernels that produce parameter gradients ACCUMULATE into them (`+=`), as PyTorch does, so
 *   the caller zeroes a gradient buffer once; input gradients (dx) are WRITTEN unless stated otherwise.
 * - Kernels validate nothing: the tensor layer checks shapes and ranges before calling, so a native kernel
 *   never reads out of bounds.
 * - Threading is the backend's business (the native one runs a persistent pool, `DORA_NUM_THREADS`).
 */

/** GEMM forms: which operand is read transposed. `nn`: C = A·B, `nt`: C = A·Bᵀ, `tn`: C = Aᵀ·B. */
export type GemmForm = "nn" | "nt" | "tn";

/** The largest rank Backend.lowRankProducts takes (its native kernel holds the ranks in one 16-lane register). */
export const LOW_RANK_MAX_RANK = 16;

/**
 * Where the [D] rows of a [B, H, S, D] operand lie: the element strides of its batch, head and sequence dims (D
 * itself is contiguous). [H·S·D, S·D, D] is a contiguous [B, H, S, D] buffer; [S·H·D, D, H·D] is a [B, S, H, D]
 * buffer, i.e. heads read in place out of a [B, S, H·D] projection output.
 */
export type HeadStrides = readonly [batch: number, head: number, seq: number];

/** Row layouts of the attention operands; each gradient is laid out like its input (dq: q, dk: k, dv: v). */
export interface AttentionLayout {
  readonly q: HeadStrides;
  readonly k: HeadStrides;
  readonly v: HeadStrides;
  readonly out: HeadStrides;
}

export type UnaryOp = "exp" | "log" | "sqrt" | "rsqrt" | "tanh" | "sigmoid" | "relu" | "silu" | "gelu" | "neg" | "abs";
export type BinaryOp = "add" | "sub" | "mul" | "div" | "pow" | "max" | "min";

export interface Backend {
  readonly name: "js" | "native";

  /**
   * Batched GEMM. For each batch index t in [0, batch):
   *   C_t (m×n, leading dim ldc) = op(A_t) · op(B_t)  (+ C_t when `accumulate`)
   * Storage, all row-major:
   *   nn: A_t is m×k (lda ≥ k), B_t is k×n (ldb ≥ n)
   *   nt: A_t is m×k (lda ≥ k), B_t is n×k (ldb ≥ k)      → C = A·Bᵀ
   *   tn: A_t is k×m (lda ≥ m), B_t is k×n (ldb ≥ n)      → C = Aᵀ·B
   * A_t starts at aOff + t·strideA (likewise B, C). A stride of 0 broadcasts an operand over the batch.
   */
  gemm(
    form: GemmForm,
    m: number, n: number, k: number,
    a: Float32Array, aOff: number, lda: number, strideA: number,
    b: Float32Array, bOff: number, ldb: number, strideB: number,
    c: Float32Array, cOff: number, ldc: number, strideC: number,
    batch: number,
    accumulate: boolean,
  ): void;

  /**
   * One 2-d GEMM with op(B) scaled along one axis: C (m×n) (+)= op(A) · (op(B) scaled), where op(B)(p, j) is read as
   * op(B)(p, j)·scale[p] (axis "k", scale has k entries) or ·scale[j] (axis "n", n entries). Storage and forms as
   * `gemm` (batch 1). DoRA's m/n goes into the frozen weight as it is packed: (g ⊙ c)·W = g·(diag(c)·W) and
   * c ⊙ (x·Wᵀ) = x·(diag(c)·W)ᵀ without a scaled copy of g or a pass over the output (src/peft/dora.ts).
   */
  gemmScaled(
    form: GemmForm,
    m: number, n: number, k: number,
    a: Float32Array, aOff: number, lda: number,
    b: Float32Array, bOff: number, ldb: number,
    scale: Float32Array, axis: "k" | "n",
    c: Float32Array, cOff: number, ldc: number,
    accumulate: boolean,
  ): void;

  /**
   * GEMM against a frozen NF4 weight W (layout: src/quant/nf4.ts, bitsandbytes' NF4), dequantised tile by tile
   * while packing, never as a whole float32 matrix:
   *   nt: C (m×n) = A (m×k) · Ŵᵀ with W stored [n, k]   (Linear forward x·Wᵀ)
   *   nn: C (m×n) = A (m×k) · Ŵ  with W stored [k, n]   (Linear backward dY·W)
   * Ŵ at row-major flat index f = lut[code_f] · absmax[⌊f / blockSize⌋]; code_f is the high nibble of codes[f >> 1]
   * for even f, the low nibble for odd f. A is row-major (lda ≥ k), C too (ldc ≥ n); C is written, or accumulated
   * into when `accumulate`.
   */
  gemmNf4(
    form: "nn" | "nt",
    m: number, n: number, k: number,
    a: Float32Array, aOff: number, lda: number,
    codes: Uint8Array, absmax: Float32Array, lut: Float32Array, blockSize: number,
    c: Float32Array, cOff: number, ldc: number,
    accumulate: boolean,
  ): void;

  /** out[i] = op(x[i]) for i < n. */
  unaryForward(op: UnaryOp, out: Float32Array, x: Float32Array, n: number): void;
  /** dx[i] = dy[i] · op'(x[i]) (y = op(x) is passed too, so exp/tanh/sigmoid/sqrt reuse it). */
  unaryBackward(op: UnaryOp, dx: Float32Array, dy: Float32Array, x: Float32Array, y: Float32Array, n: number): void;

  /** out[i] = silu(g[i])·u[i], silu(x) = x·σ(x) (LLaMA's gated MLP: act(gate_proj(x)) * up_proj(x)). */
  siluMulForward(out: Float32Array, g: Float32Array, u: Float32Array, n: number): void;
  /** dg[i] = dy[i]·u[i]·silu'(g[i]) and du[i] = dy[i]·silu(g[i]), both written (silu recomputed from g). */
  siluMulBackward(dg: Float32Array, du: Float32Array, dy: Float32Array, g: Float32Array, u: Float32Array, n: number): void;

  /**
   * out[i] = a[ia] op b[ib] over an N-d index space of shape `shape`; aStrides/bStrides give the element
   * strides of each operand (0 for a broadcast dim), out is contiguous. aOff/bOff are element offsets.
   */
  binary(
    op: BinaryOp, out: Float32Array,
    a: Float32Array, aOff: number, aStrides: readonly number[],
    b: Float32Array, bOff: number, bStrides: readonly number[],
    shape: readonly number[],
  ): void;

  /** Strided gather into a contiguous buffer: out[i] = x[off + Σ idx_d·strides_d]. */
  copyStrided(out: Float32Array, x: Float32Array, off: number, strides: readonly number[], shape: readonly number[]): void;

  /** Row reductions of a contiguous [rows, cols] buffer: out[r] = Σ_c x[r,c] (sum) or max_c (max, argmax in idx). */
  sumRows(out: Float32Array, x: Float32Array, rows: number, cols: number): void;
  maxRows(out: Float32Array, idx: Int32Array, x: Float32Array, rows: number, cols: number): void;
  /** Column sums of [rows, cols]: out[c] (+)= Σ_r x[r,c]; accumulates when `accumulate`. */
  sumCols(out: Float32Array, x: Float32Array, rows: number, cols: number, accumulate: boolean): void;

  /** Softmax over the last axis of [rows, cols]; log=true gives log_softmax. */
  softmaxForward(out: Float32Array, x: Float32Array, rows: number, cols: number, log: boolean): void;
  /** softmax: dx = y ⊙ (dy − Σ dy⊙y); log_softmax: dx = dy − exp(y)·Σ dy. */
  softmaxBackward(dx: Float32Array, dy: Float32Array, y: Float32Array, rows: number, cols: number, log: boolean): void;

  /**
   * Cross-entropy per row of logits [rows, cols] with int targets; rows whose target is `ignoreIndex` give
   * loss 0 and are not counted. Writes the per-row loss and the row's logsumexp (kept for backward).
   * Returns the number of counted rows.
   */
  crossEntropyForward(loss: Float32Array, lse: Float32Array, logits: Float32Array, targets: Int32Array,
    rows: number, cols: number, ignoreIndex: number): number;
  /** dlogits[r,:] = scale·(softmax(logits[r]) − onehot(target_r)) for counted rows, 0 for ignored (written). */
  crossEntropyBackward(dlogits: Float32Array, logits: Float32Array, lse: Float32Array, targets: Int32Array,
    rows: number, cols: number, ignoreIndex: number, scale: Float32Array | number): void;

  /** y = x / sqrt(mean(x²) + eps) · w over rows of [rows, cols]; rstd[r] saved for backward. */
  rmsNormForward(y: Float32Array, rstd: Float32Array, x: Float32Array, w: Float32Array | null,
    rows: number, cols: number, eps: number): void;
  /** dx written; dw accumulated when non-null. */
  rmsNormBackward(dx: Float32Array, dw: Float32Array | null, dy: Float32Array, x: Float32Array,
    w: Float32Array | null, rstd: Float32Array, rows: number, cols: number): void;

  /** y = (x − mean)·rstd·w + b over rows; mean and rstd saved. */
  layerNormForward(y: Float32Array, mean: Float32Array, rstd: Float32Array, x: Float32Array,
    w: Float32Array | null, b: Float32Array | null, rows: number, cols: number, eps: number): void;
  /** dx written; dw, db accumulated when non-null. */
  layerNormBackward(dx: Float32Array, dw: Float32Array | null, db: Float32Array | null, dy: Float32Array,
    x: Float32Array, w: Float32Array | null, mean: Float32Array, rstd: Float32Array, rows: number, cols: number): void;

  /**
   * Rotary embedding, HF rotate_half convention, on x [b, h, seq, headDim] rows placed by xStrides, written to
   * the rows of out placed by outStrides (see HeadStrides):
   *   out = x·cos + rotate_half(x)·sin, rotate_half(x) = cat(−x2, x1); cos/sin are [seq, headDim] contiguous.
   * inverse=true applies the transpose of the forward map (the backward: dx = Rᵀ·dy).
   */
  rope(out: Float32Array, x: Float32Array, cos: Float32Array, sin: Float32Array,
    b: number, h: number, seq: number, headDim: number, inverse: boolean,
    outStrides: HeadStrides, xStrides: HeadStrides): void;

  /**
   * Causal scaled-dot-product attention with grouped KV heads.
   * q [B, H, Sq, D], k/v [B, Hkv, Sk, D], out [B, H, Sq, D], rows placed by `layout` (written rows of out must
   * not overlap); query head h reads kv head ⌊h / (H/Hkv)⌋.
   * Query i sits at absolute position (Sk − Sq + i) and sees keys 0..that position (KV-cache friendly).
   * Saves the row logsumexp lse [B, H, Sq] (contiguous) for backward.
   */
  attentionForward(out: Float32Array, lse: Float32Array, q: Float32Array, k: Float32Array, v: Float32Array,
    b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number, layout: AttentionLayout): void;
  /**
   * dq, dk, dv written with the layouts of q, k, v (dk/dv sum over the query heads sharing a kv head); dout is
   * read through doutStrides, out (the forward's output) through layout.out.
   */
  attentionBackward(dq: Float32Array, dk: Float32Array, dv: Float32Array, dout: Float32Array,
    q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, lse: Float32Array,
    b: number, h: number, hkv: number, sq: number, sk: number, d: number, scale: number,
    layout: AttentionLayout, doutStrides: HeadStrides): void;

  /** out[i, :] = table[ids[i], :] for a [vocab, dim] table. */
  embeddingForward(out: Float32Array, table: Float32Array, ids: Int32Array, n: number, dim: number): void;
  /** dtable[ids[i], :] += dout[i, :]. */
  embeddingBackward(dtable: Float32Array, dout: Float32Array, ids: Int32Array, n: number, dim: number): void;

  /**
   * im2col for conv2d (NCHW): cols [C·kh·kw, oh·ow] for one image x [C, H, W]. col2im is its adjoint
   * (accumulating into dx [C, H, W]).
   */
  im2col(cols: Float32Array, x: Float32Array, xOff: number, c: number, hgt: number, wid: number,
    kh: number, kw: number, stride: number, pad: number, oh: number, ow: number): void;
  col2im(dx: Float32Array, dxOff: number, cols: Float32Array, c: number, hgt: number, wid: number,
    kh: number, kw: number, stride: number, pad: number, oh: number, ow: number): void;

  /**
   * Per-column affine map of a row-major [rows, cols] buffer (DoRA's m/n epilogue, src/peft/dora.ts):
   *   out[r, i] = (scale[i] + offset)·x[r, i] + (bias ? bias[i] : 0), computed in float64; out may alias x.
   */
  columnScale(out: Float32Array, x: Float32Array, scale: Float32Array, offset: number, bias: Float32Array | null,
    rows: number, cols: number): void;
  /** out[i] = Σ_r g[r, i]·(z[r, i] − (bias ? bias[i] : 0)), summed in float64 (written). DoRA's ∂L/∂m reduction. */
  columnDot(out: Float32Array, g: Float32Array, z: Float32Array, bias: Float32Array | null, rows: number, cols: number): void;
  /**
   * DoRA's factored weight norm less ‖W_i‖² (src/peft/dora.ts). W(i, p) = w[wOff + i·rowStride + p·colStride] for
   * i < rows, p < cols (a Linear's [out, in] weight: strides (cols, 1); a Conv1D's stored [in, out]: (1, rows)),
   * A [r, cols] and B [rows, r] row-major:
   *   out[i] = 2s·Σ_k B[i,k]·(W_i·A_k) + s²·Σ_{k,l} B[i,k]·(A·Aᵀ)[k,l]·B[i,l]   (written, float64),
   * so n_i² = ‖W_i‖² + out[i] for n = ‖W + s·BA‖ per row: one pass over W, nothing out×in or [rows, r] kept. The dots
   * W_i·A_k may be accumulated in float32 (as a GEMM would); everything else is float64.
   */
  doraNormTerms(out: Float64Array, w: Float32Array, wOff: number, rowStride: number, colStride: number, a: Float32Array,
    b: Float32Array, s: number, rows: number, cols: number, r: number): void;
  /**
   * The rank-r products of a fused LoRA/DoRA Linear with one of its [T, n] operands g (src/peft/flat.ts
   * `lowRankGrads` and its users), in one pass over g where separate GEMMs would each read it again, and with the r
   * ranks, r ≤ LOW_RANK_MAX_RANK, where a GEMM would half-fill its tile. With u [T, r] and B [n, r], all row-major:
   *   gu[i, k] = Σ_t g[t, i]·u[t, k]                            [n, r]   gᵀ·u   (gu and u: both or neither)
   *   v[t, k]  = Σ_i g[t, i]·(bScale ? bScale[i] : 1)·B[i, k]   [T, r]   g·diag(bScale)·B   (v and b: both or neither)
   *   dot[i]   = Σ_t g[t, i]·(z[t, i] − (bias ? bias[i] : 0))    [n]      columnDot's sum, in float64 (dot and z: both
   *                                                                       or neither; bias only with them)
   * each written when asked for. gu and v may accumulate in float32, as the GEMMs they replace do.
   * Users: a layer's backward over its output gradient (dB = gᵀ·u, g·B, DoRA's ∂m dot), dA = (x̃ᵀ·vs)ᵀ over its
   * input, and the forward's x̃·Aᵀ (B = Aᵀ).
   */
  lowRankProducts(gu: Float32Array | null, v: Float32Array | null, g: Float32Array, u: Float32Array | null,
    b: Float32Array | null, bScale: Float32Array | null, T: number, n: number, r: number, dot: Float32Array | null,
    z: Float32Array | null, bias: Float32Array | null): void;

  /**
   * Sparse × dense product for the dropout corrections of the fused adapter ops (src/peft/dora.ts, lora-linear.ts).
   * S [rows, k] is a CSR matrix: row t holds the entries e in [rowPtr[t], rowPtr[t+1]), at column cols[e], with
   * value values[e] (values is indexed like cols; the adapters gather x at the drops once a step, flat.ts
   * `drawDrops`). Columns are strictly ascending within a row and lie in [0, k). W is a dense operand read as
   * op(W) [k, n]:
   *   nt: W stored [n, k] (op(W)[j, i] = w[wOff + i·k + j], a Linear weight: S·Wᵀ)
   *   nn: W stored [k, n] (op(W)[j, i] = w[wOff + j·n + i])
   *   C [rows, n] (+)= alpha · S · op(W) · diag(scale),
   *   i.e. C[t, i] (+)= alpha · (scale ? scale[i] : 1) · Σ_e values[e] · op(W)[cols[e], i].
   */
  sparseGemm(form: "nn" | "nt", c: Float32Array, alpha: number, scale: Float32Array | null, values: Float32Array,
    rowPtr: Int32Array, cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number,
    accumulate: boolean): void;
  /**
   * The column dot of g [rows, n] with that product, without forming it (DoRA's ∂L/∂m under dropout):
   *   out[i] = Σ_t g[t·n + i] · (S · op(W) · diag(scale))[t, i]   (written; summed in float64).
   */
  sparseGemmDot(form: "nn" | "nt", out: Float32Array, g: Float32Array, scale: Float32Array | null, values: Float32Array,
    rowPtr: Int32Array, cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number): void;
  /**
   * Sampled dense × dense product on the same CSR pattern (rows, k; the pattern's values are not used): for each
   * entry e of row t at column j = cols[e],
   *   out[e] (+)= Σ_{i<n} a[t·n + i] · (scale ? scale[i] : 1) · op(W)[j, i]
   * with a [rows, n] dense row-major and op(W) as in `sparseGemm` (the row t of a·diag(scale)·op(W)ᵀ, at column j).
   * With `dot` (and S's values, as in `sparseGemm`) the same pass over op(W) also writes
   *   dot[i] = Σ_t a[t·n + i] · (S · op(W))[t, i]          (sparseGemmDot with g = a and no scale)
   * which DoRA's backward needs beside the sampled product (one walk over W's panels instead of two).
   */
  sampledGemm(form: "nn" | "nt", out: Float32Array, a: Float32Array, scale: Float32Array | null, rowPtr: Int32Array,
    cols: Int32Array, rows: number, n: number, k: number, w: Float32Array, wOff: number, accumulate: boolean,
    dot?: Float32Array | null, values?: Float32Array | null): void;
  /**
   * The transposed sparse product of S (as in `sparseGemm`) with v [rows, n] row-major (the A-gradient correction of
   * the fused adapter ops under dropout, src/peft/flat.ts `lowRankGradA`):
   *   out[j·n + i] = Σ over the entries e of every row t with cols[e] = j of values[e] · v[t·n + i]   [k, n], written
   * in float64, summed over t, then e, in order (each product of two float32 values is exact in float64, so every
   * backend gives the same bits).
   */
  sparseTransposedGemm(out: Float64Array, values: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number, k: number,
    v: Float32Array, n: number): void;

  /**
   * out[t·k + cols[e]] += alpha·values[e] for every entry e of row t < rows: a CSR matrix added into a dense [rows, k]
   * buffer (computed in float64, rounded once). The fused ops' dx corrections at the dropped positions
   * (peft/flat.ts `subtractAtDrops`).
   */
  addSparse(out: Float32Array, alpha: number, values: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number,
    k: number): void;
  /**
   * values[e] = x[t·k + cols[e]] for every entry e of row t < rows (written): a dense [rows, k] buffer read at a CSR
   * pattern, `addSparse`'s reverse. The fused ops gather x at the drops once a step (peft/flat.ts `drawDrops`).
   */
  gatherSparse(values: Float32Array, x: Float32Array, rowPtr: Int32Array, cols: Int32Array, rows: number, k: number): void;

  /**
   * Strictly ascending flat positions in [0, rows·rowLen) (a dropout draw over a [rows, rowLen] input) turned into CSR
   * rows in place: pos[e] becomes its column (position mod rowLen), rowPtr[0..rows] (written) the row starts. Positions
   * out of order or out of range are an error, found before anything is written.
   */
  positionsToCsr(pos: Int32Array, rowLen: number, rows: number, rowPtr: Int32Array): void;

  /**
   * The dropout mask draw behind tensor `dropoutPositions` (spec and gap law: backend/js/random.ts): appends dropped
   * positions to out[count..], ascending, the first after `last` (−1 at the start), one xoshiro128** draw from
   * `state` (4 words, advanced in place) per gap. Returns the new count; stops when a position reaches n (that draw
   * is spent) or when out is full (no draw is made for the next position). Every backend gives the same positions
   * and leaves the same state.
   */
  dropoutDraw(out: Int32Array, count: number, last: number, n: number, p: number, state: Uint32Array): number;

  /**
   * One AdamW step (torch.optim.AdamW semantics) on a flat parameter:
   *   p −= lr·wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;
   *   p −= lr · (m / bc1) / (sqrt(v / bc2) + eps),  bc1 = 1 − β1^t, bc2 = 1 − β2^t.
   */
  adamwStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, n: number,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number): void;
}
