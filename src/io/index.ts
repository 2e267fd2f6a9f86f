/** The io layer: safetensors files and sharded checkpoints, JSON files, the atomic writer. */
export { IoError, JsonFileError, SafetensorsError } from "./errors.js";
export { parseJson, readJsonFile, writeFileAtomic } from "./json.js";
export { INDEX_FILE, SINGLE_FILE, ShardedSafetensors, openModelWeights } from "./model-weights.js";
export {
  DTYPE_SIZE, MAX_HEADER_BYTES, type SafetensorsDtype, SafetensorsFile, type TensorInfo, type TensorSource,
  type TensorToWrite, type WritableDtype, writeSafetensors,
} from "./safetensors.js";
