import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { loadGovernance } from "../../offchain/governance/proposals.js";
import { pickSigner } from "../../offchain/staking/tasks.js";
import { connect } from "../lib.js";

/** The network's governor, token and timelock, connected to the sending account `from`. */
export async function openGovernance(hre: HardhatRuntimeEnvironment, from: string) {
  const { ethers, dir } = await connect(hre);
  const signer = await pickSigner(ethers, from);
  const h = await loadGovernance(signer, dir);
  return { ethers, dir, signer, h };
}
