/**
 * Input validation for the staking and TEE tasks: every parser throws an InputError that names the
 * bad value and says what to do.
 */
import { formatUnits, getAddress, isAddress, isHexString, keccak256, parseUnits } from "ethers";

import { InputError } from "../common/errors.js";

/** Chains where the development verifier may be deployed (Hardhat, Ganache/Anvil-style). */
export const LOCAL_CHAIN_IDS: readonly bigint[] = [31337n, 1337n];

/** INodeStakingCore.Role, as numbers on chain. */
export const Role = { NONE: 0, INFERENCE: 1, VERIFIER: 2 } as const;
export type RoleName = keyof typeof Role;

export function parseRole(value: string): 1 | 2 {
  const key = value.trim().toUpperCase();
  if (key === "INFERENCE" || key === "GPU") return Role.INFERENCE;
  if (key === "VERIFIER" || key === "TEE") return Role.VERIFIER;
  throw new InputError(`unknown node role "${value}"`, {
    details: { role: value },
    hint: "use --role inference (GPU node) or --role verifier (TEE node)",
  });
}

export function roleName(role: bigint | number): RoleName {
  const n = Number(role);
  if (n === 1) return "INFERENCE";
  if (n === 2) return "VERIFIER";
  return "NONE";
}

/** A checksummed address; `what` names the argument in the error. */
export function parseAddress(value: string, what: string): string {
  if (!isAddress(value)) {
    throw new InputError(`${what} is not an address`, {
      details: { [what]: value },
      hint: `pass ${what} as a 0x-prefixed 20-byte hex address`,
    });
  }
  const address = getAddress(value);
  if (address === "0x0000000000000000000000000000000000000000") {
    throw new InputError(`${what} is the zero address`, { details: { [what]: value } });
  }
  return address;
}

/** An OPG amount written in whole tokens ("25000", "0.5") -> wei. Must be positive. */
export function parseOpg(value: string, what = "amount"): bigint {
  let wei: bigint;
  try {
    wei = parseUnits(value.trim(), 18);
  } catch (cause) {
    throw new InputError(`${what} is not an OPG amount`, {
      details: { [what]: value },
      cause,
      hint: `write ${what} in OPG with up to 18 decimals, e.g. 25000 or 0.5`,
    });
  }
  if (wei <= 0n) {
    throw new InputError(`${what} must be positive`, { details: { [what]: value } });
  }
  return wei;
}

/** wei -> "25,000.5 OPG"-style decimal string (no grouping: exact and copy-pastable). */
export function formatOpg(wei: bigint): string {
  const s = formatUnits(wei, 18);
  return s.endsWith(".0") ? s.slice(0, -2) : s;
}

/** A 32-byte hex value (a measurement or a hash). */
export function parseBytes32(value: string, what: string): string {
  if (!isHexString(value, 32)) {
    throw new InputError(`${what} is not a 32-byte hex value`, {
      details: { [what]: value },
      hint: `pass ${what} as 0x followed by 64 hex digits`,
    });
  }
  return value.toLowerCase();
}

/** keccak256(PCR0 ‖ PCR1 ‖ PCR2) of an AWS Nitro image, as TeeRegistry.measurementOf computes it. */
export function measurementFromPcrs(pcrs: readonly string[]): string {
  if (pcrs.length !== 3) {
    throw new InputError("a measurement needs exactly three PCRs (PCR0, PCR1, PCR2)", {
      details: { count: pcrs.length },
    });
  }
  const bytes = pcrs.map((pcr, i) => {
    const hex = pcr.startsWith("0x") ? pcr : `0x${pcr}`;
    if (!isHexString(hex, 48)) {
      throw new InputError(`PCR${i} is not 48 bytes of hex (SHA-384)`, {
        details: { [`pcr${i}`]: pcr },
        hint: "copy the PCRs from `nitro-cli describe-enclaves` or the attestation document",
      });
    }
    return hex.slice(2);
  });
  return keccak256(`0x${bytes.join("")}`);
}
