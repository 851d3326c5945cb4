/**
 * The ABIs governance tools need to read and describe the protocol's contracts, by the names the
 * deployment record uses (deployments/<network>/addresses.json).
 */
import { Interface, getAddress } from "ethers";

import {
  ContributorRewards__factory,
  DevAttestationVerifier__factory,
  InferenceLedger__factory,
  ModelRegistry__factory,
  NodeStaking__factory,
  OPGGovernor__factory,
  OPGTimelock__factory,
  OPGToken__factory,
  QuorumAttestationVerifier__factory,
  TeeRegistry__factory,
  VestingVault__factory,
} from "../../types/ethers-contracts/index.js";

const ABIS = {
  OPGToken: OPGToken__factory.abi,
  VestingVault: VestingVault__factory.abi,
  NodeStaking: NodeStaking__factory.abi,
  DevAttestationVerifier: DevAttestationVerifier__factory.abi,
  QuorumAttestationVerifier: QuorumAttestationVerifier__factory.abi,
  TeeRegistry: TeeRegistry__factory.abi,
  ModelRegistry: ModelRegistry__factory.abi,
  InferenceLedger: InferenceLedger__factory.abi,
  ContributorRewards: ContributorRewards__factory.abi,
  OPGTimelock: OPGTimelock__factory.abi,
  OPGGovernor: OPGGovernor__factory.abi,
} as const;

export type ContractName = keyof typeof ABIS;

/** The interface of a contract of the record, or undefined for a name this tool does not know. */
export function interfaceOf(name: string): Interface | undefined {
  return name in ABIS ? new Interface(ABIS[name as ContractName]) : undefined;
}

/** The record's name of `address`, if it is one of its contracts. */
export function nameOf(addresses: Record<string, string>, address: string): string | undefined {
  const wanted = getAddress(address);
  return Object.entries(addresses).find(([, a]) => getAddress(a) === wanted)?.[0];
}

/**
 * A call as a reader wants to see it: `TeeRegistry.approveMeasurement(0x12…, "dev")`, decoded with the
 * target's ABI when the target is a contract of the record, else the raw selector and length.
 */
export function describeCall(
  addresses: Record<string, string>,
  target: string,
  data: string,
  value = 0n,
): string {
  const name = nameOf(addresses, target);
  const iface = name === undefined ? undefined : interfaceOf(name);
  const paid = value === 0n ? "" : ` {value: ${value}}`;
  const parsed = iface?.parseTransaction({ data });
  if (name !== undefined && parsed !== null && parsed !== undefined) {
    const args = parsed.args.map((a: unknown) => formatArg(a)).join(", ");
    return `${name}.${parsed.name}(${args})${paid}`;
  }
  const bytes = (data.length - 2) / 2;
  return `${name ?? getAddress(target)} ${data.slice(0, 10)}… (${bytes} bytes)${paid}`;
}

function formatArg(a: unknown): string {
  if (typeof a === "string") return /^0x/.test(a) ? a : JSON.stringify(a);
  if (typeof a === "bigint" || typeof a === "number" || typeof a === "boolean") return String(a);
  if (Array.isArray(a)) return `[${a.map(formatArg).join(", ")}]`;
  return String(a);
}
