// TEMPORARY STUB written by the lead so the tensor layer compiles; the native-backend engineer replaces this file.
import type { Backend } from "../backend.js";
export function loadNativeBackend(): Backend {
  throw new Error("native backend not built yet");
}
