/** Nodes view: every GPU (INFERENCE) and TEE (VERIFIER) node, the enclaves, and the slashes with their evidence. */
import {
  InferenceLedger__factory,
  NodeStaking__factory,
  TeeRegistry__factory,
} from "../../types/ethers-contracts/index.js";
import {
  collectEnclaveStatuses,
  collectNodeStatuses,
  nodeState,
} from "../../offchain/staking/nodes.js";
import { formatOpg } from "../../offchain/staking/units.js";

import type { ChainContext } from "./chain.js";
import { code, count, el, fill, isoTime, table } from "./dom.js";

const OFFENCES = ["DOUBLE_RECEIPT", "CONTRADICTED_RECEIPT", "BATCH_EQUIVOCATION"];
const ROLE_LABEL: Record<string, string> = {
  INFERENCE: "GPU (INFERENCE)",
  VERIFIER: "TEE (VERIFIER)",
};

export async function renderNodes(ctx: ChainContext): Promise<void> {
  const staking = NodeStaking__factory.connect(ctx.address("NodeStaking"), ctx.provider);
  const tee = TeeRegistry__factory.connect(ctx.address("TeeRegistry"), ctx.provider);
  const ledger = InferenceLedger__factory.connect(ctx.address("InferenceLedger"), ctx.provider);
  const [nodes, enclaves, slashes, offences] = await Promise.all([
    collectNodeStatuses(staking),
    collectEnclaveStatuses(tee),
    staking.queryFilter(staking.filters.Slashed(), 0),
    ledger.queryFilter(ledger.filters.OffenceSlashed(), 0),
  ]);

  // The evidence behind each slash: the ledger's offence event and the calldata of its transaction.
  const evidence = await Promise.all(
    slashes.map(async (s) => {
      const offence = offences.find((o) => o.transactionHash === s.transactionHash);
      const block = await s.getBlock();
      if (offence === undefined) {
        return {
          block,
          what: "governance slash (NodeStaking.requestSlash, executed after the veto window)",
          detail: [] as string[],
        };
      }
      const tx = await ctx.provider.getTransaction(s.transactionHash);
      const call = tx === null ? null : ledger.interface.parseTransaction({ data: tx.data });
      const detail: string[] = [];
      if (call?.name === "reportContradictedReceipt") {
        const receipt = call.args.getValue("receipt") as { requestId: string; outputHash: string };
        detail.push(
          `receipt for request ${receipt.requestId} signed by the node with output hash ${receipt.outputHash}`,
          `an active enclave re-executed it and signed output hash ${call.args.getValue("verdictOutputHash") as string}`,
        );
      } else if (call?.name === "reportDoubleReceipt") {
        const a = call.args.getValue("a") as { requestId: string; outputHash: string };
        const b = call.args.getValue("b") as { outputHash: string };
        detail.push(
          `two receipts for request ${a.requestId}: output ${a.outputHash} and ${b.outputHash}`,
        );
      } else if (call?.name === "reportBatchEquivocation") {
        const a = call.args.getValue("a") as { sequence: bigint; root: string };
        const b = call.args.getValue("b") as { root: string };
        detail.push(`two batches with sequence ${a.sequence}: roots ${a.root} and ${b.root}`);
      }
      return {
        block,
        what: `${OFFENCES[Number(offence.args.offence)] ?? `offence ${offence.args.offence}`} (InferenceLedger.${call?.name ?? "?"})`,
        detail,
      };
    }),
  );

  const enclaveOf = new Map(enclaves.map((e) => [e.node.toLowerCase(), e]));
  fill(
    "nodes",
    table(
      `${count(nodes.length, "registered node", "registered nodes")} (chain time ${isoTime(ctx.now)})`,
      [
        "Node",
        "Role",
        "Operator",
        "Active stake (OPG)",
        "Unbonding (OPG)",
        "State",
        "Last heartbeat",
        "Enclave measurement",
      ],
      nodes.map((n) => {
        const e = enclaveOf.get(n.node.toLowerCase());
        return [
          code(n.node),
          ROLE_LABEL[n.role] ?? n.role,
          code(n.operator),
          formatOpg(n.active),
          n.entries.length === 0
            ? formatOpg(n.unbonding)
            : `${formatOpg(n.unbonding)} (${n.entries.map((x) => `${formatOpg(x.amount)} from ${isoTime(x.releaseTime)}`).join("; ")})`,
          nodeState(n, ctx.now),
          n.lastHeartbeat === 0n ? "never" : isoTime(n.lastHeartbeat),
          e === undefined
            ? "—"
            : el(
                "span",
                {},
                code(e.measurement),
                e.measurementApproved ? " (approved)" : " (NOT approved)",
              ),
        ];
      }),
      { "data-testid": "node-table" },
    ),
    table(
      count(enclaves.length, "registered enclave", "registered enclaves"),
      ["Enclave key", "TEE node", "Measurement", "Approved", "Attestation expires", "Active"],
      enclaves.map((e) => [
        code(e.enclaveKey),
        code(e.node),
        code(e.measurement),
        e.measurementApproved ? "yes" : "no",
        isoTime(e.expiresAt),
        e.isActive ? "yes" : "no",
      ]),
      { "data-testid": "enclave-table" },
    ),
    table(
      `${count(slashes.length, "slash", "slashes")}, with the evidence that caused each`,
      [
        "Transaction",
        "Time",
        "Node",
        "Slashed (OPG)",
        "Reporter / bounty (OPG)",
        "Jailed",
        "Evidence",
      ],
      slashes.map((s, i) => {
        const ev = evidence[i]!;
        return [
          code(s.transactionHash),
          ev.block === null ? `block ${s.blockNumber}` : isoTime(ev.block.timestamp),
          code(s.args.node),
          formatOpg(s.args.fromActive + s.args.fromUnbonding),
          el("span", {}, code(s.args.reporter), ` / ${formatOpg(s.args.bounty)}`),
          s.args.jailed ? "yes" : "no",
          el(
            "div",
            {},
            el("p", {}, ev.what),
            el("p", {}, "evidence hash ", code(s.args.evidenceHash)),
            ...ev.detail.map((d) => el("p", {}, d)),
          ),
        ];
      }),
      { "data-testid": "slash-table" },
    ),
  );
}
