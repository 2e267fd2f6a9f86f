export { Module, type Layer } from "./module.js";
export { Linear, Conv1D, Embedding, Conv2d, RMSNorm, LayerNorm, Dropout } from "./layers.js";
export { instrumentModules } from "./profile.js";
export { Linear4bit } from "./linear4bit.js";
