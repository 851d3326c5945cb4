/**
 * ethers' getAddress, remembered: the relayer and the enclave check the same few addresses (the
 * node, the enclave) on every receipt, and ethers hashes the checksum in JavaScript each time.
 */
import { getAddress } from "ethers";

const known = new Map<string, string | null>();

function lookup(address: string): string | null {
  let checksummed = known.get(address);
  if (checksummed === undefined) {
    try {
      checksummed = getAddress(address);
    } catch {
      checksummed = null;
    }
    if (known.size >= 4096) known.clear();
    known.set(address, checksummed);
  }
  return checksummed;
}

/** The EIP-55 form of `address`; throws as getAddress does for an invalid one. */
export function checksumAddress(address: string): string {
  return lookup(address) ?? getAddress(address);
}

/** Whether `address` is valid (any case; mixed case must carry a valid checksum), as isAddress. */
export function isValidAddress(address: string): boolean {
  return lookup(address) !== null;
}
