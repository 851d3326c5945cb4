export * from "./cbor.js";
export * from "./attestation.js";
export * from "./devAttestation.js";
export * from "./sampling.js";
export * from "./schemas.js";
export * from "./enclave.js";
export * from "./server.js";
export * from "./awsRoot.js";
