/**
 * Reads every node and enclave from the chain (ids from the registration events, state from the
 * views). Browser-safe (the explorer runs it); the terminal tables are in status.ts.
 */
import type { NodeStaking, TeeRegistry } from "../../types/ethers-contracts/index.js";
import { roleName } from "./units.js";
import type { RoleName } from "./units.js";

export interface EntryStatus {
  amount: bigint;
  releaseTime: bigint;
}

export interface NodeStatus {
  node: string;
  operator: string;
  signer: string;
  role: RoleName;
  metadataURI: string;
  active: bigint;
  unbonding: bigint;
  entries: EntryStatus[];
  jailed: boolean;
  jailedUntil: bigint;
  exited: boolean;
  isActive: boolean;
  lastHeartbeat: bigint;
  heartbeatDeadline: bigint;
  pendingSlashes: bigint;
}

export interface EnclaveStatus {
  enclaveKey: string;
  node: string;
  measurement: string;
  measurementApproved: boolean;
  expiresAt: bigint;
  isActive: boolean;
}

/** Every registered node (in registration order), or only `only` when given. */
export async function collectNodeStatuses(
  staking: NodeStaking,
  only?: string,
): Promise<NodeStatus[]> {
  const registered = await staking.queryFilter(staking.filters.NodeRegistered(), 0);
  const metadata = new Map<string, string>();
  for (const e of registered) metadata.set(e.args.node, e.args.metadataURI);
  for (const e of await staking.queryFilter(staking.filters.MetadataUpdated(), 0)) {
    metadata.set(e.args.node, e.args.metadataURI);
  }
  const ids = registered
    .map((e) => e.args.node)
    .filter((id) => only === undefined || id.toLowerCase() === only.toLowerCase());
  return Promise.all(
    ids.map(async (node): Promise<NodeStatus> => {
      const [info, entries, isActive, deadline] = await Promise.all([
        staking.getNode(node),
        staking.unbondingEntries(node),
        staking.isActive(node),
        staking.heartbeatDeadline(node),
      ]);
      return {
        node,
        operator: info.operator,
        signer: info.signer,
        role: roleName(info.role),
        metadataURI: metadata.get(node) ?? "",
        active: info.active,
        unbonding: info.unbonding,
        entries: entries.map((e) => ({ amount: e.amount, releaseTime: e.releaseTime })),
        jailed: info.jailed,
        jailedUntil: info.jailedUntil,
        exited: info.exited,
        isActive,
        lastHeartbeat: info.lastHeartbeat,
        heartbeatDeadline: deadline,
        pendingSlashes: info.pendingSlashes,
      };
    }),
  );
}

/** Every enclave key registered and not deregistered since. */
export async function collectEnclaveStatuses(tee: TeeRegistry): Promise<EnclaveStatus[]> {
  const keys = new Set<string>();
  for (const e of await tee.queryFilter(tee.filters.EnclaveRegistered(), 0))
    keys.add(e.args.enclaveKey);
  const statuses: EnclaveStatus[] = [];
  for (const enclaveKey of keys) {
    const [enclave, isActive] = await Promise.all([
      tee.getEnclave(enclaveKey),
      tee.isActiveEnclave(enclaveKey),
    ]);
    if (enclave.deregisteredAt !== 0n) continue; // retired: the binding stays for evidence, the key serves no more
    statuses.push({
      enclaveKey,
      node: enclave.node,
      measurement: enclave.measurement,
      measurementApproved: await tee.isMeasurementApproved(enclave.measurement),
      expiresAt: enclave.expiresAt,
      isActive,
    });
  }
  return statuses;
}

function time(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
}

/** The state of a node in one word: exited, jailed, active or inactive (below the minimum). */
export function nodeState(s: NodeStatus, now: bigint): string {
  if (s.exited) return "exited";
  if (s.jailed)
    return s.jailedUntil > now ? `jailed until ${time(s.jailedUntil)}` : "jailed (can unjail)";
  if (!s.isActive) return "inactive (below minimum)";
  return now > s.heartbeatDeadline ? "active (heartbeat missed)" : "active";
}
