import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { castVote, parseProposalId, parseSupport } from "../../offchain/governance/proposals.js";
import { formatVotes } from "../../offchain/governance/report.js";
import { runTask } from "../lib.js";
import { openGovernance } from "./gov-common.js";

export default async function vote(
  args: { id: string; support: string; reason: string; from: string },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const id = parseProposalId(args.id);
    const support = parseSupport(args.support);
    const { signer, h } = await openGovernance(hre, args.from);
    const out = await castVote(h, signer, id, support, args.reason);
    console.log(
      `${await signer.getAddress()} voted ${support} with ${formatVotes(out.weight)} votes on ${id} (tx ${out.txHash})`,
    );
  });
}
