export * from "./errors.js";
export * from "./manifest.js";
export * from "./tensor.js";
export * from "./provider.js";
export * from "./engine.js";
export * from "./receipt.js";
