import path from "node:path";

import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { loadPlan } from "../../offchain/vesting/plan.js";
import { deployVesting } from "../../offchain/vesting/deploy.js";
import { connect, planPath, runTask } from "../lib.js";

export default async function deploy(
  args: { plan: string; batchSize: number },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const { ethers, networkName, dir } = await connect(hre);
    const file = planPath(hre, dir, args.plan);
    const plan = await loadPlan(file);
    const [signer] = await ethers.getSigners();
    console.log(
      `Deploying to ${networkName} as ${signer!.address}; plan ${path.relative(hre.config.paths.root, file)}`,
    );
    const result = await deployVesting(signer!, {
      dir,
      network: networkName,
      plan,
      planFile: path.relative(hre.config.paths.root, file),
      batchSize: args.batchSize,
      log: (m) => console.log(`  ${m}`),
    });
    console.log(
      `Done. Plan hash ${result.planHash}; record in ${path.relative(hre.config.paths.root, dir)}/`,
    );
  });
}
