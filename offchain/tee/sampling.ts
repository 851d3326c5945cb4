/**
 * Unpredictable sampling of receipts for re-execution. A receipt is selected iff
 *
 *   uint256(keccak256(enclaveSecret || receiptDigest)) < floor(rate * 2^53) * 2^203
 *
 * (rate * 2^256 with the rate rounded to 53 bits). enclaveSecret is 32 random bytes that never
 * leave the enclave, and receiptDigest only exists once the GPU node has signed, so the node
 * cannot know in advance which receipts will be checked.
 */
import { keccak256 } from "../../native/index.js";
import { InputError } from "../common/errors.js";

const TWO_53 = 2 ** 53;

/** floor(rate * 2^53) * 2^203: the selection threshold for a rate in [0, 1]. */
export function sampleThreshold(rate: number): bigint {
  if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) {
    throw new InputError(`sample rate must be a number in [0, 1], got ${String(rate)}`, {
      details: { rate },
    });
  }
  return BigInt(Math.floor(rate * TWO_53)) << 203n;
}

export function isSelected(
  enclaveSecret: Uint8Array,
  receiptDigest: string,
  rate: number,
): boolean {
  if (enclaveSecret.length !== 32) {
    throw new InputError(`enclave secret must be 32 bytes, got ${enclaveSecret.length}`, {
      details: { length: enclaveSecret.length },
    });
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(receiptDigest)) {
    throw new InputError("receipt digest must be 0x + 64 hex digits", {
      details: { receiptDigest },
    });
  }
  const hash = keccak256(
    Buffer.concat([enclaveSecret, Buffer.from(receiptDigest.slice(2), "hex")]),
  );
  return BigInt(`0x${Buffer.from(hash).toString("hex")}`) < sampleThreshold(rate);
}
