/**
 * Reporting the evidence an enclave publishes (GET /evidence) on chain, as anyone may: a watcher,
 * the TEE node's operator, a competitor. Each record becomes one InferenceLedger call:
 *
 *   contradicted    -> reportContradictedReceipt(receipt, nodeSignature, verdict.outputHash,
 *                      verdict.timestamp, enclaveSignature)
 *   double-receipt  -> reportDoubleReceipt(a, signatureA, b, signatureB)
 *
 * The reporter is paid the bounty (unless it is the offender's own operator, signer or payee). A
 * record whose offence is already slashed is skipped; one the ledger would refuse (covered by an
 * earlier slash, in its cooldown, nothing at stake) is reported with the ledger's reason and not
 * sent, so nothing is spent on a transaction that reverts.
 */
import { AbiCoder, keccak256, type Contract, type ContractTransactionResponse } from "ethers";

import { receiptStructHash } from "../chain/eip712.js";
import type { Receipt } from "../chain/eip712.js";
import type { EvidenceRecord } from "../tee/enclave.js";

/** IInferenceLedger.Offence */
const DOUBLE_RECEIPT = 0;
const CONTRADICTED_RECEIPT = 1;

export interface EvidenceOutcome {
  index: number;
  kind: EvidenceRecord["kind"];
  node: string;
  offenceKey: string;
  status: "slashed" | "already-slashed" | "refused";
  /** The ledger's reason when refused; the transaction and amount when slashed. */
  reason?: string;
  txHash?: string;
  slashed?: bigint;
}

function revive(receipt: Receipt): Receipt {
  return { ...receipt, timestamp: BigInt(receipt.timestamp) };
}

/** The offence key InferenceLedger marks for a record, and the call that reports it. */
export function evidenceCall(record: EvidenceRecord): {
  offenceKey: string;
  node: string;
  method: "reportContradictedReceipt" | "reportDoubleReceipt";
  args: unknown[];
} {
  const coder = AbiCoder.defaultAbiCoder();
  if (record.kind === "contradicted") {
    const receipt = revive(record.receipt);
    return {
      offenceKey: keccak256(
        coder.encode(["uint8", "bytes32"], [CONTRADICTED_RECEIPT, receiptStructHash(receipt)]),
      ),
      node: receipt.node,
      method: "reportContradictedReceipt",
      args: [
        receipt,
        record.nodeSignature,
        record.verdict.outputHash,
        BigInt(record.verdict.timestamp),
        record.enclaveSignature,
      ],
    };
  }
  const a = revive(record.a.receipt);
  const b = revive(record.b.receipt);
  return {
    offenceKey: keccak256(
      coder.encode(["uint8", "address", "bytes32"], [DOUBLE_RECEIPT, a.node, a.requestId]),
    ),
    node: a.node,
    method: "reportDoubleReceipt",
    args: [a, record.a.nodeSignature, b, record.b.nodeSignature],
  };
}

function revertName(ledger: Contract, error: unknown): string {
  const data = (error as { data?: unknown }).data;
  if (typeof data === "string" && data !== "0x") {
    try {
      const parsed = ledger.interface.parseError(data);
      if (parsed !== null) return `${parsed.name}(${parsed.args.map(String).join(", ")})`;
    } catch {
      // not one of the ledger's errors
    }
  }
  return error instanceof Error ? error.message : String(error);
}

/**
 * Reports evidence records an enclave published (tee/client.ts fetchEvidence), with `ledger`
 * connected to the reporter's signer. Resolves with one outcome per record, in order.
 */
export async function reportEvidence(
  records: readonly EvidenceRecord[],
  ledger: Contract,
): Promise<EvidenceOutcome[]> {
  const outcomes: EvidenceOutcome[] = [];
  for (const record of records) {
    const call = evidenceCall(record);
    const base = {
      index: record.index,
      kind: record.kind,
      node: call.node,
      offenceKey: call.offenceKey,
    };
    if ((await ledger.getFunction("isOffenceSlashed")(call.offenceKey)) as boolean) {
      outcomes.push({ ...base, status: "already-slashed" });
      continue;
    }
    const fn = ledger.getFunction(call.method);
    try {
      await fn.staticCall(...call.args);
    } catch (error) {
      outcomes.push({ ...base, status: "refused", reason: revertName(ledger, error) });
      continue;
    }
    const tx = (await fn(...call.args)) as ContractTransactionResponse;
    const mined = await tx.wait();
    let slashed = 0n;
    for (const log of mined?.logs ?? []) {
      const parsed = ledger.interface.parseLog(log);
      if (parsed?.name === "OffenceSlashed")
        slashed = BigInt(parsed.args.getValue("slashed") as bigint);
    }
    outcomes.push({ ...base, status: "slashed", txHash: tx.hash, slashed });
  }
  return outcomes;
}
