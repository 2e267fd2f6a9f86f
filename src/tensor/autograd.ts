/**
 * Reverse-mode autograd. Each op that produces a tensor from inputs needing gradients attaches a GradNode
 * holding a backward closure. `backward()` walks the graph once in reverse topological order, asks each node
 * only for the input gradients that are needed (`needs[i]`), so a frozen weight costs no dW GEMM, and drops
 * each node once used so the activations it captured can be collected.
 */
import type { Tensor } from "./tensor.js";
import * as prof from "./profile.js";
import { allocationMark, dropPooledBefore, releaseF32 } from "./buffer.js";

export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Tensor[];
  /** Gradients w.r.t. each input (null where not needed), given the gradient of the output. */
  backward(grad: Tensor, needs: readonly boolean[]): readonly (Tensor | null)[];
  /** The module path current when the op ran (set only while profiling). */
  readonly path?: string;
}

let gradEnabled = true;
/** True while runBackward runs: ops called by backward closures are timed as part of their node. */
let inBackward = false;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Run `fn` without recording gradients (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Run `fn` with gradient recording on, even inside a backward pass (torch.enable_grad; gradient checkpointing). */
export function enableGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = true;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Attach `backward` to `out` when grad mode is on and some input requires grad. Returns `out`. */
export function record(out: Tensor, op: string, inputs: readonly Tensor[],
  backward: (grad: Tensor, needs: readonly boolean[]) => readonly (Tensor | null)[]): Tensor {
  if (prof.profiling && !inBackward) prof.profileForward(op);
  if (!gradEnabled || !inputs.some((t) => t.requiresGrad)) return out;
  out.requiresGrad = true;
  out.gradFn = prof.profiling ? { op, inputs, backward, path: prof.currentPath() } : { op, inputs, backward };
  return out;
}

/** Topological order of the graph below `root` (inputs before users), iterative to survive deep graphs. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: { t: Tensor; i: number }[] = [{ t: root, i: 0 }];
  seen.add(root);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const inputs = top.t.gradFn?.inputs ?? [];
    if (top.i < inputs.length) {
      const next = inputs[top.i++]!;
      if (next.requiresGrad && !seen.has(next)) {
        seen.add(next);
        stack.push({ t: next, i: 0 });
      }
    } else {
      order.push(top.t);
      stack.pop();
    }
  }
  return order;
}

/**
 * `releaseSince`: an `allocationMark()` taken before the forward pass, or null. When given, the graph's intermediate
 * tensors (every non-leaf from the leaves to `root`, `root` included) give their buffers back to the pool once the
 * gradients are computed, if the buffer was handed out after the mark and is not a leaf's, a gradient's, or the
 * given root gradient's. Their tensors (and any view of those buffers) are left empty.
 */
export function runBackward(root: Tensor, grad: Tensor, add: (a: Tensor, b: Tensor) => Tensor, retainGraph: boolean,
  releaseSince: number | null = null): void {
  if (retainGraph && releaseSince !== null) throw new Error("backward: releaseActivationsSince cannot be combined with retainGraph (the graph would keep released buffers)");
  const order = topoOrder(root);
  const inner = releaseSince === null ? [] : order.filter((t) => t.gradFn !== null);
  const leaves = releaseSince === null ? [] : order.filter((t) => t.gradFn === null);
  const grads = new Map<Tensor, Tensor>([[root, grad]]);
  const buffers = new GradBuffers(grad);
  const prev = gradEnabled, prevIn = inBackward;
  gradEnabled = false;
  inBackward = true;
  try {
    for (let idx = order.length - 1; idx >= 0; idx--) {
      const t = order[idx]!;
      const g = grads.get(t);
      grads.delete(t);
      if (g === undefined) continue;
      const node = t.gradFn;
      if (node === null) {
        // a leaf: gradients accumulate across backward() calls, as in PyTorch
        t.grad = t.grad === null ? g : add(t.grad, g);
        buffers.keep(t.grad);
        buffers.drop(g);
        continue;
      }
      const needs = node.inputs.map((x) => x.requiresGrad);
      let ins: readonly (Tensor | null)[];
      if (prof.profiling) {
        const t0 = performance.now();
        ins = node.backward(g, needs);
        prof.profileBackward(node.op, node.path, performance.now() - t0);
      } else {
        ins = node.backward(g, needs);
      }
      if (!retainGraph) t.gradFn = null; // release what the closure captured
      for (let i = 0; i < node.inputs.length; i++) {
        const gi = ins[i];
        if (!needs[i] || gi === null || gi === undefined) continue;
        const x = node.inputs[i]!;
        const have = grads.get(x);
        buffers.hold(gi);
        if (have === undefined) {
          grads.set(x, gi);
        } else {
          const sum = add(have, gi);
          buffers.hold(sum);
          grads.set(x, sum);
          buffers.drop(have);
          buffers.drop(gi);
        }
      }
      buffers.drop(g);
    }
    if (releaseSince !== null) {
      buffers.releaseActivations(inner, leaves, releaseSince);
      // What the pool held before this step and the step did not take: lengths no longer used. Not from a backward
      // nested in another (a checkpoint's recomputation), whose outer pass still wants what the pool holds.
      if (!prevIn) dropPooledBefore(releaseSince);
    }
  } finally {
    gradEnabled = prev;
    inBackward = prevIn;
  }
}

/**
 * Which gradient buffers of one backward pass are still held (by entries of its gradient map, by views among
 * them, or as a leaf's `.grad` or the caller's root gradient, which are never let go), so the ones nobody holds go
 * back to the buffer pool (buffer.ts) for the next op, instead of to the garbage collector. Counted per
 * ArrayBuffer, so views of one buffer (reshape's gradient is a view of its output's) hold it together. Only buffers
 * handed out during this pass can be released (`allocationMark`): never a forward activation a closure returned.
 */
class GradBuffers {
  private readonly mark = allocationMark();
  private readonly holders = new Map<ArrayBufferLike, number>();
  private readonly kept = new Set<ArrayBufferLike>();

  constructor(root: Tensor) {
    this.keep(root);
    this.hold(root);
  }

  hold(t: Tensor): void {
    const b = t.data.buffer;
    this.holders.set(b, (this.holders.get(b) ?? 0) + 1);
  }

  keep(t: Tensor): void {
    this.kept.add(t.data.buffer);
  }

  /** After the pass: hands back the buffers of the graph's intermediate tensors (runBackward's `releaseSince`). */
  releaseActivations(inner: readonly Tensor[], leaves: readonly Tensor[], since: number): void {
    const leafBuffers = new Set(leaves.map((t) => t.data.buffer));
    for (const t of inner) {
      const b = t.data.buffer; // a view of a leaf, or a buffer that became a leaf's grad, stays
      if (leafBuffers.has(b) || this.kept.has(b) || !(t.data instanceof Float32Array)) continue;
      releaseF32(t.data, since, true);
    }
  }

  drop(t: Tensor): void {
    const b = t.data.buffer, n = (this.holders.get(b) ?? 0) - 1;
    if (n > 0) { this.holders.set(b, n); return; }
    this.holders.delete(b);
    if (!this.kept.has(b) && t.data instanceof Float32Array) releaseF32(t.data, this.mark);
  }
}
