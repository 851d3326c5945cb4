import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { isoTime, parseProposalId, queueProposal } from "../../offchain/governance/proposals.js";
import { runTask } from "../lib.js";
import { openGovernance } from "./gov-common.js";

export default async function queue(
  args: { id: string; from: string },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const id = parseProposalId(args.id);
    const { signer, h } = await openGovernance(hre, args.from);
    const out = await queueProposal(h, signer, id);
    console.log(
      `queued ${id} in the timelock (tx ${out.txHash}); executable from ${isoTime(out.eta)}`,
    );
  });
}
