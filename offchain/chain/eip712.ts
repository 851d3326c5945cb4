/**
 * The typed data that GPU nodes and enclaves sign, and that InferenceLedger checks on chain.
 * This file is the one definition off chain; contracts/anchoring mirrors it (type strings and
 * field order must stay identical: the contract tests check the digests against these).
 *
 * Domain: { name: "OPG InferenceLedger", version: "1", chainId, verifyingContract: ledger }.
 */
import { AbiCoder, TypedDataEncoder, keccak256 } from "ethers";

export const LEDGER_DOMAIN_NAME = "OPG InferenceLedger";
export const LEDGER_DOMAIN_VERSION = "1";

export interface LedgerDomain {
  name: string;
  version: string;
  chainId: bigint;
  verifyingContract: string;
}

export function ledgerDomain(chainId: bigint, verifyingContract: string): LedgerDomain {
  return { name: LEDGER_DOMAIN_NAME, version: LEDGER_DOMAIN_VERSION, chainId, verifyingContract };
}

/** A GPU node's statement: "for request R, model M on input I produced output O under config C". */
export interface Receipt {
  requestId: string; // bytes32
  modelId: string; // bytes32: keccak-256 of the ONNX file bytes
  inputHash: string; // bytes32: keccak-256 of the canonical input encoding
  outputHash: string; // bytes32: keccak-256 of the canonical (quantised) output encoding
  node: string; // address: the NodeStaking node id (its operator-chosen node address)
  execConfigHash: string; // bytes32: keccak-256 of the canonical execution config
  timestamp: bigint; // uint64: unix seconds when the node signed
}

/** An enclave's re-execution verdict over one receipt. */
export interface Verdict {
  receiptHash: string; // bytes32: EIP-712 struct hash of the Receipt
  agree: boolean;
  // bytes32: when agreeing, the receipt's outputHash (the GPU output the enclave endorses, within the
  // model's tolerance); when disagreeing, the output hash the enclave computed itself (the evidence).
  outputHash: string;
  timestamp: bigint; // uint64: unix seconds (the enclave's clock) when the enclave signed
}

/**
 * An enclave's signed batch: the Merkle root over receipts it received from one GPU node and checked
 * (each signed by `signer`), and what it summarises; every figure is the enclave's own computation.
 */
export interface Batch {
  enclave: string; // address: the enclave signing key
  sequence: bigint; // uint64: the enclave's next sequence number (0, 1, 2, ...), allocated by the enclave
  root: string; // bytes32: StandardMerkleTree root over receipt leaves (RECEIPT_LEAF_TYPES)
  count: number; // uint32: receipts in the batch
  reexecuted: number; // uint32: receipts the enclave re-executed (sampling)
  usageHash: string; // bytes32: keccak-256(abi.encode(bytes32[] modelIds, uint32[] counts))
  node: string; // address: the GPU node whose receipts these are
  signer: string; // address: the node's signer key that signed every receipt (checked by the enclave)
  asOf: bigint; // uint64: the enclave's clock (unix seconds) at the latest receipt in the batch
  sampleRatePpm: number; // uint32: the re-execution rate the enclave drew at, parts per million
}

export const RECEIPT_TYPES = {
  Receipt: [
    { name: "requestId", type: "bytes32" },
    { name: "modelId", type: "bytes32" },
    { name: "inputHash", type: "bytes32" },
    { name: "outputHash", type: "bytes32" },
    { name: "node", type: "address" },
    { name: "execConfigHash", type: "bytes32" },
    { name: "timestamp", type: "uint64" },
  ],
};

export const VERDICT_TYPES = {
  Verdict: [
    { name: "receiptHash", type: "bytes32" },
    { name: "agree", type: "bool" },
    { name: "outputHash", type: "bytes32" },
    { name: "timestamp", type: "uint64" },
  ],
};

export const BATCH_TYPES = {
  Batch: [
    { name: "enclave", type: "address" },
    { name: "sequence", type: "uint64" },
    { name: "root", type: "bytes32" },
    { name: "count", type: "uint32" },
    { name: "reexecuted", type: "uint32" },
    { name: "usageHash", type: "bytes32" },
    { name: "node", type: "address" },
    { name: "signer", type: "address" },
    { name: "asOf", type: "uint64" },
    { name: "sampleRatePpm", type: "uint32" },
  ],
};

/** A sample rate of 1 (every receipt re-executed), in parts per million (InferenceLedger.FULL_SAMPLE_RATE). */
export const FULL_SAMPLE_RATE_PPM = 1_000_000;

/**
 * Merkle leaf encoding of a receipt (OpenZeppelin StandardMerkleTree: keccak256(keccak256(abi.encode(...))))
 * so any OZ tool can check a receipt proof with these types and values.
 */
export const RECEIPT_LEAF_TYPES = [
  "bytes32",
  "bytes32",
  "bytes32",
  "bytes32",
  "address",
  "bytes32",
  "uint64",
] as const;

export function receiptLeafValues(
  r: Receipt,
): [string, string, string, string, string, string, bigint] {
  return [r.requestId, r.modelId, r.inputHash, r.outputHash, r.node, r.execConfigHash, r.timestamp];
}

export function receiptStructHash(r: Receipt): string {
  return TypedDataEncoder.hashStruct("Receipt", RECEIPT_TYPES, r);
}

export function receiptDigest(domain: LedgerDomain, r: Receipt): string {
  return TypedDataEncoder.hash(domain, RECEIPT_TYPES, r);
}

export function verdictDigest(domain: LedgerDomain, v: Verdict): string {
  return TypedDataEncoder.hash(domain, VERDICT_TYPES, v);
}

export function batchDigest(domain: LedgerDomain, b: Batch): string {
  return TypedDataEncoder.hash(domain, BATCH_TYPES, b);
}

/** keccak256(abi.encode(bytes32[] modelIds, uint32[] counts)), modelIds sorted ascending. */
export function usageHash(modelIds: string[], counts: number[]): string {
  return keccak256(
    AbiCoder.defaultAbiCoder().encode(["bytes32[]", "uint32[]"], [modelIds, counts]),
  );
}
