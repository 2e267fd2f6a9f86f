/**
 * The backend registry: everything above asks here, never imports a backend directly.
 * `DORA_BACKEND=js` forces the reference backend; otherwise the native addon is used when it loads, and the js
 * backend runs with one warning naming the cause when it does not. `DORA_BACKEND=native` makes a failed load an error.
 */
import type { Backend } from "./backend.js";
import { jsBackend } from "./js/index.js";
import { loadNativeBackend } from "./native/index.js";

export type { AttentionLayout, Backend, BinaryOp, GemmForm, HeadStrides, UnaryOp } from "./backend.js";
export { LOW_RANK_MAX_RANK } from "./backend.js";
export { xoshiroNext } from "./js/random.js";

let current: Backend | undefined;

export function getBackend(): Backend {
  if (current) return current;
  const want = process.env["DORA_BACKEND"];
  if (want === "js") return (current = jsBackend);
  if (want !== undefined && want !== "native") throw new Error(`DORA_BACKEND=${want}: expected "js" or "native"`);
  let chosen: Backend;
  try {
    chosen = loadNativeBackend();
  } catch (err) {
    if (want === "native") throw new Error(`DORA_BACKEND=native but the native addon did not load: ${(err as Error).message}`, { cause: err });
    process.emitWarning(`dora-ts: native addon unavailable (${(err as Error).message}); using the slower js backend`);
    chosen = jsBackend;
  }
  current = chosen;
  return chosen;
}

/** Replace the active backend (tests and benches compare backends in one process). */
export function setBackend(b: Backend): void {
  current = b;
}

export { jsBackend };
