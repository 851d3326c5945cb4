/**
 * Why an anchoring failed, and whether the cause can go away. The sender reports a reverted
 * transaction (or one that would revert) as `Name(args)` decoded from InferenceLedger's custom
 * errors (sender/fees.ts describeRevert); a call's error carries the revert data itself.
 *
 * Transient (retried with backoff, the batch stays): the enclave is not active right now (its
 * registration lapsed, its node is jailed or under-staked: a heartbeat, a renewal or an unjail
 * fixes it), the batch's time is ahead of the chain's (time passes), the previous batch is not
 * anchored yet, anything not decoded (an RPC error, out of gas).
 *
 * Permanent (the chain will never accept this batch): a bad signature or batch, a signer that was
 * not the node's at the batch's time, a rate below governance's, a node that is not an INFERENCE
 * node. The enclave key cannot move past this sequence, so the batch's receipts must go to a new
 * enclave key.
 */
import { isError, type Interface } from "ethers";

export interface AnchorFailure {
  /** The custom error's name, or "unknown". */
  name: string;
  message: string;
  permanent: boolean;
}

const TRANSIENT = new Set([
  "LedgerInactiveEnclave",
  "LedgerSignedInFuture",
  "LedgerUnexpectedSequence",
  "LedgerUnknownBatch",
]);

const PERMANENT = new Set([
  "LedgerInvalidBatch",
  "LedgerInvalidBatchSigner",
  "LedgerInvalidBatchNodeSigner",
  "LedgerNotInferenceNode",
  "LedgerSampleRateTooLow",
  "LedgerUsageLengthMismatch",
  "LedgerUsageNotSorted",
  "LedgerUsageCountMismatch",
  "LedgerUsageHashMismatch",
]);

/** Classifies a sender outcome's reason (a string) or a thrown call error. */
export function classifyAnchorFailure(reason: unknown, iface: Interface): AnchorFailure {
  let text: string;
  if (typeof reason === "string") {
    text = reason;
  } else if (isError(reason, "CALL_EXCEPTION") && typeof reason.data === "string") {
    try {
      const parsed = iface.parseError(reason.data);
      text =
        parsed === null
          ? String(reason.data)
          : `${parsed.name}(${parsed.args.map((a: unknown) => String(a)).join(", ")})`;
    } catch {
      text = String(reason.data);
    }
  } else {
    text = reason instanceof Error ? reason.message : String(reason);
  }
  const match = /^([A-Za-z][A-Za-z0-9_]*)\(/.exec(text);
  const name = match?.[1] ?? "unknown";
  return { name, message: text, permanent: PERMANENT.has(name) && !TRANSIENT.has(name) };
}
