import Table from "cli-table3";
import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { stringifyJson } from "../../offchain/common/json.js";
import { InputError } from "../../offchain/common/errors.js";
import { addressOf } from "../../offchain/chain/deployment.js";
import type { Period } from "../../offchain/vesting/calendar.js";
import {
  buildCalendar,
  calendarCsv,
  calendarJson,
  calendarTable,
} from "../../offchain/vesting/calendar.js";
import { readVault } from "../../offchain/vesting/chain.js";
import { loadPlan, parseTime } from "../../offchain/vesting/plan.js";
import { VestingVault__factory } from "../../types/ethers-contracts/index.js";
import { connect, recordedPlanPath, runTask } from "../lib.js";

export default async function calendar(
  args: { from: string; to: string; period: string; plan: string; csv: boolean; json: boolean },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    if (!["month", "week", "day"].includes(args.period)) {
      throw new InputError(`--period must be month, week or day, not "${args.period}"`);
    }
    const { ethers, dir } = await connect(hre);
    const vault = VestingVault__factory.connect(
      await addressOf(dir, "VestingVault"),
      ethers.provider,
    );
    const state = await readVault(vault);
    const chainNow = BigInt((await ethers.provider.getBlock("latest"))!.timestamp);
    const from = args.from === "" ? chainNow : parseTime(args.from);
    const lastUnlock = state.schedules.reduce((m, s) => (s.end > m ? s.end : m), 0n);
    const to = args.to === "" ? lastUnlock : parseTime(args.to);
    const names = new Map<number, string>();
    try {
      const plan = await loadPlan(await recordedPlanPath(hre, dir, args.plan));
      for (const s of plan.schedules) names.set(s.id, s.name);
    } catch (error) {
      if (args.plan !== "") throw error; // names are optional unless a plan was asked for
    }
    const rows = buildCalendar(state.schedules, { from, to, period: args.period as Period, names });
    if (args.json) console.log(stringifyJson(calendarJson(rows)));
    else if (args.csv) process.stdout.write(calendarCsv(rows));
    else {
      const table = new Table({
        head: [
          "date (UTC)",
          "schedule",
          "category",
          "unlock",
          "amount (OPG)",
          "total vested (OPG)",
        ],
        colAligns: ["left", "left", "left", "left", "right", "right"],
        style: { head: [], border: [] },
        chars: { mid: "", "left-mid": "", "mid-mid": "", "right-mid": "" },
      });
      table.push(...calendarTable(rows));
      console.log(`Unlock calendar of VestingVault ${state.address}, read from the chain`);
      console.log(table.toString());
    }
  });
}
