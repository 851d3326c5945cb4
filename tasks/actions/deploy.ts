import path from "node:path";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { deploySystem } from "../../offchain/deploy/system.js";
import { parseAddress, parseOpg } from "../../offchain/staking/units.js";
import { loadPlan } from "../../offchain/vesting/plan.js";
import { connect, planPath, runTask } from "../lib.js";

export default async function deploy(
  args: {
    plan: string;
    batchSize: number;
    timelockDelay: bigint;
    votingDelay: bigint;
    votingPeriod: bigint;
    quorum: bigint;
    proposalThreshold: string;
    unbondingDelay: bigint;
    guardian: string;
    rewardsUpdater: string;
  },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const { ethers, networkName, dir } = await connect(hre);
    const file = planPath(hre, dir, args.plan);
    const plan = await loadPlan(file);
    const signers = await ethers.getSigners();
    const root = hre.config.paths.root;
    console.log(
      `Deploying the OPG protocol to ${networkName} as ${signers[0]!.address}; plan ${path.relative(root, file)}`,
    );
    const system = await deploySystem(ethers, {
      dir,
      network: networkName,
      plan,
      planFile: path.relative(root, file),
      batchSize: args.batchSize,
      timelockDelay: args.timelockDelay,
      votingDelay: args.votingDelay,
      votingPeriod: args.votingPeriod,
      quorumPercent: args.quorum,
      proposalThreshold:
        args.proposalThreshold.trim() === "0"
          ? 0n
          : parseOpg(args.proposalThreshold, "--proposal-threshold"),
      stakingParams: { unbondingDelay: args.unbondingDelay },
      ...(args.guardian === "" ? {} : { guardian: parseAddress(args.guardian, "--guardian") }),
      ...(args.rewardsUpdater === ""
        ? {}
        : { rewardsUpdater: parseAddress(args.rewardsUpdater, "--rewards-updater") }),
      beneficiarySigners: signers,
      log: (m) => console.log(`  ${m}`),
    });
    console.log(
      `Done. Plan hash ${system.planHash}; governance: OPGGovernor ${await system.governor.getAddress()} behind OPGTimelock ${await system.timelock.getAddress()}; the deployer holds no role`,
    );
    console.log(
      `Record: ${path.relative(root, dir)}/deployment.json, addresses.json, rewards.json, governance.json`,
    );
  });
}
