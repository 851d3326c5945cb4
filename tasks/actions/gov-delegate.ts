import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { delegateVotes } from "../../offchain/governance/proposals.js";
import { formatVotes } from "../../offchain/governance/report.js";
import { parseAddress } from "../../offchain/staking/units.js";
import { runTask } from "../lib.js";
import { openGovernance } from "./gov-common.js";

export default async function delegate(
  args: { to: string; from: string },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const to = args.to === "" ? undefined : parseAddress(args.to, "--to");
    const { signer, h } = await openGovernance(hre, args.from);
    const out = await delegateVotes(h.token, signer, to);
    const how = out.txHash === null ? "already delegated" : `delegated (tx ${out.txHash})`;
    console.log(
      `${await signer.getAddress()} ${how} to ${out.delegatee}: ${formatVotes(out.balance)} OPG; ${out.delegatee} now has ${formatVotes(out.votes)} votes`,
    );
  });
}
