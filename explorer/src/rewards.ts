/**
 * Rewards view: every proposed root (pending, accepted, revoked), the recomputation verdict of each
 * epoch with a root (recomputed here, in the browser, from the chain with offchain/rewards' own code),
 * and a contributor's claimable amount (recomputed cumulative minus what the contract has paid).
 */
import { StandardMerkleTree } from "@openzeppelin/merkle-tree";
import { ZeroHash, getAddress, isAddress } from "ethers";

import { ContributorRewards__factory } from "../../types/ethers-contracts/index.js";
import { readEpochInputs } from "../../offchain/rewards/chain.js";
import type { RewardsSource } from "../../offchain/rewards/chain.js";
import { computeTables, tableDataHash } from "../../offchain/rewards/distribute.js";
import type { EpochTable, TableContext } from "../../offchain/rewards/distribute.js";
import { epochAt, parseEpochConfig } from "../../offchain/rewards/epochs.js";
import { formatOpg } from "../../offchain/staking/units.js";

import type { ChainContext } from "./chain.js";
import { code, el, fill, isoTime, table, verdict } from "./dom.js";

interface RootRow {
  epoch: bigint;
  root: string;
  totalCumulative: bigint;
  dataHash: string;
  uri: string;
  proposedAt: bigint;
  status: "pending" | "accepted" | "revoked" | "superseded";
}

interface Recomputed {
  table: EpochTable;
  root: string;
  dataHash: string;
}

function rootOf(t: EpochTable): string {
  if (t.accounts.length === 0) return ZeroHash;
  return StandardMerkleTree.of(
    t.accounts.map((a) => [a.account, a.cumulative]),
    ["address", "uint256"],
  ).root;
}

export async function renderRewards(ctx: ChainContext): Promise<void> {
  const rewards = ContributorRewards__factory.connect(
    ctx.address("ContributorRewards"),
    ctx.provider,
  );
  const config = parseEpochConfig(ctx.view.rewards, "deployments/<network>/rewards.json");
  const [proposed, accepted, revoked, pending, current, claimedTotal] = await Promise.all([
    rewards.queryFilter(rewards.filters.RootProposed(), config.fromBlock),
    rewards.queryFilter(rewards.filters.RootAccepted(), config.fromBlock),
    rewards.queryFilter(rewards.filters.RootRevoked(), config.fromBlock),
    rewards.pendingRoot(),
    rewards.currentRoot(),
    rewards.totalClaimed(),
  ]);
  const rows: RootRow[] = await Promise.all(
    proposed.map(async (p) => {
      const { epoch, root } = p.args;
      const same = (e: { args: { epoch: bigint; root: string }; blockNumber: number }) =>
        e.args.epoch === epoch && e.args.root === root && e.blockNumber >= p.blockNumber;
      let status: RootRow["status"] = "superseded";
      if (revoked.some(same)) status = "revoked";
      else if (current.epoch === epoch && current.root === root) status = "accepted";
      else if (pending.epoch === epoch && pending.root === root) status = "pending";
      else if (accepted.some(same)) status = "superseded";
      return {
        epoch,
        root,
        totalCumulative: p.args.totalCumulative,
        dataHash: p.args.dataHash,
        uri: p.args.uri,
        proposedAt: BigInt((await p.getBlock()).timestamp),
        status,
      };
    }),
  );

  // Recompute every epoch up to the latest one with a live root, once.
  const live = rows.filter((r) => r.status === "pending" || r.status === "accepted");
  const upTo = live.reduce((m, r) => (r.epoch > m ? r.epoch : m), 0n);
  const recomputed = new Map<bigint, Recomputed>();
  if (upTo > 0n) {
    const source: RewardsSource = {
      provider: ctx.provider,
      rewards: ctx.address("ContributorRewards"),
      ledger: ctx.address("InferenceLedger"),
      registry: ctx.address("ModelRegistry"),
      config,
    };
    const { inputs, chainId } = await readEpochInputs(source, upTo);
    const context: TableContext = {
      chainId,
      rewards: getAddress(source.rewards),
      ledger: getAddress(source.ledger),
      registry: getAddress(source.registry),
      genesisTime: config.genesisTime,
      epochLength: config.epochLength,
    };
    for (const t of computeTables(inputs)) {
      recomputed.set(t.epoch, { table: t, root: rootOf(t), dataHash: tableDataHash(context, t) });
    }
  }
  const verdictOf = (r: RootRow): { ok: boolean; text: string } | null => {
    const mine = recomputed.get(r.epoch);
    if (mine === undefined) return null;
    const ok =
      mine.root.toLowerCase() === r.root.toLowerCase() &&
      mine.dataHash.toLowerCase() === r.dataHash.toLowerCase() &&
      mine.table.accounts.reduce((s, a) => s + a.cumulative, 0n) === r.totalCumulative;
    return {
      ok,
      text: ok
        ? "recomputed from the chain: same root, data hash and total"
        : `recomputed root ${mine.root}, data hash ${mine.dataHash}: they differ`,
    };
  };
  const liveVerdicts = live.map((r) => verdictOf(r)).filter((v) => v !== null);
  const nowEpoch = ctx.now < config.genesisTime ? 0n : epochAt(config, ctx.now);

  fill(
    "rewards",
    liveVerdicts.length === 0
      ? el("p", {}, "No pending or accepted rewards root yet: nothing to recompute.")
      : verdict(
          liveVerdicts.every((v) => v.ok),
          liveVerdicts.every((v) => v.ok)
            ? `Recomputation: every live root (${live.map((r) => `epoch ${r.epoch} ${r.status}`).join(", ")}) matches the rewards recomputed in this browser from the chain's anchored usage.`
            : "Recomputation: a live root does NOT match the rewards recomputed from the chain.",
        ),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "Epochs"),
      el(
        "dd",
        {},
        `${config.epochLength / 86_400n} days each from ${isoTime(config.genesisTime)}; the chain is in epoch ${nowEpoch}`,
      ),
      el("dt", {}, "Paid to contributors"),
      el("dd", {}, `${formatOpg(claimedTotal)} OPG`),
    ),
    table(
      "Rewards roots",
      [
        "Epoch",
        "Status",
        "Root",
        "Total cumulative (OPG)",
        "Data hash",
        "Proposed",
        "Recomputation",
      ],
      rows.map((r) => {
        const v = verdictOf(r);
        return [
          String(r.epoch),
          r.status,
          code(r.root),
          formatOpg(r.totalCumulative),
          code(r.dataHash),
          isoTime(r.proposedAt),
          v === null
            ? "not recomputed (not live)"
            : el("span", { class: v.ok ? "pass" : "fail" }, v.ok ? "✔ " : "✘ ", v.text),
        ];
      }),
      { "data-testid": "roots-table" },
    ),
    table(
      "Recomputed epochs",
      ["Epoch", "Window (UTC)", "Pool (OPG)", "Usage (receipts)", "Paid (OPG)", "Accounts"],
      [...recomputed.values()].map(({ table: t }) => [
        String(t.epoch),
        `${isoTime(t.startTime)} – ${isoTime(t.endTime)}`,
        formatOpg(t.pool),
        String(t.totalUsage),
        formatOpg(t.paid),
        String(t.accounts.length),
      ]),
    ),
  );

  const form = document.getElementById("claim-form") as HTMLFormElement;
  const input = document.getElementById("claim-address") as HTMLInputElement;
  const out = document.getElementById("claim-result")!;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!isAddress(text)) {
      out.replaceChildren(
        el(
          "p",
          { class: "fail", role: "alert" },
          `${JSON.stringify(input.value.trim())} is not an address`,
        ),
      );
      return;
    }
    const account = getAddress(text);
    void rewards.claimed(account).then(
      (claimed) => {
        const liveRoot = current.root === ZeroHash ? undefined : recomputed.get(current.epoch);
        const row = liveRoot?.table.accounts.find((a) => a.account === account);
        const cumulative = row?.cumulative ?? 0n;
        out.replaceChildren(
          table(
            `Rewards of ${account}`,
            ["Figure", "OPG"],
            [
              [`Earned up to the accepted root (epoch ${current.epoch})`, formatOpg(cumulative)],
              ["Already claimed (ContributorRewards.claimed)", formatOpg(claimed)],
              ["Claimable now", formatOpg(cumulative > claimed ? cumulative - claimed : 0n)],
            ],
            { "data-testid": "claim-table" },
          ),
        );
      },
      (error: unknown) =>
        out.replaceChildren(el("p", { class: "fail", role: "alert" }, String(error))),
    );
  });
}
