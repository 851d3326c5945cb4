import { task } from "hardhat/config";
import { afterBuild } from "./lib.js";

export const vestingTasks = [
  task(
    "opg:vesting:calendar",
    "Upcoming unlocks by date, per schedule and in total, read from the chain",
  )
    .addOption({
      name: "from",
      description: "Start (ISO-8601 UTC; default: the chain's time)",
      defaultValue: "",
    })
    .addOption({
      name: "to",
      description: "End (ISO-8601 UTC; default: the last unlock)",
      defaultValue: "",
    })
    .addOption({
      name: "period",
      description: "Linear vesting summed per month|week|day",
      defaultValue: "month",
    })
    .addOption({ name: "plan", description: "Plan file for schedule names", defaultValue: "" })
    .addFlag({ name: "csv", description: "Print CSV" })
    .addFlag({ name: "json", description: "Print JSON" })
    .setAction(afterBuild(() => import("./actions/vesting-calendar.js")))
    .build(),
  task(
    "opg:vesting:audit",
    "Compare every schedule and the plan hash on chain with the published plan",
  )
    .addOption({
      name: "plan",
      description:
        "Plan file (default: the one the deployment record names, else deployments/<network>/vesting-plan.json)",
      defaultValue: "",
    })
    .addFlag({ name: "json", description: "Print JSON" })
    .setAction(afterBuild(() => import("./actions/vesting-audit.js")))
    .build(),
  task("opg:vesting:release", "Release one, several or all releasable schedules (anyone may call)")
    .addOption({
      name: "ids",
      description: 'Schedule ids, comma-separated, or "all"',
      defaultValue: "all",
    })
    .setAction(afterBuild(() => import("./actions/vesting-release.js")))
    .build(),
];
