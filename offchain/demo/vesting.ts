/**
 * The vesting part of `npm run demo`: print the calendar read from the chain, travel to the 8.08M
 * tranche, release it to the second, and (at the end of the demo) audit the chain against the plan.
 */
import Table from "cli-table3";
import type { Signer } from "ethers";

import type { OPGToken, VestingVault } from "../../types/ethers-contracts/index.js";
import { buildCalendar, calendarTable } from "../vesting/calendar.js";
import { readVault } from "../vesting/chain.js";
import { auditVault, formatAudit } from "../vesting/audit.js";
import type { Plan } from "../vesting/plan.js";
import { formatOpg, formatTime, parseTime } from "../vesting/plan.js";
import { releaseSchedules } from "../vesting/release.js";

import type { Narrator } from "./narrator.js";

export interface ChainControl {
  /** Seconds of the latest block. */
  now(): Promise<bigint>;
  /** Mines the next block at exactly `t`. */
  mineAt(t: bigint): Promise<void>;
  /** The next transaction will be mined at exactly `t`. */
  nextBlockAt(t: bigint): Promise<void>;
}

export const DEMO_TRANCHE = {
  schedule: "ecosystem-unlocks",
  at: "2027-06-21T00:00:00Z",
  amount: "8080000",
};

export async function runVestingDemo(
  deployment: { vault: VestingVault; token: OPGToken; plan: Plan },
  deployer: Signer,
  releaser: Signer,
  chain: ChainControl,
  n: Narrator,
): Promise<void> {
  const { vault, token, plan } = deployment;

  n.section("The unlock calendar, read from the chain (next 12 months from TGE)");
  const state = await readVault(vault);
  const names = new Map(plan.schedules.map((s) => [s.id, s.name]));
  const tge = parseTime("2027-01-21T00:00:00Z");
  const rows = buildCalendar(state.schedules, {
    from: tge - 1n,
    to: tge + 365n * 86_400n,
    period: "month",
    names,
  });
  const table = new Table({
    head: ["date (UTC)", "schedule", "category", "unlock", "amount (OPG)", "total vested (OPG)"],
    colAligns: ["left", "left", "left", "left", "right", "right"],
    style: { head: [], border: [] },
    chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
  });
  table.push(...calendarTable(rows));
  n.block(table.toString());

  n.section(
    `Time passes: the ${formatOpg(BigInt(DEMO_TRANCHE.amount) * 10n ** 18n)} OPG tranche of ${DEMO_TRANCHE.at}`,
  );
  const id = plan.schedules.find((s) => s.name === DEMO_TRANCHE.schedule)!.id;
  const at = parseTime(DEMO_TRANCHE.at);
  const now = await chain.now();
  const beneficiary = state.schedules[id]!.beneficiary;
  const vaultAs = vault.connect(releaser);
  if (now < at - 2n) {
    n.say(`chain time ${formatTime(now)}; travelling to ${formatTime(at - 2n)}`);
    await chain.mineAt(at - 2n);
    await chain.nextBlockAt(at - 1n);
    const early = await releaseSchedules(vaultAs, [id]);
    for (const r of early.released) {
      n.say(
        `${formatTime(at - 1n)}: released the earlier tranches, ${formatOpg(r.amount)} OPG -> ${r.beneficiary}`,
      );
    }
    n.say(
      `one second before the tranche, releasable: ${formatOpg(await vault.releasableAt(id, at - 1n))} OPG`,
    );
    n.say(
      `at ${DEMO_TRANCHE.at} exactly, releasable: ${formatOpg(await vault.releasableAt(id, at))} OPG`,
    );
    await chain.nextBlockAt(at);
  } else {
    n.say(`chain time ${formatTime(now)} is already past the tranche; releasing what is due`);
  }
  const before = await token.balanceOf(beneficiary);
  const result = await releaseSchedules(vaultAs, [id]);
  const block = await deployer.provider!.getBlock("latest");
  for (const r of result.released) {
    n.say(
      `${formatTime(BigInt(block!.timestamp))}: released by ${await releaser.getAddress()} (anyone may): ` +
        `${formatOpg(r.amount)} OPG -> ${r.beneficiary} (schedule #${r.id}, tx ${result.txHash})`,
    );
  }
  const after = await token.balanceOf(beneficiary);
  n.say(`beneficiary balance ${formatOpg(before)} -> ${formatOpg(after)} OPG`);
  if (now < at - 2n && after - before !== BigInt(DEMO_TRANCHE.amount) * 10n ** 18n) {
    throw new Error(
      `expected exactly ${DEMO_TRANCHE.amount} OPG at the tranche, got ${formatOpg(after - before)}`,
    );
  }
}

/** The audit, as an auditor runs it: the chain against the published plan. */
export async function runVestingAudit(
  deployment: { vault: VestingVault; token: OPGToken; plan: Plan },
  n: Narrator,
): Promise<void> {
  n.section("Audit: the vesting vault against the published plan");
  const report = await auditVault(deployment.vault, deployment.token, deployment.plan);
  n.block(formatAudit(report));
  if (!report.ok) throw new Error("the demo's audit failed");
}
