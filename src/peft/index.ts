/** The peft layer's public surface: LoraConfig, getPeftModel/PeftModel, the adapter layers and DoRA's maths. */
export { LoraConfig, ConfigError, PEFT_VERSION_TAG, type LoraConfigInit, type InitLoraWeights, type TargetModules } from "./config.js";
export { PeftModel, getPeftModel, type PeftOptions } from "./peft-model.js";
export { LoraLayer, type LoraAdapter, type AdapterSettings } from "./layer.js";
export { LoraLinear } from "./lora-linear.js";
export { LoraEmbedding } from "./lora-embedding.js";
export { LoraConv2d } from "./lora-conv2d.js";
export { ModulesToSave } from "./modules-to-save.js";
export { resolveVariant, type AdapterVariant, type LayerKind } from "./variant.js";
export * as dora from "./dora.js";
export { AdapterLoadError, CONFIG_FILE, WEIGHTS_FILE, diskKey } from "./serialization.js";
