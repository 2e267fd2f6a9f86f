/** The models layer: HF configs, the LLaMA and GPT-2 families, loading/saving, hub downloads, generation, tokenizers. */
export {
  type Architecture, type ModelConfig, ModelConfigError, type ModelFamily, type RopeScaling, SUPPORTED_ARCHITECTURES, parseModelConfig, readModelConfig,
} from "./config.js";
export { type CausalLM, type ForwardOptions, KVCache, ModuleList, type WeightProvider, randomWeights, shiftedLoss } from "./model.js";
export { LlamaForCausalLM, LlamaModel, LlamaDecoderLayer, LlamaAttention, LlamaMLP, ropeInvFreq, ropeTables } from "./llama.js";
export { GPT2LMHeadModel, GPT2Model, GPT2Block, GPT2Attention, GPT2MLP } from "./gpt2.js";
export { type LoadOptions, type SaveOptions, type StorageDtype, buildModel, loadModel, loadModelFromDir, randomModel, saveModel } from "./auto.js";
export { HubError, type HubOptions, downloadModel, hubCacheDir, looksLikeHubId, repoCacheDir } from "./hub.js";
export { type GenerateOptions, type GenerateResult, generate } from "./generate.js";
export { HfTokenizer, TokenStreamDecoder, TokenizerError, decodeStream, type ChatMessage } from "./tokenizer.js";
