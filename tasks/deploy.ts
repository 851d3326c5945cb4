import { task } from "hardhat/config";
import { ArgumentType } from "hardhat/types/arguments";
import { afterBuild } from "./lib.js";

export const deployTasks = [
  task(
    "opg:deploy",
    "Deploy the protocol, create and seal the published plan, hand governance to the governor and its timelock",
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
      description:
        "Seconds every governance change waits in the timelock after its proposal passed",
      type: ArgumentType.BIGINT,
      defaultValue: 172_800n,
    })
    .addOption({
      name: "votingDelay",
      description: "Governor: seconds from a proposal to the start of voting",
      type: ArgumentType.BIGINT,
      defaultValue: 86_400n,
    })
    .addOption({
      name: "votingPeriod",
      description: "Governor: seconds the vote stays open",
      type: ArgumentType.BIGINT,
      defaultValue: 432_000n,
    })
    .addOption({
      name: "quorum",
      description: "Governor: quorum in percent of the OPG supply",
      type: ArgumentType.BIGINT,
      defaultValue: 4n,
    })
    .addOption({
      name: "proposalThreshold",
      description: "Governor: votes (OPG) a proposer needs",
      defaultValue: "1000000",
    })
    .addOption({
      name: "assignmentWindow",
      description:
        "InferenceLedger: seconds within which every active GPU node gets its turn at an on-chain request (default 30; 0 on local chains: a race)",
      defaultValue: "",
    })
    .addOption({
      name: "unbondingDelay",
      description:
        "NodeStaking unbonding delay in seconds (default 7 days; must be shorter than voting delay + period + timelock delay)",
      type: ArgumentType.BIGINT,
      defaultValue: 604_800n,
    })
    .addOption({
      name: "guardian",
      description:
        "Holder of the veto and rewards-guardian roles (required off local chains; locally default: the deployer)",
      defaultValue: "",
    })
    .addOption({
      name: "rewardsUpdater",
      description:
        "Holder of ContributorRewards UPDATER_ROLE (required off local chains; locally default: the deployer)",
      defaultValue: "",
    })
    .addOption({
      name: "verifier",
      description:
        "Attestation verifier: dev (local chains only; their default) or quorum (required off local chains, with --attesters and --threshold)",
      defaultValue: "",
    })
    .addOption({
      name: "attesters",
      description: "Quorum verifier: comma-separated attester addresses (0xA,0xB,0xC)",
      defaultValue: "",
    })
    .addOption({
      name: "threshold",
      description:
        "Quorum verifier: attester signatures an enclave registration needs (1..attesters)",
      type: ArgumentType.INT,
      defaultValue: 0,
    })
    .addOption({
      name: "attestationMaxAge",
      description:
        "Quorum verifier: seconds an attester's signature stays usable (default 1 day, at most 7 days)",
      type: ArgumentType.BIGINT,
      defaultValue: 86_400n,
    })
    .addFlag({
      name: "dryRun",
      description: "Run the preflight checks and print the plan of transactions; send nothing",
    })
    .setAction(afterBuild(() => import("./actions/deploy.js")))
    .build(),
];
