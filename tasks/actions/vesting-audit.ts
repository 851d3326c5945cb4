import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { stringifyJson } from "../../offchain/common/json.js";
import { addressOf } from "../../offchain/chain/deployment.js";
import { auditVault, formatAudit } from "../../offchain/vesting/audit.js";
import { loadPlan } from "../../offchain/vesting/plan.js";
import { OPGToken__factory, VestingVault__factory } from "../../types/ethers-contracts/index.js";
import { connect, recordedPlanPath, runTask } from "../lib.js";

export default async function audit(
  args: { plan: string; json: boolean },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const { ethers, dir } = await connect(hre);
    const plan = await loadPlan(await recordedPlanPath(hre, dir, args.plan));
    const vault = VestingVault__factory.connect(
      await addressOf(dir, "VestingVault"),
      ethers.provider,
    );
    const token = OPGToken__factory.connect(await addressOf(dir, "OPGToken"), ethers.provider);
    const report = await auditVault(vault, token, plan);
    console.log(args.json ? stringifyJson(report) : formatAudit(report));
    if (!report.ok) process.exitCode = 1;
  });
}
