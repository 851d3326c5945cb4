import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import type { ActionArgs } from "../../offchain/governance/actions.js";
import { buildProposal } from "../../offchain/governance/actions.js";
import { describeCall } from "../../offchain/governance/contracts.js";
import { isoTime, propose } from "../../offchain/governance/proposals.js";
import { runTask } from "../lib.js";
import { openGovernance } from "./gov-common.js";

export default async function proposeTask(
  args: ActionArgs & { from: string },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const { signer, h } = await openGovernance(hre, args.from);
    const input = await buildProposal(args, {
      addresses: h.addresses,
      latency: async () => ({
        votingDelay: await h.governor.votingDelay(),
        votingPeriod: await h.governor.votingPeriod(),
        timelockDelay: await h.timelock.getMinDelay(),
      }),
    });
    const out = await propose(h, signer, input);
    console.log(`proposed ${out.proposalId} (tx ${out.txHash})`);
    for (const c of input.calls)
      console.log(`  call: ${describeCall(h.addresses, c.target, c.data, c.value)}`);
    console.log(`  description: ${input.description}`);
    console.log(`  voting after ${isoTime(out.voteStart)} until ${isoTime(out.voteEnd)}`);
    console.log(`  next: opg:gov:vote --id ${out.proposalId} --support for`);
  });
}
