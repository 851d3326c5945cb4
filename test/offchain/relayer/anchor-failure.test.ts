/**
 * classifyAnchorFailure: every custom error InferenceLedger can revert with is either transient
 * (the batch stays and is retried with backoff once its cause may be gone) or permanent (the chain
 * will never take this batch: its enclave key stalls). The tables below name each error once, so a
 * new error in the contract fails here until someone decides which it is.
 */
import { expect } from "chai";
import {
  Interface,
  ZeroAddress,
  ZeroHash,
  makeError,
  type ErrorFragment,
  type ParamType,
} from "ethers";

import { loadAbi } from "../../../offchain/chain/artifacts.js";
import { classifyAnchorFailure } from "../../../offchain/relayer/anchor-failure.js";
import { describeRevert } from "../../../offchain/relayer/sender/fees.js";

const iface = new Interface(loadAbi("contracts/anchoring/InferenceLedger.sol", "InferenceLedger"));

/** anchorBatch's reverts whose cause can go away: a heartbeat, time, the previous batch. */
const TRANSIENT = [
  "LedgerInactiveEnclave",
  "LedgerSignedInFuture",
  "LedgerUnexpectedSequence",
  "LedgerUnknownBatch",
];
/** anchorBatch's reverts about the batch itself: it can never be anchored. */
const PERMANENT = [
  "LedgerInvalidBatch",
  "LedgerInvalidBatchSigner",
  "LedgerInvalidBatchNodeSigner",
  "LedgerNotInferenceNode",
  "LedgerSampleRateTooLow",
  "LedgerUsageLengthMismatch",
  "LedgerUsageNotSorted",
  "LedgerUsageCountMismatch",
  "LedgerUsageHashMismatch",
];
/** Reverts of other functions, which anchorBatch cannot raise: not permanent (retried). */
const OTHERS = [
  "AccessControlBadConfirmation",
  "AccessControlUnauthorizedAccount",
  "ECDSAInvalidSignature",
  "ECDSAInvalidSignatureLength",
  "ECDSAInvalidSignatureS",
  "InvalidShortString",
  "LedgerBatchesNotConflicting",
  "LedgerCallbackGasTooHigh",
  "LedgerInactiveNode",
  "LedgerInsufficientCallbackGas",
  "LedgerInvalidAssignmentWindow",
  "LedgerInvalidMaxCallbackGas",
  "LedgerInvalidOffenceCooldown",
  "LedgerInvalidReceiptSigner",
  "LedgerInvalidSampleRate",
  "LedgerInvalidSlashBps",
  "LedgerInvalidTtl",
  "LedgerNotYetEligible",
  "LedgerNothingToSlash",
  "LedgerOffenceAlreadySlashed",
  "LedgerOffenceCooldown",
  "LedgerOffenceCovered",
  "LedgerOutputMismatch",
  "LedgerReceiptNotForRequest",
  "LedgerReceiptsNotConflicting",
  "LedgerRequestExpired",
  "LedgerRequestMismatch",
  "LedgerRequestNotExpired",
  "LedgerRequestNotPending",
  "LedgerUnaccountableEnclave",
  "LedgerUnknownModel",
  "LedgerVerdictNotContradicting",
  "LedgerZeroAddress",
  "ReentrancyGuardReentrantCall",
  "SafeERC20FailedOperation",
  "StringTooLong",
];

/** A value of `param`'s type (zero where it can be). */
function sample(param: ParamType): unknown {
  if (param.baseType === "array") return [];
  if (param.baseType === "tuple") return param.components!.map(sample);
  if (param.type === "address") return ZeroAddress;
  if (param.type === "bool") return false;
  if (param.type === "string") return "x";
  if (param.type === "bytes") return "0x01";
  if (param.type.startsWith("bytes")) return ZeroHash;
  return 7n; // uint*, int*, enums
}

const errors: ErrorFragment[] = [];
iface.forEachError((e) => errors.push(e));

/** The revert data of `fragment` with sample arguments. */
const revertData = (fragment: ErrorFragment): string =>
  iface.encodeErrorResult(fragment, fragment.inputs.map(sample));

describe("offchain/relayer/anchor-failure", () => {
  it("names every error InferenceLedger declares in exactly one table", () => {
    const named = [...TRANSIENT, ...PERMANENT, ...OTHERS];
    expect(new Set(named).size).to.equal(named.length);
    expect(errors.map((e) => e.name).sort()).to.deep.equal([...named].sort());
  });

  for (const fragment of errors) {
    const permanent = PERMANENT.includes(fragment.name);
    it(`${fragment.name} is ${permanent ? "permanent" : "transient"}, from the sender's reason and from a call's revert data`, () => {
      const data = revertData(fragment);
      const thrown = makeError("execution reverted", "CALL_EXCEPTION", {
        action: "call",
        data,
        reason: null,
        transaction: { to: ZeroAddress, data: "0x" },
        invocation: null,
        revert: null,
      });
      // What the sender reports for a failed intent (sender/fees.ts describeRevert).
      const reason = describeRevert(thrown, iface);
      expect(reason).to.match(new RegExp(`^${fragment.name}\\(`));
      for (const input of [reason, thrown]) {
        const failure = classifyAnchorFailure(input, iface);
        expect(failure).to.deep.equal({ name: fragment.name, message: reason, permanent });
      }
    });
  }

  it("takes what it cannot decode as transient and unknown: an RPC error, unknown revert data, no reason", () => {
    const unknownData = makeError("execution reverted", "CALL_EXCEPTION", {
      action: "call",
      data: "0xdeadbeef",
      reason: null,
      transaction: { to: ZeroAddress, data: "0x" },
      invocation: null,
      revert: null,
    });
    for (const input of [
      new Error("connect ECONNREFUSED 127.0.0.1:8545"),
      unknownData,
      "",
      "reverted without data",
      "out of gas",
      undefined,
    ]) {
      const failure = classifyAnchorFailure(input, iface);
      expect(failure.name, String(input)).to.equal("unknown");
      expect(failure.permanent).to.equal(false);
    }
    expect(classifyAnchorFailure(unknownData, iface).message).to.equal("0xdeadbeef");
  });
});
