/**
 * Builders, signers and recoverers for the typed data of offchain/chain/eip712.ts: receipts (GPU node),
 * verdicts (enclave) and batches (enclave), plus the batch's usage summary. Signing uses ethers'
 * `signTypedData` with the one definition of the types, so what is signed here is what
 * InferenceLedger checks.
 */
import {
  AbiCoder,
  TypedDataEncoder,
  getAddress,
  isHexString,
  keccak256,
  verifyTypedData,
} from "ethers";
import type { Signer } from "ethers";

import { InputError } from "../common/errors.js";
import {
  BATCH_TYPES,
  RECEIPT_LEAF_TYPES,
  RECEIPT_TYPES,
  VERDICT_TYPES,
  receiptLeafValues,
  receiptStructHash,
  usageHash,
} from "./eip712.js";
import type { Batch, LedgerDomain, Receipt, Verdict } from "./eip712.js";

const UINT32_MAX = 0xffff_ffff;
const UINT64_MAX = (1n << 64n) - 1n;

/** A signer that can produce EIP-712 signatures (an ethers Wallet or a HardhatEthersSigner). */
export type TypedSigner = Pick<Signer, "signTypedData">;

// ---------------------------------------------------------------------------------------------------
// Builders (validate once, so a bad field fails here with its name rather than deep inside ethers)
// ---------------------------------------------------------------------------------------------------

function bytes32(field: string, value: string): string {
  if (!isHexString(value, 32)) {
    throw new InputError(`${field} must be a 0x-prefixed 32-byte hex string`, {
      details: { [field]: value },
    });
  }
  return value.toLowerCase();
}

function address(field: string, value: string): string {
  try {
    return getAddress(value);
  } catch (cause) {
    throw new InputError(`${field} must be an address`, { details: { [field]: value }, cause });
  }
}

function uint(field: string, value: bigint, max: bigint): bigint {
  if (value < 0n || value > max) {
    throw new InputError(`${field} is out of range`, { details: { [field]: value, max } });
  }
  return value;
}

/** A receipt with every field checked and normalised (lower-case hashes, checksummed node). */
export function buildReceipt(fields: Receipt): Receipt {
  return {
    requestId: bytes32("requestId", fields.requestId),
    modelId: bytes32("modelId", fields.modelId),
    inputHash: bytes32("inputHash", fields.inputHash),
    outputHash: bytes32("outputHash", fields.outputHash),
    node: address("node", fields.node),
    execConfigHash: bytes32("execConfigHash", fields.execConfigHash),
    timestamp: uint("timestamp", fields.timestamp, UINT64_MAX),
  };
}

/** The enclave's verdict over `receipt` at `timestamp`: agree when its own output hash equals the receipt's. */
export function buildVerdict(
  receipt: Receipt,
  enclaveOutputHash: string,
  timestamp: bigint,
): Verdict {
  const outputHash = bytes32("outputHash", enclaveOutputHash);
  return {
    receiptHash: receiptStructHash(receipt),
    agree: outputHash === receipt.outputHash.toLowerCase(),
    outputHash,
    timestamp: uint("timestamp", timestamp, UINT64_MAX),
  };
}

/** The batch's usage summary: modelIds sorted ascending (as numbers) with their receipt counts. */
export interface UsageSummary {
  modelIds: string[];
  counts: number[];
}

export function usageSummary(receipts: readonly Pick<Receipt, "modelId">[]): UsageSummary {
  const counts = new Map<string, number>();
  for (const r of receipts) {
    const id = r.modelId.toLowerCase();
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  const modelIds = [...counts.keys()].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1));
  return { modelIds, counts: modelIds.map((id) => counts.get(id) ?? 0) };
}

export function usageSummaryHash(usage: UsageSummary): string {
  return usageHash(usage.modelIds, usage.counts);
}

export interface BatchFields {
  enclave: string;
  sequence: bigint;
  root: string;
  count: number;
  reexecuted: number;
  usage: UsageSummary;
  /** The GPU node whose receipts the batch holds, and the signer key that signed them. */
  node: string;
  signer: string;
  /** The enclave's clock (unix seconds) at the latest receipt in the batch. */
  asOf: bigint;
  /** The rate it drew every receipt's sample at, parts per million. */
  sampleRatePpm: number;
}

/** A batch with every field checked; its usageHash is computed from `usage`. */
export function buildBatch(fields: BatchFields): Batch {
  const count = Number(uint("count", BigInt(fields.count), BigInt(UINT32_MAX)));
  const reexecuted = Number(uint("reexecuted", BigInt(fields.reexecuted), BigInt(count)));
  const total = fields.usage.counts.reduce((a, b) => a + b, 0);
  if (total !== count || fields.usage.modelIds.length !== fields.usage.counts.length) {
    throw new InputError("usage summary does not add up to the batch count", {
      details: {
        count,
        total,
        modelIds: fields.usage.modelIds.length,
        counts: fields.usage.counts.length,
      },
    });
  }
  return {
    enclave: address("enclave", fields.enclave),
    sequence: uint("sequence", fields.sequence, UINT64_MAX),
    root: bytes32("root", fields.root),
    count,
    reexecuted,
    usageHash: usageSummaryHash(fields.usage),
    node: address("node", fields.node),
    signer: address("signer", fields.signer),
    asOf: uint("asOf", fields.asOf, UINT64_MAX),
    sampleRatePpm: Number(uint("sampleRatePpm", BigInt(fields.sampleRatePpm), 1_000_000n)),
  };
}

// ---------------------------------------------------------------------------------------------------
// Signing and recovery
// ---------------------------------------------------------------------------------------------------

export function signReceipt(
  signer: TypedSigner,
  domain: LedgerDomain,
  receipt: Receipt,
): Promise<string> {
  return signer.signTypedData(domain, RECEIPT_TYPES, receipt);
}

export function signVerdict(
  signer: TypedSigner,
  domain: LedgerDomain,
  verdict: Verdict,
): Promise<string> {
  return signer.signTypedData(domain, VERDICT_TYPES, verdict);
}

export function signBatch(
  signer: TypedSigner,
  domain: LedgerDomain,
  batch: Batch,
): Promise<string> {
  return signer.signTypedData(domain, BATCH_TYPES, batch);
}

export function recoverReceiptSigner(
  domain: LedgerDomain,
  receipt: Receipt,
  signature: string,
): string {
  return verifyTypedData(domain, RECEIPT_TYPES, receipt, signature);
}

export function recoverVerdictSigner(
  domain: LedgerDomain,
  verdict: Verdict,
  signature: string,
): string {
  return verifyTypedData(domain, VERDICT_TYPES, verdict, signature);
}

export function recoverBatchSigner(domain: LedgerDomain, batch: Batch, signature: string): string {
  return verifyTypedData(domain, BATCH_TYPES, batch, signature);
}

/** The receipt's OpenZeppelin standard leaf: keccak256(keccak256(abi.encode(fields))). */
export function receiptLeafHash(receipt: Receipt): string {
  const encoded = AbiCoder.defaultAbiCoder().encode(
    [...RECEIPT_LEAF_TYPES],
    receiptLeafValues(receipt),
  );
  return keccak256(keccak256(encoded));
}

/** The EIP-712 struct hash of a batch (what the equivocation evidence compares). */
export function batchStructHash(batch: Batch): string {
  return TypedDataEncoder.hashStruct("Batch", BATCH_TYPES, batch);
}
