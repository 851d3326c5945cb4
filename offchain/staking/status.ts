/**
 * Renders the tables printed by opg:stake:status and opg:tee:status from what nodes.ts reads.
 */
import Table from "cli-table3";

import type { EnclaveStatus, NodeStatus } from "./nodes.js";
import { nodeState } from "./nodes.js";
import { formatOpg } from "./units.js";

export type { EnclaveStatus, EntryStatus, NodeStatus } from "./nodes.js";
export { collectEnclaveStatuses, collectNodeStatuses, nodeState } from "./nodes.js";

const plain = { head: [] as string[], border: [] as string[] };

function short(address: string): string {
  return `${address.slice(0, 6)}…${address.slice(-4)}`;
}

function time(seconds: bigint): string {
  return new Date(Number(seconds) * 1000).toISOString().replace(".000Z", "Z");
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
