/** The GPU node's side: turn an inference result into the EIP-712 Receipt it signs. */
import type { Signer } from "ethers";

import { checksumAddress } from "../chain/address.js";
import { RECEIPT_TYPES, type LedgerDomain, type Receipt } from "../chain/eip712.js";
import { InputError } from "../common/errors.js";
import type { InferenceResult } from "./engine.js";

export function receiptFor(
  result: Pick<InferenceResult, "modelId" | "inputHash" | "outputHash" | "execConfigHash">,
  fields: { requestId: string; node: string; timestamp: bigint },
): Receipt {
  if (!/^0x[0-9a-fA-F]{64}$/.test(fields.requestId)) {
    throw new InputError("requestId must be 0x + 64 hex digits", {
      details: { requestId: fields.requestId },
    });
  }
  if (fields.timestamp < 0n || fields.timestamp >= 2n ** 64n) {
    throw new InputError("timestamp must fit in uint64", {
      details: { timestamp: fields.timestamp },
    });
  }
  return {
    requestId: fields.requestId,
    modelId: result.modelId,
    inputHash: result.inputHash,
    outputHash: result.outputHash,
    node: checksumAddress(fields.node),
    execConfigHash: result.execConfigHash,
    timestamp: fields.timestamp,
  };
}

/** The node signer's EIP-712 signature over the receipt in the ledger's domain. */
export async function signReceipt(
  signer: Signer,
  domain: LedgerDomain,
  receipt: Receipt,
): Promise<string> {
  return signer.signTypedData(domain, RECEIPT_TYPES, receipt);
}
