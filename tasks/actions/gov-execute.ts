import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { executeProposal, parseProposalId } from "../../offchain/governance/proposals.js";
import { runTask } from "../lib.js";
import { openGovernance } from "./gov-common.js";

export default async function execute(
  args: { id: string; from: string },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const id = parseProposalId(args.id);
    const { signer, h } = await openGovernance(hre, args.from);
    const out = await executeProposal(h, signer, id);
    console.log(`executed ${id} (tx ${out.txHash}, ${out.gasUsed} gas)`);
  });
}
