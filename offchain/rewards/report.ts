/** Human-readable summaries printed by the CLI, the Hardhat tasks and the demo. */
import { formatUnits } from "ethers";

import { formatChecks as formatCheckLines, type Check } from "../chain/verify.js";

import type { RewardsResult } from "./compute.js";

/** Token wei as OPG with up to 6 decimals (the exact wei are in the table files). */
export function opg(wei: bigint): string {
  const [whole, frac = ""] = formatUnits(wei, 18).split(".");
  const trimmed = frac.slice(0, 6).replace(/0+$/, "");
  return `${BigInt(whole!).toLocaleString("en-US")}${trimmed === "" ? "" : `.${trimmed}`}`;
}

export function summarise(result: RewardsResult): string[] {
  const t = result.table;
  const iso = (s: bigint) => new Date(Number(s) * 1000).toISOString();
  return [
    `epoch ${t.epoch}: ${iso(t.startTime)} .. ${iso(t.endTime)} (blocks ${t.firstBlock}..${t.lastBlock})`,
    `  usage: ${t.totalUsage} receipts over ${t.models.length} model(s)`,
    `  pool: ${opg(t.pool)} OPG (emission ${opg(t.emission)} + carried dust ${t.carriedIn} wei)`,
    `  paid: ${opg(t.paid)} OPG; dust carried to epoch ${t.epoch + 1n}: ${t.dust} wei`,
    `  accounts: ${t.accounts.length}, total cumulative ${opg(t.totalCumulative)} OPG (${t.totalCumulative} wei)`,
    `  root: ${result.root}`,
    `  dataHash: ${result.dataHash}`,
  ];
}

export function formatChecks(checks: readonly Check[]): string[] {
  return formatCheckLines(checks).split("\n");
}
