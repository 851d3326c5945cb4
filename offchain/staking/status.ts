/**
 * Reads every node and enclave from the chain (ids from the registration events, state from the
 * views) and renders the tables printed by opg:stake:status and opg:tee:status.
 */
import Table from "cli-table3";

import type { NodeStaking, TeeRegistry } from "../../types/ethers-contracts/index.js";
import { formatOpg, roleName } from "./units.js";
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
    if (enclave.node === "0x0000000000000000000000000000000000000000") continue; // deregistered
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

const plain = { head: [] as string[], border: [] as string[] };

function short(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
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

/** A table of nodes: role, operator, stakes, unbonding entries and jail state. `now` in unix seconds. */
export function renderNodeTable(statuses: NodeStatus[], now: bigint): string {
  if (statuses.length === 0) return "no nodes registered";
  const table = new Table({
    head: [
      "node",
      "role",
      "operator",
      "signer",
      "active OPG",
      "unbonding OPG",
      "unbonding entries",
      "state",
    ],
    style: plain,
  });
  for (const s of statuses) {
    const entries =
      s.entries.length === 0
        ? "-"
        : s.entries
            .map(
              (e) =>
                `${formatOpg(e.amount)} ${e.releaseTime <= now ? "withdrawable" : `at ${time(e.releaseTime)}`}`,
            )
            .join("\n");
    const state =
      nodeState(s, now) +
      (s.pendingSlashes > 0n ? `\n${s.pendingSlashes} slash request(s) pending` : "");
    table.push([
      short(s.node),
      s.role,
      short(s.operator),
      short(s.signer),
      formatOpg(s.active),
      formatOpg(s.unbonding),
      entries,
      state,
    ]);
  }
  return table.toString();
}

/** A table of enclaves: node, measurement, expiry and whether the registry considers it active. */
export function renderEnclaveTable(statuses: EnclaveStatus[], now: bigint): string {
  if (statuses.length === 0) return "no enclaves registered";
  const table = new Table({
    head: ["enclave key", "node", "measurement", "expires", "state"],
    style: plain,
  });
  for (const s of statuses) {
    let state = "active";
    if (!s.measurementApproved) state = "measurement revoked";
    else if (s.expiresAt <= now) state = "expired (heartbeat to renew)";
    else if (!s.isActive) state = "node inactive";
    table.push([
      short(s.enclaveKey),
      short(s.node),
      `${s.measurement.slice(0, 10)}…`,
      time(s.expiresAt),
      state,
    ]);
  }
  return table.toString();
}
