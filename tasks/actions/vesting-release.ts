import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { addressOf } from "../../offchain/chain/deployment.js";
import { formatOpg } from "../../offchain/vesting/plan.js";
import { parseIds, releaseSchedules } from "../../offchain/vesting/release.js";
import { VestingVault__factory } from "../../types/ethers-contracts/index.js";
import { connect, runTask } from "../lib.js";

export default async function release(
  args: { ids: string },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const ids = parseIds(args.ids);
    const { ethers, dir } = await connect(hre);
    const [signer] = await ethers.getSigners();
    const vault = VestingVault__factory.connect(await addressOf(dir, "VestingVault"), signer);
    const result = await releaseSchedules(vault, ids);
    if (result.txHash === null) {
      console.log("Nothing is releasable now.");
      return;
    }
    for (const r of result.released) {
      console.log(`  schedule ${r.id}: ${formatOpg(r.amount)} OPG -> ${r.beneficiary}`);
    }
    console.log(
      `Released in tx ${result.txHash}; nothing due for: ${result.skipped.join(", ") || "-"}`,
    );
  });
}
