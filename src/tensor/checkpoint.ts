/**
 * Gradient checkpointing (torch.utils.checkpoint, the reentrant form HF's `gradient_checkpointing_enable` uses):
 * the forward runs `fn` without building a graph and keeps only its inputs; backward recomputes `fn` with a
 * graph and backpropagates through that. Activations inside `fn` live only during its own backward, so a model
 * of L checkpointed layers holds L layer inputs instead of L layers' activations, for one extra forward.
 *
 * Parameters `fn` reads are invisible to the outer graph, so they are passed in `params`: they make the output
 * require grad even when the inputs do not (frozen embeddings feeding adapted layers; torch needs
 * `enable_input_require_grads` for this), and the inner backward accumulates their gradients straight into
 * `.grad`, as torch's reentrant checkpoint does. Generators `fn` draws from (dropout) are passed in `rngs` and
 * replayed, so the recomputation sees the same masks.
 */
import { enableGrad, isGradEnabled, noGrad, record } from "./autograd.js";
import { allocationMark } from "./buffer.js";
import type { Rng } from "./random.js";
import type { Tensor } from "./tensor.js";

export interface CheckpointOptions {
  /** Tensors `fn` reads besides its inputs; those requiring grad get their gradients in the recomputation. */
  params?: readonly Tensor[];
  /** Generators `fn` draws from, restored before the recomputation. */
  rngs?: readonly Rng[];
}

export function checkpoint(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[], opts: CheckpointOptions = {}): Tensor {
  const params = (opts.params ?? []).filter((p) => p.requiresGrad);
  if (!isGradEnabled() || (!inputs.some((x) => x.requiresGrad) && params.length === 0)) return fn(...inputs);
  const rngs = opts.rngs ?? [];
  const before = rngs.map((r) => r.getState());
  const out = noGrad(() => fn(...inputs.map((x) => x.detach())));
  return record(out, "checkpoint", [...inputs, ...params], (g, needs) => {
    const after = rngs.map((r) => r.getState());
    rngs.forEach((r, i) => r.setState(before[i]!));
    const xs = inputs.map((x, i) => {
      const d = x.detach();
      d.requiresGrad = needs[i]!;
      return d;
    });
    const mark = allocationMark();
    const y = enableGrad(() => fn(...xs));
    rngs.forEach((r, i) => r.setState(after[i]!));
    // parameter gradients land in their .grad here; the recomputed activations, which nothing outside this closure
    // can reach, go back to the buffer pool for the next layer's recomputation
    if (y.requiresGrad) y.backward(g, { releaseActivationsSince: mark });
    return [...xs.map((d, i) => (needs[i] ? d.grad : null)), ...params.map(() => null)];
  });
}
