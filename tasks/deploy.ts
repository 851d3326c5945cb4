import { task } from "hardhat/config";
import { ArgumentType } from "hardhat/types/arguments";

export const deployTasks = [
  task(
    "opg:deploy",
    "Deploy the protocol, create and seal the published plan, hand governance to the timelock",
  )
    .addOption({
      name: "plan",
      description: "Plan file (default deployments/<network>/vesting-plan.json)",
      defaultValue: "",
    })
    .addOption({
      name: "batchSize",
      description: "Schedules per transaction",
      type: ArgumentType.INT,
      defaultValue: 10,
    })
    .addOption({
      name: "timelockDelay",
      description: "Seconds every governance change waits in the timelock",
      type: ArgumentType.BIGINT,
      defaultValue: 172_800n,
    })
    .addOption({
      name: "guardian",
      description: "Holder of the veto and rewards-guardian roles (default: the deployer)",
      defaultValue: "",
    })
    .setAction(() => import("./actions/deploy.js"))
    .build(),
];
