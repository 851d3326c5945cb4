import type { HardhatRuntimeEnvironment } from "hardhat/types/hre";

import { stringifyJson } from "../../offchain/common/json.js";
import {
  listProposals,
  loadGovernance,
  parseProposalId,
  readProposal,
} from "../../offchain/governance/proposals.js";
import { formatProposal, formatProposalTable } from "../../offchain/governance/report.js";
import { connect, runTask } from "../lib.js";

export default async function status(
  args: { id: string; json: boolean },
  hre: HardhatRuntimeEnvironment,
): Promise<void> {
  await runTask(async () => {
    const id = args.id === "" ? undefined : parseProposalId(args.id);
    const { ethers, dir } = await connect(hre);
    const h = await loadGovernance(ethers.provider, dir);
    if (id !== undefined) {
      const p = await readProposal(h, id);
      console.log(args.json ? stringifyJson(p) : formatProposal(p));
      return;
    }
    const list = await listProposals(h);
    console.log(args.json ? stringifyJson(list) : formatProposalTable(list));
  });
}
